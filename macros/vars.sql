{#-
  The package's variables and their defaults: the one place they are read
  (set them under `vars:` in dbt_project.yml; docs/configuration.md).
    dbt_braze_schema   the schema of the package's tables (default: the target schema)
    dbt_braze_enabled  false: the on-run-end hook builds nothing (default: true)
    dbt_braze_lock_lease_seconds  a sync's lock lease, as `sync` reads it (default: 600);
                       the hook reads it to tell live runs (Spark compaction)
-#}
{% macro _braze_var(name) %}
  {%- set defaults = {'dbt_braze_schema': target.schema, 'dbt_braze_enabled': true, 'dbt_braze_lock_lease_seconds': 600} -%}
  {%- if name not in defaults -%}
    {{ exceptions.raise_compiler_error("dbt_braze: no package variable `" ~ name ~ "` (known: " ~ (defaults.keys() | sort | join(', ')) ~ ")") }}
  {%- endif -%}
  {{ return(var(name, defaults[name])) }}
{% endmacro %}
