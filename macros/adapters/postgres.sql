{#-
  PostgreSQL overrides (dbt-postgres dispatches postgres__, then default__).
  Redshift has its own (redshift__ comes first there).
-#}

{#-
  json: `cast(array as text)` is PostgreSQL's array literal (`{1,2}`), not
  JSON; to_json gives `[1,2]`, and leaves json and jsonb values as their own
  text (so their hashes do not change).
-#}
{% macro postgres__braze_normalized_text(expr, value_type) %}
  {%- if value_type == 'json' -%}
    cast(to_json({{ expr }}) as text)
  {%- else -%}
    {{ dbt_braze.default__braze_normalized_text(expr, value_type) }}
  {%- endif -%}
{% endmacro %}
