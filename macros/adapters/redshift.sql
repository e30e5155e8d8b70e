{#-
  Redshift overrides (dbt-redshift dispatches redshift__, then postgres__,
  then default__), only where Redshift's SQL differs from PostgreSQL's.
  Checked by rendering through dbt-redshift 1.11 and parsing with sqlglot;
  not run against a live cluster. See docs/warehouses.md.
-#}

{#-
  CURRENT_TIMESTAMP and NOW() are deprecated leader-node-only functions: they
  fail in a query that reads a table
  (https://docs.aws.amazon.com/redshift/latest/dg/c_SQL_functions_leader_node_only.html).
  getdate() is a naive timestamp in the session time zone, UTC by default
  (https://docs.aws.amazon.com/redshift/latest/dg/r_GETDATE.html).
-#}
{% macro redshift__braze_utc_now() -%}
  getdate()
{%- endmacro %}

{#-
  dbt.type_string() is TEXT, which Redshift turns into VARCHAR(256)
  (https://docs.aws.amazon.com/redshift/latest/dg/r_Character_types.html#r_Character_types-text-and-bpchar-types):
  longer values would not fit (error texts and keys in the package's tables),
  and a value cast to it is cut: its hash would miss a change past its 256th
  byte, and longer keys would merge. The widest VARCHAR is 65,535 bytes.
-#}
{% macro redshift__braze_type_string() %}
  {{ return('varchar(65535)') }}
{% endmacro %}

{#- dbt.hash casts to TEXT too (VARCHAR(256), above): hash the whole text. -#}
{% macro redshift__braze_hash(expr) -%}
  md5(cast({{ expr }} as {{ dbt_braze.braze_type_string() }}))
{%- endmacro %}

{#-
  - json: casting a SUPER object or array to text fails; json_serialize gives
    its JSON text.
  The rest is the default (its text casts are braze_type_string, the widest
  VARCHAR); dates and timestamps keep its to_char / `at time zone`, which
  Redshift supports.
-#}
{% macro redshift__braze_normalized_text(expr, value_type) %}
  {%- if value_type == 'json' -%}
    json_serialize({{ expr }})
  {%- else -%}
    {{ dbt_braze.default__braze_normalized_text(expr, value_type) }}
  {%- endif -%}
{% endmacro %}

{#-
  A Redshift string literal: a backslash is an escape there, as in
  QUOTE_LITERAL's output (https://docs.aws.amazon.com/redshift/latest/dg/r_QUOTE_LITERAL.html).
-#}
{% macro redshift__braze_string_literal(text) -%}
  '{{ text | replace("\\", "\\\\") | replace("'", "''") }}'
{%- endmacro %}

{#-
  Redshift has neither string_to_array nor unnest(array, array), and a text
  value (so a literal) holds at most 65,535 bytes. The rows go as JSON arrays
  of at most ~60,000 characters each (the values are hex: braze_decode_cell), parsed
  into SUPER and unnested with PartiQL, one UNION ALL branch per chunk
  (https://docs.aws.amazon.com/redshift/latest/dg/query-super.html#unnest).
  A Redshift literal treats backslash as an escape (QUOTE_LITERAL doubles it).
-#}
{% macro redshift__braze_rows_sql(columns) %}
  {%- set split_columns = [] -%}
  {%- for name, text in columns -%}{%- do split_columns.append(text.split("\x1f")) -%}{%- endfor -%}
  {%- set chunks = [] -%}
  {%- set current = namespace(rows=[], size=0) -%}
  {%- for i in range(split_columns[0] | length) -%}
    {%- set row = [] -%}
    {%- for values in split_columns -%}{%- do row.append(values[i]) -%}{%- endfor -%}
    {%- set row_json = tojson(row) -%}
    {%- if current.rows and current.size + (row_json | length) + 1 > 60000 -%}
      {%- do chunks.append(current.rows) -%}
      {%- set current.rows = [] -%}
      {%- set current.size = 0 -%}
    {%- endif -%}
    {%- do current.rows.append(row_json) -%}
    {%- set current.size = current.size + (row_json | length) + 1 -%}
  {%- endfor -%}
  {%- do chunks.append(current.rows) -%}
  {%- for chunk in chunks %}
  select
    {%- for name, text in columns %}
    {{ dbt_braze.braze_decode_cell('cast(handed_row[' ~ loop.index0 ~ '] as ' ~ dbt_braze.braze_type_string() ~ ')') }} as {{ name }}{% if not loop.last %},{% endif %}
    {%- endfor %}
  from (select json_parse({{ dbt_braze.braze_string_literal('[' ~ chunk | join(",") ~ ']') }}) as handed_rows) handed,
       handed.handed_rows as handed_row
  {% if not loop.last %}union all{% endif %}
  {%- endfor %}
{% endmacro %}
