{#-
  The package's on-run-end hook: for every model with a `braze` meta block
  that built successfully in this invocation, rebuild its pending-changes
  relation. It reads only what it needs from the block (the identifier column
  and the attribute mappings); every other rule lives in the Python validator
  (`dbt-braze validate`), so the two cannot drift. A block it cannot use is
  skipped with a warning.
-#}

{% macro on_run_end(results) %}
  {%- if not execute or not var('dbt_braze_enabled', true) -%}{{ return('') }}{%- endif -%}
  {%- set specs = [] -%}
  {%- for result in results -%}
    {%- set node = result.node -%}
    {%- if node.resource_type == 'model' and result.status == 'success' -%}
      {%- set spec = dbt_braze._braze_spec_from_node(node) -%}
      {%- if spec is not none -%}{%- do specs.append(spec) -%}{%- endif -%}
    {%- endif -%}
  {%- endfor -%}
  {%- if specs | length > 0 -%}
    {%- do dbt_braze.braze_ensure_tables() -%}
    {%- for spec in specs -%}
      {%- do dbt_braze.braze_build_pending(spec) -%}
    {%- endfor -%}
  {%- endif -%}
  {{ return('') }}
{% endmacro %}

{#- The braze block of a node: config.meta first (dbt 1.10+), else legacy meta. -#}
{% macro _braze_block(node) %}
  {%- set config_meta = node.config.meta if node.config is defined and node.config.meta is defined else {} -%}
  {%- set legacy_meta = node.meta if node.meta is defined else {} -%}
  {%- if config_meta and config_meta.get('braze') is not none -%}{{ return(config_meta.get('braze')) }}{%- endif -%}
  {{ return(legacy_meta.get('braze') if legacy_meta else none) }}
{% endmacro %}

{% macro _braze_column_block(column) %}
  {%- set config = column.config if column.config is defined else none -%}
  {%- set config_meta = config.meta if config is not none and config.meta is defined else {} -%}
  {%- set legacy_meta = column.meta if column.meta is defined else {} -%}
  {%- if config_meta and config_meta.get('braze') is not none -%}{{ return(config_meta.get('braze')) }}{%- endif -%}
  {{ return(legacy_meta.get('braze') if legacy_meta else none) }}
{% endmacro %}

{% macro _braze_skip(node, why) %}
  {%- do exceptions.warn("dbt_braze: skipping " ~ node.name ~ ": " ~ why ~ ". Run `dbt-braze validate` for the full list of problems.") -%}
  {{ return(none) }}
{% endmacro %}

{#- {model_name, relation, id_column, mappings: [{column, attribute}]} or none. -#}
{% macro _braze_spec_from_node(node) %}
  {%- set block = dbt_braze._braze_block(node) -%}
  {%- set column_blocks = {} -%}
  {%- for column in node.columns.values() -%}
    {%- set cb = dbt_braze._braze_column_block(column) -%}
    {%- if cb is mapping and cb.get('attribute') -%}{%- do column_blocks.update({column.name: cb.get('attribute')}) -%}{%- endif -%}
  {%- endfor -%}
  {%- if block is none -%}{{ return(none) }}{%- endif -%}
  {%- if block is not mapping -%}{{ return(dbt_braze._braze_skip(node, "the braze block is not a mapping")) }}{%- endif -%}
  {%- set identifiers = [] -%}
  {%- for key in ['external_id', 'braze_id'] -%}
    {%- if block.get(key) is string -%}{%- do identifiers.append(block.get(key)) -%}{%- endif -%}
  {%- endfor -%}
  {%- if identifiers | length != 1 -%}
    {{ return(dbt_braze._braze_skip(node, "it needs exactly one of external_id or braze_id")) }}
  {%- endif -%}
  {%- set mapping = {} -%}
  {%- set attributes = block.get('attributes') or {} -%}
  {%- if attributes is not mapping -%}{{ return(dbt_braze._braze_skip(node, "attributes is not a mapping")) }}{%- endif -%}
  {%- do mapping.update(attributes) -%}
  {%- do mapping.update(column_blocks) -%}
  {%- if mapping | length == 0 -%}{{ return(dbt_braze._braze_skip(node, "no attribute is mapped")) }}{%- endif -%}
  {%- set relation = adapter.get_relation(database=node.database, schema=node.schema, identifier=node.alias) -%}
  {%- if relation is none -%}{{ return(dbt_braze._braze_skip(node, "its relation was not found")) }}{%- endif -%}
  {%- set column_names = [] -%}
  {%- for c in adapter.get_columns_in_relation(relation) -%}{%- do column_names.append(c.name | lower) -%}{%- endfor -%}
  {%- if identifiers[0] | lower not in column_names -%}
    {{ return(dbt_braze._braze_skip(node, "identifier column " ~ identifiers[0] ~ " is not in the model")) }}
  {%- endif -%}
  {%- set requested = [] -%}
  {%- for column_name, attribute in mapping | dictsort -%}
    {%- if attribute is not string -%}{{ return(dbt_braze._braze_skip(node, "column " ~ column_name ~ " maps to no attribute name")) }}{%- endif -%}
    {%- do requested.append({'column': column_name, 'attribute': attribute}) -%}
  {%- endfor -%}
  {%- set mappings = dbt_braze.braze_typed_mappings(relation, requested) -%}
  {%- if mappings is none -%}{{ return(dbt_braze._braze_skip(node, "a mapped column is not in the model")) }}{%- endif -%}
  {%- for m in mappings if block.get('truncate_strings') is sameas true -%}{%- do m.update({'truncate_strings': true}) -%}{%- endfor -%}
  {{ return({'model_name': node.name, 'relation': relation, 'id_column': identifiers[0], 'mappings': mappings}) }}
{% endmacro %}

{% macro braze_build_pending(spec) %}
  {%- set target_relation = dbt_braze.braze_pending_relation(spec.model_name) -%}
  {%- set staging_relation = dbt_braze.braze_relation('braze_pending__' ~ spec.model_name ~ '__building') -%}
  {%- set built_at = "(select " ~ dbt_braze.braze_utc_now() ~ ")" -%}
  {%- set sql = dbt_braze.braze_pending_sql(spec.model_name, spec.relation, spec.id_column, spec.mappings, built_at) -%}
  {%- do adapter.drop_relation(staging_relation) -%}
  {%- do run_query(get_create_table_as_sql(False, staging_relation, sql)) -%}
  {%- do dbt_braze.braze_swap_relation(staging_relation, target_relation) -%}
  {%- do adapter.commit() -%}
  {#- committed with the objects relation's swap (braze_build_objects) -#}
  {%- do run_query(dbt_braze.braze_record_fingerprints_sql(spec.model_name)) -%}
  {%- do dbt_braze.braze_build_objects(spec.model_name) -%}
  {%- do dbt_braze._braze_log_pending(spec.model_name, target_relation) -%}
{% endmacro %}

{#- Replace `target` by `staging`. Adapters with transactional DDL make it atomic. -#}
{% macro braze_swap_relation(staging, target) %}
  {{ return(adapter.dispatch('braze_swap_relation', 'dbt_braze')(staging, target)) }}
{% endmacro %}

{% macro default__braze_swap_relation(staging, target) %}
  {%- do adapter.drop_relation(target) -%}
  {%- do adapter.rename_relation(staging, target) -%}
{% endmacro %}

{% macro _braze_log_pending(model_name, relation) %}
  {%- set summary = run_query(dbt_braze.braze_pending_summary_sql(relation)) -%}
  {%- set counts = {} -%}
  {%- for row in summary.rows -%}{%- do counts.update({row[0]: row}) -%}{%- endfor -%}
  {%- set parts = [] -%}
  {%- if 'new' in counts -%}{%- do parts.append(counts['new'][2] ~ " new users") -%}{%- endif -%}
  {%- if 'changed' in counts -%}{%- do parts.append(counts['changed'][1] ~ " changed attributes on " ~ counts['changed'][2] ~ " users") -%}{%- endif -%}
  {%- if 'removed' in counts -%}{%- do parts.append(counts['removed'][2] ~ " removed users") -%}{%- endif -%}
  {%- if parts | length == 0 -%}{%- do parts.append("nothing pending") -%}{%- endif -%}
  {%- set withheld = [] -%}
  {%- if 'withheld_null' in counts -%}{%- do withheld.append(counts['withheld_null'][3] ~ " rows with a null identifier") -%}{%- endif -%}
  {%- if 'withheld_duplicate' in counts -%}{%- do withheld.append(counts['withheld_duplicate'][2] ~ " duplicated identifiers (" ~ counts['withheld_duplicate'][3] ~ " rows)") -%}{%- endif -%}
  {%- set message = "dbt_braze: " ~ model_name ~ ": " ~ parts | join(", ") -%}
  {%- if withheld -%}{%- set message = message ~ "; withheld, not sent: " ~ withheld | join(", ") -%}{%- endif -%}
  {%- do log(message ~ ". Run `dbt-braze sync` to send.", info=True) -%}
{% endmacro %}

{#- kind, pending rows, distinct users, withheld rows — also read by the sync. -#}
{% macro braze_pending_summary_sql(relation) %}
    select case when change_kind = 'upsert' and is_new then 'new'
                when change_kind = 'upsert' then 'changed'
                else change_kind end as kind,
           count(*) as pending_rows,
           count(distinct braze_key) as users,
           sum(case when change_kind like 'withheld%' then cast(value_text as {{ dbt.type_int() }}) else 0 end) as withheld_rows
    from {{ relation }}
    group by 1
{% endmacro %}
