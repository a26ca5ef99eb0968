{#- One row per field usable in consumer_filters. -#}
with fields as (
  {{ contactbased_one_row_per_key(source('contactbased', 'filter_fields'), ['field']) }}
)

select
  cast(field as {{ dbt.type_string() }}) as field,
  cast(label as {{ dbt.type_string() }}) as label,
  cast(category as {{ dbt.type_string() }}) as category,
  cast("type" as {{ dbt.type_string() }}) as field_type
from fields
