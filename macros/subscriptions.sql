{#-
  Subscription groups (contract, "Subscription states"). Each mapped group is
  one more attribute of the long form, named `$subscription_group:<group id>`
  (no attribute can have that name: Braze refuses names that start with `$`,
  and so does `dbt-braze validate`), so it is diffed, acknowledged and refused
  locally like an attribute. Its normalized text is the state it asks for:

    subscribed, unsubscribed   true and false, or that very text
    subscribed:withheld        subscribed, under `subscriptions: unsubscribe_only`
    null                       states nothing: never a change (braze_pending_sql)
    anything else              the column's own text: rejected locally, with the
                               reason (braze_invalid_value_sql)

  A withheld subscribe is never sent, but it is acknowledged like a sent value
  (with no request at all when it is all the user's object holds): the same
  subscribe is not counted again at the next sync, and a later unsubscribe
  differs from it, so it goes out. Its text is not `subscribed`, so a switch
  to `mirror` changes the text, the fingerprint and the hash, and the
  subscribe is sent then. A raw value that happens to read `subscribed:withheld`
  is withheld too: never sent, which is the safe side.

  The object carries the sent states as one member, after the attributes:
  `"subscription_groups":[{"subscription_group_id":..,"subscription_state":..}]`.
  Braze bills no data point for them (braze-api-notes.md, "Subscription groups").
-#}

{% macro _braze_group_attribute_prefix() %}
  {{ return('$subscription_group:') }}
{% endmacro %}

{#- The text a withheld subscribe is diffed and acknowledged as. -#}
{% macro _braze_withheld_subscribe() %}
  {{ return('subscribed:withheld') }}
{% endmacro %}

{#-
  A model's subscription groups ([{column, group_id}]) as mappings of the long
  form, {column, attribute, subscriptions}: what ModelSync.mapping_specs gives
  the macros from Python.
-#}
{% macro _braze_group_mappings(groups, subscriptions) %}
  {%- set mappings = [] -%}
  {%- for group in groups -%}
    {%- do mappings.append({'column': group.column, 'attribute': dbt_braze._braze_group_attribute_prefix() ~ group.group_id,
                            'subscriptions': subscriptions}) -%}
  {%- endfor -%}
  {{ return(mappings) }}
{% endmacro %}

{#- The normalized text of a group's column (mapping.state_type: the column's value type). -#}
{% macro _braze_subscription_text(mapping) %}
  {%- set expr = dbt_braze.braze_quote_identifier(mapping.column) -%}
  {%- set subscribed = "'subscribed'" if mapping.subscriptions == 'mirror'
                       else "'" ~ dbt_braze._braze_withheld_subscribe() ~ "'" -%}
  {%- if mapping.state_type == 'boolean' -%}
    {{ return("case when " ~ expr ~ " then " ~ subscribed ~ " when not " ~ expr ~ " then 'unsubscribed' end") }}
  {%- endif -%}
  {%- set text = dbt_braze.braze_normalized_text(expr, mapping.state_type) -%}
  {%- if mapping.subscriptions == 'mirror' -%}
    {{ return(text) }}
  {%- endif -%}
  {{ return("case " ~ text ~ " when 'subscribed' then " ~ subscribed ~ " else " ~ text ~ " end") }}
{% endmacro %}

{#- Over attribute, value_type, value_text: the group's group id. -#}
{% macro _braze_group_id_sql() -%}
  substr(attribute, {{ dbt_braze._braze_group_attribute_prefix() | length + 1 }})
{%- endmacro %}

{#- Over attribute, value_type, value_text: the group's JSON entry when its state is sent, else null. -#}
{% macro _braze_group_entry_sql() -%}
  case when value_type = 'subscription' and value_text in ('subscribed', 'unsubscribed')
       then '{"subscription_group_id":' || {{ dbt_braze.braze_json_string(dbt_braze._braze_group_id_sql()) }}
            || ',"subscription_state":"' || value_text || '"}' end
{%- endmacro %}

{#-
  The object's members but the identifier, from the joined attribute members
  and group entries and their counts (a join of nothing is null on some
  warehouses, '' on others: the counts decide).
-#}
{% macro _braze_object_members(attribute_members, data_points, group_entries, subscription_changes) -%}
  case when {{ subscription_changes }} = 0 then coalesce({{ attribute_members }}, '')
       when {{ data_points }} = 0 then '"subscription_groups":[' || {{ group_entries }} || ']'
       else {{ attribute_members }} || ',"subscription_groups":[' || {{ group_entries }} || ']' end
{%- endmacro %}
