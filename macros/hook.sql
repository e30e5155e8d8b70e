{#-
  The package's on-run-end hook: for every model with a `braze` meta block
  that built successfully in this invocation, rebuild its pending-changes
  relation. Each model is computed on its own: Jinja cannot catch an error,
  so a block is checked by every rule of `dbt-braze validate` (the hook's
  copy of them: braze_block_problems) before any SQL runs for it, and a
  model that fails a rule is skipped with a dbt warning naming it and the
  reason, while the others get their pending changes.
-#}

{% macro on_run_end(results) %}
  {%- if not execute or not dbt_braze._braze_var('dbt_braze_enabled') -%}{{ return('') }}{%- endif -%}
  {%- set specs = [] -%}
  {%- set skipped = [] -%}
  {%- for result in results -%}
    {%- set node = result.node -%}
    {%- if node.resource_type == 'model' and result.status == 'success' -%}
      {%- set spec = dbt_braze._braze_spec_from_node(node) -%}
      {%- if spec is string -%}{%- do skipped.append(node.name ~ ": " ~ spec) -%}
      {%- elif spec is not none -%}{%- do specs.append(spec) -%}{%- endif -%}
    {%- endif -%}
  {%- endfor -%}
  {%- if specs | length > 0 -%}
    {%- do dbt_braze.braze_ensure_tables() -%}
    {#- Spark: no compaction rewrites the logs while the hook reads them, and one a crash
        interrupted is finished first (macros/compaction.sql) -#}
    {%- set hook_run = dbt_braze.braze_hook_begin() if dbt_braze.braze_compaction_rewrites() else none -%}
    {%- for spec in specs -%}
      {%- if spec.get('kind') in ('events', 'purchases') -%}{%- do dbt_braze.braze_build_event_pending(spec) -%}
      {%- else -%}{%- do dbt_braze.braze_build_pending(spec) -%}{%- endif -%}
    {%- endfor -%}
    {%- if hook_run is not none -%}{%- do dbt_braze.braze_hook_ended(hook_run) -%}{%- endif -%}
  {%- endif -%}
  {#- warned after the builds: under --warn-error the first warning ends the run,
      and the valid models have their changes by then -#}
  {%- for why in skipped -%}
    {%- do exceptions.warn("dbt_braze: skipping " ~ why ~ ".") -%}
  {%- endfor -%}
  {{ return('') }}
{% endmacro %}

{#-
  The `braze` block of a node or a column as dbt_braze/manifest.py reads it
  from manifest.json: config.meta first (dbt 1.10+), else legacy meta; a key
  that is present counts even when its value is null. none: no block.
-#}
{% macro _braze_block(node, prefix='') %}
  {%- set config_meta = node.config.meta if node.config is defined and node.config is not none and node.config.meta is defined else none -%}
  {%- if config_meta and 'braze' in config_meta -%}
    {{ return({'path': prefix ~ 'config.meta.braze', 'block': dbt_braze._braze_as_manifest(config_meta['braze'])}) }}
  {%- endif -%}
  {%- set legacy_meta = node.meta if node.meta is defined else none -%}
  {%- if legacy_meta and 'braze' in legacy_meta -%}
    {{ return({'path': prefix ~ 'meta.braze', 'block': dbt_braze._braze_as_manifest(legacy_meta['braze'])}) }}
  {%- endif -%}
  {{ return(none) }}
{% endmacro %}

{#-
  `value` as manifest.json carries it, which is what `dbt-braze validate`
  reads: keys as JSON writes them (`on:` and `yes:` are YAML booleans, the
  key "true"; `1:` is "1"; `null:` is "null"), dates as ISO text.
-#}
{% macro _braze_as_manifest(value) %}
  {%- if value is mapping -%}
    {%- set converted = {} -%}
    {%- for key, item in value.items() -%}
      {%- do converted.update({(key if key is string else tojson(key)): dbt_braze._braze_as_manifest(item)}) -%}
    {%- endfor -%}
    {{ return(converted) }}
  {%- elif value is string or value is number or value is none -%}
    {{ return(value) }}
  {%- elif value.isoformat is defined -%}
    {{ return(value.isoformat()) }}
  {%- elif value is iterable -%}
    {%- set converted = [] -%}
    {%- for item in value -%}{%- do converted.append(dbt_braze._braze_as_manifest(item)) -%}{%- endfor -%}
    {{ return(converted) }}
  {%- endif -%}
  {{ return(value) }}
{% endmacro %}

{#- The model's spec {model_name, relation, id_column, key_prefix, mappings}, the reason to skip it (a string), or none. -#}
{% macro _braze_spec_from_node(node) %}
  {%- set column_blocks = {} -%}
  {%- for column_name, column in node.columns.items() -%}
    {%- set found = dbt_braze._braze_block(column, 'columns.' ~ column_name ~ '.') -%}
    {%- if found is not none -%}{%- do column_blocks.update({column_name: found}) -%}{%- endif -%}
  {%- endfor -%}
  {%- set model_block = dbt_braze._braze_block(node) -%}
  {%- if model_block is none and not column_blocks -%}{{ return(none) }}{%- endif -%}
  {%- set model_block = model_block or {'path': 'config.meta.braze', 'block': {}} -%}
  {%- set materialized = node.config.materialized if node.config is defined else none -%}
  {%- set relation = none -%}
  {%- set column_names = none -%}
  {%- if materialized != 'ephemeral' -%}
    {%- set relation = adapter.get_relation(database=node.database, schema=node.schema, identifier=node.alias) -%}
  {%- endif -%}
  {%- if relation is not none -%}
    {%- set column_names = [] -%}
    {%- for c in dbt_braze.braze_columns_in_relation(relation) -%}{%- do column_names.append(c.name) -%}{%- endfor -%}
  {%- endif -%}
  {%- set checked = dbt_braze.braze_block_problems(node.name, model_block, column_blocks, column_names, materialized) -%}
  {%- if checked.problems -%}
    {%- set shown = checked.problems[:3] -%}
    {%- if checked.problems | length > 3 -%}{%- do shown.append("and " ~ (checked.problems | length - 3) ~ " more") -%}{%- endif -%}
    {{ return(shown | join("; ") ~ ". Run `dbt-braze validate` for the full list of problems") }}
  {%- endif -%}
  {%- if relation is none -%}
    {{ return("its relation " ~ node.schema ~ "." ~ node.alias ~ " was not found. Run `dbt-braze validate` for the full list of problems") }}
  {%- endif -%}
  {%- if checked.events is defined -%}
    {%- set block = model_block.block -%}
    {%- set alias_label = block['user_alias']['label'] if checked.id_field == 'user_alias' else none -%}
    {%- set spec = dbt_braze.braze_event_spec(node.name, relation, block['kind'], checked.id_field, checked.id_column,
                                              checked.events, checked.mappings, block.get('backfill'),
                                              dbt_braze.braze_key_prefix(checked.id_field, alias_label)) -%}
    {{ return(spec if spec is not none else "a mapped column is missing from its relation. Run `dbt-braze validate` for the full list of problems") }}
  {%- endif -%}
  {%- if checked.catalog is defined -%}
    {%- set spec = dbt_braze.braze_catalog_spec(node.name, relation, checked.id_column, checked.mappings) -%}
    {{ return(spec if spec is not none else "a mapped column is missing from its relation. Run `dbt-braze validate` for the full list of problems") }}
  {%- endif -%}
  {%- if model_block.block.get('truncate_strings') is sameas true -%}
    {%- for m in checked.mappings -%}{%- do m.update({'truncate_strings': true}) -%}{%- endfor -%}
  {%- endif -%}
  {%- set groups = dbt_braze._braze_group_mappings(checked.subscription_groups,
                                                   model_block.block.get('subscriptions', 'unsubscribe_only')) -%}
  {%- set mappings = dbt_braze.braze_typed_mappings(relation, checked.mappings + groups) -%}
  {%- set alias_label = model_block.block['user_alias']['label'] if checked.id_field == 'user_alias' else none -%}
  {{ return({'model_name': node.name, 'relation': relation, 'id_column': checked.id_column,
             'key_prefix': dbt_braze.braze_key_prefix(checked.id_field, alias_label), 'mappings': mappings}) }}
{% endmacro %}

{#-
  The hook's copy of the rules of `dbt-braze validate`: the JSON Schema of
  dbt_braze/schema/braze_meta.schema.json and the checks of
  dbt_braze/config.py. The hook needs every one of them (why, and which
  function holds each rule in Python: the table in config.py's docstring).
  A block is accepted when this finds no problem, exactly when validate
  accepts it; change both together
  (tests/integration/test_meta_fuzz.py compares them on generated blocks).
  `model_block` and the values of `column_blocks` are {path, block}, read as
  manifest.json carries them; `columns` is the relation's column names, or
  none (not checked). Returns {problems, id_field, id_column, mappings:
  [{column, attribute}], subscription_groups: [{column, group_id}]}, with the
  real column names (matched case-insensitively).
-#}
{% macro braze_block_problems(model_name, model_block, column_blocks, columns, materialized) %}
  {#- each model-level key: 'name' (a non-empty string), 'share' (a number
      from 0 to 1), 'flag' (true or false), 'names' (column: a non-empty
      string), 'alias' ({name, label}, both non-empty strings) or its choices -#}
  {%- set model_keys = {
      'kind': ['users', 'events', 'purchases', 'catalog'],
      'external_id': 'name',
      'braze_id': 'name',
      'email': 'name',
      'phone': 'name',
      'user_alias': 'alias',
      'mode': ['upsert', 'update'],
      'on_removed': ['ignore', 'unset', 'delete'],
      'attributes': 'names',
      'subscription_groups': 'names',
      'subscriptions': ['unsubscribe_only', 'mirror'],
      'max_duplicate_share': 'share',
      'max_removed_share': 'share',
      'truncate_strings': 'flag',
  } -%}
  {%- set problems = [] -%}
  {%- set result = {'problems': problems, 'id_field': none, 'id_column': none, 'mappings': [], 'subscription_groups': []} -%}
  {%- if materialized == 'ephemeral' -%}
    {%- do problems.append("the model is ephemeral; materialize it as a table or a view") -%}
  {%- endif -%}
  {%- for column_name, source in column_blocks.items() -%}
    {%- set cb = source.block -%}
    {%- if cb is not mapping -%}
      {%- do problems.append(source.path ~ ": expected a mapping") -%}
    {%- else -%}
      {%- for key in cb if key != 'attribute' -%}{%- do problems.append(source.path ~ "." ~ key ~ ": unknown key") -%}{%- endfor -%}
      {%- if 'attribute' not in cb -%}
        {%- do problems.append(source.path ~ ": `attribute` is required") -%}
      {%- elif not (cb['attribute'] is string and cb['attribute'] | length > 0) -%}
        {%- do problems.append(source.path ~ ".attribute: expected a non-empty string") -%}
      {%- endif -%}
    {%- endif -%}
  {%- endfor -%}
  {%- set here = model_block.path -%}
  {%- set block = model_block.block -%}
  {%- if block is not mapping -%}
    {%- do problems.append(here ~ ": expected a mapping") -%}
    {{ return(result) }}
  {%- endif -%}
  {%- if block.get('kind') in ['events', 'purchases'] -%}
    {{ return(dbt_braze.braze_event_block_problems(here, block, columns, result)) }}
  {%- endif -%}
  {%- if block.get('kind') == 'catalog' -%}
    {{ return(dbt_braze.braze_catalog_block_problems(here, block, columns, result)) }}
  {%- endif -%}
  {%- for key, value in block.items() -%}
    {%- set kind = model_keys.get(key) -%}
    {%- if kind is none -%}
      {%- do problems.append(here ~ "." ~ key ~ ": unknown key") -%}
    {%- elif kind == 'name' -%}
      {%- if not (value is string and value | length > 0) -%}{%- do problems.append(here ~ "." ~ key ~ ": expected a non-empty string") -%}{%- endif -%}
    {%- elif kind == 'share' -%}
      {%- if not (value is number and value is not boolean) -%}{%- do problems.append(here ~ "." ~ key ~ ": expected a number") -%}
      {%- elif value < 0 or value > 1 -%}{%- do problems.append(here ~ "." ~ key ~ ": expected a number from 0 to 1") -%}{%- endif -%}
    {%- elif kind == 'flag' -%}
      {%- if value is not boolean -%}{%- do problems.append(here ~ "." ~ key ~ ": expected true or false") -%}{%- endif -%}
    {%- elif kind == 'names' -%}
      {%- if value is not mapping -%}{%- do problems.append(here ~ "." ~ key ~ ": expected a mapping") -%}
      {%- else -%}
        {%- for column_name, name in value.items() if not (name is string and name | length > 0) -%}
          {%- do problems.append(here ~ "." ~ key ~ "." ~ column_name ~ ": expected a non-empty string") -%}
        {%- endfor -%}
      {%- endif -%}
    {%- elif kind == 'alias' -%}
      {%- if value is not mapping -%}{%- do problems.append(here ~ ".user_alias: expected {name: <column>, label: <text>}") -%}
      {%- else -%}
        {%- for part in value if part not in ['name', 'label'] -%}{%- do problems.append(here ~ ".user_alias." ~ part ~ ": unknown key") -%}{%- endfor -%}
        {%- for part in ['name', 'label'] if not (value.get(part) is string and value.get(part) | length > 0) -%}
          {%- do problems.append(here ~ ".user_alias." ~ part ~ ": expected a non-empty string") -%}
        {%- endfor -%}
      {%- endif -%}
    {%- elif value is not string or value not in kind -%}
      {%- do problems.append(here ~ "." ~ key ~ ": choose one of " ~ kind | join(", ")) -%}
    {%- endif -%}
  {%- endfor -%}

  {%- set identifiers = dbt_braze._braze_identifiers(here, block, problems) -%}
  {%- if identifiers is none -%}{{ return(result) }}{%- endif -%}
  {%- set id_field = identifiers[0] if identifiers | length == 1 else 'external_id' -%}
  {%- set mode = block.get('mode', 'update' if id_field == 'braze_id' else 'upsert') -%}
  {%- set on_removed = block.get('on_removed', 'ignore') -%}
  {%- if mode not in ['upsert', 'update'] or on_removed not in ['ignore', 'unset', 'delete'] -%}{{ return(result) }}{%- endif -%}
  {%- if id_field == 'braze_id' and mode == 'upsert' and identifiers | length == 1 -%}
    {%- do problems.append(here ~ ".mode: `upsert` is not possible with `braze_id`") -%}
  {%- endif -%}
  {%- if on_removed == 'delete' and mode == 'update' -%}
    {%- do problems.append(here ~ ".on_removed: `delete` is not allowed with `mode: update`") -%}
  {%- endif -%}
  {%- if on_removed == 'delete' and id_field in ['email', 'phone'] -%}
    {%- do problems.append(here ~ ".on_removed: `delete` is not allowed with `" ~ id_field ~ "` (it can reach another profile)") -%}
  {%- endif -%}

  {%- set real_names = dbt_braze._braze_real_names(columns) -%}
  {%- do result.update(dbt_braze._braze_identifier_column(here, block, identifiers, columns, real_names, problems)) -%}

  {%- set entries = [] -%}
  {%- set attributes = block.get('attributes') -%}
  {%- if attributes is mapping -%}
    {%- for column_name, attribute in attributes.items() if attribute is string -%}
      {%- do entries.append([here ~ ".attributes." ~ column_name, column_name, attribute]) -%}
    {%- endfor -%}
  {%- endif -%}
  {%- for column_name, source in column_blocks.items() -%}
    {%- if source.block is mapping and source.block.get('attribute') is string -%}
      {%- do entries.append([source.path ~ ".attribute", column_name, source.block['attribute']]) -%}
    {%- endif -%}
  {%- endfor -%}
  {#- the attribute names an identifier takes (IDENTIFIER_TAKES in config.py) -#}
  {%- set identifier_takes = {'email': ['email'], 'phone': ['phone', 'email']} -%}
  {%- set seen_columns = [] -%}
  {%- set seen_attributes = [] -%}
  {%- for path, column_name, attribute in entries -%}
    {%- set real = column_name if columns is none else real_names.get(column_name | lower) -%}
    {%- if real is none -%}
      {%- do problems.append(path ~ ": column `" ~ column_name ~ "` does not exist in the model") -%}
    {%- else -%}
      {%- if attribute.startswith('$') -%}
        {%- do problems.append(path ~ ": Braze attribute `" ~ attribute ~ "` starts with `$`") -%}
      {%- elif attribute | length > 255 -%}
        {%- do problems.append(path ~ ": Braze attribute `" ~ attribute[:40] ~ "...` has over 255 characters") -%}
      {%- elif modules.re.search('[\\x00-\\x1f\\x7f]', attribute) -%}
        {%- do problems.append(path ~ ": Braze attribute " ~ tojson(attribute) ~ " holds a control character") -%}
      {%- endif -%}
      {%- if attribute in ['external_id', 'braze_id', 'user_alias'] -%}
        {%- do problems.append(path ~ ": `" ~ attribute ~ "` is reserved by Braze for identifiers") -%}
      {%- endif -%}
      {%- if attribute in identifier_takes.get(id_field, []) -%}
        {%- do problems.append(path ~ ": Braze attribute `" ~ attribute ~ "` cannot be mapped in a model identified by `" ~ id_field ~ "`") -%}
      {%- endif -%}
      {%- if result.id_column is not none and real | lower == result.id_column | lower -%}
        {%- do problems.append(path ~ ": column `" ~ column_name ~ "` is the identifier column") -%}
      {%- endif -%}
      {%- if real | lower in seen_columns -%}
        {%- do problems.append(path ~ ": column `" ~ column_name ~ "` is mapped twice") -%}
      {%- endif -%}
      {%- if attribute in seen_attributes -%}
        {%- do problems.append(path ~ ": Braze attribute `" ~ attribute ~ "` is mapped twice") -%}
      {%- endif -%}
      {%- do seen_columns.append(real | lower) -%}
      {%- do seen_attributes.append(attribute) -%}
      {%- do result.mappings.append({'column': real, 'attribute': attribute}) -%}
    {%- endif -%}
  {%- endfor -%}
  {#- subscription groups: their columns are not attributes (they are diffed as `$subscription_group:<id>`) -#}
  {%- set groups = block.get('subscription_groups') -%}
  {%- set seen_groups = [] -%}
  {%- for column_name, group_id in (groups.items() if groups is mapping else []) if group_id is string and group_id | length > 0 -%}
    {%- set path = here ~ ".subscription_groups." ~ column_name -%}
    {%- set real = column_name if columns is none else real_names.get(column_name | lower) -%}
    {%- if real is none -%}
      {%- do problems.append(path ~ ": column `" ~ column_name ~ "` does not exist in the model") -%}
    {%- else -%}
      {%- if result.id_column is not none and real | lower == result.id_column | lower -%}
        {%- do problems.append(path ~ ": column `" ~ column_name ~ "` is the identifier column") -%}
      {%- elif real | lower in seen_columns -%}
        {%- do problems.append(path ~ ": column `" ~ column_name ~ "` is mapped twice") -%}
      {%- endif -%}
      {%- if group_id in seen_groups -%}
        {%- do problems.append(path ~ ": subscription group `" ~ group_id ~ "` is mapped twice") -%}
      {%- endif -%}
      {%- do seen_columns.append(real | lower) -%}
      {%- do seen_groups.append(group_id) -%}
      {%- do result.subscription_groups.append({'column': real, 'group_id': group_id}) -%}
    {%- endif -%}
  {%- endfor -%}
  {%- if not entries and not result.subscription_groups and not problems -%}
    {%- do problems.append(here ~ ": no attribute is mapped") -%}
  {%- endif -%}
  {%- if result.id_column is none and not problems -%}
    {%- do problems.append(here ~ ": no identifier column") -%}
  {%- endif -%}
  {{ return(result) }}
{% endmacro %}

{% macro braze_build_pending(spec) %}
  {%- set target_relation = dbt_braze.braze_pending_relation(spec.model_name) -%}
  {%- set staging_relation = dbt_braze.braze_relation('braze_pending__' ~ spec.model_name ~ '__building') -%}
  {%- set built_at = "(select " ~ dbt_braze.braze_utc_now() ~ ")" -%}
  {%- set sql = dbt_braze.braze_pending_sql(spec.model_name, spec.relation, spec.id_column, spec.mappings, built_at,
                                             spec.get('key_prefix', '')) -%}
  {%- do adapter.drop_relation(staging_relation) -%}
  {%- do run_query(get_create_table_as_sql(False, staging_relation, sql)) -%}
  {%- do dbt_braze.braze_swap_relation(staging_relation, target_relation) -%}
  {%- do adapter.commit() -%}
  {#- committed with the objects relation's swap (braze_build_objects) -#}
  {%- do run_query(dbt_braze.braze_record_fingerprints_sql(spec.model_name)) -%}
  {%- do dbt_braze.braze_build_objects(spec.model_name, spec.get('kind', 'users')) -%}
  {%- do dbt_braze._braze_log_pending(spec.model_name, target_relation, 'items' if spec.get('kind') == 'catalog' else 'users') -%}
{% endmacro %}

{#- Replace `target` by `staging`. Adapters with transactional DDL make it atomic. -#}
{% macro braze_swap_relation(staging, target) %}
  {{ return(adapter.dispatch('braze_swap_relation', 'dbt_braze')(staging, target)) }}
{% endmacro %}

{% macro default__braze_swap_relation(staging, target) %}
  {%- do adapter.drop_relation(target) -%}
  {%- do adapter.rename_relation(staging, target) -%}
{% endmacro %}

{% macro _braze_log_pending(model_name, relation, noun='users') %}
  {%- set summary = run_query(dbt_braze.braze_pending_summary_sql(relation)) -%}
  {%- set counts = {} -%}
  {%- for row in summary.rows -%}{%- do counts.update({row[0]: row}) -%}{%- endfor -%}
  {%- set parts = [] -%}
  {%- if 'new' in counts -%}{%- do parts.append(counts['new'][2] ~ " new " ~ noun) -%}{%- endif -%}
  {%- if 'changed' in counts -%}{%- do parts.append(counts['changed'][1] ~ (" changed fields on " if noun == 'items' else " changed attributes on ") ~ counts['changed'][2] ~ " " ~ noun) -%}{%- endif -%}
  {%- if 'removed' in counts -%}{%- do parts.append(counts['removed'][2] ~ " removed " ~ noun) -%}{%- endif -%}
  {%- if parts | length == 0 -%}{%- do parts.append("nothing pending") -%}{%- endif -%}
  {%- set withheld = [] -%}
  {%- if 'withheld_null' in counts -%}{%- do withheld.append(counts['withheld_null'][3] ~ " rows with a null identifier") -%}{%- endif -%}
  {%- if 'withheld_duplicate' in counts -%}{%- do withheld.append(counts['withheld_duplicate'][2] ~ " duplicated identifiers (" ~ counts['withheld_duplicate'][3] ~ " rows)") -%}{%- endif -%}
  {%- set message = "dbt_braze: " ~ model_name ~ ": " ~ parts | join(", ") -%}
  {%- if withheld -%}{%- set message = message ~ "; withheld, not sent: " ~ withheld | join(", ") -%}{%- endif -%}
  {%- do log(message ~ ". Run `dbt-braze sync` to send.", info=True) -%}
{% endmacro %}

{#-
  The users a sync would send (new, changed) and remove (removed), as the
  sync reads them (dbt_braze/store.py, pending_users). The users come from
  braze_objects__<model>, one row per user, so no distinct count: under the
  sync's DuckDB memory cap a distinct count of the pending relation's keys
  ran out of memory at 10M users. The removed users are still a distinct
  count of their rows: small, but for a mass removal of millions of users,
  where it may need more than that cap; it then runs without it
  (DbtAccess.fetch_all), so the removal guard can still pause the model.
-#}
{% macro braze_pending_users_sql(model_name) %}
    select case when is_new then 'new' else 'changed' end as kind, count(*) as users
    from {{ dbt_braze.braze_objects_relation(model_name) }}
    group by 1
    union all
    select 'removed' as kind, count(distinct braze_key) as users
    from {{ dbt_braze.braze_pending_relation(model_name) }}
    where change_kind = 'removed'
{% endmacro %}

{#- kind, pending rows, distinct users, withheld rows: what the hook logs (_braze_log_pending). -#}
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

{#-
  The identifier keys a block names (a problem unless exactly one), or none
  when one of them is not a string (the schema check reports that).
-#}
{% macro _braze_identifiers(here, block, problems) %}
  {%- set identifiers = [] -%}
  {%- for key in ['external_id', 'braze_id', 'email', 'phone', 'user_alias'] if key in block -%}
    {%- set value = block[key] -%}
    {%- if key == 'user_alias' -%}{%- set value = value.get('name') if value is mapping else none -%}{%- endif -%}
    {%- if value is not string -%}{{ return(none) }}{%- endif -%}
    {%- do identifiers.append(key) -%}
  {%- endfor -%}
  {%- if identifiers | length != 1 -%}
    {%- do problems.append(here ~ ": needs exactly one of `external_id`, `braze_id`, `email`, `phone` or `user_alias`") -%}
  {%- endif -%}
  {{ return(identifiers) }}
{% endmacro %}

{#- The model's columns by lower-cased name: meta names a column in any case. -#}
{% macro _braze_real_names(columns) %}
  {%- set real_names = {} -%}
  {%- for c in columns or [] -%}{%- do real_names.update({c | lower: c}) -%}{%- endfor -%}
  {{ return(real_names) }}
{% endmacro %}

{#-
  The column a block's one identifier names, as the model spells it:
  {'id_field', 'id_column'} to merge into the checked block, or {} when the
  block names no single identifier. A column missing from the model is a
  problem at the identifier's meta path (`columns` none: not checked).
-#}
{% macro _braze_identifier_column(here, block, identifiers, columns, real_names, problems) %}
  {%- if identifiers | length != 1 -%}{{ return({}) }}{%- endif -%}
  {%- set id_field = identifiers[0] -%}
  {%- set name = block['user_alias']['name'] if id_field == 'user_alias' else block[id_field] -%}
  {%- if not name -%}{{ return({}) }}{%- endif -%}
  {%- set path = here ~ ('.user_alias.name' if id_field == 'user_alias' else '.' ~ id_field) -%}
  {%- set column = name if columns is none else real_names.get(name | lower) -%}
  {%- if column is none -%}
    {%- do problems.append(path ~ ": column `" ~ name ~ "` does not exist in the model") -%}
  {%- endif -%}
  {{ return({'id_field': id_field, 'id_column': column}) }}
{% endmacro %}
