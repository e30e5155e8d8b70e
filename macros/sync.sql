{#-
  SQL the `dbt-braze sync` command runs (rendered here so that adapters can
  override it by dispatch; the Python side only executes it).
-#}

{#-
  What the sync reads: one row per user, in key order (the upserts:
  braze_read_objects_sql in macros/json.sql; removed users here). With a
  `key_prefix` (the model's, braze_key_prefix), only the users whose key the
  model's identifier made, or with `recorded_elsewhere` only the others:
  those recorded under another identifier, which the model's cannot address.
-#}
{% macro braze_read_removed_users_sql(model_name, mapped_only, page=none, key_prefix=none, recorded_elsewhere=false) %}
  {%- set rows = dbt_braze.braze_read_removed_sql(model_name, mapped_only) -%}
  {%- if key_prefix is not none -%}
    {#- on the pending rows, where the warehouse can push it down to their scan -#}
    {%- set rows = "select * from (\n" ~ rows ~ "\n) removed where " ~ ("" if recorded_elsewhere else "not ")
                   ~ dbt_braze.braze_recorded_elsewhere_sql(key_prefix, 'removed.braze_key') -%}
  {%- endif -%}
  {{ return(dbt_braze.braze_keyset_page(dbt_braze.braze_removed_users_sql(rows), page)) }}
{% endmacro %}

{#- Pending attribute changes still unacknowledged and not rejected, one row per attribute. -#}
{% macro braze_read_upserts_sql(model_name) %}
  {{ return(adapter.dispatch('braze_read_upserts_sql', 'dbt_braze')(model_name)) }}
{% endmacro %}

{#-
  Braze refuses a whole object, so a user whose every pending value is one
  Braze already refused (same hash) is held back: nothing changed since.
  Once any of its values changes, the whole object goes again, the refused
  values included (they were never applied).
-#}
{% macro default__braze_read_upserts_sql(model_name) %}
select braze_key, attribute, value_text, value_type, value_hash, is_new
from (
    select unsent.*,
           min(refused) over (partition by braze_key) as all_refused
    from (
        select p.braze_key, p.attribute, p.value_text, p.value_type, p.value_hash, p.is_new,
               case when exists (
                   select 1 from {{ dbt_braze.braze_rejected_relation() }} r
                   where r.model_name = {{ dbt_braze.braze_string_literal(model_name) }}
                     and r.braze_key = p.braze_key and r.attribute = p.attribute
                     and coalesce(r.value_hash, '-') = coalesce(p.value_hash, '-'))
               then 1 else 0 end as refused
        from {{ dbt_braze.braze_pending_relation(model_name) }} p
        where p.change_kind = 'upsert'
          and not exists (
            select 1 from {{ dbt_braze.braze_state_relation() }} s
            where s.model_name = {{ dbt_braze.braze_string_literal(model_name) }} and s.acked_at >= p.built_at
              and s.braze_key = p.braze_key and s.attribute = p.attribute
              and coalesce(s.value_hash, '-') = coalesce(p.value_hash, '-'))
    ) unsent
) judged
where all_refused = 0
{% endmacro %}

{#- Removed users' attributes Braze still holds (mapped_only: the `unset` case). -#}
{% macro braze_read_removed_sql(model_name, mapped_only) %}
  {{ return(adapter.dispatch('braze_read_removed_sql', 'dbt_braze')(model_name, mapped_only)) }}
{% endmacro %}

{% macro default__braze_read_removed_sql(model_name, mapped_only) %}
select p.braze_key, p.attribute, cast(null as {{ dbt.type_string() }}) as value_text,
       cast(null as {{ dbt.type_string() }}) as value_type,
       cast(null as {{ dbt.type_string() }}) as value_hash, false as is_new
from {{ dbt_braze.braze_pending_relation(model_name) }} p
where p.change_kind = 'removed'
  {% if mapped_only %}and p.is_mapped{% endif %}
  and not exists (
    select 1 from {{ dbt_braze.braze_state_relation() }} s
    where s.model_name = {{ dbt_braze.braze_string_literal(model_name) }} and s.acked_at >= p.built_at
      and s.braze_key = p.braze_key and s.attribute = p.attribute
      and s.value_hash is null)
{% endmacro %}

{#-
  --full-refresh: every current row, every mapped attribute, nulls included;
  every subscription group that states something (a subscribe is withheld
  under unsubscribe_only, as in any sync: macros/subscriptions.sql).
-#}
{% macro braze_read_full_refresh_sql(relation, id_column, mappings, key_prefix='') %}
  {{ return(adapter.dispatch('braze_read_full_refresh_sql', 'dbt_braze')(relation, id_column, mappings, key_prefix)) }}
{% endmacro %}

{% macro default__braze_read_full_refresh_sql(relation, id_column, mappings, key_prefix='') %}
  {%- set typed = dbt_braze.braze_typed_mappings(relation, mappings) -%}
  {%- if typed is none -%}{{ return(none) }}{%- endif %}
  {%- set sql -%}
with key_counts as (
    {{ dbt_braze.braze_key_counts_sql(relation, id_column, key_prefix) }}
)
select cv.braze_key, cv.attribute, cv.value_text, cv.value_type,
       case when cv.value_text is null then null else {{ dbt_braze.braze_hash('cv.value_text') }} end as value_hash,
       false as is_new
from ({{ dbt_braze.braze_current_values_sql(relation, id_column, typed, key_prefix) }}) cv
inner join key_counts kc on kc.braze_key = cv.braze_key and kc.row_count = 1
{#- a subscription group whose column is null states nothing (macros/subscriptions.sql) #}
where cv.value_text is not null or cv.value_type <> 'subscription'
  {%- endset %}
  {{ return(sql) }}
{% endmacro %}

{#-
  Every user's whole object (--full-refresh), in the layout of
  braze_read_objects_sql; built_stamp is null: these rows are not read from
  braze_objects__<model>, so they are acknowledged from what was sent.
-#}
{% macro braze_read_full_refresh_objects_sql(relation, id_column, mappings, page=none, key_prefix='') %}
  {%- set rows_sql = dbt_braze.braze_read_full_refresh_sql(relation, id_column, mappings, key_prefix) -%}
  {%- if rows_sql is none -%}{{ return(none) }}{%- endif -%}
  {%- set sql -%}
select objects.*, cast(null as {{ dbt_braze.braze_type_string() }}) as built_stamp
from ({{ dbt_braze.braze_user_objects_sql(rows_sql) }}) objects
  {%- endset -%}
  {{ return(dbt_braze.braze_keyset_page(sql, page)) }}
{% endmacro %}

{% macro braze_withheld_sql(model_name) %}
select change_kind, braze_key, cast(value_text as {{ dbt.type_int() }}) as row_count
from {{ dbt_braze.braze_pending_relation(model_name) }}
where change_kind in ('withheld_null', 'withheld_duplicate', 'model_rows')
order by row_count desc, braze_key
{% endmacro %}

{#-
  Rows handed over by the sync, as a relation: `columns` is a list of
  [name, text] where text joins the column's values with chr(31). Each value
  is written as `x` and the hex of its UTF-8 bytes, and '' stands for NULL
  (warehouse.encode_cell), so any text round-trips exactly, separators,
  quotes and control characters included, and the literal holds nothing a
  dialect escapes. One string literal per column parses ~20x faster than a
  VALUES list of the same rows (DuckDB: 0.14 s against 2.9 s for 50,000
  rows), which keeps checkpoints cheap.
-#}
{% macro braze_rows_sql(columns) %}
  {{ return(adapter.dispatch('braze_rows_sql', 'dbt_braze')(columns)) }}
{% endmacro %}

{% macro default__braze_rows_sql(columns) %}
  {%- set arrays, names = [], [] -%}
  {%- for name, text in columns -%}
    {%- do arrays.append("string_to_array(" ~ dbt_braze.braze_string_literal(text) ~ ", chr(31))") -%}
    {%- do names.append(name) -%}
  {%- endfor -%}
  select {% for name in names %}{{ dbt_braze.braze_decode_cell(name) }} as {{ name }}{% if not loop.last %}, {% endif %}{% endfor %}
  from unnest({{ arrays | join(', ') }}) as handed ({{ names | join(', ') }})
{% endmacro %}

{% macro duckdb__braze_rows_sql(columns) %}
  select {% for name, text in columns %}{{ dbt_braze.braze_decode_cell(name) }} as {{ name }}{% if not loop.last %}, {% endif %}{% endfor %}
  from (
    select
    {%- for name, text in columns %}
      unnest(string_split({{ dbt_braze.braze_string_literal(text) }}, chr(31))) as {{ name }}{% if not loop.last %},{% endif %}
    {%- endfor %}
  ) handed
{% endmacro %}

{#- Spark: split() takes a regex and keeps trailing empties with limit -1; arrays_zip pairs them. -#}
{% macro spark__braze_rows_sql(columns) %}
  select
  {%- for name, text in columns %}
    {{ dbt_braze.braze_decode_cell("handed.row['" ~ loop.index0 ~ "']") }} as {{ name }}{% if not loop.last %},{% endif %}
  {%- endfor %}
  from (
    select explode(arrays_zip(
    {%- for name, text in columns %}
      split({{ dbt_braze.braze_string_literal(text) }}, '\\x1f', -1){% if not loop.last %},{% endif %}
    {%- endfor %})) as row
  ) handed
{% endmacro %}

{#-
  One value of braze_rows_sql (text expression) as the text it encodes:
  '' is NULL, else `x` followed by the hex of the UTF-8 bytes.
-#}
{% macro braze_decode_cell(expr) %}
  {{ return(adapter.dispatch('braze_decode_cell', 'dbt_braze')(expr)) }}
{% endmacro %}

{% macro default__braze_decode_cell(expr) -%}
  convert_from(decode(substr(nullif({{ expr }}, ''), 2), 'hex'), 'UTF8')
{%- endmacro %}

{% macro duckdb__braze_decode_cell(expr) -%}
  decode(unhex(substr(nullif({{ expr }}, ''), 2)))
{%- endmacro %}

{% macro spark__braze_decode_cell(expr) -%}
  cast(unhex(substr(nullif({{ expr }}, ''), 2)) as string)
{%- endmacro %}

{% macro snowflake__braze_decode_cell(expr) -%}
  hex_decode_string(substr(nullif({{ expr }}, ''), 2))
{%- endmacro %}

{% macro bigquery__braze_decode_cell(expr) -%}
  cast(from_hex(substr(nullif({{ expr }}, ''), 2)) as string)
{%- endmacro %}

{#- https://docs.aws.amazon.com/redshift/latest/dg/r_FROM_VARBYTE.html -#}
{% macro redshift__braze_decode_cell(expr) -%}
  from_varbyte(from_hex(substr(nullif({{ expr }}, ''), 2)), 'utf8')
{%- endmacro %}

{#- One INSERT appending acknowledged (key, attribute, hash) rows. -#}
{% macro braze_acknowledge_sql(model_name, rows_sql, run_id) %}
insert into {{ dbt_braze.braze_state_relation() }} (model_name, braze_key, attribute, value_hash, acked_at, run_id)
select {{ dbt_braze.braze_string_literal(model_name) }}, braze_key, attribute, value_hash, {{ dbt_braze.braze_utc_now() }}, '{{ run_id }}'
from ({{ rows_sql }}) acked
{% endmacro %}

{% macro braze_record_rejected_sql(model_name, rows_sql, kind) %}
insert into {{ dbt_braze.braze_rejected_relation() }} (model_name, braze_key, attribute, value_hash, reason, rejected_at, kind)
select {{ dbt_braze.braze_string_literal(model_name) }}, braze_key, attribute, value_hash, reason, {{ dbt_braze.braze_utc_now() }},
       {{ dbt_braze.braze_string_literal(kind) }}
from ({{ rows_sql }}) rejected
{% endmacro %}

{#- When the pending relation was computed (its summary row is always present). -#}
{% macro braze_pending_built_at_sql(model_name) %}
select max(built_at) from {{ dbt_braze.braze_pending_relation(model_name) }}
{% endmacro %}

{#-
  The key prefix (the kind of identifier) the pending changes were computed
  for; '' for external_id and braze_id, and for a relation built before the
  prefix was recorded (those had external_id or braze_id keys).
-#}
{% macro braze_pending_key_prefix_sql(model_name) %}
select coalesce(max(attribute), '') from {{ dbt_braze.braze_pending_relation(model_name) }}
where change_kind = 'model_rows'
{% endmacro %}

{#-
  Non-zero when the pending relation was diffed against a state that has
  since moved, and must be rebuilt before it is trusted:
  - a sync that started before it was built acknowledged anything after;
  - acknowledgements dated before it was built exist now that its diff did
    not see (state_rows): a checkpoint is dated when its transaction began
    (PostgreSQL's now()), so one that began before the diff and committed
    after it is invisible to the diff yet looks older than it.
-#}
{% macro braze_pending_is_stale_sql(model_name) %}
  {%- set built_at = "(select max(built_at) from " ~ dbt_braze.braze_pending_relation(model_name) ~ ")" -%}
select (
    select count(*)
    from {{ dbt_braze.braze_state_relation() }} s
    inner join (
        select run_id, min(started_at) as started_at
        from {{ dbt_braze.braze_runs_relation() }}
        where model_name = {{ dbt_braze.braze_string_literal(model_name) }}
        group by run_id
    ) r on r.run_id = s.run_id
    where s.model_name = {{ dbt_braze.braze_string_literal(model_name) }}
      and s.acked_at >= {{ built_at }}
      and r.started_at < {{ built_at }}
) + (
    select case when count(*) > (
                select max(cast(value_text as {{ dbt.type_int() }}))
                from {{ dbt_braze.braze_pending_relation(model_name) }}
                where change_kind = 'state_rows')
           then 1 else 0 end
    from {{ dbt_braze.braze_state_relation() }}
    where model_name = {{ dbt_braze.braze_string_literal(model_name) }} and acked_at < {{ built_at }}
) as stale
{% endmacro %}

{#-
  Recompute a model's pending relation from Python (same macro as the hook),
  when a sync acknowledged something after it was built: every user is
  compared again, fingerprints notwithstanding (they vouch for a state that
  may have moved).
-#}
{% macro braze_rebuild_pending(model_name, relation, id_column, mappings, key_prefix='', kind='users') %}
  {%- set typed = dbt_braze.braze_typed_mappings(relation, mappings) -%}
  {%- if typed is none -%}{{ return(false) }}{%- endif -%}
  {%- do run_query(dbt_braze.braze_forget_fingerprints_sql(model_name,
        "select braze_key from (" ~ dbt_braze.braze_latest_fingerprints_sql(model_name) ~ ") vouched where fingerprint is not null")) -%}
  {%- do dbt_braze.braze_build_pending({'model_name': model_name, 'relation': relation, 'id_column': id_column,
                                        'key_prefix': key_prefix, 'mappings': typed, 'kind': kind}) -%}
  {{ return(true) }}
{% endmacro %}

{#- Run history: one row per event of a run (start, heartbeat, end). -#}
{#- One row of the run history; the run's first row dates its start. -#}
{% macro braze_record_run_sql(run_id, model_name, status, ended, counts, error, holder, kind) %}
insert into {{ dbt_braze.braze_runs_relation() }}
  (run_id, model_name, status, started_at, recorded_at, ended_at, users_created, users_updated,
   attributes_unset, users_deleted, rows_rejected, requests, data_points, error, holder, subscription_changes, kind,
   log_state_rows, log_state_keys, log_fingerprint_rows, log_fingerprint_keys)
select '{{ run_id }}', {{ dbt_braze.braze_string_literal(model_name) }}, '{{ status }}',
       coalesce({{ dbt_braze.braze_run_started_at_sql(run_id) }}, {{ dbt_braze.braze_utc_now() }}),
       {{ dbt_braze.braze_utc_now() }},
       {% if ended %}{{ dbt_braze.braze_utc_now() }}{% else %}cast(null as {{ dbt.type_timestamp() }}){% endif %},
       {{ counts.get('users_created', 0) }}, {{ counts.get('users_updated', 0) }},
       {{ counts.get('attributes_unset', 0) }}, {{ counts.get('users_deleted', 0) }},
       {{ counts.get('rows_rejected', 0) }}, {{ counts.get('requests', 0) }},
       {{ counts.get('data_points', 0) }},
       {% if error %}{{ dbt_braze.braze_string_literal(error) }}{% else %}cast(null as {{ dbt.type_string() }}){% endif %},
       {{ dbt_braze.braze_string_literal(holder) }},
       {{ counts.get('subscription_changes', 0) }},
       {% if kind %}{{ dbt_braze.braze_string_literal(kind) }}{% else %}cast(null as {{ dbt.type_string() }}){% endif %},
       {%- for name in ['log_state_rows', 'log_state_keys', 'log_fingerprint_rows', 'log_fingerprint_keys'] %}
       {% if name in counts %}{{ counts[name] | int }}{% else %}cast(null as {{ dbt.type_bigint() }}){% endif %}{% if not loop.last %},{% endif %}
       {%- endfor %}
{% endmacro %}

{#-
  Runs of a model that still hold the lock: their latest row says `running`
  and was recorded within the lease. Oldest first: the oldest claim wins.
-#}
{% macro braze_live_runs_sql(model_name, lease_seconds) %}
select run_id, started_at, recorded_at, holder
from (
    select run_id, status, started_at, recorded_at, holder,
           row_number() over (partition by run_id order by recorded_at desc, status) as recency
    from {{ dbt_braze.braze_runs_relation() }}
    where model_name = {{ dbt_braze.braze_string_literal(model_name) }}
) latest
where recency = 1 and status = 'running'
  and recorded_at >= {{ dbt_braze.braze_utc_seconds_ago(lease_seconds) }}
order by started_at, run_id
{% endmacro %}

{% macro braze_run_started_at_sql(run_id) %}
(select min(started_at) from {{ dbt_braze.braze_runs_relation() }} where run_id = '{{ run_id }}')
{% endmacro %}
