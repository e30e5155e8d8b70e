{#-
  Braze objects rendered in the warehouse. The sync reads one row per user
  holding the finished JSON object and the (attribute, hash) lists to
  acknowledge, so Python only joins bytes: building objects from
  per-attribute rows in Python capped a first sync at ~5,000 objects/s
  (bench/README.md), far below Braze's ~75,000.

  The JSON value of each normalized text (macros/values.sql) by its type:
    null                              null (Braze removes the attribute)
    integer, number, boolean, json    the text itself (already JSON)
    string, date, timestamp           a JSON string
  Values Braze cannot hold (NaN and infinities, which are not JSON; dates
  out of ISO 8601's range; strings over 255 characters): the row names such
  an attribute and the reason (invalid_attribute, braze_invalid_value_sql)
  and the sync rejects that user locally. JSON-typed values may nest NaN or
  infinities, so a user holding one is checked in Python (needs_check).
-#}

{#- A text expression as a JSON string literal (quotes and escapes included). -#}
{% macro braze_json_string(expr) %}
  {{ return(adapter.dispatch('braze_json_string', 'dbt_braze')(expr)) }}
{% endmacro %}

{% macro default__braze_json_string(expr) -%}
  cast(to_json(cast({{ expr }} as {{ dbt.type_string() }})) as {{ dbt.type_string() }})
{%- endmacro %}

{% macro duckdb__braze_json_string(expr) -%}
  cast(to_json(cast({{ expr }} as varchar)) as varchar)
{%- endmacro %}

{#-
  to_json takes only structs and maps: wrap, then cut `{"v":` and `}` off. A
  null is dropped from the struct (`{}`), which leaves '': made null again, as
  on the other warehouses (a string always leaves at least `""`).
-#}
{% macro spark__braze_json_string(expr) -%}
  nullif(substr(to_json(named_struct('v', {{ expr }})), 6, length(to_json(named_struct('v', {{ expr }}))) - 6), '')
{%- endmacro %}

{% macro snowflake__braze_json_string(expr) -%}
  to_json(to_variant(cast({{ expr }} as varchar)))
{%- endmacro %}

{% macro bigquery__braze_json_string(expr) -%}
  to_json_string(cast({{ expr }} as string))
{%- endmacro %}

{#- Redshift has no to_json for text: escape what JSON requires by hand. -#}
{% macro redshift__braze_json_string(expr) -%}
  '"' || replace(replace(replace(replace(replace(cast({{ expr }} as varchar(65535)),
    '\\', '\\\\'), '"', '\\"'), chr(10), '\\n'), chr(13), '\\r'), chr(9), '\\t') || '"'
{%- endmacro %}

{#- The separator of the acknowledgement lists (warehouse.ROW_SEPARATOR). -#}
{% macro braze_list_separator() %}
  {{ return(adapter.dispatch('braze_list_separator', 'dbt_braze')()) }}
{% endmacro %}

{% macro default__braze_list_separator() -%}chr(31){%- endmacro %}

{% macro bigquery__braze_list_separator() -%}code_points_to_string([31]){%- endmacro %}

{#- Texts of a group joined by `separator`, in attribute order. -#}
{% macro braze_join_by_attribute(expr, separator) %}
  {{ return(adapter.dispatch('braze_join_by_attribute', 'dbt_braze')(expr, separator)) }}
{% endmacro %}

{% macro default__braze_join_by_attribute(expr, separator) -%}
  {{ dbt.listagg(expr, separator, 'order by attribute') }}
{%- endmacro %}

{#- collect_list has no order: sort (attribute, text) pairs, then keep the texts. -#}
{% macro spark__braze_join_by_attribute(expr, separator) -%}
  array_join(transform(array_sort(collect_list(named_struct('a', attribute, 't', {{ expr }}))), x -> x.t), {{ separator }})
{%- endmacro %}

{#-
  One row per user of `rows_sql` (key, attribute, value_text, value_type,
  value_hash, is_new, one row per changed attribute), in key order:
  braze_key, is_new, data_points, attributes_json (the object's attribute
  members, `"name":value,...`, then its sent subscription group states: the
  sync adds the identifier, so a change of mode or identifier field needs no
  rebuild; '' when nothing is sent), ack_attributes, ack_hashes
  (separator-joined, '' for a removed value; every changed attribute and
  group, withheld subscribes included), invalid_attribute (`<attribute>:
  <reason>`, one of the user's values Braze cannot hold), needs_check,
  subscription_changes (group states sent, no data points),
  subscribes_withheld (macros/subscriptions.sql).
-#}
{% macro braze_user_objects_sql(rows_sql) %}
  {{ return(adapter.dispatch('braze_user_objects_sql', 'dbt_braze')(rows_sql)) }}
{% endmacro %}

{% macro default__braze_user_objects_sql(rows_sql) %}
  {%- set separator = dbt_braze.braze_list_separator() -%}
select braze_key, is_new, data_points,
       {{ dbt_braze._braze_object_members('attribute_members', 'data_points', 'group_entries', 'subscription_changes') }} as attributes_json,
       ack_attributes, ack_hashes, invalid_attribute, needs_check, subscription_changes, subscribes_withheld
from (
    select braze_key, is_new, count(pair) as data_points,
           {{ dbt_braze.braze_join_by_attribute('pair', "','") }} as attribute_members,
           {{ dbt_braze.braze_join_by_attribute('group_entry', "','") }} as group_entries,
           {{ dbt_braze.braze_join_by_attribute('attribute', separator) }} as ack_attributes,
           {{ dbt_braze.braze_join_by_attribute("coalesce(value_hash, '')", separator) }} as ack_hashes,
           max(invalid_attribute) as invalid_attribute,
           max(needs_check) as needs_check,
           count(group_entry) as subscription_changes,
           count(withheld_subscribe) as subscribes_withheld
    from ({{ dbt_braze.braze_rendered_changes_sql(rows_sql) }}) rendered
    group by braze_key, is_new
) grouped
{% endmacro %}

{#-
  One list of (attribute, hash, member) per user, unordered: the three texts
  come from the same list, so they line up. Three ordered string_agg took
  10 s for 10M changes, this 2.5 s (DuckDB 1.x, 2 cores).
-#}
{% macro duckdb__braze_user_objects_sql(rows_sql) %}
select braze_key, is_new, data_points,
       {{ dbt_braze._braze_object_members('attribute_members', 'data_points', 'group_entries', 'subscription_changes') }} as attributes_json,
       ack_attributes, ack_hashes, invalid_attribute, needs_check, subscription_changes, subscribes_withheld
from (
    select braze_key, is_new, data_points,
           array_to_string(list_transform(changes, lambda c: c.member), ',') as attribute_members,
           {#- most users have no group change: their lists are not walked again #}
           case when subscription_changes > 0
                then array_to_string(list_transform(changes, lambda c: c.group_entry), ',') end as group_entries,
           array_to_string(list_transform(changes, lambda c: c.attribute), chr(31)) as ack_attributes,
           array_to_string(list_transform(changes, lambda c: c.value_hash), chr(31)) as ack_hashes,
           invalid_attribute, needs_check, subscription_changes, subscribes_withheld
    from (
        select braze_key, is_new,
               list(struct_pack(attribute := attribute, value_hash := coalesce(value_hash, ''), member := pair,
                                group_entry := group_entry)) as changes,
               count(pair) as data_points,
               max(invalid_attribute) as invalid_attribute,
               max(needs_check) as needs_check,
               count(group_entry) as subscription_changes,
               count(withheld_subscribe) as subscribes_withheld
        from ({{ dbt_braze.braze_rendered_changes_sql(rows_sql) }}) rendered
        group by braze_key, is_new
    ) grouped
) listed
{% endmacro %}

{#-
  What Braze cannot hold, as `<attribute>: <reason>` (null when the value is
  fine): NaN and infinities; a date or timestamp that is not ISO 8601 with a
  year from 1 to 9999 (the normalized text is then the warehouse's own, see
  _braze_iso_or_raw); a string over Braze's limit, which Braze would bill
  and then drop; a subscription group's value that is no state (named by its
  group: macros/subscriptions.sql); an `email_subscribe` or `push_subscribe`
  other than the three Braze takes. Over columns attribute, value_text and
  value_type.
-#}
{% macro braze_invalid_value_sql(attribute='attribute', value_text='value_text', value_type='value_type', subscriptions=true) %}
  {#- the arguments are SQL expressions: columns by default; kinds events and purchases
      pass one property's name and type as literals and its text as an expression, and
      no subscriptions (their checks read the attribute rows' own columns) -#}
  {%- set limit = dbt_braze.braze_max_string_length() -%}
case when {{ value_text }} is null then null
     when {{ value_type }} = 'number' and {{ dbt_braze._braze_not_finite_sql(value_text) }}
     then {{ attribute }} || ': ' || {{ value_text }} || ' is not a finite number; Braze accepts no NaN or infinity'
     when {{ value_type }} = 'date' and not {{ dbt_braze._braze_iso_shaped('____-__-__', value_text) }}
     then {{ attribute }} || ': ' || {{ value_text }} || ' is not a date Braze can hold; it takes ISO 8601 dates (YYYY-MM-DD) from year 1 to 9999'
     when {{ value_type }} = 'timestamp' and not {{ dbt_braze._braze_iso_shaped('____-__-__T__:__:__Z', value_text) }}
     then {{ attribute }} || ': ' || {{ value_text }} || ' is not a timestamp Braze can hold; it takes ISO 8601 times (YYYY-MM-DDTHH:MM:SSZ) from year 1 to 9999'
     when {{ value_type }} = 'string' and length({{ value_text }}) > {{ limit }}
     then {{ attribute }} || ': a string of ' || cast(length({{ value_text }}) as {{ dbt.type_string() }})
          || ' characters; Braze drops strings over {{ limit }} characters (set truncate_strings: true in the braze block to send the first {{ limit }})'
  {%- if subscriptions %}
     when value_type = 'subscription'
      and value_text not in ('subscribed', 'unsubscribed', '{{ dbt_braze._braze_withheld_subscribe() }}')
     then 'subscription group ' || {{ dbt_braze._braze_group_id_sql() }} || ': ' || value_text
          || ' is not a subscription state; the column takes true or subscribed, false or unsubscribed, or null (no change)'
     when attribute in ('email_subscribe', 'push_subscribe') and value_text not in ('opted_in', 'subscribed', 'unsubscribed')
     then attribute || ': ' || value_text || ' is not a subscription state Braze takes: opted_in, subscribed or unsubscribed'
  {%- endif %}
end
{%- endmacro %}

{#- A number's normalized text is NaN or an infinity (no JSON holds them). -#}
{% macro _braze_not_finite_sql(value_text) -%}
  lower({{ value_text }}) in ('nan', '+nan', '-nan', 'inf', '+inf', '-inf', 'infinity', '+infinity', '-infinity')
{%- endmacro %}

{#- value_text is laid out as `pattern` (LIKE), with a year from 0001 up (LIKE has no digit class). -#}
{% macro _braze_iso_shaped(pattern, value_text='value_text') -%}
  ({{ value_text }} like '{{ pattern }}' and {{ value_text }} not like '0000%' and {{ value_text }} not like '-%')
{%- endmacro %}

{#-
  Each changed attribute with its JSON member (`"name":value`, null for a
  subscription group), a group's JSON entry when its state is sent
  (group_entry), 1 for a withheld subscribe (withheld_subscribe, else null),
  and checks.
-#}
{% macro braze_rendered_changes_sql(rows_sql) %}
select changed.*,
       case when value_type = 'subscription' then null
            else {{ dbt_braze.braze_json_string('attribute') }} || ':' ||
                 case when value_text is null then 'null'
                      when value_type in ('integer', 'number', 'boolean', 'json') then value_text
                      else {{ dbt_braze.braze_json_string('value_text') }} end end as pair,
       {{ dbt_braze._braze_group_entry_sql() }} as group_entry,
       case when value_type = 'subscription' and value_text = '{{ dbt_braze._braze_withheld_subscribe() }}' then 1 end as withheld_subscribe,
       {{ dbt_braze.braze_invalid_value_sql() }} as invalid_attribute,
       case when value_type = 'json' and value_text is not null then 1 else 0 end as needs_check
from ({{ rows_sql }}) changed
{% endmacro %}

{#-
  braze_objects__<model>: the pending upserts of braze_pending__<model> as one
  rendered row per user, built by the hook right after it (dbt run pays for
  the aggregation once, with the warehouse's full memory; the sync streams
  the result). Its built_at is the pending relation's.
-#}
{% macro braze_objects_relation(model_name) %}
  {{ return(dbt_braze.braze_relation('braze_objects__' ~ model_name)) }}
{% endmacro %}

{#- `kind`: the model's; a catalog's items render by braze_catalog_objects_sql (macros/catalogs.sql). -#}
{% macro braze_build_objects(model_name, kind='users') %}
  {%- set target_relation = dbt_braze.braze_objects_relation(model_name) -%}
  {%- set staging_relation = dbt_braze.braze_relation('braze_objects__' ~ model_name ~ '__building') -%}
  {%- set pending = dbt_braze.braze_pending_relation(model_name) -%}
  {%- set upserts -%}
    select braze_key, attribute, value_text, value_type, value_hash, is_new
    from {{ pending }} where change_kind = 'upsert'
  {%- endset -%}
  {#- sorted by key: checkpoints look users up by key ranges (braze_acknowledge_objects_sql);
      fingerprint: of the row Braze holds once it accepts the object (braze_vouch_objects_sql) -#}
  {%- set sql -%}
    select objects.*, vouched.fingerprint, (select max(built_at) from {{ pending }}) as built_at
    from ({{ dbt_braze.braze_catalog_objects_sql(upserts) if kind == 'catalog'
             else dbt_braze.braze_user_objects_sql(upserts) }}) objects
    left join (
        select braze_key, value_text as fingerprint from {{ pending }} where change_kind = 'object_fingerprint'
    ) vouched on vouched.braze_key = objects.braze_key
    order by objects.braze_key
  {%- endset -%}
  {%- do adapter.drop_relation(staging_relation) -%}
  {%- do run_query(get_create_table_as_sql(False, staging_relation, sql)) -%}
  {%- do dbt_braze.braze_index_objects(staging_relation) -%}
  {%- do dbt_braze.braze_swap_relation(staging_relation, target_relation) -%}
  {%- do adapter.commit() -%}
{% endmacro %}

{#-
  What the sync sends: the users of braze_objects__<model> not acknowledged
  since the pending changes were computed (an object is acknowledged whole,
  so any state row of the user since then means it was sent), and not held
  back because Braze refused every one of their pending values as they are
  now (nothing changed since; once one does, the whole object goes again).
  `page`: one keyset page of it (braze_keyset_page). `is_new`, when given:
  only the new users (true) or only the others (false): a catalog creates
  its new items and updates the others by two methods.
-#}
{% macro braze_read_objects_sql(model_name, page=none, is_new=none) %}
  {%- set sql -%}
select o.braze_key, o.is_new, o.data_points, o.attributes_json, o.ack_attributes, o.ack_hashes,
       o.invalid_attribute, o.needs_check, o.subscription_changes, o.subscribes_withheld,
       cast(o.built_at as {{ dbt_braze.braze_type_string() }}) as built_stamp
from {{ dbt_braze.braze_objects_relation(model_name) }} o
where not exists (
    select 1 from {{ dbt_braze.braze_state_relation() }} s
    where s.model_name = {{ dbt_braze.braze_string_literal(model_name) }}
      and s.acked_at >= {{ dbt_braze.braze_objects_built_at_sql(model_name) }} and s.braze_key = o.braze_key)
  and not exists (
    select 1 from ({{ dbt_braze.braze_refused_users_sql(model_name) }}) refused
    where refused.braze_key = o.braze_key)
  {%- if is_new is not none %}
  and {{ '' if is_new else 'not ' }}o.is_new
  {%- endif -%}
  {%- endset -%}
  {{ return(dbt_braze.braze_keyset_page(sql, page)) }}
{% endmacro %}

{#-
  When the objects the read returns (`o`) were built: one time for the whole
  relation. DuckDB: as an uncorrelated subquery, so that the state is
  filtered before the anti-join; compared row by row it built its hash table
  on the objects, payload included, which overran the sync's memory limit
  (80 MB) once most users were acknowledged (a second sync at 200k users).
-#}
{% macro braze_objects_built_at_sql(model_name) %}
  {{ return(adapter.dispatch('braze_objects_built_at_sql', 'dbt_braze')(model_name)) }}
{% endmacro %}

{% macro default__braze_objects_built_at_sql(model_name) -%}
  o.built_at
{%- endmacro %}

{% macro duckdb__braze_objects_built_at_sql(model_name) -%}
  (select max(built_at) from {{ dbt_braze.braze_objects_relation(model_name) }})
{%- endmacro %}

{#-
  One page of a read that returns one row per braze_key, for cursors that can
  only fetch a whole result (dbt-spark's): `page` is none for the whole read,
  unordered (a streaming cursor does without the sort, which would hold the
  whole result), else {'after': the last key of the page before or none,
  'rows': the page's size}, in key order.
-#}
{% macro braze_keyset_page(sql, page) %}
  {%- if page is none -%}
    {{ return(sql) }}
  {%- endif -%}
  {%- set after = "" if page['after'] is none
      else "where q.braze_key > " ~ dbt_braze.braze_string_literal(page['after']) -%}
  {{ return("select * from (\n" ~ sql ~ "\n) q " ~ after ~ "\norder by q.braze_key\nlimit " ~ (page['rows'] | int)) }}
{% endmacro %}

{#- Users whose every pending value Braze refused with that very value (same hash). -#}
{% macro braze_refused_users_sql(model_name) %}
select p.braze_key
from {{ dbt_braze.braze_pending_relation(model_name) }} p
left join (
    select distinct braze_key, attribute, coalesce(value_hash, '-') as value_hash
    from {{ dbt_braze.braze_rejected_relation() }}
    where model_name = {{ dbt_braze.braze_string_literal(model_name) }}
) r on r.braze_key = p.braze_key and r.attribute = p.attribute and r.value_hash = coalesce(p.value_hash, '-')
where p.change_kind = 'upsert'
  and p.braze_key in (select braze_key from {{ dbt_braze.braze_rejected_relation() }} where model_name = {{ dbt_braze.braze_string_literal(model_name) }})
group by p.braze_key
having count(r.braze_key) = count(*)
{% endmacro %}

{#- One row per removed user: braze_key, ack_attributes (the attributes to unset or forget). -#}
{% macro braze_removed_users_sql(rows_sql) %}
select braze_key, {{ dbt_braze.braze_join_by_attribute('attribute', dbt_braze.braze_list_separator()) }} as ack_attributes
from ({{ rows_sql }}) removed
group by braze_key
{% endmacro %}

{#-
  Acknowledge the users of braze_objects__<model> whose objects Braze
  accepted: `keys_sql` hands their keys (braze_rows_sql), and `stamp` is the
  built_at the sync read. The names and hashes come from the relation, not
  from the sync: a checkpoint hands one key per user instead of a row per
  attribute. Were the relation rebuilt since (a `dbt run` during the sync),
  nothing matches; braze_objects_built_sql tells, in the same transaction,
  and the sync then acknowledges those users from what it sent. `key_range`
  (lowest, highest, as braze_rows_sql cells), where given, lets a key-sorted
  table skip the blocks outside it.
-#}
{% macro braze_acknowledge_objects_sql(model_name, keys_sql, stamp, run_id, key_range=none) %}
  {%- set accepted = dbt_braze._braze_accepted_objects_sql(model_name, keys_sql, stamp, key_range,
                                                           'o.braze_key, o.ack_attributes, o.ack_hashes') %}
insert into {{ dbt_braze.braze_state_relation() }} (model_name, braze_key, attribute, value_hash, acked_at, run_id)
select {{ dbt_braze.braze_string_literal(model_name) }}, braze_key, attribute, value_hash, {{ dbt_braze.braze_utc_now() }}, '{{ run_id }}'
from ({{ dbt_braze.braze_unnest_acks_sql(accepted) }}) acked
{% endmacro %}

{#-
  After braze_acknowledge_objects_sql, in the same transaction: the accepted
  users' fingerprints, as braze_objects__<model> has them (the row each
  object brings Braze to), so that the next `dbt run` skips them like any
  user whose diff came out empty. A user rejected in full keeps the
  fingerprint it had, which does not vouch for its current row (that made it
  a candidate), so it is diffed again.
-#}
{% macro braze_vouch_objects_sql(model_name, keys_sql, stamp, key_range=none) %}
insert into {{ dbt_braze.braze_fingerprints_relation() }} (model_name, braze_key, fingerprint, recorded_at)
select {{ dbt_braze.braze_string_literal(model_name) }}, braze_key, fingerprint, {{ dbt_braze.braze_utc_now() }}
from ({{ dbt_braze._braze_accepted_objects_sql(model_name, keys_sql, stamp, key_range, 'o.braze_key, o.fingerprint') }}) accepted
{% endmacro %}

{#- `columns` of the users of braze_objects__<model> built at `stamp` whose keys `keys_sql` hands. -#}
{% macro _braze_accepted_objects_sql(model_name, keys_sql, stamp, key_range, columns) %}
  {%- set sql -%}
    select {{ columns }}
    from {{ dbt_braze.braze_objects_relation(model_name) }} o
    where cast(o.built_at as {{ dbt.type_string() }}) = {{ dbt_braze.braze_string_literal(stamp) }}
      {%- if key_range %}
      and o.braze_key >= {{ dbt_braze.braze_decode_cell("'" ~ key_range[0] ~ "'") }}
      and o.braze_key <= {{ dbt_braze.braze_decode_cell("'" ~ key_range[1] ~ "'") }}
      {%- endif %}
      and o.braze_key in (select braze_key from ({{ keys_sql }}) handed)
  {%- endset -%}
  {{ return(sql) }}
{% endmacro %}

{#- One row when braze_objects__<model> is still the build the sync read (`stamp`), none otherwise. -#}
{% macro braze_objects_built_sql(model_name, stamp) %}
select 1 as built
from {{ dbt_braze.braze_objects_relation(model_name) }}
where cast(built_at as {{ dbt.type_string() }}) = {{ dbt_braze.braze_string_literal(stamp) }}
limit 1
{% endmacro %}

{#- (braze_key, ack_attributes, ack_hashes) rows → (braze_key, attribute, value_hash), '' hashes as NULL. -#}
{% macro braze_unnest_acks_sql(objects_sql) %}
  {{ return(adapter.dispatch('braze_unnest_acks_sql', 'dbt_braze')(objects_sql)) }}
{% endmacro %}

{#- regexp_split_to_array, not string_to_array: that turns '' into an empty array. -#}
{% macro default__braze_unnest_acks_sql(objects_sql) %}
select o.braze_key, acked.attribute, nullif(acked.value_hash, '') as value_hash
from ({{ objects_sql }}) o
cross join lateral unnest(regexp_split_to_array(o.ack_attributes, chr(31)),
                          regexp_split_to_array(o.ack_hashes, chr(31))) as acked (attribute, value_hash)
{% endmacro %}

{#- Several unnests in one select list are zipped. -#}
{% macro duckdb__braze_unnest_acks_sql(objects_sql) %}
select braze_key,
       unnest(string_split(ack_attributes, chr(31))) as attribute,
       nullif(unnest(string_split(ack_hashes, chr(31))), '') as value_hash
from ({{ objects_sql }}) o
{% endmacro %}

{% macro spark__braze_unnest_acks_sql(objects_sql) %}
select braze_key, acked['0'] as attribute, nullif(acked['1'], '') as value_hash
from (
    select braze_key,
           explode(arrays_zip(split(ack_attributes, '\\x1f', -1), split(ack_hashes, '\\x1f', -1))) as acked
    from ({{ objects_sql }}) o
) zipped
{% endmacro %}

{% macro snowflake__braze_unnest_acks_sql(objects_sql) %}
select o.braze_key, cast(o.attributes[item.index] as varchar) as attribute,
       nullif(cast(o.hashes[item.index] as varchar), '') as value_hash
from (
    select braze_key, split(ack_attributes, chr(31)) as attributes, split(ack_hashes, chr(31)) as hashes
    from ({{ objects_sql }}) s
) o,
lateral flatten(input => o.attributes) item
{% endmacro %}

{% macro bigquery__braze_unnest_acks_sql(objects_sql) %}
select o.braze_key, o.attributes[offset(position)] as attribute,
       nullif(o.hashes[offset(position)], '') as value_hash
from (
    select braze_key, split(ack_attributes, '\x1f') as attributes, split(ack_hashes, '\x1f') as hashes
    from ({{ objects_sql }}) s
) o
cross join unnest(generate_array(0, array_length(o.attributes) - 1)) as position
{% endmacro %}

{#- PartiQL over SUPER arrays (Redshift has no unnest of strings). -#}
{% macro redshift__braze_unnest_acks_sql(objects_sql) %}
select o.braze_key, cast(attribute as varchar(65535)) as attribute,
       nullif(cast(o.hashes[position] as varchar(65535)), '') as value_hash
from (
    select braze_key, split_to_array(ack_attributes, chr(31)) as attributes,
           split_to_array(ack_hashes, chr(31)) as hashes
    from ({{ objects_sql }}) s
) o, o.attributes as attribute at position
{% endmacro %}

{#- Lookups of a checkpoint's keys: an index where the warehouse has them. -#}
{% macro braze_index_objects(relation) %}
  {{ return(adapter.dispatch('braze_index_objects', 'dbt_braze')(relation)) }}
{% endmacro %}

{#- Columnar warehouses prune by the min/max of sorted blocks instead. -#}
{% macro default__braze_index_objects(relation) %}{% endmacro %}

{% macro postgres__braze_index_objects(relation) %}
  {%- do run_query("create index on " ~ relation ~ " (braze_key)") -%}
{% endmacro %}

{% macro redshift__braze_index_objects(relation) %}{% endmacro %}
