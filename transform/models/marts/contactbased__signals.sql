{#-
  Every delivered signal once, with its feed. A signal is one row of a feed's day: the same
  signal delivered by two exports (overlapping snapshot windows, today's partial day again the
  next day) has the same feed, day, contact, domain, topic and first and last seen times. Its
  values are taken from the newest export that delivered it; soft-deleted rows count too (they
  were delivered: an older snapshot's rows).
-#}
with deliveries as (
  select
    {{ contactbased_signal_key() }} as signal_key,
    delivered.*,
    exports.created_at as export_created_at
  from {{ ref('stg_contactbased__export_rows') }} as delivered
  left join {{ ref('stg_contactbased__exports') }} as exports
    on exports.export_id = delivered.export_id
),

ranked as (
  select
    deliveries.*,
    row_number() over (
      partition by signal_key
      order by export_created_at desc nulls last, export_id desc, export_row
    ) as newest_first,
    count(*) over (partition by signal_key) as times_delivered
  from deliveries
)

select
  ranked.signal_key,
  ranked.feed_id,
  feeds.feed_name,
  feeds.feed_kind,
  ranked.signal_date,
  ranked.contact_id,
  ranked.domain,
  ranked.company_name,
  ranked.industry,
  ranked.employee_range,
  ranked.revenue_range,
  ranked.topic,
  ranked.intent_score,
  ranked.first_seen,
  ranked.last_seen,
  ranked.first_name,
  ranked.last_name,
  ranked.job_title,
  ranked.seniority,
  ranked.department,
  ranked.linkedin_url,
  ranked.city,
  ranked.state,
  ranked.country,
  ranked.postal_code,
  ranked.export_id,
  ranked.export_row,
  ranked.times_delivered
from ranked
left join {{ ref('stg_contactbased__feeds') }} as feeds
  on feeds.feed_id = ranked.feed_id
where ranked.newest_first = 1
