{#-
  Change detection. One set-based query per model compares the normalized,
  hashed value of every mapped attribute with the last state Braze
  acknowledged (latest row per user and attribute in braze_state).

  Rows of the pending relation (change_kind):
    upsert                an attribute whose value differs from the acknowledged
                          one (absent state counts as null, so a new user gets
                          its non-null attributes only, and a new mapping sends
                          only the new attribute)
    removed               a user Braze holds values for whose row left the model:
                          one row per attribute held; the sync applies
                          on_removed (ignore | unset | delete) to them
    withheld_duplicate    an identifier shared by several rows (value_text = rows)
    withheld_null         rows whose identifier is null (value_text = rows)
    model_rows            one summary row: the model's row count (value_text);
                          it also dates an empty pending relation (built_at)
-#}

{#- The normalized long form of a model: one row per (braze_key, attribute). -#}
{% macro braze_current_values_sql(relation, id_column, mappings) %}
  {{ return(adapter.dispatch('braze_current_values_sql', 'dbt_braze')(relation, id_column, mappings)) }}
{% endmacro %}

{% macro default__braze_current_values_sql(relation, id_column, mappings) %}
  {%- for m in mappings %}
    select
      cast({{ adapter.quote(id_column) }} as {{ dbt.type_string() }}) as braze_key,
      cast('{{ m.attribute | replace("'", "''") }}' as {{ dbt.type_string() }}) as attribute,
      {{ dbt_braze.braze_normalized_text(adapter.quote(m.column), m.value_type) }} as value_text,
      cast('{{ dbt_braze.braze_sent_type(m.value_type) }}' as {{ dbt.type_string() }}) as value_type
    from {{ relation }}
    {% if not loop.last %}union all{% endif %}
  {%- endfor %}
{% endmacro %}

{% macro braze_latest_state_sql(model_name) %}
  {{ return(adapter.dispatch('braze_latest_state_sql', 'dbt_braze')(model_name)) }}
{% endmacro %}

{% macro default__braze_latest_state_sql(model_name) %}
    select braze_key, attribute, value_hash
    from (
      select braze_key, attribute, value_hash,
             row_number() over (partition by braze_key, attribute order by acked_at desc) as recency
      from {{ dbt_braze.braze_state_relation() }}
      where model_name = '{{ model_name }}'
    ) acknowledged
    where recency = 1
{% endmacro %}

{% macro braze_pending_sql(model_name, relation, id_column, mappings, built_at) %}
  {{ return(adapter.dispatch('braze_pending_sql', 'dbt_braze')(model_name, relation, id_column, mappings, built_at)) }}
{% endmacro %}

{% macro default__braze_pending_sql(model_name, relation, id_column, mappings, built_at) %}
  {%- set attribute_names = [] -%}
  {%- for m in mappings -%}{%- do attribute_names.append("'" ~ (m.attribute | replace("'", "''")) ~ "'") -%}{%- endfor %}
with key_counts as (
    select cast({{ adapter.quote(id_column) }} as {{ dbt.type_string() }}) as braze_key, count(*) as row_count
    from {{ relation }}
    group by 1
),
current_values as (
    select cv.braze_key, cv.attribute, cv.value_text, cv.value_type,
           {{ dbt.hash('cv.value_text') }} as value_hash
    from ({{ dbt_braze.braze_current_values_sql(relation, id_column, mappings) }}) cv
    inner join key_counts kc on kc.braze_key = cv.braze_key and kc.row_count = 1
),
latest_state as (
    {{ dbt_braze.braze_latest_state_sql(model_name) }}
),
known_keys as (
    select distinct braze_key from latest_state where value_hash is not null
)
select
    cast('upsert' as {{ dbt.type_string() }}) as change_kind,
    cv.braze_key, cv.attribute, cv.value_text, cv.value_type,
    case when cv.value_text is null then null else cv.value_hash end as value_hash,
    (kk.braze_key is null) as is_new,
    true as is_mapped,
    {{ built_at }} as built_at
from current_values cv
left join latest_state ls on ls.braze_key = cv.braze_key and ls.attribute = cv.attribute
left join known_keys kk on kk.braze_key = cv.braze_key
where coalesce(case when cv.value_text is null then null else cv.value_hash end, '-')
      <> coalesce(ls.value_hash, '-')
union all
select 'removed', ls.braze_key, ls.attribute, null, null, null, false,
       (ls.attribute in ({{ attribute_names | join(', ') }})), {{ built_at }}
from latest_state ls
where ls.value_hash is not null
  and not exists (select 1 from key_counts kc where kc.braze_key = ls.braze_key)
union all
select 'withheld_duplicate', braze_key, null, cast(row_count as {{ dbt.type_string() }}), null, null, false, false, {{ built_at }}
from key_counts
where braze_key is not null and row_count > 1
union all
select 'withheld_null', null, null, cast(row_count as {{ dbt.type_string() }}), null, null, false, false, {{ built_at }}
from key_counts
where braze_key is null
union all
select 'model_rows', null, null, cast(coalesce(sum(row_count), 0) as {{ dbt.type_string() }}), null, null, false, false, {{ built_at }}
from key_counts
{% endmacro %}

{#- Adds each mapping's value_type from the relation's real column types. -#}
{% macro braze_typed_mappings(relation, mappings) %}
  {%- set columns_by_name = {} -%}
  {%- for c in adapter.get_columns_in_relation(relation) -%}{%- do columns_by_name.update({c.name | lower: c}) -%}{%- endfor -%}
  {%- set typed = [] -%}
  {%- for m in mappings -%}
    {%- set col = columns_by_name.get(m.column | lower) -%}
    {%- if col is none -%}{{ return(none) }}{%- endif -%}
    {%- do typed.append({'column': col.name, 'attribute': m.attribute, 'value_type': dbt_braze.braze_value_type(col)}) -%}
  {%- endfor -%}
  {{ return(typed) }}
{% endmacro %}
