{#-
  SQL the `dbt-braze sync` command runs (rendered here so that adapters can
  override it by dispatch; the Python side only executes it).
-#}

{#- Pending attribute changes still unacknowledged and not rejected, grouped by user. -#}
{% macro braze_read_upserts_sql(model_name) %}
  {{ return(adapter.dispatch('braze_read_upserts_sql', 'dbt_braze')(model_name)) }}
{% endmacro %}

{% macro default__braze_read_upserts_sql(model_name) %}
select p.braze_key, p.attribute, p.value_text, p.value_type, p.value_hash, p.is_new
from {{ dbt_braze.braze_pending_relation(model_name) }} p
where p.change_kind = 'upsert'
  and not exists (
    select 1 from {{ dbt_braze.braze_state_relation() }} s
    where s.model_name = '{{ model_name }}' and s.acked_at >= p.built_at
      and s.braze_key = p.braze_key and s.attribute = p.attribute
      and coalesce(s.value_hash, '-') = coalesce(p.value_hash, '-'))
  and not exists (
    select 1 from {{ dbt_braze.braze_rejected_relation() }} r
    where r.model_name = '{{ model_name }}'
      and r.braze_key = p.braze_key and r.attribute = p.attribute
      and coalesce(r.value_hash, '-') = coalesce(p.value_hash, '-'))
order by p.braze_key, p.attribute
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
    where s.model_name = '{{ model_name }}' and s.acked_at >= p.built_at
      and s.braze_key = p.braze_key and s.attribute = p.attribute
      and s.value_hash is null)
order by p.braze_key, p.attribute
{% endmacro %}

{#- --full-refresh: every current row, every mapped attribute, nulls included. -#}
{% macro braze_read_full_refresh_sql(relation, id_column, mappings) %}
  {%- set typed = dbt_braze.braze_typed_mappings(relation, mappings) -%}
  {%- if typed is none -%}{{ return(none) }}{%- endif %}
  {%- set sql -%}
with key_counts as (
    select cast({{ adapter.quote(id_column) }} as {{ dbt.type_string() }}) as braze_key, count(*) as row_count
    from {{ relation }}
    group by 1
)
select cv.braze_key, cv.attribute, cv.value_text, cv.value_type,
       case when cv.value_text is null then null else {{ dbt.hash('cv.value_text') }} end as value_hash,
       false as is_new
from ({{ dbt_braze.braze_current_values_sql(relation, id_column, typed) }}) cv
inner join key_counts kc on kc.braze_key = cv.braze_key and kc.row_count = 1
order by cv.braze_key, cv.attribute
  {%- endset %}
  {{ return(sql) }}
{% endmacro %}

{% macro braze_withheld_sql(model_name) %}
select change_kind, braze_key, cast(value_text as {{ dbt.type_int() }}) as row_count
from {{ dbt_braze.braze_pending_relation(model_name) }}
where change_kind in ('withheld_null', 'withheld_duplicate')
order by row_count desc, braze_key
{% endmacro %}

{#- One INSERT appending acknowledged (key, attribute, hash) rows. -#}
{% macro braze_acknowledge_sql(model_name, values_sql) %}
insert into {{ dbt_braze.braze_state_relation() }} (model_name, braze_key, attribute, value_hash, acked_at)
select '{{ model_name }}', braze_key, attribute, value_hash, {{ dbt_braze.braze_utc_now() }}
from (values {{ values_sql }}) as acked (braze_key, attribute, value_hash)
{% endmacro %}

{% macro braze_record_rejected_sql(model_name, values_sql) %}
insert into {{ dbt_braze.braze_rejected_relation() }} (model_name, braze_key, attribute, value_hash, reason, rejected_at)
select '{{ model_name }}', braze_key, attribute, value_hash, reason, {{ dbt_braze.braze_utc_now() }}
from (values {{ values_sql }}) as rejected (braze_key, attribute, value_hash, reason)
{% endmacro %}
