{#-
  DuckDB overrides that are not about value texts (those are in values.sql,
  duckdb_floats.sql and json_values.sql).
-#}

{#-
  The long form with the float text written once per float type, not once per
  column: it is a large expression, and DuckDB binds it again wherever it
  appears (40 double columns: 3.0 s of binding per dbt run, 0.8 s this way).
  The double (or float) columns become one list of (attribute, value) per
  row, unnested, and the text is taken of the one value column. The other
  columns keep the default's one branch each.
-#}
{% macro duckdb__braze_current_values_sql(relation, id_column, mappings, key_prefix='') %}
  {%- set floats = {} -%}
  {%- set others = [] -%}
  {%- for m in mappings -%}
    {%- if m.value_type == 'number' and dbt_braze._braze_duckdb_is_float(m.get('data_type')) -%}
      {%- set type_name = m.data_type | upper -%}
      {%- do floats.update({type_name: floats.get(type_name, []) + [m]}) -%}
    {%- else -%}
      {%- do others.append(m) -%}
    {%- endif -%}
  {%- endfor -%}
  {%- set branches = [] -%}
  {%- if others -%}
    {%- do branches.append(dbt_braze.default__braze_current_values_sql(relation, id_column, others, key_prefix)) -%}
  {%- endif -%}
  {%- for type_name, group in floats.items() -%}
    {%- set pairs = [] -%}
    {%- for m in group -%}
      {%- do pairs.append("struct_pack(attribute := " ~ dbt_braze.braze_string_literal(m.attribute) ~ ", number := " ~ dbt_braze.braze_quote_identifier(m.column) ~ ")") -%}
    {%- endfor -%}
    {%- do branches.append(
      "select braze_key, braze_pair.attribute as attribute, "
      ~ dbt_braze._braze_duckdb_float_text('braze_pair.number') ~ " as value_text, cast('number' as varchar) as value_type"
      ~ " from (select " ~ dbt_braze.braze_key_sql(id_column, key_prefix) ~ " as braze_key, unnest([" ~ pairs | join(', ') ~ "]) as braze_pair"
      ~ " from " ~ relation ~ ") braze_floats") -%}
  {%- endfor -%}
  {{ return(branches | join('\nunion all\n')) }}
{% endmacro %}
