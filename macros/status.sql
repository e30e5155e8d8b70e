{#- What `dbt-braze status` and the progress estimate read. -#}

{#- The latest runs of a model: the last row of each run tells its outcome. -#}
{% macro braze_recent_runs_sql(model_name, limit) %}
select run_id, status, started_at, ended_at, users_created, users_updated, attributes_unset,
       users_deleted, rows_rejected, requests, data_points,
       coalesce(subscription_changes, 0) as subscription_changes, error
from (
    select r.*, row_number() over (partition by run_id order by recorded_at desc, status) as recency
    from {{ dbt_braze.braze_runs_relation() }} r
    where model_name = {{ dbt_braze.braze_string_literal(model_name) }}
) latest
where recency = 1
order by started_at desc
limit {{ limit | int }}
{% endmacro %}

{#-
  Users still to send: new, changed, removed (when on_removed acts on them). The users
  and their values are counted from the objects the sync reads (one row a user, those
  acknowledged since the build and those held back as refused left out), not from the
  pending rows: excluding the acknowledged rows one by one was an anti-join of every
  pending row against as many state rows right after a first sync (34 s and 6 GB at
  1M users, and out of the CLI's DuckDB memory cap).
-#}
{% macro braze_pending_counts_sql(model_name, on_removed) %}
select sent.new_users, sent.changed_users, sent.attributes, sent.subscription_groups, removed.removed_users
from (
    select count(case when is_new then 1 end) as new_users,
           count(case when not is_new then 1 end) as changed_users,
           {#- cast: PostgreSQL's sum of a bigint is a numeric #}
           cast(coalesce(sum(data_points), 0) as {{ dbt.type_bigint() }}) as attributes,
           {#- group states sent, and subscribes withheld under unsubscribe_only: no attributes #}
           cast(coalesce(sum(subscription_changes + subscribes_withheld), 0) as {{ dbt.type_bigint() }})
               as subscription_groups
    from ({{ dbt_braze.braze_read_objects_sql(model_name) }}) objects
) sent
cross join (
    {% if on_removed == 'ignore' -%}
    select 0 as removed_users
    {%- else -%}
    select count(distinct braze_key) as removed_users
    from ({{ dbt_braze.braze_read_removed_sql(model_name, on_removed == 'unset') }}) removed
    {%- endif %}
) removed
{% endmacro %}

{#- Users whose latest objects Braze refused and that were not accepted since. -#}
{% macro braze_rejected_summary_sql(model_name, limit) %}
  {{ return(adapter.dispatch('braze_rejected_summary_sql', 'dbt_braze')(model_name, limit)) }}
{% endmacro %}

{#- ordered outside the aggregate: Spark cannot order by max(rejected_at) once
    the output column is named rejected_at too -#}
{% macro default__braze_rejected_summary_sql(model_name, limit) %}
select braze_key, reason, rejected_at
from (
    select braze_key, max(reason) as reason, max(rejected_at) as rejected_at
    from {{ dbt_braze.braze_rejected_relation() }} r
    where model_name = {{ dbt_braze.braze_string_literal(model_name) }}
      and not exists (
        select 1 from {{ dbt_braze.braze_state_relation() }} s
        where s.model_name = {{ dbt_braze.braze_string_literal(model_name) }} and s.braze_key = r.braze_key and s.acked_at > r.rejected_at)
    group by braze_key
) refused
order by rejected_at desc, braze_key
limit {{ limit | int }}
{% endmacro %}

{% macro braze_rejected_count_sql(model_name) %}
  {{ return(adapter.dispatch('braze_rejected_count_sql', 'dbt_braze')(model_name)) }}
{% endmacro %}

{% macro default__braze_rejected_count_sql(model_name) %}
select count(distinct braze_key)
from {{ dbt_braze.braze_rejected_relation() }} r
where model_name = {{ dbt_braze.braze_string_literal(model_name) }}
  and not exists (
    select 1 from {{ dbt_braze.braze_state_relation() }} s
    where s.model_name = {{ dbt_braze.braze_string_literal(model_name) }} and s.braze_key = r.braze_key and s.acked_at > r.rejected_at)
{% endmacro %}

{#-
  Whether a model's identifier changed since its state was recorded: the
  users its state holds under another identifier (recorded_elsewhere; the
  model's identifier cannot address them), and the model's unique users its
  state does not hold, which the next sync sends whole (sent_whole). Over the
  state and the model, as `dbt-braze validate` sees them before `dbt run`.
-#}
{% macro braze_identifier_change_sql(model_name, relation, id_column, key_prefix) %}
with held as (
    select distinct braze_key
    from ({{ dbt_braze.braze_latest_state_sql(model_name) }}) latest
    where value_hash is not null
),
current_keys as (
    {{ dbt_braze.braze_key_counts_sql(relation, id_column, key_prefix) }}
)
select
    (select count(*) from held where {{ dbt_braze.braze_recorded_elsewhere_sql(key_prefix) }}) as recorded_elsewhere,
    (select count(*) from current_keys c left join held h on h.braze_key = c.braze_key
     where c.braze_key is not null and c.row_count = 1 and h.braze_key is null) as sent_whole
{% endmacro %}

{#- The same from the pending changes, as of the last `dbt run` (`plan`: no scan of the
    state). The users sent whole are counted in the objects (one row a user): a distinct
    count of the pending rows' keys ran out of the CLI's DuckDB memory cap at 1M users. -#}
{% macro braze_pending_identifier_change_sql(model_name, key_prefix, kind='users') %}
{%- if kind != 'users' -%}
select count(distinct case when change_kind = 'removed'
                            and {{ dbt_braze.braze_recorded_elsewhere_sql(key_prefix) }} then braze_key end) as recorded_elsewhere,
       count(distinct case when change_kind = 'upsert' and is_new then braze_key end) as sent_whole
from {{ dbt_braze.braze_pending_relation(model_name) }}
{%- else -%}
select elsewhere.recorded_elsewhere, whole.sent_whole
from (
    select count(distinct braze_key) as recorded_elsewhere
    from {{ dbt_braze.braze_pending_relation(model_name) }}
    where change_kind = 'removed' and {{ dbt_braze.braze_recorded_elsewhere_sql(key_prefix) }}
) elsewhere
cross join (
    select count(*) as sent_whole from {{ dbt_braze.braze_objects_relation(model_name) }} where is_new
) whole
{%- endif %}
{% endmacro %}
