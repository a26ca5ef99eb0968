{#- One row per feed the organization can access. -#}
with feeds as (
  {{ contactbased_one_row_per_key(source('contactbased', 'feeds'), ['feed_id']) }}
)

select
  cast(feed_id as {{ dbt.type_string() }}) as feed_id,
  cast(name as {{ dbt.type_string() }}) as feed_name,
  cast(kind as {{ dbt.type_string() }}) as feed_kind,
  cast(query as {{ dbt.type_string() }}) as query,
  cast(domain_count as {{ dbt.type_bigint() }}) as domain_count,
  cast(max_lookback_days as {{ dbt.type_bigint() }}) as max_lookback_days,
  cast(created_at as {{ dbt.type_timestamp() }}) as created_at,
  cast(updated_at as {{ dbt.type_timestamp() }}) as updated_at
from feeds
