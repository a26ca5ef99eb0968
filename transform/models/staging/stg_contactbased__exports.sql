{#- One row per export: its feed, status, window and size. -#}
{%- set raw = source('contactbased', 'exports') -%}

with exports as (
  {{ contactbased_one_row_per_key(raw, ['export_id']) }}
)

select
  cast(export_id as {{ dbt.type_string() }}) as export_id,
  cast(feed_id as {{ dbt.type_string() }}) as feed_id,
  lower(trim(cast(status as {{ dbt.type_string() }}))) as status,
  cast(lookback_days as {{ dbt.type_bigint() }}) as lookback_days,
  cast(start_date as date) as start_date,
  cast(end_date as date) as end_date,
  cast(total_rows as {{ dbt.type_bigint() }}) as total_rows,
  cast(records_reserved as {{ dbt.type_bigint() }}) as records_reserved,
  cast(created_at as {{ dbt.type_timestamp() }}) as created_at,
  cast(updated_at as {{ dbt.type_timestamp() }}) as updated_at
from exports
