{#-
  Kinds `events` and `purchases` (contract, "Events and purchases"): each row,
  named by its event_id, is sent at most once.

    braze_events_log        append-only, one row per event id per status change:
                            in_flight (written before its window is sent),
                            delivered, rejected (with Braze's reason) or unknown
                            (the outcome could not be known, with why). An id
                            with a delivered or rejected row is settled for good
                            (nothing is sent for it again); an unsettled one is
                            in_flight or unknown, by its latest row. A `declared` row
                            per model (event_id null) marks that its first run,
                            and so its backfill, happened.
    braze_pending__<model>  the summary: model_rows (its attribute: the key
                            prefix of the identifier), withheld_null,
                            withheld_duplicate, changed_after_sending, unknown
    braze_objects__<model>  the rows to send: those the log does not hold, and
                            those whose outcome is unknown (sent again only by
                            `sync --resend-unknown`), each rendered as its object
                            without the identifier, with the reason it must not
                            be sent (invalid_reason) and the hash of its values

  What is pending is an anti-join of the model against the log's ids: the log
  is scanned once per `dbt run`, by hash joins (no sort of its history), and
  the rows built are the new ones.
  The sync anti-joins again as it reads, so a `dbt run` that overlaps a sync
  can never make it send an id twice.
-#}

{% macro braze_events_log_relation() %}
  {{ return(dbt_braze.braze_relation('braze_events_log')) }}
{% endmacro %}

{% macro braze_events_log_columns() %}
  {{ return([
    ('model_name', dbt_braze.braze_type_string()), ('event_id', dbt_braze.braze_type_string()),
    ('row_hash', dbt_braze.braze_type_string()), ('status', dbt_braze.braze_type_string()),
    ('reason', dbt_braze.braze_type_string()), ('run_id', dbt_braze.braze_type_string()),
    ('recorded_at', dbt.type_timestamp()),
  ]) }}
{% endmacro %}

{#-
  The unsettled ids of a model: logged in_flight or unknown, never delivered or
  rejected (a settled id is never read again, so it never becomes unsettled).
  status: in_flight when that is its latest row (a tie goes to unknown, which
  is written after), else unknown; row_hash: the hash its rows recorded.
-#}
{% macro braze_unsettled_events_sql(model_name) %}
  {%- set model = dbt_braze.braze_string_literal(model_name) -%}
    select event_id,
           case when max(case when status = 'unknown' then recorded_at end) is null
                  or max(case when status = 'in_flight' then recorded_at end)
                     > max(case when status = 'unknown' then recorded_at end)
                then 'in_flight' else 'unknown' end as status,
           max(row_hash) as row_hash
    from {{ dbt_braze.braze_events_log_relation() }} o
    where model_name = {{ model }} and status in ('in_flight', 'unknown')
      and not exists (
        select 1 from {{ dbt_braze.braze_events_log_relation() }} s
        where s.model_name = {{ model }} and s.event_id = o.event_id and s.status in ('delivered', 'rejected'))
    group by event_id
{% endmacro %}

{#- A rendered value as JSON: numbers, booleans and JSON as they are, the rest as strings. -#}
{% macro _braze_event_json(mapping, text) -%}
  {%- if mapping.value_type in ('integer', 'number', 'boolean', 'json') -%}{{ text }}
  {%- else -%}{{ dbt_braze.braze_json_string(text) }}{%- endif -%}
{%- endmacro %}

{#- `"name":` as a JSON literal. -#}
{% macro _braze_member(name) -%}
  {{ dbt_braze.braze_string_literal(tojson(name) ~ ':') }}
{%- endmacro %}

{#- Texts joined by ',', skipping nulls; '' when all are null. -#}
{% macro braze_join_present(parts) %}
  {{ return(adapter.dispatch('braze_join_present', 'dbt_braze')(parts)) }}
{% endmacro %}

{% macro default__braze_join_present(parts) -%}
  coalesce(concat_ws(',', {{ parts | join(', ') }}), '')
{%- endmacro %}

{#-
  Why the row must not be sent, or null: the checks Braze documents (a name
  or product id over 255 characters, a time that is not ISO 8601, a price
  that is not a finite number, a quantity outside 1..100, a currency that is
  not three capital letters) and the attribute value checks on properties.
-#}
{% macro _braze_event_invalid_sql(spec, texts) %}
  {%- set limit = dbt_braze.braze_max_string_length() -%}
  {%- set checks = [] -%}
  {%- for m in spec.fields -%}
    {%- set t = texts[m.attribute] -%}
    {%- if m.attribute in ('name', 'product_id') -%}
      {%- do checks.append("case when length(" ~ t ~ ") > " ~ limit ~ " then '" ~ m.attribute ~ ": over " ~ limit ~ " characters' end") -%}
    {%- elif m.attribute == 'currency' -%}
      {%- set letters = [] -%}
      {%- for i in [1, 2, 3] -%}{%- do letters.append("substr(" ~ t ~ ", " ~ i ~ ", 1) between 'A' and 'Z'") -%}{%- endfor -%}
      {%- do checks.append("case when not (length(" ~ t ~ ") = 3 and " ~ letters | join(" and ") ~ ") then 'currency: ' || " ~ t ~ " || ' is not an ISO 4217 code (three capital letters)' end") -%}
    {%- elif m.value_type not in ('integer', 'number') -%}
      {%- do checks.append("'" ~ m.attribute ~ ": column " ~ m.column ~ " is not a number'") -%}
    {%- elif m.attribute == 'quantity' -%}
      {%- do checks.append("case when cast(" ~ t ~ " as " ~ dbt.type_float() ~ ") not between 1 and 100 or " ~ t ~ " like '%.%' then 'quantity: ' || " ~ t ~ " || ' is not an integer from 1 to 100' end") -%}
    {%- endif -%}
    {%- if m.value_type == 'number' -%}
      {%- do checks.append(dbt_braze.braze_invalid_value_sql(dbt_braze.braze_string_literal(m.attribute), t, "'number'", subscriptions=false)) -%}
    {%- endif -%}
  {%- endfor -%}
  {%- if spec.time.value_type not in ('timestamp', 'timestamptz', 'date') -%}
    {%- do checks.append("'time: column " ~ spec.time.column ~ " is not a timestamp'") -%}
  {%- else -%}
    {%- do checks.append(dbt_braze.braze_invalid_value_sql("'time'", texts['time'], "'" ~ dbt_braze.braze_sent_type(spec.time.value_type) ~ "'", subscriptions=false)) -%}
  {%- endif -%}
  {%- for m in spec.mappings -%}
    {%- do checks.append(dbt_braze.braze_invalid_value_sql(dbt_braze.braze_string_literal('property ' ~ m.attribute), dbt_braze.braze_mapped_text(m), "'" ~ dbt_braze.braze_sent_type(m.value_type) ~ "'", subscriptions=false)) -%}
  {%- endfor -%}
  {{ return("coalesce(" ~ checks | join(", ") ~ ")" if checks | length > 1 else checks[0]) }}
{% endmacro %}

{#-
  One row per model row: braze_key (the event id, '' as null), user_key (the
  identifier, '' as null), event_time (the time column as it is), row_hash
  (of every value sent), object_json (the object's members but the
  identifier), invalid_reason, needs_check (1: JSON properties, checked in
  Python for NaN), has_null (1: a required value is null: withheld).
-#}
{% macro braze_event_rows_sql(spec) %}
  {%- set texts = {'time': dbt_braze.braze_mapped_text(spec.time)} -%}
  {%- set members = [] -%}
  {%- set nulls = ["nullif(cast(" ~ dbt_braze.braze_quote_identifier(spec.id_column) ~ " as " ~ dbt_braze.braze_type_string() ~ "), '') is null"] -%}
  {%- for m in spec.fields -%}
    {%- set t = dbt_braze.braze_mapped_text(m) -%}
    {%- do texts.update({m.attribute: t}) -%}
    {%- if m.attribute == 'quantity' -%}
      {%- do members.append("coalesce(" ~ dbt_braze.braze_string_literal(',"quantity":') ~ " || " ~ t ~ ", '')") -%}
    {%- else -%}
      {%- do members.append(dbt_braze.braze_string_literal(',' ~ tojson(m.attribute) ~ ':') ~ " || " ~ dbt_braze._braze_event_json(m, t)) -%}
      {%- do nulls.append(t ~ " is null") -%}
    {%- endif -%}
  {%- endfor -%}
  {%- do nulls.append(texts['time'] ~ " is null") -%}
  {%- set properties = [] -%}
  {%- set json_checks = [] -%}
  {%- for m in spec.mappings -%}
    {%- set t = dbt_braze.braze_mapped_text(m) -%}
    {%- do properties.append(dbt_braze._braze_member(m.attribute) ~ " || " ~ dbt_braze._braze_event_json(m, t)) -%}
    {%- if m.value_type == 'json' -%}{%- do json_checks.append(t ~ " is not null") -%}{%- endif -%}
  {%- endfor -%}
  {%- set object = [dbt_braze.braze_string_literal('"time":') ~ " || " ~ dbt_braze.braze_json_string(texts['time'])] + members -%}
  {%- if properties -%}
    {%- do object.append(dbt_braze.braze_string_literal(',"properties":{') ~ " || " ~ dbt_braze.braze_join_present(properties) ~ " || '}'") -%}
  {%- endif %}
    select nullif(cast({{ dbt_braze.braze_quote_identifier(spec.event_id.column) }} as {{ dbt_braze.braze_type_string() }}), '') as braze_key,
           nullif(cast({{ dbt_braze.braze_quote_identifier(spec.id_column) }} as {{ dbt_braze.braze_type_string() }}), '') as user_key,
           {{ dbt_braze.braze_quote_identifier(spec.time.column) }} as event_time,
           {{ dbt_braze.braze_fingerprint_sql([spec.identifier, spec.time, spec.event_id] + spec.fields + spec.mappings) }} as row_hash,
           {{ dbt_braze._braze_concat_tree(object) }} as object_json,
           {{ dbt_braze._braze_event_invalid_sql(spec, texts) }} as invalid_reason,
           case when {{ json_checks | join(' or ') if json_checks else '1 = 0' }} then 1 else 0 end as needs_check,
           case when {{ nulls | join(' or ') }} then 1 else 0 end as has_null
    from {{ spec.relation }}
{% endmacro %}

{#-
  The first run of a model (no `declared` row): `none` records every id the
  model holds as delivered, a date those whose time is before it, `all`
  nothing; then the `declared` row. One statement.
-#}
{% macro braze_event_backfill_sql(spec) %}
  {%- set model = dbt_braze.braze_string_literal(spec.model_name) -%}
  {%- set reason = dbt_braze.braze_string_literal('backfill: ' ~ spec.backfill) -%}
insert into {{ dbt_braze.braze_events_log_relation() }} (model_name, event_id, row_hash, status, reason, run_id, recorded_at)
  {%- if spec.backfill != 'all' %}
select {{ model }}, braze_key, min(row_hash), 'delivered', {{ reason }}, 'backfill', {{ dbt_braze.braze_utc_now() }}
from ({{ dbt_braze.braze_event_rows_sql(spec) }}) model_rows
where braze_key is not null
    {%- if spec.backfill != 'none' %}
  and cast(event_time as date) < cast({{ dbt_braze.braze_string_literal(spec.backfill) }} as date)
    {%- endif %}
group by braze_key
union all
  {%- endif %}
select {{ model }}, null, null, 'declared', {{ reason }}, 'backfill', {{ dbt_braze.braze_utc_now() }}
{% endmacro %}

{% macro braze_event_declared_sql(model_name) %}
select count(*) from {{ dbt_braze.braze_events_log_relation() }}
where model_name = {{ dbt_braze.braze_string_literal(model_name) }} and status = 'declared'
{% endmacro %}

{#- The hook's work for a model of kind events or purchases (see the top of this file). -#}
{% macro braze_build_event_pending(spec) %}
  {%- set model = dbt_braze.braze_string_literal(spec.model_name) -%}
  {%- if run_query(dbt_braze.braze_event_declared_sql(spec.model_name)).rows[0][0] == 0 -%}
    {#- committed with the pending relation's swap, as the fingerprints are (hook.sql) -#}
    {%- do run_query(dbt_braze.braze_event_backfill_sql(spec)) -%}
  {%- endif -%}
  {%- set built_at = "(select " ~ dbt_braze.braze_utc_now() ~ ")" -%}
  {%- set string = dbt_braze.braze_type_string() -%}
  {#- model_rows' attribute: the key prefix of the identifier the rows were read for
      (braze_pending_key_prefix_sql: a sync refuses rows read for another identifier) -#}
  {%- set prefix = dbt_braze.braze_string_literal(spec.key_prefix) -%}
  {%- set summary -%}
with model_rows as (
    {{ dbt_braze.braze_event_rows_sql(spec) }}
),
id_counts as (
    select braze_key, count(*) as row_count from model_rows group by braze_key
),
logged as (
    select event_id, row_hash, status from {{ dbt_braze.braze_events_log_relation() }}
    where model_name = {{ model }} and event_id is not null
)
select cast('withheld_null' as {{ string }}) as change_kind, cast(null as {{ string }}) as braze_key,
       cast(null as {{ string }}) as attribute,
       cast(count(*) as {{ string }}) as value_text, false as is_new, {{ built_at }} as built_at
from model_rows r
where r.braze_key is null
   or (r.has_null = 1 and not exists (select 1 from logged l where l.event_id = r.braze_key))
having count(*) > 0
union all
select 'withheld_duplicate', braze_key, null, cast(row_count as {{ string }}), false, {{ built_at }}
from id_counts where braze_key is not null and row_count > 1
union all
select 'model_rows', null, {{ prefix }}, cast(count(*) as {{ string }}), false, {{ built_at }} from model_rows
union all
select 'changed_after_sending', null, null, cast(count(*) as {{ string }}), false, {{ built_at }}
from model_rows r
where exists (select 1 from logged l
              where l.event_id = r.braze_key and l.status = 'delivered' and l.row_hash <> r.row_hash)
union all
select 'unknown', null, null, cast(count(*) as {{ string }}), false, {{ built_at }}
from ({{ dbt_braze.braze_unsettled_events_sql(spec.model_name) }}) unsettled
union all
select 'state_rows', null, null, '0', false, {{ built_at }}
  {%- endset -%}
  {%- set objects -%}
with model_rows as (
    {{ dbt_braze.braze_event_rows_sql(spec) }}
),
id_counts as (
    select braze_key, count(*) as row_count from model_rows group by braze_key
),
unsettled as (
    {{ dbt_braze.braze_unsettled_events_sql(spec.model_name) }}
)
select r.braze_key, r.user_key, r.row_hash, r.object_json, r.invalid_reason, r.needs_check,
       (select max(built_at) from {{ dbt_braze.braze_pending_relation(spec.model_name) }}) as built_at
from model_rows r
inner join id_counts c on c.braze_key = r.braze_key and c.row_count = 1
where r.has_null = 0
  and (not exists (select 1 from {{ dbt_braze.braze_events_log_relation() }} l
                   where l.model_name = {{ model }} and l.event_id = r.braze_key)
       or exists (select 1 from unsettled u where u.event_id = r.braze_key))
order by r.braze_key
  {%- endset -%}
  {%- do dbt_braze._braze_build_relation(dbt_braze.braze_pending_relation(spec.model_name), summary) -%}
  {%- do dbt_braze._braze_build_relation(dbt_braze.braze_objects_relation(spec.model_name), objects) -%}
  {%- do dbt_braze._braze_log_event_pending(spec.model_name) -%}
{% endmacro %}

{% macro _braze_build_relation(target, sql) %}
  {%- set staging = dbt_braze.braze_relation(target.identifier ~ '__building') -%}
  {%- do adapter.drop_relation(staging) -%}
  {%- do run_query(get_create_table_as_sql(False, staging, sql)) -%}
  {%- do dbt_braze.braze_swap_relation(staging, target) -%}
  {%- do adapter.commit() -%}
{% endmacro %}

{% macro _braze_log_event_pending(model_name) %}
  {%- set counts = {} -%}
  {%- for row in run_query(dbt_braze.braze_event_counts_sql(model_name)).rows -%}
    {%- do counts.update({row[0]: row[1]}) -%}
  {%- endfor -%}
  {%- set parts = [(counts.get('pending', 0)) ~ " new rows to send"] -%}
  {%- if counts.get('withheld_null') -%}{%- do parts.append(counts['withheld_null'] ~ " withheld (a null identifier, event_id, name or time)") -%}{%- endif -%}
  {%- if counts.get('withheld_duplicate') -%}{%- do parts.append(counts['withheld_duplicate'] ~ " rows withheld (duplicated event_id)") -%}{%- endif -%}
  {%- if counts.get('changed_after_sending') -%}{%- do parts.append(counts['changed_after_sending'] ~ " changed after sending (never sent again)") -%}{%- endif -%}
  {%- if counts.get('unknown') -%}{%- do parts.append(counts['unknown'] ~ " unknown (see `dbt-braze sync --resend-unknown` or `--forget-unknown`)") -%}{%- endif -%}
  {%- do log("dbt_braze: " ~ model_name ~ ": " ~ parts | join(", ") ~ ". Run `dbt-braze sync` to send.", info=True) -%}
{% endmacro %}

{#- (count name, rows): the pending relation's counts and the objects not yet logged. -#}
{% macro braze_event_counts_sql(model_name) %}
select change_kind, sum(cast(value_text as {{ dbt.type_int() }}))
from {{ dbt_braze.braze_pending_relation(model_name) }}
where change_kind in ('withheld_null', 'withheld_duplicate', 'changed_after_sending', 'unknown', 'model_rows')
group by change_kind
union all
select 'pending', count(*)
from {{ dbt_braze.braze_objects_relation(model_name) }} o
where not exists (
    select 1 from {{ dbt_braze.braze_events_log_relation() }} l
    where l.model_name = {{ dbt_braze.braze_string_literal(model_name) }} and l.event_id = o.braze_key)
{% endmacro %}

{#-
  What the sync sends: objects whose id the log does not hold (`unknown`
  false), or those whose latest status is unknown (`unknown` true:
  --resend-unknown). `page`: one keyset page (braze_keyset_page).
-#}
{% macro braze_read_events_sql(model_name, unknown=false, page=none) %}
  {%- set sql -%}
select o.braze_key, o.user_key, o.row_hash, o.object_json, o.invalid_reason, o.needs_check
from {{ dbt_braze.braze_objects_relation(model_name) }} o
    {%- if unknown %}
inner join ({{ dbt_braze.braze_unsettled_events_sql(model_name) }}) u on u.event_id = o.braze_key and u.status = 'unknown'
    {%- else %}
where not exists (
    select 1 from {{ dbt_braze.braze_events_log_relation() }} l
    where l.model_name = {{ dbt_braze.braze_string_literal(model_name) }} and l.event_id = o.braze_key)
    {%- endif %}
  {%- endset -%}
  {{ return(dbt_braze.braze_keyset_page(sql, page)) }}
{% endmacro %}

{#- Rows of the log: `rows_sql` has event_id, row_hash, status, reason (braze_rows_sql). -#}
{% macro braze_record_events_sql(model_name, run_id, rows_sql) %}
insert into {{ dbt_braze.braze_events_log_relation() }} (model_name, event_id, row_hash, status, reason, run_id, recorded_at)
select {{ dbt_braze.braze_string_literal(model_name) }}, event_id, row_hash, status, reason,
       {{ dbt_braze.braze_string_literal(run_id) }}, {{ dbt_braze.braze_utc_now() }}
from ({{ rows_sql }}) recorded
{% endmacro %}

{#-
  Unsettled ids whose status is `from_status` get `to_status`: at the start of a
  sync, in_flight ids (a sync stopped while they were in flight) become unknown;
  with --forget-unknown, unknown ids become delivered.
-#}
{% macro braze_move_events_sql(model_name, run_id, from_status, to_status, reason) %}
insert into {{ dbt_braze.braze_events_log_relation() }} (model_name, event_id, row_hash, status, reason, run_id, recorded_at)
select {{ dbt_braze.braze_string_literal(model_name) }}, event_id, row_hash, {{ dbt_braze.braze_string_literal(to_status) }},
       {{ dbt_braze.braze_string_literal(reason) }}, {{ dbt_braze.braze_string_literal(run_id) }}, {{ dbt_braze.braze_utc_now() }}
from ({{ dbt_braze.braze_unsettled_events_sql(model_name) }}) unsettled
where status = {{ dbt_braze.braze_string_literal(from_status) }}
{% endmacro %}

{#- Ids per status (delivered, rejected, unknown, in_flight) of a model. -#}
{% macro braze_event_statuses_sql(model_name) %}
select status, count(*) from ({{ dbt_braze.braze_unsettled_events_sql(model_name) }}) unsettled group by status
union all
select status, count(distinct event_id) from {{ dbt_braze.braze_events_log_relation() }}
where model_name = {{ dbt_braze.braze_string_literal(model_name) }} and status in ('delivered', 'rejected')
group by status
{% endmacro %}

{#-
  The hook's copy of the rules of `dbt-braze validate` for blocks of kind events
  and purchases (dbt_braze/config.py: the schema's `events` and `purchases`
  definitions, _check_identifier, _check_identifier_column,
  _check_event_columns, _check_properties); braze_block_problems hands such
  blocks here. Returns what braze_block_problems returns, with `events`: the
  real columns of event_id and time and of the kind's fields ([attribute,
  column]), and the properties as `mappings`.
-#}
{% macro braze_event_block_problems(here, block, columns, result) %}
  {%- set problems = result.problems -%}
  {%- set kind = block['kind'] -%}
  {%- set required = ['event_id', 'time'] + (['name'] if kind == 'events' else ['product_id', 'currency', 'price']) -%}
  {%- set optional = [] if kind == 'events' else ['quantity'] -%}
  {%- set names = ['external_id', 'braze_id', 'email', 'phone'] + required + optional -%}
  {%- for key, value in block.items() -%}
    {%- if key in names -%}
      {%- if not (value is string and value | length > 0) -%}{%- do problems.append(here ~ "." ~ key ~ ": expected a non-empty string") -%}{%- endif -%}
    {%- elif key == 'user_alias' -%}
      {%- if value is not mapping -%}{%- do problems.append(here ~ ".user_alias: expected {name: <column>, label: <text>}") -%}
      {%- else -%}
        {%- for part in value if part not in ['name', 'label'] -%}{%- do problems.append(here ~ ".user_alias." ~ part ~ ": unknown key") -%}{%- endfor -%}
        {%- for part in ['name', 'label'] if not (value.get(part) is string and value.get(part) | length > 0) -%}
          {%- do problems.append(here ~ ".user_alias." ~ part ~ ": expected a non-empty string") -%}
        {%- endfor -%}
      {%- endif -%}
    {%- elif key == 'properties' -%}
      {%- if value is not mapping -%}{%- do problems.append(here ~ ".properties: expected a mapping") -%}
      {%- else -%}
        {%- for column_name, name in value.items() if not (name is string and name | length > 0) -%}
          {%- do problems.append(here ~ ".properties." ~ column_name ~ ": expected a non-empty string") -%}
        {%- endfor -%}
      {%- endif -%}
    {%- elif key == 'backfill' -%}
      {%- if not (value is string and modules.re.match('^(none|all|[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01]))$', value)) -%}
        {%- do problems.append(here ~ ".backfill: expected none, all or a date YYYY-MM-DD") -%}
      {%- endif -%}
    {%- elif key == 'max_duplicate_share' -%}
      {%- if not (value is number and value is not boolean) or value < 0 or value > 1 -%}{%- do problems.append(here ~ "." ~ key ~ ": expected a number from 0 to 1") -%}{%- endif -%}
    {%- elif key != 'kind' -%}
      {%- do problems.append(here ~ "." ~ key ~ ": unknown key") -%}
    {%- endif -%}
  {%- endfor -%}
  {#- the identifier, as braze_block_problems reads it for kind users -#}
  {%- set identifiers = dbt_braze._braze_identifiers(here, block, problems) -%}
  {%- if identifiers is none -%}{{ return(result) }}{%- endif -%}
  {%- set real_names = dbt_braze._braze_real_names(columns) -%}
  {%- do result.update(dbt_braze._braze_identifier_column(here, block, identifiers, columns, real_names, problems)) -%}
  {%- set found = [] -%}
  {%- for key in required + optional -%}
    {%- set name = block.get(key) -%}
    {%- if name is none and key in required -%}
      {%- do problems.append(here ~ ": `" ~ key ~ "` is required for kind " ~ kind) -%}
    {%- elif name is string and name -%}
      {%- set real = name if columns is none else real_names.get(name | lower) -%}
      {%- if real is none -%}
        {%- do problems.append(here ~ "." ~ key ~ ": column `" ~ name ~ "` does not exist in the model") -%}
      {%- else -%}
        {%- do found.append([key, real]) -%}
      {%- endif -%}
    {%- endif -%}
  {%- endfor -%}
  {%- do result.update({'events': found}) -%}
  {%- set properties = block.get('properties') -%}
  {%- set seen_columns = [] -%}
  {%- for column_name, name in (properties.items() if properties is mapping else []) if name is string -%}
    {%- set path = here ~ ".properties." ~ column_name -%}
    {%- set real = column_name if columns is none else real_names.get(column_name | lower) -%}
    {%- if real is none -%}
      {%- do problems.append(path ~ ": column `" ~ column_name ~ "` does not exist in the model") -%}
    {%- else -%}
      {%- if name.startswith('$') -%}
        {%- do problems.append(path ~ ": property `" ~ name ~ "` starts with `$`") -%}
      {%- elif name | length > 255 -%}
        {%- do problems.append(path ~ ": property `" ~ name[:40] ~ "...` has over 255 characters") -%}
      {%- elif modules.re.search('[\\x00-\\x1f\\x7f]', name) -%}
        {%- do problems.append(path ~ ": property " ~ tojson(name) ~ " holds a control character") -%}
      {%- endif -%}
      {%- if name in ['time', 'event_name'] -%}
        {%- do problems.append(path ~ ": property `" ~ name ~ "` is reserved by Braze") -%}
      {%- endif -%}
      {%- if real | lower in seen_columns -%}
        {%- do problems.append(path ~ ": column `" ~ column_name ~ "` is mapped twice") -%}
      {%- endif -%}
      {%- do seen_columns.append(real | lower) -%}
      {%- do result.mappings.append({'column': real, 'attribute': name}) -%}
    {%- endif -%}
  {%- endfor -%}
  {%- if result.id_column is none and not problems -%}
    {%- do problems.append(here ~ ": no identifier column") -%}
  {%- endif -%}
  {{ return(result) }}
{% endmacro %}

{#- The spec braze_build_event_pending takes, from the checked block (braze_event_block_problems). -#}
{% macro braze_event_spec(model_name, relation, kind, id_field, id_column, events, properties, backfill, key_prefix) %}
  {%- set wanted = [{'column': id_column, 'attribute': id_field}] -%}
  {%- for key, column in events -%}{%- do wanted.append({'column': column, 'attribute': key}) -%}{%- endfor -%}
  {%- set typed = dbt_braze.braze_typed_mappings(relation, wanted) -%}
  {%- set typed_properties = dbt_braze.braze_typed_mappings(relation, properties) -%}
  {%- if typed is none or typed_properties is none -%}{{ return(none) }}{%- endif -%}
  {%- set by_key = {} -%}
  {%- for m in typed[1:] -%}{%- do by_key.update({m.attribute: m}) -%}{%- endfor -%}
  {{ return({'kind': kind, 'model_name': model_name, 'relation': relation, 'id_column': typed[0].column,
             'identifier': typed[0], 'event_id': by_key['event_id'], 'time': by_key['time'],
             'fields': typed[1:] | rejectattr('attribute', 'in', ['event_id', 'time']) | list,
             'mappings': typed_properties, 'backfill': backfill or 'none', 'key_prefix': key_prefix}) }}
{% endmacro %}
