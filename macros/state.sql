{#-
  The package's own tables, all in one schema (var `dbt_braze_schema`,
  default: the target schema):
    braze_state             append-only log of what Braze acknowledged, one row
                            per (model, user, attribute) per acknowledgement;
                            value_hash null = Braze holds no value. Appending
                            (never updating) keeps every write a single atomic
                            INSERT on every adapter, Spark's parquet included.
    braze_rejected          objects Braze refused, per attribute, with the reason
                            and the model's kind (users, events, purchases, catalog)
    braze_pending__<model>  the changes computed by the last `dbt run`
    braze_objects__<model>  its upserts rendered as one object per user (json.sql)
    braze_fingerprints      per user, a hash of the model row Braze holds (below)
    braze_events_log        kinds events and purchases: each event id's status (events.sql)
    braze_sync_runs         append-only run history: a `running` row at the start
                            of each sync (the lock claim), heartbeats, and a final
                            row with the status and counts, each naming the model's
                            kind (null for the Spark compaction claim); a sync's
                            final row also keeps the model's log sizes as last
                            counted (log_*: dbt_braze/compaction.py)
-#}

{% macro braze_schema() %}
  {{ return(dbt_braze._braze_var('dbt_braze_schema')) }}
{% endmacro %}

{#- target.get: Spark profiles have no database (SparkRelation refuses one). -#}
{% macro braze_relation(identifier) %}
  {{ return(api.Relation.create(database=target.get('database'), schema=dbt_braze.braze_schema(), identifier=identifier, type='table')) }}
{% endmacro %}

{% macro braze_state_relation() %}
  {{ return(dbt_braze.braze_relation('braze_state')) }}
{% endmacro %}

{#-
  braze_fingerprints: per user, a hash of the model row whose values Braze
  holds: written by the hook when a user's diff comes out empty, and by the
  sync when Braze accepts a user's object from braze_objects__<model> (the
  row the object brings Braze to, braze_vouch_objects_sql); NULL rows the
  sync appends when it acknowledges anything else for a user (removed users,
  --full-refresh, objects rebuilt mid-sync: the state moved, the fingerprint
  no longer vouches for it). The hook diffs
  attribute by attribute only the users whose latest fingerprint differs
  from their row's: a run where 1% of a million users changed compares 10,000
  users' attributes, not ten million. Append-only, like braze_state.
-#}
{% macro braze_fingerprints_relation() %}
  {{ return(dbt_braze.braze_relation('braze_fingerprints')) }}
{% endmacro %}

{% macro braze_fingerprints_columns() %}
  {{ return([
    ('model_name', dbt_braze.braze_type_string()), ('braze_key', dbt_braze.braze_type_string()),
    ('fingerprint', dbt_braze.braze_type_string()), ('recorded_at', dbt.type_timestamp()),
  ]) }}
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

{#-
  The current time less `seconds` (the lock's lease), comparable with the
  package's time columns. Dispatched because dbt.dateadd is not that on every
  warehouse (BigQuery: DATETIME, where the columns are TIMESTAMP).
-#}
{% macro braze_utc_seconds_ago(seconds) %}
  {{ return(adapter.dispatch('braze_utc_seconds_ago', 'dbt_braze')(seconds)) }}
{% endmacro %}

{% macro default__braze_utc_seconds_ago(seconds) -%}
  {{ dbt.dateadd('second', -1 * seconds, dbt_braze.braze_utc_now()) }}
{%- endmacro %}

{#-
  `text` as a string literal of the warehouse's SQL. The default doubles the
  quotes (standard SQL: PostgreSQL, DuckDB); warehouses where a backslash is
  an escape, or where '' is no quote (BigQuery, Spark), override it.
-#}
{% macro braze_string_literal(text) %}
  {{ return(adapter.dispatch('braze_string_literal', 'dbt_braze')(text)) }}
{% endmacro %}

{% macro default__braze_string_literal(text) -%}
  '{{ text | replace("'", "''") }}'
{%- endmacro %}

{#-
  `name` as a quoted identifier of the warehouse's SQL, a quote inside it
  doubled (dbt's adapter.quote does not escape it, so a column named `a"b`
  would end the identifier early). Spark, Databricks and BigQuery quote
  with backticks.
-#}
{% macro braze_quote_identifier(name) %}
  {{ return(adapter.dispatch('braze_quote_identifier', 'dbt_braze')(name)) }}
{% endmacro %}

{% macro default__braze_quote_identifier(name) -%}
  "{{ name | replace('"', '""') }}"
{%- endmacro %}

{% macro spark__braze_quote_identifier(name) -%}
  `{{ name | replace('`', '``') }}`
{%- endmacro %}

{% macro bigquery__braze_quote_identifier(name) -%}
  {{ return(dbt_braze.spark__braze_quote_identifier(name)) }}
{%- endmacro %}

{#-
  The text type of the package's columns and of the casts its change
  detection hashes: dbt's string type, except where that type is short
  (Redshift: macros/adapters/redshift.sql).
-#}
{% macro braze_type_string() %}
  {{ return(adapter.dispatch('braze_type_string', 'dbt_braze')()) }}
{% endmacro %}

{% macro default__braze_type_string() %}
  {{ return(dbt.type_string()) }}
{% endmacro %}

{#- The hash of a text expression, as change detection stores it (value_hash, fingerprints). -#}
{% macro braze_hash(expr) %}
  {{ return(adapter.dispatch('braze_hash', 'dbt_braze')(expr)) }}
{% endmacro %}

{% macro default__braze_hash(expr) %}
  {{ return(dbt.hash(expr)) }}
{% endmacro %}

{#-
  The columns of `relation` (dbt Column objects), as adapter.get_columns_in_relation
  gives them. PostgreSQL: dbt-postgres writes the relation's name into its
  query unescaped, so a model named `o'brien` broke it; this runs the same
  query with the names as string literals.
-#}
{% macro braze_columns_in_relation(relation) %}
  {{ return(adapter.dispatch('braze_columns_in_relation', 'dbt_braze')(relation)) }}
{% endmacro %}

{% macro default__braze_columns_in_relation(relation) %}
  {{ return(adapter.get_columns_in_relation(relation)) }}
{% endmacro %}

{#- dbt-redshift dispatches to postgres__ too: keep its own macro (not checked live). -#}
{% macro redshift__braze_columns_in_relation(relation) %}
  {{ return(adapter.get_columns_in_relation(relation)) }}
{% endmacro %}

{% macro postgres__braze_columns_in_relation(relation) %}
  {%- set sql -%}
    select column_name, data_type, character_maximum_length, numeric_precision, numeric_scale
    from {{ relation.information_schema('columns') }}
    where table_name = {{ dbt_braze.braze_string_literal(relation.identifier) }}
      {%- if relation.schema %}
      and table_schema = {{ dbt_braze.braze_string_literal(relation.schema) }}
      {%- endif %}
    order by ordinal_position
  {%- endset -%}
  {{ return(sql_convert_columns_in_relation(run_query(sql))) }}
{% endmacro %}

{% macro braze_state_columns() %}
  {{ return([
    ('model_name', dbt_braze.braze_type_string()), ('braze_key', dbt_braze.braze_type_string()),
    ('attribute', dbt_braze.braze_type_string()), ('value_hash', dbt_braze.braze_type_string()),
    ('acked_at', dbt.type_timestamp()), ('run_id', dbt_braze.braze_type_string()),
  ]) }}
{% endmacro %}

{% macro braze_runs_relation() %}
  {{ return(dbt_braze.braze_relation('braze_sync_runs')) }}
{% endmacro %}

{% macro braze_runs_columns() %}
  {{ return([
    ('run_id', dbt_braze.braze_type_string()), ('model_name', dbt_braze.braze_type_string()),
    ('status', dbt_braze.braze_type_string()), ('started_at', dbt.type_timestamp()),
    ('recorded_at', dbt.type_timestamp()), ('ended_at', dbt.type_timestamp()),
    ('users_created', dbt.type_bigint()), ('users_updated', dbt.type_bigint()),
    ('attributes_unset', dbt.type_bigint()), ('users_deleted', dbt.type_bigint()),
    ('rows_rejected', dbt.type_bigint()), ('requests', dbt.type_bigint()),
    ('data_points', dbt.type_bigint()), ('error', dbt_braze.braze_type_string()),
    ('holder', dbt_braze.braze_type_string()), ('subscription_changes', dbt.type_bigint()),
    ('kind', dbt_braze.braze_type_string()),
    ('log_state_rows', dbt.type_bigint()), ('log_state_keys', dbt.type_bigint()),
    ('log_fingerprint_rows', dbt.type_bigint()), ('log_fingerprint_keys', dbt.type_bigint()),
  ]) }}
{% endmacro %}

{% macro braze_rejected_columns() %}
  {{ return([
    ('model_name', dbt_braze.braze_type_string()), ('braze_key', dbt_braze.braze_type_string()),
    ('attribute', dbt_braze.braze_type_string()), ('value_hash', dbt_braze.braze_type_string()),
    ('reason', dbt_braze.braze_type_string()), ('rejected_at', dbt.type_timestamp()),
    ('kind', dbt_braze.braze_type_string()),
  ]) }}
{% endmacro %}

{#- The package's tables and their columns. -#}
{% macro braze_tables() %}
  {{ return([
    (dbt_braze.braze_state_relation(), dbt_braze.braze_state_columns()),
    (dbt_braze.braze_rejected_relation(), dbt_braze.braze_rejected_columns()),
    (dbt_braze.braze_runs_relation(), dbt_braze.braze_runs_columns()),
    (dbt_braze.braze_fingerprints_relation(), dbt_braze.braze_fingerprints_columns()),
    (dbt_braze.braze_events_log_relation(), dbt_braze.braze_events_log_columns()),
  ]) }}
{% endmacro %}

{#-
  Create the package's tables when missing, and add columns a newer version
  of the package introduced (never drops or retypes anything).
-#}
{% macro braze_ensure_tables() %}
  {#- the adapter's own create_schema quotes as the adapter does (Snowflake upper-cases) -#}
  {%- do adapter.create_schema(api.Relation.create(database=target.get('database'), schema=dbt_braze.braze_schema())) -%}
  {%- for relation, columns in dbt_braze.braze_tables() -%}
    {%- set cols = [] -%}
    {%- for name, dtype in columns -%}{%- do cols.append(name ~ ' ' ~ dtype) -%}{%- endfor -%}
    {%- do run_query(dbt_braze.braze_create_table_sql(relation, cols | join(', '))) -%}
    {%- set existing = [] -%}
    {%- for c in adapter.get_columns_in_relation(relation) -%}{%- do existing.append(c.name | lower) -%}{%- endfor -%}
    {%- set missing = [] -%}
    {%- for name, dtype in columns -%}
      {%- if name not in existing -%}{%- do missing.append(api.Column(name, dtype)) -%}{%- endif -%}
    {%- endfor -%}
    {%- if missing -%}{%- do alter_relation_add_remove_columns(relation, missing, none) -%}{%- endif -%}
  {%- endfor -%}
  {%- do adapter.commit() -%}
{% endmacro %}

{% macro braze_create_table_sql(relation, columns_sql) %}
  {{ return(adapter.dispatch('braze_create_table_sql', 'dbt_braze')(relation, columns_sql)) }}
{% endmacro %}

{% macro default__braze_create_table_sql(relation, columns_sql) %}
  create table if not exists {{ relation }} ({{ columns_sql }})
{% endmacro %}
