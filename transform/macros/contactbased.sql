{#
  What the staging models need to read a raw table the same way on every adapter: its columns
  (loaders differ: target-postgres adds _sdc_* columns, target-duckdb by default does not),
  one row per key, and the soft-delete mark where the loader keeps one.
#}

{% macro contactbased_columns(relation) %}
  {#- Lower-cased column names of a relation; none while dbt only parses the project. -#}
  {%- set names = [] -%}
  {%- if execute -%}
    {%- for column in adapter.get_columns_in_relation(relation) -%}
      {%- do names.append(column.name | lower) -%}
    {%- endfor -%}
  {%- endif -%}
  {{- return(names) -}}
{% endmacro %}


{% macro contactbased_one_row_per_key(relation, keys) %}
  {#-
    The rows of a raw table, one per key. A resumed run re-sends the rows its last state had
    not confirmed; a loader that appends keeps both copies. The copy of the latest load wins
    where the loader stamps loads (_sdc_batched_at); the copies are the same rows otherwise.
  -#}
  {%- set columns = contactbased_columns(relation) -%}
  {%- set order = keys | join(', ') -%}
  {%- if '_sdc_batched_at' in columns -%}
    {%- set order = '_sdc_batched_at desc nulls last, ' ~ order -%}
  {%- endif -%}
  select *
  from (
    select
      loaded.*,
      row_number() over (partition by {{ keys | join(', ') }} order by {{ order }}) as contactbased_copy
    from {{ relation }} as loaded
  ) as copies
  where contactbased_copy = 1
{% endmacro %}


{% macro contactbased_deleted_at(relation) %}
  {#-
    When the loader soft-deleted the row (target-postgres sets _sdc_deleted_at when a
    versioned snapshot replaces an older one); null where the loader keeps no such column.
  -#}
  {%- if '_sdc_deleted_at' in contactbased_columns(relation) -%}
    cast(_sdc_deleted_at as {{ dbt.type_timestamp() }})
  {%- else -%}
    cast(null as {{ dbt.type_timestamp() }})
  {%- endif -%}
{% endmacro %}


{% macro contactbased_sql_type(kind) %}
  {#- The column type of a JSON kind of the tap's schemas. -#}
  {%- set types = {
    'string': dbt.type_string(),
    'integer': dbt.type_bigint(),
    'number': dbt.type_numeric(),
    'boolean': dbt.type_boolean(),
    'date': 'date',
  } -%}
  {{- return(types[kind]) -}}
{% endmacro %}


{% macro contactbased_bundle_fields(relation) %}
  {#-
    One typed column per scalar field of each bundle column the table has (var
    contactbased_bundle_fields), named <bundle>__<field>. Loaders spell the column
    bundle_individual-core or bundle_individual_core: both are found.
  -#}
  {%- set columns = contactbased_columns(relation) -%}
  {%- for bundle, fields in var('contactbased_bundle_fields').items() -%}
    {%- set wanted = ('bundle_' ~ bundle) | replace('-', '_') -%}
    {%- for column in columns if column | replace('-', '_') == wanted -%}
      {%- for field, kind in fields.items() %}
    cast({{ adapter.quote(column) }} ->> '{{ field }}' as {{ contactbased_sql_type(kind) }}) as {{ bundle | replace('-', '_') }}__{{ field }},
      {%- endfor -%}
    {%- endfor -%}
  {%- endfor -%}
{% endmacro %}


{% macro contactbased_signal_key() %}
  {#- The identity of a signal (see contactbased__signals), as an md5 of its parts. -#}
  {%- set parts = ['feed_id', 'signal_date', 'contact_id', 'domain', 'topic', 'first_seen', 'last_seen'] -%}
  md5(
    {%- for part in parts %}
    coalesce(cast(delivered.{{ part }} as {{ dbt.type_string() }}), '') {{- " || '|' ||" if not loop.last }}
    {%- endfor %}
  )
{% endmacro %}
