{#- One row per enrichment bundle, enabled or not. -#}
with bundles as (
  {{ contactbased_one_row_per_key(source('contactbased', 'bundles'), ['"key"']) }}
)

select
  cast("key" as {{ dbt.type_string() }}) as bundle,
  cast(label as {{ dbt.type_string() }}) as label,
  cast(path as {{ dbt.type_string() }}) as path,
  cast(enabled as {{ dbt.type_boolean() }}) as enabled
from bundles
