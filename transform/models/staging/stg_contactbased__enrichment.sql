{#- One row per contact and bundle: its latest enrichment; data stays JSON. -#}
with enrichment as (
  {{ contactbased_one_row_per_key(source('contactbased', 'enrichment'), ['contact_id', 'bundle']) }}
)

select
  cast(contact_id as {{ dbt.type_string() }}) as contact_id,
  cast(bundle as {{ dbt.type_string() }}) as bundle,
  cast(found as {{ dbt.type_boolean() }}) as found,
  data,
  cast(enriched_at as {{ dbt.type_timestamp() }}) as enriched_at
from enrichment
