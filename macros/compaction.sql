{#-
  Compaction of the append-only logs braze_state and braze_fingerprints
  (docs/operating.md, "Compaction"). Every acknowledgement appends; the hook
  and the sync only ever read the latest row per key, and the sync's
  anti-joins the rows acknowledged since the pending relation's built_at.
  A compaction of one model drops, in that model's rows only:

  - superseded rows: a row of a key that has a row with a later time. The
    latest row per key (all of them, when several share the latest time)
    stays, so the latest state is exactly what it was;
  - gone keys: a key whose latest rows all say "nothing held" (value_hash
    null; fingerprint null). The diff reads no row and a null row alike
    (absent state counts as null, a missing fingerprint as a candidate).

  State rows acknowledged at or after the pending relation's built_at are
  kept (the sync's anti-joins read them: braze_read_upserts_sql,
  braze_read_removed_sql), and so are a gone key's rows when braze_rejected
  holds refusals of that user (status judges a refusal by a later
  acknowledgement of the user). A gone fingerprint is dropped only when
  recorded before built_at too: a hook still recording fingerprints dated
  before it could otherwise outlive the null that voids them.

  Log names: 'state' or 'fingerprints'.
-#}

{#- The log's relation and the names of its key, time and value columns. -#}
{% macro braze_compaction_log(log) %}
  {%- if log == 'state' -%}
    {{ return({'log': 'state', 'relation': dbt_braze.braze_state_relation(), 'keys': ['braze_key', 'attribute'],
               'time': 'acked_at', 'value': 'value_hash', 'columns': dbt_braze.braze_state_columns()}) }}
  {%- endif -%}
  {{ return({'log': 'fingerprints', 'relation': dbt_braze.braze_fingerprints_relation(), 'keys': ['braze_key'],
             'time': 'recorded_at', 'value': 'fingerprint', 'columns': dbt_braze.braze_fingerprints_columns()}) }}
{% endmacro %}

{#-
  A model's rows and keys in each log: state_rows, state_keys (user and
  attribute), fingerprint_rows, fingerprint_keys (user). One aggregate per
  log, no ranking; still, counting the keys costs seconds at a million
  users, so a sync's trigger counts them only when the rows alone cannot
  tell (dbt_braze/compaction.py), and `dbt-braze status` always.
  `exact`: false for the trigger, where a warehouse may estimate the keys
  (braze_estimate_keys_sql).
-#}
{% macro braze_log_sizes_sql(model_name, exact=true) %}
{%- set rows = dbt_braze.braze_log_rows_sql(model_name) | trim -%}
select sized.state_rows,
    {{ dbt_braze._braze_log_keys_sql('state', model_name, exact) }} as state_keys,
    sized.fingerprint_rows,
    {{ dbt_braze._braze_log_keys_sql('fingerprints', model_name, exact) }} as fingerprint_keys
from ({{ rows }}) sized
{% endmacro %}

{#- A model's rows in each log: state_rows, fingerprint_rows (what a sync's trigger reads). -#}
{% macro braze_log_rows_sql(model_name) %}
select
    (select count(*) from {{ dbt_braze.braze_state_relation() }}
     where model_name = {{ dbt_braze.braze_string_literal(model_name) }}) as state_rows,
    (select count(*) from {{ dbt_braze.braze_fingerprints_relation() }}
     where model_name = {{ dbt_braze.braze_string_literal(model_name) }}) as fingerprint_rows
{% endmacro %}

{#- The number of keys of the model in `log`, as a scalar subquery; estimated where `exact` is false and the warehouse can. -#}
{% macro _braze_log_keys_sql(log, model_name, exact) %}
  {%- set spec = dbt_braze.braze_compaction_log(log) -%}
  {%- if not exact -%}{{ return(dbt_braze.braze_estimate_keys_sql(spec, model_name)) }}{%- endif -%}
    (select count(*) from (
        select {{ spec['keys'] | join(', ') }} from {{ spec['relation'] }}
        where model_name = {{ dbt_braze.braze_string_literal(model_name) }}
        group by {{ spec['keys'] | join(', ') }}) counted_keys)
{% endmacro %}

{#-
  An estimate of the number of keys of the model in the log `spec`
  (braze_compaction_log), good enough for the trigger's rule of thumb.
  DuckDB: a HyperLogLog sketch, a few percent off, in constant memory; an
  exact count groups every key, and under the sync's memory cap it
  ran out of memory at 3M users of ten attributes (30M state rows). The
  others count exactly: PostgreSQL and Spark spill a large grouping to disk.
-#}
{% macro braze_estimate_keys_sql(spec, model_name) %}
  {{ return(adapter.dispatch('braze_estimate_keys_sql', 'dbt_braze')(spec, model_name)) }}
{% endmacro %}

{% macro default__braze_estimate_keys_sql(spec, model_name) %}
  {{ return(dbt_braze._braze_log_keys_sql(spec['log'], model_name, true)) }}
{% endmacro %}

{% macro duckdb__braze_estimate_keys_sql(spec, model_name) -%}
    (select approx_count_distinct(hash({{ spec['keys'] | join(', ') }})) from {{ spec['relation'] }}
     where model_name = {{ dbt_braze.braze_string_literal(model_name) }})
{%- endmacro %}

{#-
  The log sizes (braze_log_sizes_sql) the latest row of the model's run
  history keeps, other than run `run_id`'s: null when that row kept none (a
  sync that failed, crashed or did not judge the logs), or no row.
-#}
{% macro braze_counted_log_sizes_sql(model_name, run_id) %}
select log_state_rows, log_state_keys, log_fingerprint_rows, log_fingerprint_keys
from {{ dbt_braze.braze_runs_relation() }}
where model_name = {{ dbt_braze.braze_string_literal(model_name) }}
  and run_id <> {{ dbt_braze.braze_string_literal(run_id) }}
{#- of a heartbeat and a final row recorded at the same time, the final one -#}
order by recorded_at desc, case when ended_at is null then 1 else 0 end
limit 1
{% endmacro %}

{#- Per key of the model: its latest time, and the latest time of a row holding something. -#}
{% macro _braze_compaction_latest_sql(log, model_name) %}
  {%- set spec = dbt_braze.braze_compaction_log(log) -%}
    select {{ spec['keys'] | join(', ') }},
           max({{ spec['time'] }}) as latest_at,
           max(case when {{ spec['value'] }} is not null then {{ spec['time'] }} end) as held_at
    from {{ spec['relation'] }}
    where model_name = {{ dbt_braze.braze_string_literal(model_name) }}
    group by {{ spec['keys'] | join(', ') }}
{% endmacro %}

{#-
  True for a row `logged` of the log that the compaction drops, given
  `latest` (its key's row of _braze_compaction_latest_sql) and `refused`
  (true when braze_rejected holds refusals of its user: an expression).
-#}
{% macro _braze_compaction_drops_sql(log, model_name, refused) %}
  {%- set spec = dbt_braze.braze_compaction_log(log) -%}
  {%- set time = 'logged.' ~ spec['time'] -%}
  {%- set built_at = "(select max(built_at) from " ~ dbt_braze.braze_pending_relation(model_name) ~ ")" -%}
  {%- set gone = "(latest.held_at is null or latest.held_at < latest.latest_at)" -%}
  {%- if log == 'state' -%}
  (logged.model_name = {{ dbt_braze.braze_string_literal(model_name) }}
   and {{ time }} < {{ built_at }}
   and ({{ time }} < latest.latest_at or ({{ gone }} and not {{ refused }})))
  {%- else -%}
  (logged.model_name = {{ dbt_braze.braze_string_literal(model_name) }}
   and ({{ time }} < latest.latest_at or ({{ gone }} and {{ time }} < {{ built_at }})))
  {%- endif -%}
{% endmacro %}

{#- The users of a model braze_rejected holds refusals of (their gone state is kept). -#}
{% macro _braze_compaction_refused_sql(model_name) %}
    select distinct braze_key from {{ dbt_braze.braze_rejected_relation() }}
    where model_name = {{ dbt_braze.braze_string_literal(model_name) }}
{% endmacro %}

{#-
  The compaction of one log for one model, as one statement: DuckDB and
  PostgreSQL (and any warehouse with DELETE) run it in one transaction.
  A DELETE reads one snapshot: rows a concurrent checkpoint appends are not
  in it, so they are neither deleted nor used to judge a row superseded
  (on PostgreSQL under READ COMMITTED too: one statement, one snapshot).
-#}
{% macro braze_compact_sql(log, model_name) %}
  {{ return(adapter.dispatch('braze_compact_sql', 'dbt_braze')(log, model_name)) }}
{% endmacro %}

{% macro default__braze_compact_sql(log, model_name) %}
  {%- set spec = dbt_braze.braze_compaction_log(log) -%}
  {%- set refused = "exists (select 1 from (" ~ dbt_braze._braze_compaction_refused_sql(model_name) ~ ") refused where refused.braze_key = logged.braze_key)" -%}
delete from {{ spec['relation'] }} as logged
using ({{ dbt_braze._braze_compaction_latest_sql(log, model_name) }}) latest
where logged.model_name = {{ dbt_braze.braze_string_literal(model_name) }}
  {%- for key in spec['keys'] %}
  and latest.{{ key }} = logged.{{ key }}
  {%- endfor %}
  and {{ dbt_braze._braze_compaction_drops_sql(log, model_name, refused) }}
{% endmacro %}

{#-
  The rows of a log that a compaction of `model_name` keeps: every row of
  the other models, and the model's rows that it does not drop. A drop
  condition that is null (a row whose key is null) keeps the row.
-#}
{% macro braze_compacted_rows_sql(log, model_name) %}
  {%- set spec = dbt_braze.braze_compaction_log(log) -%}
  {%- set model = dbt_braze.braze_string_literal(model_name) -%}
select {% for name, dtype in spec['columns'] %}logged.{{ name }}{% if not loop.last %}, {% endif %}{% endfor %}
from {{ spec['relation'] }} logged
left join ({{ dbt_braze._braze_compaction_latest_sql(log, model_name) }}) latest
  on logged.model_name = {{ model }}
  {%- for key in spec['keys'] %} and latest.{{ key }} = logged.{{ key }}{% endfor %}
{%- if log == 'state' %}
left join ({{ dbt_braze._braze_compaction_refused_sql(model_name) }}) refused
  on logged.model_name = {{ model }} and refused.braze_key = logged.braze_key
{%- endif %}
where not coalesce({{ dbt_braze._braze_compaction_drops_sql(log, model_name, '(refused.braze_key is not null)') }}, false)
{% endmacro %}

{#-
  Spark (parquet tables: no DELETE, no transaction). The log is rewritten
  whole, while the sync holds the compaction claim (no other sync writes
  the package's logs meanwhile: dbt_braze/compaction.py):
    1. `<log>__compacting`: a new table like the log, then the rows kept;
    2. renamed `<log>__compacted`: the copy is complete;
    3. INSERT OVERWRITE of the log from it;
    4. the copy dropped.
  A crash in 1 leaves `__compacting` empty or half-filled, dropped by the
  next finisher: the log was not touched. From 2 on, `__compacted` is a
  complete copy of what the log must hold (nothing else wrote meanwhile), so
  the next finisher does 3 and 4 again, whatever a crash in 3 left of the
  log (INSERT OVERWRITE deletes the log's files before it writes: it may
  leave it empty or partial). Finishers, each under the compaction claim:
  a sync (compaction.prepare) and the hook (braze_hook_begin), before they
  read the logs, and a compaction, before its own rewrite.
-#}
{% macro braze_compaction_copies(log) %}
  {%- set relation = dbt_braze.braze_compaction_log(log)['relation'] -%}
  {{ return({'building': dbt_braze.braze_relation(relation.identifier ~ '__compacting'),
             'complete': dbt_braze.braze_relation(relation.identifier ~ '__compacted')}) }}
{% endmacro %}

{#- Whether a rewrite of the log left a copy behind (a crash, or one in progress). -#}
{% macro braze_compaction_leftover(log) %}
  {%- for copy in dbt_braze.braze_compaction_copies(log).values() -%}
    {%- if adapter.get_relation(copy.database, copy.schema, copy.identifier) is not none -%}
      {{ return(true) }}
    {%- endif -%}
  {%- endfor -%}
  {{ return(false) }}
{% endmacro %}

{#-
  Finish (or discard) a rewrite a crash interrupted; true when one was found.
  Only under the compaction claim: two processes finishing one copy at once
  could drop it while the other overwrites the log from it.
-#}
{% macro braze_finish_compaction(log) %}
  {%- set relation = dbt_braze.braze_compaction_log(log)['relation'] -%}
  {%- set copies = dbt_braze.braze_compaction_copies(log) -%}
  {%- set found = false -%}
  {%- if adapter.get_relation(copies.complete.database, copies.complete.schema, copies.complete.identifier) is not none -%}
    {%- do run_query(dbt_braze.braze_overwrite_sql(relation, copies.complete)) -%}
    {%- do adapter.drop_relation(copies.complete) -%}
    {%- set found = true -%}
  {%- endif -%}
  {%- if adapter.get_relation(copies.building.database, copies.building.schema, copies.building.identifier) is not none -%}
    {%- do adapter.drop_relation(copies.building) -%}
    {%- set found = true -%}
  {%- endif -%}
  {{ return(found) }}
{% endmacro %}

{% macro braze_overwrite_sql(relation, source) %}
insert overwrite table {{ relation }} select * from {{ source }}
{% endmacro %}

{#-
  The rewrite of one log for one model (Spark), under the compaction claim.
  `heartbeat`: called between the steps, so that the claim outlives a
  rewrite longer than the lease (one step must still take less).
  `stop_after`: a step number to stop after, as a crash would (tests only).
-#}
{% macro braze_rewrite_log(log, model_name, stop_after=none, heartbeat=none) %}
  {%- do dbt_braze.braze_finish_compaction(log) -%}
  {%- set relation = dbt_braze.braze_compaction_log(log)['relation'] -%}
  {%- set copies = dbt_braze.braze_compaction_copies(log) -%}
  {#- a registered table first, then its rows: a crash inside a CREATE TABLE AS
      could leave files at the table's location with no table, and the next CREATE
      of that name fail on them; a half-filled registered table is dropped whole -#}
  {%- do run_query('create table ' ~ copies.building ~ ' like ' ~ relation) -%}
  {%- set names = [] -%}
  {%- for name, dtype in dbt_braze.braze_compaction_log(log)['columns'] -%}{%- do names.append(name) -%}{%- endfor -%}
  {%- do run_query('insert into ' ~ copies.building ~ ' (' ~ names | join(', ') ~ ') ' ~ dbt_braze.braze_compacted_rows_sql(log, model_name)) -%}
  {%- if stop_after == 1 -%}{{ return(false) }}{%- endif -%}
  {%- if heartbeat is not none -%}{%- do heartbeat() -%}{%- endif -%}
  {%- do adapter.rename_relation(copies.building, copies.complete) -%}
  {%- if stop_after == 2 -%}{{ return(false) }}{%- endif -%}
  {%- do run_query(dbt_braze.braze_overwrite_sql(relation, copies.complete)) -%}
  {%- if stop_after == 3 -%}{{ return(false) }}{%- endif -%}
  {%- if heartbeat is not none -%}{%- do heartbeat() -%}{%- endif -%}
  {%- do adapter.drop_relation(copies.complete) -%}
  {{ return(true) }}
{% endmacro %}

{#-
  The on-run-end hook's part (Spark), before it reads the logs. The hook
  records itself in braze_sync_runs as a run of `__braze_hook__` (a
  compaction starting while it runs sees it and stays away, as from a sync),
  then looks for a live compaction claim: a rewrite in progress, or a sync
  finishing one, would change the logs under it, so the hook stops with an
  error (its pending relations are left as they were; the next `dbt run`
  builds them). With none, a rewrite a crash interrupted is finished under
  a claim of the hook's own. Both rows are written before the claims are
  read, and a compaction writes its claim before it reads the live runs: of
  two starting together, at least one sees the other. Returns the hook's
  run (for braze_hook_ended).
-#}
{% macro braze_hook_begin() %}
  {%- set lease = env_var('DBT_BRAZE_LOCK_LEASE_SECONDS', dbt_braze._braze_var('dbt_braze_lock_lease_seconds')) | int -%}
  {%- set run = {'run_id': invocation_id, 'holder': 'dbt ' ~ invocation_id} -%}
  {%- do run_query(dbt_braze.braze_record_run_sql(run.run_id, '__braze_hook__', 'running', false, {}, none, run.holder)) -%}
  {%- set live = run_query(dbt_braze.braze_live_runs_sql('__braze_compaction__', lease)) -%}
  {%- set leftover = dbt_braze.braze_compaction_leftover('state') or dbt_braze.braze_compaction_leftover('fingerprints') -%}
  {%- if live.rows | length == 0 and not leftover -%}{{ return(run) }}{%- endif -%}
  {%- set claim = invocation_id ~ '-compaction' -%}
  {%- if live.rows | length == 0 -%}
    {%- do run_query(dbt_braze.braze_record_run_sql(claim, '__braze_compaction__', 'running', false, {}, none, run.holder)) -%}
    {%- set live = run_query(dbt_braze.braze_live_runs_sql('__braze_compaction__', lease)) -%}
    {%- if live.rows | length > 0 and live.rows[0][0] == claim -%}
      {%- for log in ['state', 'fingerprints'] -%}{%- do dbt_braze.braze_finish_compaction(log) -%}{%- endfor -%}
      {%- do run_query(dbt_braze.braze_record_run_sql(claim, '__braze_compaction__', 'success', true, {}, none, run.holder)) -%}
      {{ return(run) }}
    {%- endif -%}
    {%- do run_query(dbt_braze.braze_record_run_sql(claim, '__braze_compaction__', 'locked', true, {}, none, run.holder)) -%}
  {%- endif -%}
  {%- set why = 'a compaction of braze_state and braze_fingerprints is running (run ' ~ live.rows[0][0] ~ ' on ' ~ live.rows[0][3] ~ ')' -%}
  {%- do run_query(dbt_braze.braze_record_run_sql(run.run_id, '__braze_hook__', 'locked', true, {}, why, run.holder)) -%}
  {%- do exceptions.raise_compiler_error("dbt_braze: " ~ why ~ "; the pending changes were not rebuilt: run dbt again once it has ended (a few minutes at most)") -%}
{% endmacro %}

{% macro braze_hook_ended(run) %}
  {%- do run_query(dbt_braze.braze_record_run_sql(run.run_id, '__braze_hook__', 'success', true, {}, none, run.holder)) -%}
{% endmacro %}

{#- Runs of any model that still hold a lock (braze_live_runs_sql, every model). -#}
{% macro braze_all_live_runs_sql(lease_seconds) %}
select run_id, model_name
from (
    select run_id, model_name, status, recorded_at,
           row_number() over (partition by run_id order by recorded_at desc, status) as recency
    from {{ dbt_braze.braze_runs_relation() }}
) latest
where recency = 1 and status = 'running'
  and recorded_at >= {{ dbt_braze.braze_utc_seconds_ago(lease_seconds) }}
{% endmacro %}

{#- Whether a compaction rewrites the logs (no DELETE) rather than deleting in one transaction. -#}
{% macro braze_compaction_rewrites() %}
  {{ return(adapter.dispatch('braze_compaction_rewrites', 'dbt_braze')()) }}
{% endmacro %}

{% macro default__braze_compaction_rewrites() %}
  {{ return(false) }}
{% endmacro %}

{% macro spark__braze_compaction_rewrites() %}
  {{ return(true) }}
{% endmacro %}

{#- Delta tables take DELETE, in a transaction of their own (not run against a live workspace). -#}
{% macro databricks__braze_compaction_rewrites() %}
  {{ return(false) }}
{% endmacro %}
