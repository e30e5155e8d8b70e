{#- What `dbt-braze status` and the progress estimate read. -#}

{#- The latest runs of a model: the last row of each run tells its outcome. -#}
{% macro braze_recent_runs_sql(model_name, limit) %}
select run_id, status, started_at, ended_at, users_created, users_updated, attributes_unset,
       users_deleted, rows_rejected, requests, data_points, error
from (
    select r.*, row_number() over (partition by run_id order by recorded_at desc, status) as recency
    from {{ dbt_braze.braze_runs_relation() }} r
    where model_name = {{ dbt_braze.braze_string_literal(model_name) }}
) latest
where recency = 1
order by started_at desc
limit {{ limit | int }}
{% endmacro %}

{#- Users still to send: new, changed, removed (when on_removed acts on them). -#}
{% macro braze_pending_counts_sql(model_name, on_removed) %}
select
    (select count(distinct case when is_new then braze_key end)
     from ({{ dbt_braze.braze_read_upserts_sql(model_name) }}) upserts) as new_users,
    (select count(distinct case when not is_new then braze_key end)
     from ({{ dbt_braze.braze_read_upserts_sql(model_name) }}) upserts) as changed_users,
    (select count(*) from ({{ dbt_braze.braze_read_upserts_sql(model_name) }}) upserts) as attributes,
    {% if on_removed == 'ignore' -%}
    0
    {%- else -%}
    (select count(distinct braze_key)
     from ({{ dbt_braze.braze_read_removed_sql(model_name, on_removed == 'unset') }}) removed)
    {%- endif %} as removed_users
{% endmacro %}

{#- Users whose latest objects Braze refused and that were not accepted since. -#}
{% macro braze_rejected_summary_sql(model_name, limit) %}
  {{ return(adapter.dispatch('braze_rejected_summary_sql', 'dbt_braze')(model_name, limit)) }}
{% endmacro %}

{% macro default__braze_rejected_summary_sql(model_name, limit) %}
select braze_key, max(reason) as reason, max(rejected_at) as rejected_at
from {{ dbt_braze.braze_rejected_relation() }} r
where model_name = {{ dbt_braze.braze_string_literal(model_name) }}
  and not exists (
    select 1 from {{ dbt_braze.braze_state_relation() }} s
    where s.model_name = {{ dbt_braze.braze_string_literal(model_name) }} and s.braze_key = r.braze_key and s.acked_at > r.rejected_at)
group by braze_key
order by max(rejected_at) desc, braze_key
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
