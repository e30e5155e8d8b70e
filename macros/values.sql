{#-
  Value normalization: every mapped column becomes the text that will be sent
  to Braze, tagged with a type the sync uses to rebuild the JSON value.
  Hashing this normalized text (not the raw column) keeps change detection
  stable across session time zones and warehouses.
-#}

{% macro braze_value_type(column) %}
  {{ return(adapter.dispatch('braze_value_type', 'dbt_braze')(column)) }}
{% endmacro %}

{% macro default__braze_value_type(column) %}
  {%- set dtype = column.dtype | lower -%}
  {%- if dtype.endswith('[]') or dtype.startswith('struct') or dtype.startswith('map')
        or dtype.startswith('array') or dtype.startswith('list') or dtype.startswith('json')
        or dtype in ('variant', 'object', 'super') -%}
    {{ return('json') }}
  {%- elif dtype.startswith('bool') -%}
    {{ return('boolean') }}
  {%- elif 'timestamp' in dtype and ('with time zone' in dtype or dtype.endswith('tz') or '_tz' in dtype) -%}
    {{ return('timestamptz') }}
  {%- elif 'timestamp' in dtype or dtype == 'datetime' -%}
    {{ return('timestamp') }}
  {%- elif dtype == 'date' -%}
    {{ return('date') }}
  {%- elif column.is_integer() or dtype in ('hugeint', 'uhugeint', 'ubigint', 'uinteger', 'usmallint', 'utinyint', 'tinyint', 'int', 'int64', 'long', 'short', 'byte') -%}
    {{ return('integer') }}
  {%- elif column.is_numeric() or column.is_float() or dtype.startswith('decimal') or dtype.startswith('numeric')
        or dtype in ('double', 'float', 'real', 'float4', 'float8', 'double precision', 'float64') -%}
    {{ return('number') }}
  {%- else -%}
    {{ return('string') }}
  {%- endif -%}
{% endmacro %}

{#- The SQL expression that turns `expr` into the normalized text of `value_type`. -#}
{% macro braze_normalized_text(expr, value_type) %}
  {{ return(adapter.dispatch('braze_normalized_text', 'dbt_braze')(expr, value_type)) }}
{% endmacro %}

{% macro default__braze_normalized_text(expr, value_type) %}
  {%- if value_type == 'boolean' -%}
    case when {{ expr }} then 'true' when not {{ expr }} then 'false' end
  {%- elif value_type == 'date' -%}
    to_char({{ expr }}, 'YYYY-MM-DD')
  {%- elif value_type == 'timestamp' -%}
    to_char({{ expr }}, 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
  {%- elif value_type == 'timestamptz' -%}
    to_char({{ expr }} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
  {%- else -%}
    cast({{ expr }} as {{ dbt.type_string() }})
  {%- endif -%}
{% endmacro %}

{% macro duckdb__braze_normalized_text(expr, value_type) %}
  {%- if value_type == 'boolean' -%}
    case when {{ expr }} then 'true' when not {{ expr }} then 'false' end
  {%- elif value_type == 'date' -%}
    strftime({{ expr }}, '%Y-%m-%d')
  {%- elif value_type == 'timestamp' -%}
    strftime(cast({{ expr }} as timestamp), '%Y-%m-%dT%H:%M:%SZ')
  {%- elif value_type == 'timestamptz' -%}
    {#- timezone('UTC', x) gives the naive UTC wall time whatever the session zone -#}
    strftime(timezone('UTC', {{ expr }}), '%Y-%m-%dT%H:%M:%SZ')
  {%- elif value_type == 'json' -%}
    cast(to_json({{ expr }}) as varchar)
  {%- elif value_type == 'number' -%}
    {#- doubles and floats as PostgreSQL and Spark print them (`100`, not `100.0`):
        see duckdb_floats.sql; typeof is a constant, so one branch is kept #}
    case when typeof({{ expr }}) in ('DOUBLE', 'FLOAT') then {{ dbt_braze._braze_duckdb_float_text(expr) }}
         else cast({{ expr }} as varchar) end
  {%- else -%}
    cast({{ expr }} as varchar)
  {%- endif -%}
{% endmacro %}

{#- timestamptz is a tagging detail of normalization; the sync sees `timestamp`. -#}
{% macro braze_sent_type(value_type) %}
  {{ return('timestamp' if value_type == 'timestamptz' else value_type) }}
{% endmacro %}
