{#-
  BigQuery overrides (dbt-bigquery), only where BigQuery's SQL differs from
  the defaults. Checked by rendering through dbt-bigquery 1.11 and parsing
  with sqlglot; not run against a live BigQuery project. See
  docs/warehouses.md.
-#}

{#-
  A GoogleSQL string literal: backslash escapes, a quote is \' (not ''), and a
  single-quoted literal cannot hold a newline
  (https://cloud.google.com/bigquery/docs/reference/standard-sql/lexical#string_and_bytes_literals).
-#}
{% macro bigquery__braze_string_literal(text) -%}
  '{{ text | replace("\\", "\\\\") | replace("'", "\\'") | replace("\n", "\\n") | replace("\r", "\\r") }}'
{%- endmacro %}

{#-
  dbt.dateadd on BigQuery is datetime_add(cast(x as datetime), ...), a
  DATETIME, which BigQuery does not compare with the TIMESTAMP columns.
-#}
{% macro bigquery__braze_utc_seconds_ago(seconds) -%}
  timestamp_sub(current_timestamp(), interval {{ seconds | int }} second)
{%- endmacro %}

{#-
  BigQuery's TIMESTAMP is an instant kept in UTC, so current_timestamp() is
  the UTC time; `at time zone` is not GoogleSQL. The package's own time
  columns are TIMESTAMP (dbt.type_timestamp()).
-#}
{% macro bigquery__braze_utc_now() -%}
  current_timestamp()
{%- endmacro %}

{#-
  TIMESTAMP is an instant (the default would read it as naive, DATETIME is
  the naive one); STRUCT columns report RECORD, and ARRAY columns report their
  element type with mode REPEATED.
-#}
{% macro bigquery__braze_value_type(column) %}
  {%- set dtype = column.dtype | lower -%}
  {%- if (column.mode | default('') | upper) == 'REPEATED' or dtype in ('record', 'struct', 'json') -%}
    {{ return('json') }}
  {%- elif dtype == 'timestamp' -%}
    {{ return('timestamptz') }}
  {%- elif dtype in ('bignumeric', 'bigdecimal') -%}
    {{ return('number') }}
  {%- endif -%}
  {{ return(dbt_braze.default__braze_value_type(column)) }}
{% endmacro %}

{#-
  No to_char in GoogleSQL: format_date / format_datetime / format_timestamp
  (with the zone given, so the session zone never matters); to_json_string for
  STRUCT, ARRAY and JSON, which cannot be cast to STRING.
  NUMERIC text is minimal (`1234.5` for 1234.50, where PostgreSQL and DuckDB
  keep the declared scale): same JSON number, other hash (docs/warehouses.md).
-#}
{% macro bigquery__braze_normalized_text(expr, value_type) %}
  {%- if value_type == 'date' -%}
    format_date('%Y-%m-%d', {{ expr }})
  {%- elif value_type == 'timestamp' -%}
    format_datetime('%Y-%m-%dT%H:%M:%SZ', {{ expr }})
  {%- elif value_type == 'timestamptz' -%}
    format_timestamp('%Y-%m-%dT%H:%M:%SZ', {{ expr }}, 'UTC')
  {%- elif value_type == 'json' -%}
    to_json_string({{ expr }})
  {%- else -%}
    {{ dbt_braze.default__braze_normalized_text(expr, value_type) }}
  {%- endif -%}
{% endmacro %}

{#-
  No string_to_array/unnest(a, b): split() gives one ARRAY per column, and the
  offsets of the first index the others
  (https://cloud.google.com/bigquery/docs/reference/standard-sql/arrays#zipping_arrays).
-#}
{% macro bigquery__braze_rows_sql(columns) %}
  select
  {%- for name, text in columns %}
    {{ dbt_braze.braze_decode_cell('handed.c' ~ loop.index0 ~ '[offset(position)]') }} as {{ name }}{% if not loop.last %},{% endif %}
  {%- endfor %}
  from (
    select
    {%- for name, text in columns %}
      split({{ dbt_braze.braze_string_literal(text) }}, '\x1f') as c{{ loop.index0 }}{% if not loop.last %},{% endif %}
    {%- endfor %}
  ) handed
  cross join unnest(generate_array(0, array_length(handed.c0) - 1)) as position
{% endmacro %}

{#-
  Each BigQuery statement commits on its own, so drop-then-rename leaves a
  moment with no pending relation; CREATE OR REPLACE TABLE ... COPY replaces
  it in one step without scanning
  (https://cloud.google.com/bigquery/docs/reference/standard-sql/data-definition-language#create_table_copy).
-#}
{% macro bigquery__braze_swap_relation(staging, target) %}
  {%- do run_query(dbt_braze.bigquery__braze_swap_sql(staging, target)) -%}
  {%- do adapter.drop_relation(staging) -%}
{% endmacro %}

{% macro bigquery__braze_swap_sql(staging, target) -%}
  create or replace table {{ target }} copy {{ staging }}
{%- endmacro %}
