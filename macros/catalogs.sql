{#-
  Kind `catalog`: the items of a Braze catalog kept equal to a model
  (dbt_braze/kinds/catalogs.py sends them). The attribute diff of kind users
  does the work (macros/changes.sql): the item id is the key, after the
  prefix `catalog:` (braze_key_prefix), and each mapped field an attribute.
  One more attribute, `$item`, whose value is the id itself, marks that the
  item exists: it never changes, so it makes every new item a change (an item
  whose fields are all null is created too), is acknowledged with the item's
  creation, and keeps a removed item known to the state, which is how
  `on_removed: delete` finds it. No field can take its name: Braze refuses
  `$` in keys.

  braze_objects__<model> holds the pending items rendered as the members of
  the item object (braze_catalog_objects_sql): every non-null field of a new
  item (POST), the changed fields of an existing one, a field that became
  null as null (PATCH). Its layout is the users' one (rows.OBJECT_COLUMNS), so
  the sync reads and acknowledges it with the same macros.
-#}

{#- The attribute that marks an item's existence (config.CATALOG_ITEM_MARKER). -#}
{% macro braze_catalog_item_marker() %}
  {{ return('$item') }}
{% endmacro %}

{#- Braze's limit on a catalog value (braze-api-notes.md, "Catalogs": `items-too-large`). -#}
{% macro braze_catalog_max_value_length() %}
  {{ return(5000) }}
{% endmacro %}

{#- The hook's spec of a catalog model (hook.sql, _braze_spec_from_node). -#}
{% macro braze_catalog_spec(model_name, relation, id_column, mappings) %}
  {%- set marked = mappings + [{'column': id_column, 'attribute': dbt_braze.braze_catalog_item_marker()}] -%}
  {%- set typed = dbt_braze.braze_typed_mappings(relation, marked) -%}
  {%- if typed is none -%}{{ return(none) }}{%- endif -%}
  {{ return({'model_name': model_name, 'relation': relation, 'id_column': id_column, 'kind': 'catalog',
             'key_prefix': dbt_braze.braze_key_prefix('catalog'), 'mappings': typed}) }}
{% endmacro %}

{#-
  The hook's copy of the rules of kind catalog (schema `catalog` and the
  _check_catalog_* functions of dbt_braze/config.py; the table in its
  docstring). Returns `result` with id_column, mappings and `catalog` set.
-#}
{% macro braze_catalog_block_problems(here, block, columns, result) %}
  {%- set problems = result.problems -%}
  {%- for key, value in block.items() -%}
    {%- if key in ['id', 'catalog'] -%}
      {%- if not (value is string and value | length > 0) -%}{%- do problems.append(here ~ "." ~ key ~ ": expected a non-empty string") -%}
      {%- elif key == 'catalog' and not (value | length <= 250 and modules.re.match('^[A-Za-z0-9_-]+$', value)) -%}
        {%- do problems.append(here ~ ".catalog: expected a catalog name of letters, digits, - and _") -%}
      {%- endif -%}
    {%- elif key == 'fields' -%}
      {%- if value is not mapping -%}{%- do problems.append(here ~ ".fields: expected a mapping") -%}
      {%- else -%}
        {%- for column_name, name in value.items() if not (name is string and name | length > 0) -%}
          {%- do problems.append(here ~ ".fields." ~ column_name ~ ": expected a non-empty string") -%}
        {%- endfor -%}
      {%- endif -%}
    {%- elif key == 'on_removed' -%}
      {%- if value is not string or value not in ['ignore', 'delete'] -%}{%- do problems.append(here ~ ".on_removed: choose one of ignore, delete") -%}{%- endif -%}
    {%- elif key in ['max_duplicate_share', 'max_removed_share'] -%}
      {%- if not (value is number and value is not boolean) or value < 0 or value > 1 -%}{%- do problems.append(here ~ "." ~ key ~ ": expected a number from 0 to 1") -%}{%- endif -%}
    {%- elif key != 'kind' -%}
      {%- do problems.append(here ~ "." ~ key ~ ": unknown key") -%}
    {%- endif -%}
  {%- endfor -%}
  {%- for key in ['catalog', 'id'] if key not in block -%}
    {%- do problems.append(here ~ ": `" ~ key ~ "` is required for kind catalog") -%}
  {%- endfor -%}
  {%- set real_names = {} -%}
  {%- for c in columns or [] -%}{%- do real_names.update({c | lower: c}) -%}{%- endfor -%}
  {%- set id_name = block.get('id') -%}
  {%- if id_name is string and id_name | length > 0 -%}
    {%- set id_column = id_name if columns is none else real_names.get(id_name | lower) -%}
    {%- if id_column is none -%}
      {%- do problems.append(here ~ ".id: column `" ~ id_name ~ "` does not exist in the model") -%}
    {%- endif -%}
    {%- do result.update({'id_column': id_column}) -%}
  {%- endif -%}
  {%- set fields = block.get('fields') -%}
  {%- set seen_columns = [] -%}
  {%- set seen_fields = [] -%}
  {%- for column_name, name in (fields.items() if fields is mapping else []) if name is string and name | length > 0 -%}
    {%- set path = here ~ ".fields." ~ column_name -%}
    {%- set real = column_name if columns is none else real_names.get(column_name | lower) -%}
    {%- if real is none -%}
      {%- do problems.append(path ~ ": column `" ~ column_name ~ "` does not exist in the model") -%}
    {%- else -%}
      {%- if name == 'id' -%}
        {%- do problems.append(path ~ ": `id` is the item id, not a field") -%}
      {%- elif modules.re.search('[.$\\x00-\\x1f\\x7f]', name) -%}
        {%- do problems.append(path ~ ": catalog field " ~ tojson(name) ~ " holds `.`, `$` or a control character") -%}
      {%- elif name | length > 250 -%}
        {%- do problems.append(path ~ ": catalog field `" ~ name[:40] ~ "...` has over 250 characters") -%}
      {%- endif -%}
      {%- if result.id_column is not none and real | lower == result.id_column | lower -%}
        {%- do problems.append(path ~ ": column `" ~ column_name ~ "` is the id column") -%}
      {%- endif -%}
      {%- if real | lower in seen_columns -%}{%- do problems.append(path ~ ": column `" ~ column_name ~ "` is mapped twice") -%}{%- endif -%}
      {%- if name in seen_fields -%}{%- do problems.append(path ~ ": catalog field `" ~ name ~ "` is mapped twice") -%}{%- endif -%}
      {%- do seen_columns.append(real | lower) -%}
      {%- do seen_fields.append(name) -%}
      {%- do result.mappings.append({'column': real, 'attribute': name}) -%}
    {%- endif -%}
  {%- endfor -%}
  {%- do result.update({'catalog': block.get('catalog')}) -%}
  {{ return(result) }}
{% endmacro %}

{#-
  What Braze refuses in a catalog value, as `<field>: <reason>` (null when
  the value is fine): NaN and infinities, dates and timestamps outside ISO
  8601's years (as for attributes: braze_invalid_value_sql), and a value over
  braze_catalog_max_value_length() characters. Over columns attribute,
  value_text and value_type.
-#}
{% macro braze_catalog_invalid_value_sql() %}
  {%- set limit = dbt_braze.braze_catalog_max_value_length() -%}
case when value_text is null then null
     when value_type = 'number' and {{ dbt_braze._braze_not_finite_sql('value_text') }}
     then attribute || ': ' || value_text || ' is not a finite number; Braze accepts no NaN or infinity'
     when value_type = 'date' and not {{ dbt_braze._braze_iso_shaped('____-__-__') }}
     then attribute || ': ' || value_text || ' is not a date Braze can hold; it takes ISO 8601 dates (YYYY-MM-DD) from year 1 to 9999'
     when value_type = 'timestamp' and not {{ dbt_braze._braze_iso_shaped('____-__-__T__:__:__Z') }}
     then attribute || ': ' || value_text || ' is not a timestamp Braze can hold; it takes ISO 8601 times (YYYY-MM-DDTHH:MM:SSZ) from year 1 to 9999'
     when length(value_text) > {{ limit }}
     then attribute || ': a value of ' || cast(length(value_text) as {{ dbt.type_string() }})
          || ' characters; Braze takes at most {{ limit }} characters in a catalog value'
end
{%- endmacro %}

{#-
  One row per item of `rows_sql` (braze_key, attribute, value_text,
  value_type, value_hash, is_new; one row per changed field, and the `$item`
  marker for a new item), in the layout of braze_user_objects_sql: the item's
  members but its id (`"price":3.5,"title":"Tea"`, '' for none), the fields
  to acknowledge and their hashes, what Braze would refuse, whether JSON
  values need a check in Python. `omit_nulls` (--full-refresh, a PUT): a null
  field is left out of the members (a PUT clears what it does not name), and
  acknowledged all the same.
-#}
{% macro braze_catalog_objects_sql(rows_sql, omit_nulls=false) %}
  {%- set separator = dbt_braze.braze_list_separator() -%}
select braze_key, is_new, count(pair) as data_points,
       coalesce({{ dbt_braze.braze_join_by_attribute('pair', "','") }}, '') as attributes_json,
       {{ dbt_braze.braze_join_by_attribute('attribute', separator) }} as ack_attributes,
       {{ dbt_braze.braze_join_by_attribute("coalesce(value_hash, '')", separator) }} as ack_hashes,
       max(invalid_attribute) as invalid_attribute,
       max(needs_check) as needs_check,
       0 as subscription_changes,
       0 as subscribes_withheld
from (
    select changed.*,
           case when attribute = '{{ dbt_braze.braze_catalog_item_marker() }}' then null
                {%- if omit_nulls %} when value_text is null then null{% endif %}
                else {{ dbt_braze.braze_json_string('attribute') }} || ':' ||
                     case when value_text is null then 'null'
                          when value_type in ('integer', 'number', 'boolean', 'json') then value_text
                          else {{ dbt_braze.braze_json_string('value_text') }} end end as pair,
           {{ dbt_braze.braze_catalog_invalid_value_sql() }} as invalid_attribute,
           case when value_type = 'json' and value_text is not null then 1 else 0 end as needs_check
    from ({{ rows_sql }}) changed
) rendered
group by braze_key, is_new
{% endmacro %}

{#-
  --full-refresh: every item of the model whole (PUT), in the layout of
  braze_read_objects_sql; built_stamp is null (acknowledged from what was sent).
-#}
{% macro braze_read_catalog_full_refresh_sql(relation, id_column, mappings, page=none, key_prefix='') %}
  {%- set rows_sql = dbt_braze.braze_read_full_refresh_sql(relation, id_column, mappings, key_prefix) -%}
  {%- if rows_sql is none -%}{{ return(none) }}{%- endif -%}
  {%- set sql -%}
select objects.*, cast(null as {{ dbt_braze.braze_type_string() }}) as built_stamp
from ({{ dbt_braze.braze_catalog_objects_sql(rows_sql, omit_nulls=true) }}) objects
  {%- endset -%}
  {{ return(dbt_braze.braze_keyset_page(sql, page)) }}
{% endmacro %}
