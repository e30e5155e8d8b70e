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
  longer values would not fit. The widest VARCHAR is 65,535 bytes.
-#}
{% macro _braze_redshift_text_type() -%}
  varchar(65535)
{%- endmacro %}

{#-
  - json: casting a SUPER object or array to text fails; json_serialize gives
    its JSON text.
  - text: cast to the widest VARCHAR, not TEXT (VARCHAR(256)).
  Dates and timestamps keep the default to_char / `at time zone`, which
  Redshift supports.
-#}
{% macro redshift__braze_normalized_text(expr, value_type) %}
  {%- if value_type == 'json' -%}
    json_serialize({{ expr }})
  {%- elif value_type in ('boolean', 'date', 'timestamp', 'timestamptz') -%}
    {{ dbt_braze.default__braze_normalized_text(expr, value_type) }}
  {%- else -%}
    cast({{ expr }} as {{ dbt_braze._braze_redshift_text_type() }})
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
  The default change-detection SQL with Redshift literals for attribute names
  (see _braze_literal_attributes in macros/state.sql) and wide text: dbt's
  text type, and the cast inside dbt.hash, are TEXT/VARCHAR, which Redshift
  reads as VARCHAR(256) and truncates to, so the hash of a longer value would
  miss a change past its 256th byte, and longer keys would merge.
-#}
{% macro redshift__braze_current_values_sql(relation, id_column, mappings) %}
  {{ return(dbt_braze._braze_redshift_wide(dbt_braze._braze_literal_attributes(dbt_braze.default__braze_current_values_sql(
      relation, id_column, dbt_braze._braze_placeholder_mappings(mappings)), mappings))) }}
{% endmacro %}

{% macro redshift__braze_pending_sql(model_name, relation, id_column, mappings, built_at) %}
  {{ return(dbt_braze._braze_redshift_wide(dbt_braze._braze_literal_attributes(dbt_braze.default__braze_pending_sql(
      model_name, relation, id_column, dbt_braze._braze_placeholder_mappings(mappings), built_at), mappings))) }}
{% endmacro %}

{#-
  The --full-refresh read hashes the current values itself (dbt.hash) and
  casts the model's keys to count them: the same widening, or values past
  their 256th byte would get a hash the next sync does not match, and keys
  longer than 256 bytes would not join their values. The current values in it
  are already wide (redshift__braze_current_values_sql); widening again
  leaves them as they are.
-#}
{% macro redshift__braze_read_full_refresh_sql(relation, id_column, mappings) %}
  {%- set sql = dbt_braze.default__braze_read_full_refresh_sql(relation, id_column, mappings) -%}
  {{ return(none if sql is none else dbt_braze._braze_redshift_wide(sql)) }}
{% endmacro %}

{#- Casts to dbt's text type, and dbt.hash of the value text, rewritten to the widest VARCHAR. -#}
{% macro _braze_redshift_wide(sql) %}
  {%- set wide = dbt_braze._braze_redshift_text_type() -%}
  {{ return(sql | replace(dbt.hash('cv.value_text'), 'md5(cast(cv.value_text as ' ~ wide ~ '))')
                | replace(' as ' ~ dbt.type_string() ~ ')', ' as ' ~ wide ~ ')')) }}
{% endmacro %}

{#- The package's text columns as the widest VARCHAR (error texts and keys can pass 256 bytes). -#}
{% macro redshift__braze_create_table_sql(relation, columns_sql) %}
  {{ return(dbt_braze.default__braze_create_table_sql(relation, columns_sql | replace(' ' ~ dbt.type_string(), ' ' ~ dbt_braze._braze_redshift_text_type()))) }}
{% endmacro %}

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
    {{ dbt_braze.braze_decode_cell('cast(handed_row[' ~ loop.index0 ~ '] as ' ~ dbt_braze._braze_redshift_text_type() ~ ')') }} as {{ name }}{% if not loop.last %},{% endif %}
    {%- endfor %}
  from (select json_parse({{ dbt_braze.braze_string_literal('[' ~ chunk | join(",") ~ ']') }}) as handed_rows) handed,
       handed.handed_rows as handed_row
  {% if not loop.last %}union all{% endif %}
  {%- endfor %}
{% endmacro %}
