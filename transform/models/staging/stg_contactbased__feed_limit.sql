{#- One reading of the self-serve feed limit per UTC day. -#}
with readings as (
  {{ contactbased_one_row_per_key(source('contactbased', 'feed_limit'), ['snapshot_date']) }}
)

select
  cast(snapshot_date as date) as snapshot_date,
  cast(feed_limit as {{ dbt.type_bigint() }}) as feed_limit,
  cast(feeds_created as {{ dbt.type_bigint() }}) as feeds_created,
  cast(feeds_remaining as {{ dbt.type_bigint() }}) as feeds_remaining
from readings
