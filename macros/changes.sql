{#-
  Change detection. One set-based query per model compares the normalized,
  hashed value of every mapped attribute with the last state Braze
  acknowledged (latest row per user and attribute in braze_state).

  Rows of the pending relation (change_kind):
    upsert                an attribute whose value differs from the acknowledged
                          one (absent state counts as null, so a new user gets
                          its non-null attributes only, and a new mapping sends
                          only the new attribute); a subscription group is one
                          more attribute, `$subscription_group:<id>`, whose null
                          is no change (macros/subscriptions.sql)
    removed               a user Braze holds values for whose row left the model:
                          one row per attribute held; the sync applies
                          on_removed (ignore | unset | delete) to them
    withheld_duplicate    an identifier shared by several rows (value_text = rows)
    withheld_null         rows whose identifier is null or '' (value_text = rows)
    fingerprint           a user whose diff came out empty: its row's fingerprint
                          (value_text), recorded by the hook (braze_fingerprints)
    object_fingerprint    a user with upserts: the fingerprint of its row (value_text),
                          which Braze holds once it accepts the user's object
    model_rows            one summary row: the model's row count (value_text);
                          it also dates an empty pending relation (built_at), and
                          names the key prefix the diff was computed for (attribute)
    state_rows            one summary row: the model's acknowledgements older
                          than built_at that the diff saw (value_text)
-#}

{#-
  State keys. The state keys a user by the kind of identifier and its value
  (contract, "Identifiers"), so that a model whose identifier changes finds
  none of its old keys: they are removed, and every user is new, sent whole.
  external_id and braze_id keys are the value itself, as before the other
  kinds existed (a prefix now would resend every existing model); email,
  phone and user_alias keys start with a prefix naming the kind (and the
  alias label); a catalog's item ids with `catalog:` (macros/catalogs.sql). dbt_braze/config.py (ModelSync.key_prefix, recorded_elsewhere)
  holds the same rules; tests/unit/test_identifier_keys.py compares them.
-#}
{% macro braze_key_prefix(id_field, alias_label=none) %}
  {%- if id_field == 'user_alias' -%}{{ return('user_alias:' ~ alias_label ~ ':') }}{%- endif -%}
  {{ return(id_field ~ ':' if id_field in ['email', 'phone', 'catalog'] else '') }}
{% endmacro %}

{#- A model's key of a row: its identifier column as text, after the prefix. `empty_is_null`: '' is null. -#}
{% macro braze_key_sql(id_column, key_prefix='', empty_is_null=false) %}
  {%- set key = "cast(" ~ dbt_braze.braze_quote_identifier(id_column) ~ " as " ~ dbt_braze.braze_type_string() ~ ")" -%}
  {%- if empty_is_null -%}{%- set key = "nullif(" ~ key ~ ", '')" -%}{%- endif -%}
  {{ return(dbt_braze.braze_string_literal(key_prefix) ~ " || " ~ key if key_prefix else key) }}
{% endmacro %}

{#- True for a key (`column`) recorded under another identifier than the one whose keys start with `key_prefix`. -#}
{% macro braze_recorded_elsewhere_sql(key_prefix, column='braze_key') %}
  {%- if key_prefix -%}
    {{ return("substr(" ~ column ~ ", 1, " ~ key_prefix | length ~ ") <> " ~ dbt_braze.braze_string_literal(key_prefix)) }}
  {%- endif -%}
  {%- set others = [] -%}
  {%- for prefix in ['email:', 'phone:', 'user_alias:', 'catalog:'] -%}
    {%- do others.append("substr(" ~ column ~ ", 1, " ~ prefix | length ~ ") = '" ~ prefix ~ "'") -%}
  {%- endfor -%}
  {{ return("(" ~ others | join(" or ") ~ ")") }}
{% endmacro %}

{#- The normalized long form of a model: one row per (braze_key, attribute). -#}
{% macro braze_current_values_sql(relation, id_column, mappings, key_prefix='') %}
  {{ return(adapter.dispatch('braze_current_values_sql', 'dbt_braze')(relation, id_column, mappings, key_prefix)) }}
{% endmacro %}

{% macro default__braze_current_values_sql(relation, id_column, mappings, key_prefix='') %}
  {%- for m in mappings %}
    select
      {{ dbt_braze.braze_key_sql(id_column, key_prefix) }} as braze_key,
      cast({{ dbt_braze.braze_string_literal(m.attribute) }} as {{ dbt_braze.braze_type_string() }}) as attribute,
      {{ dbt_braze.braze_mapped_text(m) }} as value_text,
      cast('{{ dbt_braze.braze_sent_type(m.value_type) }}' as {{ dbt_braze.braze_type_string() }}) as value_type
    from {{ relation }}
    {% if not loop.last %}union all{% endif %}
  {%- endfor %}
{% endmacro %}

{#- `keys_sql`, when given: only the users it selects (a braze_key column). -#}
{% macro braze_latest_state_sql(model_name, keys_sql=none) %}
  {{ return(adapter.dispatch('braze_latest_state_sql', 'dbt_braze')(model_name, keys_sql)) }}
{% endmacro %}

{% macro default__braze_latest_state_sql(model_name, keys_sql=none) %}
    select braze_key, attribute, value_hash
    from (
      select braze_key, attribute, value_hash,
             row_number() over (partition by braze_key, attribute order by acked_at desc) as recency
      from {{ dbt_braze.braze_state_relation() }}
      where model_name = {{ dbt_braze.braze_string_literal(model_name) }}
        {%- if keys_sql %} and braze_key in ({{ keys_sql }}){% endif %}
    ) acknowledged
    where recency = 1
{% endmacro %}

{#-
  The text a mapped value enters the fingerprint as. It need not be the
  normalized text, only the same for the same value (a fingerprint is
  compared with those recorded on the same warehouse): where normalizing is
  costly, the warehouse's own cast is used (see duckdb__, spark__). A value
  whose cast follows the session time zone makes its user a candidate again
  after a change of zone, which costs a comparison, never a resend.
-#}
{% macro braze_fingerprint_text(mapping) %}
  {{ return(adapter.dispatch('braze_fingerprint_text', 'dbt_braze')(mapping)) }}
{% endmacro %}

{% macro default__braze_fingerprint_text(mapping) %}
  {{ return(dbt_braze.braze_mapped_text(mapping)) }}
{% endmacro %}

{#-
  DuckDB: its float text and the JSON walk are large expressions, bound
  again wherever they appear (40 double columns: 13 s of binding for the
  pending SQL). A double's cast gives its shortest digits, one text per
  value; to_json quotes strings inside lists and structs (a list's own cast
  does not: ['a, b'] and ['a', 'b'] both read [a, b]); a JSON document is
  its own text.
-#}
{% macro duckdb__braze_fingerprint_text(mapping) %}
  {%- set expr = dbt_braze.braze_quote_identifier(mapping.column) -%}
  {%- if mapping.value_type == 'number' -%}
    {{ return('cast(' ~ expr ~ ' as varchar)') }}
  {%- elif mapping.value_type == 'json' -%}
    {{ return('cast(' ~ expr ~ ' as varchar)' if (mapping.get('data_type') or '') | upper == 'JSON'
              else 'cast(to_json(' ~ expr ~ ') as varchar)') }}
  {%- endif -%}
  {{ return(dbt_braze.braze_mapped_text(mapping)) }}
{% endmacro %}

{#- Spark: as DuckDB; Java's text of a double is unique to it, if not always the shortest. -#}
{% macro spark__braze_fingerprint_text(mapping) %}
  {%- set expr = dbt_braze.braze_quote_identifier(mapping.column) -%}
  {%- if mapping.value_type == 'number' -%}
    {{ return('cast(' ~ expr ~ ' as string)') }}
  {%- elif mapping.value_type == 'json' -%}
    {{ return(dbt_braze.braze_normalized_text(expr, 'json')) }}
  {%- endif -%}
  {{ return(dbt_braze.braze_mapped_text(mapping)) }}
{% endmacro %}

{#-
  A user's fingerprint: the hash of its values (braze_fingerprint_text), each written as
  `<length>:<text>` or `-` for null (so no two rows encode alike), after a
  hash of the mapping (attribute names, value types and column types: a new
  mapping makes every user a candidate once; the column type too, because a
  warehouse's cast of the same value may read alike in two types whose
  normalized texts differ, such as 1234567 as DOUBLE and as FLOAT).
-#}
{% macro braze_fingerprint_sql(mappings) %}
  {%- set ordered = mappings | sort(attribute='attribute') -%}
  {%- set parts = [] -%}
  {%- for m in ordered -%}
    {%- do parts.append(dbt_braze.braze_string_literal(m.attribute)) -%}
    {%- do parts.append("'=" ~ m.value_type ~ ":" ~ local_md5(m.get('data_type') or '') ~ ",'") -%}
  {%- endfor -%}
  {%- for m in ordered -%}
    {%- set text = dbt_braze.braze_fingerprint_text(m) -%}
    {%- do parts.append("coalesce(cast(length(" ~ text ~ ") as " ~ dbt_braze.braze_type_string() ~ ") || ':' || " ~ text ~ ", '-')") -%}
    {%- do parts.append("','") -%}
  {%- endfor -%}
  {{ return(dbt_braze.braze_hash(dbt_braze._braze_concat_tree(parts))) }}
{% endmacro %}

{#-
  The fingerprint the hook compares to skip unchanged users (braze_fingerprints).
  DuckDB: the warehouse's own hash of the raw values, after the mapping's
  signature (as braze_fingerprint_sql's, with the options that change what a
  value sends: truncate_strings, subscriptions); building the texts and their
  md5 cost 14 us per row (most of a 1% run's hook), this 0.3 us. A 64-bit
  hash: two different rows share one with odds of 2^-64 per changed row; a
  DuckDB version whose hash differs makes every user a candidate once (a
  comparison, never a resend). Events keep braze_fingerprint_sql: their log
  holds it.
-#}
{% macro braze_row_fingerprint_sql(mappings) %}
  {{ return(adapter.dispatch('braze_row_fingerprint_sql', 'dbt_braze')(mappings)) }}
{% endmacro %}

{% macro default__braze_row_fingerprint_sql(mappings) %}
  {{ return(dbt_braze.braze_fingerprint_sql(mappings)) }}
{% endmacro %}

{% macro duckdb__braze_row_fingerprint_sql(mappings) %}
  {%- set ordered = mappings | sort(attribute='attribute') -%}
  {%- set parts = [] -%}
  {%- set columns = [] -%}
  {%- for m in ordered -%}
    {%- set options = {'data_type': m.get('data_type') or '', 'truncate_strings': m.get('truncate_strings') is sameas true,
                       'subscriptions': m.get('subscriptions') or '', 'state_type': m.get('state_type') or ''} -%}
    {%- do parts.append(dbt_braze.braze_string_literal(m.attribute)) -%}
    {%- do parts.append("'=" ~ m.value_type ~ ":" ~ local_md5(tojson(options, sort_keys=true)) ~ ",'") -%}
    {%- do columns.append(dbt_braze.braze_quote_identifier(m.column)) -%}
  {%- endfor -%}
  {{ return("cast(hash(" ~ dbt_braze._braze_concat_tree(parts) ~ ", " ~ columns | join(", ") ~ ") as " ~ dbt_braze.braze_type_string() ~ ")") }}
{% endmacro %}

{#-
  `a || b || c ...` as a balanced tree of parentheses: the same text, but
  the depth of the expression grows with the log of the parts, not with
  their number (DuckDB refuses expressions deeper than 1000: a left-deep
  chain of 4 parts per attribute fails at ~240 attributes).
-#}
{% macro _braze_concat_tree(parts) %}
  {%- if parts | length <= 8 -%}{{ return(parts | join(" || ")) }}{%- endif -%}
  {%- set half = (parts | length) // 2 -%}
  {{ return("(" ~ dbt_braze._braze_concat_tree(parts[:half]) ~ ") || (" ~ dbt_braze._braze_concat_tree(parts[half:]) ~ ")") }}
{% endmacro %}

{#- The hook: the users whose diff came out empty, with their rows' fingerprints. -#}
{% macro braze_record_fingerprints_sql(model_name) %}
insert into {{ dbt_braze.braze_fingerprints_relation() }} (model_name, braze_key, fingerprint, recorded_at)
select {{ dbt_braze.braze_string_literal(model_name) }}, braze_key, value_text, built_at
from {{ dbt_braze.braze_pending_relation(model_name) }}
where change_kind = 'fingerprint'
{% endmacro %}

{#- The sync, for the users it acknowledged anything for: their state moved. -#}
{% macro braze_forget_fingerprints_sql(model_name, keys_sql) %}
insert into {{ dbt_braze.braze_fingerprints_relation() }} (model_name, braze_key, fingerprint, recorded_at)
select {{ dbt_braze.braze_string_literal(model_name) }}, braze_key, cast(null as {{ dbt.type_string() }}), {{ dbt_braze.braze_utc_now() }}
from ({{ keys_sql }}) acknowledged
{% endmacro %}

{% macro braze_latest_fingerprints_sql(model_name) %}
    select braze_key, fingerprint
    from (
      select braze_key, fingerprint,
             row_number() over (partition by braze_key order by recorded_at desc) as recency
      from {{ dbt_braze.braze_fingerprints_relation() }}
      where model_name = {{ dbt_braze.braze_string_literal(model_name) }}
    ) recorded
    where recency = 1
{% endmacro %}

{#- `key_prefix`: the model's (braze_key_prefix). -#}
{% macro braze_pending_sql(model_name, relation, id_column, mappings, built_at, key_prefix='') %}
  {{ return(adapter.dispatch('braze_pending_sql', 'dbt_braze')(model_name, relation, id_column, mappings, built_at, key_prefix)) }}
{% endmacro %}

{% macro default__braze_pending_sql(model_name, relation, id_column, mappings, built_at, key_prefix='') %}
  {%- set attribute_names = [] -%}
  {%- for m in mappings -%}{%- do attribute_names.append(dbt_braze.braze_string_literal(m.attribute)) -%}{%- endfor %}
with key_counts as (
    {{ dbt_braze.braze_key_counts_sql(relation, id_column, key_prefix) }}
),
row_fingerprints as (
    select {{ dbt_braze.braze_key_sql(id_column, key_prefix) }} as braze_key,
           {{ dbt_braze.braze_row_fingerprint_sql(mappings) }} as fingerprint
    from {{ relation }}
),
latest_fingerprints as (
    {{ dbt_braze.braze_latest_fingerprints_sql(model_name) }}
),
candidates as (
    select rf.braze_key, rf.fingerprint
    from row_fingerprints rf
    inner join key_counts kc on kc.braze_key = rf.braze_key and kc.row_count = 1
    left join latest_fingerprints lf on lf.braze_key = rf.braze_key
    where lf.fingerprint is null or lf.fingerprint <> rf.fingerprint
),
removed_keys as (
    select distinct s.braze_key
    from {{ dbt_braze.braze_state_relation() }} s
    where s.model_name = {{ dbt_braze.braze_string_literal(model_name) }}
      and not exists (select 1 from key_counts kc where kc.braze_key = s.braze_key)
),
current_values as (
    select cv.braze_key, cv.attribute, cv.value_text, cv.value_type,
           {{ dbt_braze.braze_hash('cv.value_text') }} as value_hash
    from ({{ dbt_braze.braze_current_values_sql(relation, id_column, mappings, key_prefix) }}) cv
    inner join candidates c on c.braze_key = cv.braze_key
),
latest_state as (
    {{ dbt_braze.braze_latest_state_sql(model_name,
         "select braze_key from candidates union all select braze_key from removed_keys") }}
),
known_keys as (
    select distinct braze_key from latest_state where value_hash is not null
),
compared as (
    select cv.braze_key, cv.attribute, cv.value_text, cv.value_type,
           case when cv.value_text is null then null else cv.value_hash end as value_hash,
           (kk.braze_key is null) as is_new,
           {#- a group whose column is null states nothing: no change (macros/subscriptions.sql) #}
           case when cv.value_type = 'subscription' and cv.value_text is null then 0
                when coalesce(case when cv.value_text is null then null else cv.value_hash end, '-')
                     <> coalesce(ls.value_hash, '-') then 1 else 0 end as differs
    from current_values cv
    left join latest_state ls on ls.braze_key = cv.braze_key and ls.attribute = cv.attribute
    left join known_keys kk on kk.braze_key = cv.braze_key
)
select
    cast('upsert' as {{ dbt_braze.braze_type_string() }}) as change_kind,
    braze_key, attribute, value_text, value_type, value_hash, is_new,
    true as is_mapped,
    {{ built_at }} as built_at
from compared
where differs = 1
union all
{# Braze holds the row as it is: vouched for until the state moves (see braze_fingerprints). #}
select 'fingerprint', c.braze_key, null, c.fingerprint, null, null, false, false, {{ built_at }}
from candidates c
where not exists (select 1 from compared d where d.braze_key = c.braze_key and d.differs = 1)
union all
{# the fingerprint of the row a user's object brings Braze to: its changes were computed
   against the state this diff read, so once Braze accepts the object it holds the row
   (braze_build_objects; the sync records it: braze_vouch_objects_sql) #}
select 'object_fingerprint', c.braze_key, null, c.fingerprint, null, null, false, false, {{ built_at }}
from candidates c
where exists (select 1 from compared d where d.braze_key = c.braze_key and d.differs = 1)
union all
select 'removed', ls.braze_key, ls.attribute, null, null, null, false,
       (ls.attribute in ({{ attribute_names | join(', ') }})), {{ built_at }}
from latest_state ls
where ls.value_hash is not null
  and exists (select 1 from removed_keys rk where rk.braze_key = ls.braze_key)
union all
select 'withheld_duplicate', braze_key, null, cast(row_count as {{ dbt_braze.braze_type_string() }}), null, null, false, false, {{ built_at }}
from key_counts
where braze_key is not null and row_count > 1
union all
select 'withheld_null', null, null, cast(row_count as {{ dbt_braze.braze_type_string() }}), null, null, false, false, {{ built_at }}
from key_counts
where braze_key is null
union all
{# its attribute: the key prefix the diff was computed for (braze_pending_key_prefix_sql) #}
select 'model_rows', null, {{ dbt_braze.braze_string_literal(key_prefix) }},
       cast(coalesce(sum(row_count), 0) as {{ dbt_braze.braze_type_string() }}), null, null, false, false, {{ built_at }}
from key_counts
union all
{# the acknowledgements this diff saw (braze_pending_is_stale_sql) #}
select 'state_rows', null, null, cast(count(*) as {{ dbt_braze.braze_type_string() }}), null, null, false, false, {{ built_at }}
from {{ dbt_braze.braze_state_relation() }}
where model_name = {{ dbt_braze.braze_string_literal(model_name) }} and acked_at < {{ built_at }}
{% endmacro %}

{#-
  Rows per identifier of a model. An empty identifier counts as null: Braze
  refuses it, and the state could not record that refusal under its key, so
  it would be sent again at every sync (withheld_null instead).
-#}
{% macro braze_key_counts_sql(relation, id_column, key_prefix='') %}
    select {{ dbt_braze.braze_key_sql(id_column, key_prefix, empty_is_null=true) }} as braze_key, count(*) as row_count
    from {{ relation }}
    group by 1
{% endmacro %}

{#-
  Adds each mapping's value_type from the relation's real column types. A
  subscription group's mapping (one with `subscriptions`) is of value_type
  `subscription`, its column's own type kept as state_type
  (macros/subscriptions.sql).
-#}
{% macro braze_typed_mappings(relation, mappings) %}
  {%- set columns_by_name = {} -%}
  {%- for c in dbt_braze.braze_columns_in_relation(relation) -%}{%- do columns_by_name.update({c.name | lower: c}) -%}{%- endfor -%}
  {%- set typed = [] -%}
  {%- for m in mappings -%}
    {%- set col = columns_by_name.get(m.column | lower) -%}
    {%- if col is none -%}{{ return(none) }}{%- endif -%}
    {%- set value_type = dbt_braze.braze_value_type(col) -%}
    {%- do typed.append({'column': col.name, 'attribute': m.attribute, 'value_type': value_type,
                          'data_type': dbt_braze.braze_column_data_type(relation, col),
                          'truncate_strings': m.get('truncate_strings') is sameas true}) -%}
    {%- if m.get('subscriptions') -%}
      {%- do typed[-1].update({'value_type': 'subscription', 'state_type': value_type, 'subscriptions': m.subscriptions}) -%}
    {%- endif -%}
  {%- endfor -%}
  {{ return(typed) }}
{% endmacro %}
