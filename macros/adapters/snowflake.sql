{#-
  Snowflake overrides (dbt-snowflake), only where Snowflake's SQL differs from
  the defaults. Checked by rendering through dbt-snowflake 1.11 and parsing
  with sqlglot; not run against a live Snowflake account. See
  docs/warehouses.md.
-#}

{#-
  `current_timestamp at time zone 'UTC'` is not Snowflake syntax. sysdate()
  is the current UTC time as a TIMESTAMP_NTZ, whatever the session zone
  (https://docs.snowflake.com/en/sql-reference/functions/sysdate).
-#}
{% macro snowflake__braze_utc_now() -%}
  sysdate()
{%- endmacro %}

{#-
  The default reads TIMESTAMP_NTZ as zoned (it ends in "tz"); Snowflake
  reports every integer as NUMBER(p, 0) (SnowflakeColumn.is_integer() is
  always false).
-#}
{% macro snowflake__braze_value_type(column) %}
  {%- set dtype = column.dtype | lower -%}
  {%- if dtype in ('timestamp_ntz', 'datetime') -%}
    {{ return('timestamp') }}
  {%- elif dtype in ('number', 'decimal', 'numeric') -%}
    {{ return('integer' if column.numeric_scale == 0 else 'number') }}
  {%- endif -%}
  {{ return(dbt_braze.default__braze_value_type(column)) }}
{% endmacro %}

{#-
  - timestamptz: `at time zone` is not Snowflake syntax; convert_timezone('UTC',
    x) gives the UTC wall clock of TIMESTAMP_TZ/LTZ values.
  - json: casting a VARIANT to text drops the quotes of a string value;
    to_json always gives JSON text (keys in Snowflake's stored order).
  Years outside 1 to 9999 keep Snowflake's own text, as in the default
  (_braze_iso_or_raw in values.sql).
  Dates and naive timestamps use the default to_char formats, which Snowflake
  reads the same way (https://docs.snowflake.com/en/sql-reference/functions-conversion#date-and-time-formats-in-conversion-functions).
-#}
{% macro snowflake__braze_normalized_text(expr, value_type) %}
  {%- if value_type == 'timestamptz' -%}
    {%- set utc = "convert_timezone('UTC', " ~ expr ~ ")" -%}
    {%- set iso -%}to_char({{ utc }}, 'YYYY-MM-DD"T"HH24:MI:SS"Z"'){%- endset -%}
    {{ dbt_braze._braze_iso_or_raw("cast(" ~ utc ~ " as date)", iso, "cast(" ~ utc ~ " as varchar)") }}
  {%- elif value_type == 'json' -%}
    to_json({{ expr }})
  {%- else -%}
    {{ dbt_braze.default__braze_normalized_text(expr, value_type) }}
  {%- endif -%}
{% endmacro %}

{#-
  A Snowflake string literal: backslash is an escape character there
  (https://docs.snowflake.com/en/sql-reference/data-types-text#escape-sequences-in-single-quoted-string-constants).
-#}
{% macro snowflake__braze_string_literal(text) -%}
  '{{ text | replace("\\", "\\\\") | replace("'", "''") }}'
{%- endmacro %}

{#-
  No string_to_array/unnest: split() gives an ARRAY once per column, and
  flatten() over the first one yields the indexes (item.index) of the others
  (https://docs.snowflake.com/en/sql-reference/functions/flatten).
-#}
{% macro snowflake__braze_rows_sql(columns) %}
  select
  {%- for name, text in columns %}
    {{ dbt_braze.braze_decode_cell('cast(handed.c' ~ loop.index0 ~ '[item.index] as varchar)') }} as {{ name }}{% if not loop.last %},{% endif %}
  {%- endfor %}
  from (
    select
    {%- for name, text in columns %}
      split({{ dbt_braze.braze_string_literal(text) }}, chr(31)) as c{{ loop.index0 }}{% if not loop.last %},{% endif %}
    {%- endfor %}
  ) handed,
  lateral flatten(input => handed.c0) item
{% endmacro %}

{#-
  Snowflake evaluates a correlated EXISTS only in a WHERE clause, and refuses
  some (outer columns inside functions such as coalesce): "Unsupported
  subquery type" (https://docs.snowflake.com/en/sql-reference/operators-subquery).
  The same reads as joins on pre-aggregated state and rejections: a value is
  acknowledged when the latest acknowledgement of that exact hash is not older
  than the pending relation.
-#}
{% macro snowflake__braze_read_upserts_sql(model_name) %}
select braze_key, attribute, value_text, value_type, value_hash, is_new
from (
    select unsent.*,
           min(refused) over (partition by braze_key) as all_refused
    from (
        select p.braze_key, p.attribute, p.value_text, p.value_type, p.value_hash, p.is_new,
               case when r.braze_key is null then 0 else 1 end as refused
        from {{ dbt_braze.braze_pending_relation(model_name) }} p
        left join (
            select distinct braze_key, attribute, coalesce(value_hash, '-') as hash_or_dash
            from {{ dbt_braze.braze_rejected_relation() }}
            where model_name = {{ dbt_braze.braze_string_literal(model_name) }}
        ) r on r.braze_key = p.braze_key and r.attribute = p.attribute
           and r.hash_or_dash = coalesce(p.value_hash, '-')
        left join (
            select braze_key, attribute, coalesce(value_hash, '-') as hash_or_dash, max(acked_at) as last_acked_at
            from {{ dbt_braze.braze_state_relation() }}
            where model_name = {{ dbt_braze.braze_string_literal(model_name) }}
            group by 1, 2, 3
        ) s on s.braze_key = p.braze_key and s.attribute = p.attribute
           and s.hash_or_dash = coalesce(p.value_hash, '-')
        where p.change_kind = 'upsert'
          and (s.last_acked_at is null or s.last_acked_at < p.built_at)
    ) unsent
) judged
where all_refused = 0
order by braze_key, attribute
{% endmacro %}

{% macro snowflake__braze_read_removed_sql(model_name, mapped_only) %}
select p.braze_key, p.attribute, cast(null as varchar) as value_text,
       cast(null as varchar) as value_type,
       cast(null as varchar) as value_hash, false as is_new
from {{ dbt_braze.braze_pending_relation(model_name) }} p
left join (
    select braze_key, attribute, max(acked_at) as last_acked_at
    from {{ dbt_braze.braze_state_relation() }}
    where model_name = {{ dbt_braze.braze_string_literal(model_name) }} and value_hash is null
    group by 1, 2
) s on s.braze_key = p.braze_key and s.attribute = p.attribute
where p.change_kind = 'removed'
  {% if mapped_only %}and p.is_mapped{% endif %}
  and (s.last_acked_at is null or s.last_acked_at < p.built_at)
order by p.braze_key, p.attribute
{% endmacro %}

{#-
  The status reads without the correlated `not exists` (an outer column
  compared with `>`: "Unsupported subquery type", as above). A rejection
  stands when no acknowledgement of its user is later than it, that is when
  the user's latest acknowledgement is not later. Nulls as in the default: an
  acknowledgement without a time is never later, and a rejection without a
  time stands.
-#}
{% macro snowflake__braze_rejected_summary_sql(model_name, limit) %}
select braze_key, max(reason) as reason, max(rejected_at) as rejected_at
from ({{ dbt_braze._braze_snowflake_standing_rejections(model_name) }}) standing
group by braze_key
order by max(rejected_at) desc, braze_key
limit {{ limit | int }}
{% endmacro %}

{% macro snowflake__braze_rejected_count_sql(model_name) %}
select count(distinct braze_key)
from ({{ dbt_braze._braze_snowflake_standing_rejections(model_name) }}) standing
{% endmacro %}

{% macro _braze_snowflake_standing_rejections(model_name) -%}
select r.braze_key, r.reason, r.rejected_at
from {{ dbt_braze.braze_rejected_relation() }} r
left join (
    select braze_key, max(acked_at) as last_acked_at
    from {{ dbt_braze.braze_state_relation() }}
    where model_name = {{ dbt_braze.braze_string_literal(model_name) }}
    group by braze_key
) s on s.braze_key = r.braze_key
where r.model_name = {{ dbt_braze.braze_string_literal(model_name) }}
  and (s.last_acked_at is null or r.rejected_at is null or s.last_acked_at <= r.rejected_at)
{%- endmacro %}

{#-
  DDL commits on its own in Snowflake, so drop-then-rename leaves a moment
  with no pending relation. ALTER TABLE ... SWAP WITH exchanges the two in one
  metadata operation (https://docs.snowflake.com/en/sql-reference/sql/alter-table).
-#}
{% macro snowflake__braze_swap_relation(staging, target) %}
  {%- set existing = adapter.get_relation(database=target.database, schema=target.schema, identifier=target.identifier) -%}
  {%- if existing is none -%}
    {%- do adapter.rename_relation(staging, target) -%}
  {%- else -%}
    {%- do run_query(dbt_braze.snowflake__braze_swap_sql(staging, target)) -%}
    {%- do adapter.drop_relation(staging) -%}
  {%- endif -%}
{% endmacro %}

{% macro snowflake__braze_swap_sql(staging, target) -%}
  alter table {{ staging }} swap with {{ target }}
{%- endmacro %}
