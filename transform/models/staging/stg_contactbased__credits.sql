{#- One reading of the records credit pool per UTC day (the API's clock). -#}
with credits as (
  {{ contactbased_one_row_per_key(source('contactbased', 'credits'), ['snapshot_date']) }}
)

select
  cast(snapshot_date as date) as snapshot_date,
  cast(records_total as {{ dbt.type_bigint() }}) as records_total,
  cast(records_used as {{ dbt.type_bigint() }}) as records_used,
  cast(records_reserved as {{ dbt.type_bigint() }}) as records_reserved,
  cast(records_remaining as {{ dbt.type_bigint() }}) as records_remaining,
  cast(period_start as date) as period_start,
  cast(period_end as date) as period_end
from credits
