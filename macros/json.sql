{#-
  Braze objects rendered in the warehouse. The sync reads one row per user
  holding the finished JSON object and the (attribute, hash) lists to
  acknowledge, so Python only joins bytes: building objects from
  per-attribute rows in Python capped a first sync at ~5,000 objects/s
  (bench/README.md), far below Braze's ~75,000.

  The JSON value of each normalized text (macros/values.sql) by its type:
    null                              null (Braze removes the attribute)
    integer, number, boolean, json    the text itself (already JSON)
    string, date, timestamp           a JSON string
  NaN and infinities are not JSON: the row names such an attribute
  (invalid_attribute) and the sync rejects that user locally. JSON-typed
  values may nest them, so a user holding one is checked in Python
  (needs_check).
-#}

{#- A text expression as a JSON string literal (quotes and escapes included). -#}
{% macro braze_json_string(expr) %}
  {{ return(adapter.dispatch('braze_json_string', 'dbt_braze')(expr)) }}
{% endmacro %}

{% macro default__braze_json_string(expr) -%}
  cast(to_json(cast({{ expr }} as {{ dbt.type_string() }})) as {{ dbt.type_string() }})
{%- endmacro %}

{% macro duckdb__braze_json_string(expr) -%}
  cast(to_json(cast({{ expr }} as varchar)) as varchar)
{%- endmacro %}

{#- to_json takes only structs and maps: wrap, then cut `{"v":` and `}` off. -#}
{% macro spark__braze_json_string(expr) -%}
  substr(to_json(named_struct('v', {{ expr }})), 6, length(to_json(named_struct('v', {{ expr }}))) - 6)
{%- endmacro %}

{% macro snowflake__braze_json_string(expr) -%}
  to_json(to_variant(cast({{ expr }} as varchar)))
{%- endmacro %}

{% macro bigquery__braze_json_string(expr) -%}
  to_json_string(cast({{ expr }} as string))
{%- endmacro %}

{#- Redshift has no to_json for text: escape what JSON requires by hand. -#}
{% macro redshift__braze_json_string(expr) -%}
  '"' || replace(replace(replace(replace(replace(cast({{ expr }} as varchar(65535)),
    '\\', '\\\\'), '"', '\\"'), chr(10), '\\n'), chr(13), '\\r'), chr(9), '\\t') || '"'
{%- endmacro %}

{#- The separator of the acknowledgement lists (warehouse.ROW_SEPARATOR). -#}
{% macro braze_list_separator() %}
  {{ return(adapter.dispatch('braze_list_separator', 'dbt_braze')()) }}
{% endmacro %}

{% macro default__braze_list_separator() -%}chr(31){%- endmacro %}

{% macro bigquery__braze_list_separator() -%}code_points_to_string([31]){%- endmacro %}

{#- Texts of a group joined by `separator`, in attribute order. -#}
{% macro braze_join_by_attribute(expr, separator) %}
  {{ return(adapter.dispatch('braze_join_by_attribute', 'dbt_braze')(expr, separator)) }}
{% endmacro %}

{% macro default__braze_join_by_attribute(expr, separator) -%}
  {{ dbt.listagg(expr, separator, 'order by attribute') }}
{%- endmacro %}

{#- collect_list has no order: sort (attribute, text) pairs, then keep the texts. -#}
{% macro spark__braze_join_by_attribute(expr, separator) -%}
  array_join(transform(array_sort(collect_list(named_struct('a', attribute, 't', {{ expr }}))), x -> x.t), {{ separator }})
{%- endmacro %}

{#-
  One row per user of `rows_sql` (key, attribute, value_text, value_type,
  value_hash, is_new, one row per changed attribute), in key order:
  braze_key, is_new, data_points, object_json, ack_attributes, ack_hashes
  (separator-joined, '' for a removed value), invalid_attribute, needs_check.
-#}
{% macro braze_user_objects_sql(rows_sql, id_field, update_only) %}
  {%- set separator = dbt_braze.braze_list_separator() -%}
select braze_key, is_new, count(*) as data_points,
       '{"{{ id_field }}":' || {{ dbt_braze.braze_json_string('braze_key') }}
       {%- if update_only %} || ',"_update_existing_only":true'{% endif %}
       || ',' || {{ dbt_braze.braze_join_by_attribute('pair', "','") }} || '}' as object_json,
       {{ dbt_braze.braze_join_by_attribute('attribute', separator) }} as ack_attributes,
       {{ dbt_braze.braze_join_by_attribute("coalesce(value_hash, '')", separator) }} as ack_hashes,
       max(invalid_attribute) as invalid_attribute,
       max(case when value_type = 'json' and value_text is not null then 1 else 0 end) as needs_check
from (
    select changed.*,
           {{ dbt_braze.braze_json_string('attribute') }} || ':' ||
           case when value_text is null then 'null'
                when value_type in ('integer', 'number', 'boolean', 'json') then value_text
                else {{ dbt_braze.braze_json_string('value_text') }} end as pair,
           case when value_type = 'number'
                 and lower(value_text) in ('nan', '+nan', '-nan', 'inf', '+inf', '-inf',
                                           'infinity', '+infinity', '-infinity')
                then attribute end as invalid_attribute
    from ({{ rows_sql }}) changed
) rendered
group by braze_key, is_new
order by braze_key
{% endmacro %}

{#- One row per removed user: braze_key, ack_attributes (the attributes to unset or forget). -#}
{% macro braze_removed_users_sql(rows_sql) %}
select braze_key, {{ dbt_braze.braze_join_by_attribute('attribute', dbt_braze.braze_list_separator()) }} as ack_attributes
from ({{ rows_sql }}) removed
group by braze_key
order by braze_key
{% endmacro %}
