{#-
  JSON attributes (lists, arrays, structs, maps) as one text on every
  warehouse, so that their hashes survive a move between warehouses.
  Each warehouse's own serializer differs: DuckDB writes `100.0`, `1234.5`
  (a DECIMAL(12,2)) and `"2026-11-28 10:15:00"`; Spark `1.0E20` and
  `1234.50`; PostgreSQL's jsonb puts spaces after `:` and `,`.

  The canonical text: compact (no whitespace outside strings), object keys in
  the order of the type's fields (a map's in its own order), null fields kept,
  and every leaf written as the top-level value of its type would be
  (braze_normalized_text): floats as PostgreSQL prints them, decimals at their
  scale, dates `YYYY-MM-DD`, timestamps `YYYY-MM-DDTHH:MM:SSZ` in UTC, strings
  and map keys JSON-escaped by the warehouse. A NaN or infinity inside stays
  bare (`NaN`), so the value is not valid JSON and the sync rejects it locally,
  as it does a top-level one.

  DuckDB and Spark build that text from the column's type, walking it
  (braze_json_type parses it). PostgreSQL's to_json already writes its arrays
  and composites that way (float8 text is the reference), so only whitespace
  is removed; json documents (DuckDB JSON, PostgreSQL json/jsonb, Spark
  variant) keep their own key order and number texts.
-#}

