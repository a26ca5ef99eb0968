{#- One row per feed and day: the signals the API counted that day. -#}
with totals as (
  {{ contactbased_one_row_per_key(source('contactbased', 'feed_totals'), ['feed_id', '"date"']) }}
)

select
  cast(feed_id as {{ dbt.type_string() }}) as feed_id,
  cast("date" as date) as signal_date,
  cast("count" as {{ dbt.type_bigint() }}) as signals_counted
from totals
