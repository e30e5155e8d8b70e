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
  {#- `[]` lists; `[3]` DuckDB's fixed-size arrays, JSON lists too -#}
  {%- if dtype.endswith(']') or dtype.startswith('struct') or dtype.startswith('map')
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
    {{ dbt_braze._braze_iso_or_raw(expr, "to_char(" ~ expr ~ ", 'YYYY-MM-DD')",
                                   "cast(" ~ expr ~ " as " ~ dbt_braze.braze_type_string() ~ ")") }}
  {%- elif value_type in ('timestamp', 'timestamptz') -%}
    {%- set naive = "(" ~ expr ~ (" at time zone 'UTC')" if value_type == 'timestamptz' else ")") -%}
    {%- set iso -%}to_char({{ naive }}, 'YYYY-MM-DD"T"HH24:MI:SS"Z"'){%- endset -%}
    {{ dbt_braze._braze_iso_or_raw("cast(" ~ naive ~ " as date)", iso, "cast(" ~ naive ~ " as " ~ dbt_braze.braze_type_string() ~ ")") }}
  {%- else -%}
    cast({{ expr }} as {{ dbt_braze.braze_type_string() }})
  {%- endif -%}
{% endmacro %}

{% macro duckdb__braze_normalized_text(expr, value_type) %}
  {%- if value_type == 'boolean' -%}
    case when {{ expr }} then 'true' when not {{ expr }} then 'false' end
  {%- elif value_type == 'date' -%}
    {{ dbt_braze._braze_iso_or_raw(expr, "strftime(" ~ expr ~ ", '%Y-%m-%d')", "cast(" ~ expr ~ " as varchar)") }}
  {%- elif value_type in ('timestamp', 'timestamptz') -%}
    {#- timezone('UTC', x) gives the naive UTC wall time whatever the session zone -#}
    {%- set naive = "timezone('UTC', " ~ expr ~ ")" if value_type == 'timestamptz' else "cast(" ~ expr ~ " as timestamp)" -%}
    {{ dbt_braze._braze_iso_or_raw("cast(" ~ naive ~ " as date)", "strftime(" ~ naive ~ ", '%Y-%m-%dT%H:%M:%SZ')",
                                   "cast(" ~ naive ~ " as varchar)") }}
  {%- elif value_type == 'json' -%}
    cast(to_json({{ expr }}) as varchar)
  {%- elif value_type == 'number' -%}
    {#- doubles and floats as PostgreSQL and Spark print them (`100`, not `100.0`):
        see adapters/duckdb_floats.sql; typeof is a constant, so one branch is kept #}
    case when typeof({{ expr }}) in ('DOUBLE', 'FLOAT') then {{ dbt_braze._braze_duckdb_float_text(expr) }}
         else cast({{ expr }} as varchar) end
  {%- else -%}
    cast({{ expr }} as varchar)
  {%- endif -%}
{% endmacro %}

{#-
  Braze reads ISO 8601 dates, years 1 to 9999 (`YYYY-MM-DD`,
  `YYYY-MM-DDTHH:MM:SSZ`). A date or timestamp outside them (infinity on
  DuckDB and PostgreSQL, a year before 1 or after 9999) gets the warehouse's
  own text instead (`infinity`, `0045-03-15 BC`, `10000-01-01`): never null,
  which would unset the attribute in Braze, never a wrong ISO text
  (PostgreSQL's to_char prints 45 BC as `0045`, and gives null for infinity).
  braze_rendered_changes_sql rejects that row, with the reason. The guard
  also keeps PostgreSQL's to_char, which casts a date to a timestamp, off
  the dates past the timestamp range (year 294277 on), where it would fail
  the whole `dbt run`. `day` is the value as a date (null stays null).
-#}
{% macro _braze_iso_or_raw(day, iso_text, raw_text) -%}
  case when {{ day }} between cast('0001-01-01' as date) and cast('9999-12-31' as date)
       then {{ iso_text }} else {{ raw_text }} end
{%- endmacro %}

{#- Braze keeps strings of at most this many characters; it drops longer ones silently (braze-api-notes.md). -#}
{% macro braze_max_string_length() %}
  {{ return(255) }}
{% endmacro %}

{#- timestamptz is a tagging detail of normalization; the sync sees `timestamp`. -#}
{% macro braze_sent_type(value_type) %}
  {{ return('timestamp' if value_type == 'timestamptz' else value_type) }}
{% endmacro %}
