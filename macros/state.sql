{#-
  The package's own tables, all in one schema (var `dbt_braze_schema`,
  default: the target schema):
    braze_state             append-only log of what Braze acknowledged, one row
                            per (model, user, attribute) per acknowledgement;
                            value_hash null = Braze holds no value. Appending
                            (never updating) keeps every write a single atomic
                            INSERT on every adapter, Spark's parquet included.
    braze_rejected          objects Braze refused, per attribute, with the reason
    braze_pending__<model>  the changes computed by the last `dbt run`
-#}

{% macro braze_schema() %}
  {{ return(var('dbt_braze_schema', target.schema)) }}
{% endmacro %}

{% macro braze_relation(identifier) %}
  {{ return(api.Relation.create(database=target.database, schema=dbt_braze.braze_schema(), identifier=identifier, type='table')) }}
{% endmacro %}

{% macro braze_state_relation() %}
  {{ return(dbt_braze.braze_relation('braze_state')) }}
{% endmacro %}

{% macro braze_rejected_relation() %}
  {{ return(dbt_braze.braze_relation('braze_rejected')) }}
{% endmacro %}

{% macro braze_pending_relation(model_name) %}
  {{ return(dbt_braze.braze_relation('braze_pending__' ~ model_name)) }}
{% endmacro %}

{#- Current time as a naive UTC timestamp, whatever the session time zone. -#}
{% macro braze_utc_now() %}
  {{ return(adapter.dispatch('braze_utc_now', 'dbt_braze')()) }}
{% endmacro %}

{% macro default__braze_utc_now() -%}
  cast(current_timestamp at time zone 'UTC' as {{ dbt.type_timestamp() }})
{%- endmacro %}

{% macro duckdb__braze_utc_now() -%}
  timezone('UTC', now())
{%- endmacro %}

{% macro braze_state_columns() %}
  {{ return([
    ('model_name', dbt.type_string()), ('braze_key', dbt.type_string()),
    ('attribute', dbt.type_string()), ('value_hash', dbt.type_string()),
    ('acked_at', dbt.type_timestamp()),
  ]) }}
{% endmacro %}

{% macro braze_rejected_columns() %}
  {{ return([
    ('model_name', dbt.type_string()), ('braze_key', dbt.type_string()),
    ('attribute', dbt.type_string()), ('value_hash', dbt.type_string()),
    ('reason', dbt.type_string()), ('rejected_at', dbt.type_timestamp()),
  ]) }}
{% endmacro %}

{#- SQL that creates the package's tables when missing; run once per hook and per sync. -#}
{% macro braze_create_tables_sql() %}
  {{ return(adapter.dispatch('braze_create_tables_sql', 'dbt_braze')()) }}
{% endmacro %}

{% macro default__braze_create_tables_sql() %}
  {%- set statements = ['create schema if not exists ' ~ adapter.quote(dbt_braze.braze_schema())] -%}
  {%- for relation, columns in [
        (dbt_braze.braze_state_relation(), dbt_braze.braze_state_columns()),
        (dbt_braze.braze_rejected_relation(), dbt_braze.braze_rejected_columns())] -%}
    {%- set cols = [] -%}
    {%- for name, dtype in columns -%}{%- do cols.append(name ~ ' ' ~ dtype) -%}{%- endfor -%}
    {%- do statements.append('create table if not exists ' ~ relation ~ ' (' ~ cols | join(', ') ~ ')') -%}
  {%- endfor -%}
  {{ return(statements) }}
{% endmacro %}

{% macro braze_ensure_tables() %}
  {%- for sql in dbt_braze.braze_create_tables_sql() -%}
    {%- do run_query(sql) -%}
  {%- endfor -%}
{% endmacro %}
