{#-
  Credits used per day. Records credits: from the daily readings of the credit pool
  (`credits`), the rise of records_used since the previous reading, in the same period
  (after a new period starts, records_used itself: the pool restarts; null for the first
  reading, which has nothing to compare with). Enrichment credits: the API's credit reading
  has no enrichment counter (docs/contactbased-api.md), so they are the enrichments the
  warehouse holds, by the UTC day of their latest enrichment (each costs one enrichment; a
  contact enriched again later counts on that later day only).
-#}
with readings as (
  select
    snapshot_date,
    records_total,
    records_used,
    records_reserved,
    records_remaining,
    period_start,
    lag(records_used) over (order by snapshot_date) as previous_records_used,
    lag(period_start) over (order by snapshot_date) as previous_period_start,
    lag(snapshot_date) over (order by snapshot_date) as previous_snapshot_date
  from {{ ref('stg_contactbased__credits') }}
),

records as (
  select
    snapshot_date as usage_date,
    records_total,
    records_used,
    records_reserved,
    records_remaining,
    case
      when previous_snapshot_date is null then null
      when period_start = previous_period_start then records_used - previous_records_used
      else records_used
    end as records_credits_used,
    previous_snapshot_date
  from readings
),

enrichments as (
  select
    cast(enriched_at as date) as usage_date,
    count(*) as enrichment_credits_used
  from {{ ref('stg_contactbased__enrichment') }}
  group by 1
)

select
  coalesce(records.usage_date, enrichments.usage_date) as usage_date,
  records.records_credits_used,
  coalesce(enrichments.enrichment_credits_used, 0) as enrichment_credits_used,
  records.records_used,
  records.records_reserved,
  records.records_remaining,
  records.records_total,
  records.previous_snapshot_date
from records
full outer join enrichments on enrichments.usage_date = records.usage_date
