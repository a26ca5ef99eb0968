{#-
  The last snapshot of each feed (export_mode: snapshot): the rows of the newest export of
  each feed that delivered rows, without the rows the loader soft-deleted (a versioned
  snapshot replacing them). In incremental mode it is the last day each feed delivered.
-#}
with delivered as (
  select distinct export_id
  from {{ ref('stg_contactbased__export_rows') }}
),

newest as (
  select export_id
  from (
    select
      exports.export_id,
      row_number() over (
        partition by exports.feed_id
        order by exports.created_at desc nulls last, exports.export_id desc
      ) as newest_first
    from {{ ref('stg_contactbased__exports') }} as exports
    inner join delivered on delivered.export_id = exports.export_id
  ) as ranked
  where newest_first = 1
)

select snapshot_rows.*
from {{ ref('stg_contactbased__export_rows') }} as snapshot_rows
inner join newest on newest.export_id = snapshot_rows.export_id
where snapshot_rows.deleted_at is null
