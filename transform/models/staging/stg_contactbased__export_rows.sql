{#- One row per (export_id, export_row), typed; bundle columns unpacked; deleted_at kept. -#}
{%- set raw = source('contactbased', 'export_rows') -%}

with deduplicated as (
  {{ contactbased_one_row_per_key(raw, ['export_id', 'export_row']) }}
)

select
  cast(export_id as {{ dbt.type_string() }}) as export_id,
  cast(export_row as {{ dbt.type_bigint() }}) as export_row,
  cast(feed_id as {{ dbt.type_string() }}) as feed_id,
  cast(contact_id as {{ dbt.type_string() }}) as contact_id,
  cast(domain as {{ dbt.type_string() }}) as domain,
  cast(company_name as {{ dbt.type_string() }}) as company_name,
  cast(industry as {{ dbt.type_string() }}) as industry,
  cast(employee_range as {{ dbt.type_string() }}) as employee_range,
  cast(revenue_range as {{ dbt.type_string() }}) as revenue_range,
  cast(topic as {{ dbt.type_string() }}) as topic,
  cast(intent_score as {{ dbt.type_numeric() }}) as intent_score,
  cast(signal_date as date) as signal_date,
  cast(first_seen as {{ dbt.type_timestamp() }}) as first_seen,
  cast(last_seen as {{ dbt.type_timestamp() }}) as last_seen,
  cast(first_name as {{ dbt.type_string() }}) as first_name,
  cast(last_name as {{ dbt.type_string() }}) as last_name,
  cast(job_title as {{ dbt.type_string() }}) as job_title,
  cast(seniority as {{ dbt.type_string() }}) as seniority,
  cast(department as {{ dbt.type_string() }}) as department,
  cast(linkedin_url as {{ dbt.type_string() }}) as linkedin_url,
  cast(city as {{ dbt.type_string() }}) as city,
  cast(state as {{ dbt.type_string() }}) as state,
  cast(country as {{ dbt.type_string() }}) as country,
  cast(postal_code as {{ dbt.type_string() }}) as postal_code,
  {{- contactbased_bundle_fields(raw) }}
  {{ contactbased_deleted_at(raw) }} as deleted_at
from deduplicated