{#-
  The normalized text of a mapped column. With `truncate_strings` (the
  model's meta), a string keeps its first braze_max_string_length()
  characters, which is all Braze would hold; else a longer one is rejected
  (braze_invalid_value_sql). A subscription group's column: the state it
  asks for (macros/subscriptions.sql).
-#}
{% macro braze_mapped_text(mapping) %}
  {%- if mapping.value_type == 'subscription' -%}
    {{ return(dbt_braze._braze_subscription_text(mapping)) }}
  {%- endif -%}
  {%- set text = dbt_braze.braze_typed_text(dbt_braze.braze_quote_identifier(mapping.column), mapping.value_type, mapping.get('data_type')) -%}
  {%- if mapping.value_type == 'string' and mapping.get('truncate_strings') -%}
    {{ return('substr(' ~ text ~ ', 1, ' ~ dbt_braze.braze_max_string_length() ~ ')') }}
  {%- endif -%}
  {{ return(text) }}
{% endmacro %}

{#- braze_normalized_text, told the column type when it is known (`data_type`). -#}
{% macro braze_typed_text(expr, value_type, data_type) %}
  {%- if value_type == 'json' and data_type -%}
    {{ return(adapter.dispatch('braze_json_text', 'dbt_braze')(expr, data_type)) }}
  {%- elif value_type == 'number' and data_type -%}
    {{ return(adapter.dispatch('braze_number_text', 'dbt_braze')(expr, data_type)) }}
  {%- endif -%}
  {{ return(dbt_braze.braze_normalized_text(expr, value_type)) }}
{% endmacro %}

{% macro default__braze_number_text(expr, data_type) %}
  {{ return(dbt_braze.braze_normalized_text(expr, 'number')) }}
{% endmacro %}

{#-
  DuckDB: the float text (adapters/duckdb_floats.sql) is a large expression that the
  binder takes time over; with the column type known, decimals and integers
  do without it (braze_normalized_text decides with typeof, in the query).
-#}
{% macro duckdb__braze_number_text(expr, data_type) %}
  {%- set type_name = data_type | upper -%}
  {%- if dbt_braze._braze_duckdb_is_float(data_type) -%}
    {{ return(dbt_braze._braze_duckdb_float_text(expr)) }}
  {%- elif type_name.startswith('DECIMAL') or type_name.startswith('NUMERIC') or type_name.endswith('INT')
           or type_name.endswith('INTEGER') or type_name in ('HUGEINT', 'UHUGEINT', 'BIGINT', 'SMALLINT', 'TINYINT') -%}
    {{ return('cast(' ~ expr ~ ' as varchar)') }}
  {%- endif -%}
  {{ return(dbt_braze.braze_normalized_text(expr, 'number')) }}
{% endmacro %}

{#- A DuckDB column type whose text is the float text (its aliases included). -#}
{% macro _braze_duckdb_is_float(data_type) %}
  {{ return((data_type or '') | upper in ('DOUBLE', 'FLOAT', 'REAL', 'FLOAT4', 'FLOAT8', 'DOUBLE PRECISION')) }}
{% endmacro %}

{% macro default__braze_json_text(expr, data_type) %}
  {{ return(dbt_braze.braze_normalized_text(expr, 'json')) }}
{% endmacro %}

{% macro duckdb__braze_json_text(expr, data_type) %}
  {{ return(dbt_braze._braze_json_walk(expr, dbt_braze.braze_json_type(data_type), 1)) }}
{% endmacro %}

{% macro spark__braze_json_text(expr, data_type) %}
  {{ return(dbt_braze._braze_json_walk(expr, dbt_braze.braze_json_type(data_type), 1)) }}
{% endmacro %}

{#-
  PostgreSQL's to_json writes timestamps without the `Z` (and with the
  session's offset), so timestamp arrays are walked; the rest is to_json's
  text, compact. (A multidimensional timestamp array comes out flat:
  PostgreSQL's types do not tell the dimensions.)
-#}
{% macro postgres__braze_json_text(expr, data_type) %}
  {%- set parsed = dbt_braze.braze_json_type(data_type) -%}
  {%- if parsed.kind == 'list' and parsed.element.kind == 'leaf' and 'timestamp' in parsed.element.data_type | lower -%}
    {{ return(dbt_braze._braze_json_walk(expr, parsed, 1)) }}
  {%- endif -%}
  {{ return(dbt_braze._braze_json_minified('cast(to_json(' ~ expr ~ ') as text)')) }}
{% endmacro %}

{#- Redshift has its own serializer (json_serialize of SUPER): not PostgreSQL's. -#}
{% macro redshift__braze_json_text(expr, data_type) %}
  {{ return(dbt_braze.default__braze_json_text(expr, data_type)) }}
{% endmacro %}

{#-
  The column's type as the JSON walk reads it. dbt-postgres reports every
  array as `ARRAY` (information_schema); the catalog has the element type.
-#}
{% macro braze_column_data_type(relation, column) %}
  {{ return(adapter.dispatch('braze_column_data_type', 'dbt_braze')(relation, column)) }}
{% endmacro %}

{% macro default__braze_column_data_type(relation, column) %}
  {{ return(column.dtype) }}
{% endmacro %}

{% macro postgres__braze_column_data_type(relation, column) %}
  {%- if column.dtype | upper != 'ARRAY' or not execute -%}
    {{ return(column.dtype) }}
  {%- endif -%}
  {%- set found = run_query("select format_type(atttypid, atttypmod) from pg_attribute where attrelid = "
                            ~ dbt_braze.braze_string_literal(relation | string) ~ "::regclass and attname = "
                            ~ dbt_braze.braze_string_literal(column.name)) -%}
  {{ return(found.rows[0][0] if found and found.rows else column.dtype) }}
{% endmacro %}

{% macro redshift__braze_column_data_type(relation, column) %}
  {{ return(column.dtype) }}
{% endmacro %}

{#-
  A JSON text without whitespace outside its strings: each string is matched
  whole and kept, any other run of whitespace dropped. Numbers stay as
  written (DuckDB's to_json would reparse `2.50` into `2.5`).
-#}
{% macro _braze_json_minified(json_text) -%}
  regexp_replace({{ json_text }}, '("(?:[^"\\]|\\.)*")|\s+', '\1', 'g')
{%- endmacro %}

{#- A value the walk cannot see into: a json document, or a type it does not know. -#}
{% macro default___braze_json_document(expr, data_type) %}
  {{ return(dbt_braze._braze_json_minified('cast(to_json(' ~ expr ~ ') as text)')) }}
{% endmacro %}

{% macro duckdb___braze_json_document(expr, data_type) %}
  {%- if data_type | lower == 'json' -%}
    {{ return(dbt_braze._braze_json_minified('cast(' ~ expr ~ ' as varchar)')) }}
  {%- endif -%}
  {{ return(dbt_braze.braze_normalized_text(expr, 'json')) }}
{% endmacro %}

{#- Spark's variant: to_json writes it compact, keys sorted, numbers as the variant holds them. -#}
{% macro spark___braze_json_document(expr, data_type) %}
  {{ return(dbt_braze.braze_normalized_text(expr, 'json')) }}
{% endmacro %}

{#-
  `expr` of the parsed type `t` as canonical JSON text, or null when it is
  null (a container writes `null` for it). `depth` names the lambda variables
  apart.
-#}
{% macro _braze_json_walk(expr, t, depth) %}
  {%- set var = 'braze_json_' ~ depth -%}
  {%- if t.kind == 'list' -%}
    {%- set element = "coalesce(" ~ dbt_braze._braze_json_walk(var, t.element, depth + 1) ~ ", 'null')" -%}
    {{ return("case when " ~ expr ~ " is null then null else concat('[', "
              ~ dbt_braze._braze_json_joined(expr, var, element) ~ ", ']') end") }}
  {%- elif t.kind == 'map' -%}
    {%- set key = dbt_braze._braze_json_walk(var ~ '.key', {'kind': 'leaf', 'data_type': t.key.data_type, 'as_key': true}, depth + 1) -%}
    {%- set member = "concat(" ~ key ~ ", ':', coalesce(" ~ dbt_braze._braze_json_walk(var ~ '.value', t.value, depth + 1) ~ ", 'null'))" -%}
    {{ return("case when " ~ expr ~ " is null then null else concat('{', "
              ~ dbt_braze._braze_json_joined('map_entries(' ~ expr ~ ')', var, member) ~ ", '}') end") }}
  {%- elif t.kind == 'struct' -%}
    {%- set members = [] -%}
    {%- for name, field_type in t.fields -%}
      {%- set value = dbt_braze._braze_json_walk(adapter.dispatch('_braze_struct_field', 'dbt_braze')(expr, name), field_type, depth) -%}
      {%- do members.append(dbt_braze.braze_json_string(dbt_braze.braze_string_literal(name)) ~ ", ':', coalesce(" ~ value ~ ", 'null')") -%}
    {%- endfor -%}
    {{ return("case when " ~ expr ~ " is null then null else concat('{', " ~ members | join(", ',', ") ~ ", '}') end") }}
  {%- endif -%}
  {%- set value_type = dbt_braze.braze_value_type(api.Column.create('leaf', t.data_type)) -%}
  {%- if value_type == 'json' -%}
    {{ return(adapter.dispatch('_braze_json_document', 'dbt_braze')(expr, t.data_type)) }}
  {%- endif -%}
  {%- set text = dbt_braze.braze_typed_text(expr, value_type, t.data_type) -%}
  {%- if value_type in ('integer', 'number', 'boolean') and not t.get('as_key') -%}
    {{ return(text) }}
  {%- endif -%}
  {{ return(dbt_braze.braze_json_string(text)) }}
{% endmacro %}

{#- The texts `item_sql` gives for each element `var` of the list `list_sql`, joined by commas. -#}
{#- (default__ forms: PostgreSQL's, which does not walk; dbt resolves every dispatch when parsing) -#}
{% macro default___braze_json_joined(list_sql, var, item_sql) -%}
  (select string_agg({{ item_sql }}, ',' order by position) from unnest({{ list_sql }}) with ordinality as elements({{ var }}, position))
{%- endmacro %}

{% macro duckdb___braze_json_joined(list_sql, var, item_sql) -%}
  array_to_string(list_transform({{ list_sql }}, lambda {{ var }}: {{ item_sql }}), ',')
{%- endmacro %}

{% macro spark___braze_json_joined(list_sql, var, item_sql) -%}
  array_join(transform({{ list_sql }}, {{ var }} -> {{ item_sql }}), ',')
{%- endmacro %}

{% macro _braze_json_joined(list_sql, var, item_sql) %}
  {{ return(adapter.dispatch('_braze_json_joined', 'dbt_braze')(list_sql, var, item_sql)) }}
{% endmacro %}

{% macro default___braze_struct_field(expr, name) -%}
  ({{ expr }}).{{ dbt_braze.braze_quote_identifier(name) }}
{%- endmacro %}

{% macro duckdb___braze_struct_field(expr, name) -%}
  struct_extract({{ expr }}, {{ dbt_braze.braze_string_literal(name) }})
{%- endmacro %}

{% macro spark___braze_struct_field(expr, name) -%}
  {{ expr }}.`{{ name | replace('`', '``') }}`
{%- endmacro %}

{#-
  A column type, parsed: {'kind': 'list', 'element': t}, {'kind': 'struct',
  'fields': [(name, t)]}, {'kind': 'map', 'key': t, 'value': t} or
  {'kind': 'leaf', 'data_type': text}. Reads DuckDB's spelling
  (`STRUCT("a b" INTEGER[], c MAP(VARCHAR, DOUBLE))`, `INTEGER[3]`) and
  Spark's (`struct<a b:array<int>,c:map<string,double>>`; Spark's DESCRIBE
  does not quote field names, so a name holding `:` or `,` is misread there).
-#}
{% macro braze_json_type(data_type) %}
  {%- set text = data_type | trim -%}
  {%- set lower = text | lower -%}
  {%- if text.endswith(']') -%}
    {#- the last bracket pair is the outermost: STRUCT(a INTEGER[])[2] -#}
    {{ return({'kind': 'list', 'element': dbt_braze.braze_json_type(text[:text.rfind('[')])}) }}
  {%- elif lower.startswith('array<') -%}
    {{ return({'kind': 'list', 'element': dbt_braze.braze_json_type(text[6:-1])}) }}
  {%- elif lower.startswith('map(') or lower.startswith('map<') -%}
    {%- set parts = dbt_braze._braze_split_type(text[4:-1], ',') -%}
    {{ return({'kind': 'map', 'key': dbt_braze.braze_json_type(parts[0]), 'value': dbt_braze.braze_json_type(parts[1:] | join(','))}) }}
  {%- elif lower.startswith('struct(') or lower.startswith('struct<') -%}
    {%- set fields = [] -%}
    {%- for field in dbt_braze._braze_split_type(text[7:-1], ',') -%}
      {%- set field = field | trim -%}
      {%- if lower.startswith('struct<') -%}
        {%- set name, _, field_type = field.partition(':') -%}
      {%- elif field.startswith('"') -%}
        {%- set closing = dbt_braze._braze_split_type(field, ' ') -%}
        {%- set name = (closing[0][1:-1]) | replace('""', '"') -%}
        {%- set field_type = closing[1:] | join(' ') -%}
      {%- else -%}
        {%- set name, _, field_type = field.partition(' ') -%}
      {%- endif -%}
      {%- do fields.append((name | replace('`', ''), dbt_braze.braze_json_type(field_type))) -%}
    {%- endfor -%}
    {{ return({'kind': 'struct', 'fields': fields}) }}
  {%- endif -%}
  {{ return({'kind': 'leaf', 'data_type': text}) }}
{% endmacro %}

{#- `text` split on `separator` where it stands outside brackets and quotes. -#}
{% macro _braze_split_type(text, separator) %}
  {%- set state = namespace(depth=0, quote=none, part='', parts=[]) -%}
  {%- for char in text -%}
    {%- if char == separator and state.depth == 0 and not state.quote -%}
      {%- do state.parts.append(state.part) -%}
      {%- set state.part = '' -%}
    {%- else -%}
      {%- if state.quote -%}
        {%- if char == state.quote -%}{%- set state.quote = none -%}{%- endif -%}
      {%- elif char in ('"', '`') -%}
        {%- set state.quote = char -%}
      {%- elif char in '([<' -%}
        {%- set state.depth = state.depth + 1 -%}
      {%- elif char in ')]>' -%}
        {%- set state.depth = state.depth - 1 -%}
      {%- endif -%}
      {%- set state.part = state.part ~ char -%}
    {%- endif -%}
  {%- endfor -%}
  {%- do state.parts.append(state.part) -%}
  {{ return(state.parts) }}
{% endmacro %}
