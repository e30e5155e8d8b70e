{#-
  Spark overrides (dbt-spark; dbt-databricks dispatches to spark__ too), only
  where Spark's SQL differs from the defaults. Measured on dbt-spark 1.11 with
  pyspark 4.3 in a local session, where dbt-spark turns ANSI mode off.
  Spark's `timestamp` is TIMESTAMP_LTZ, an instant shown in the session time
  zone (spark.sql.session.timeZone); `timestamp_ntz` is a wall-clock time.
  Reference: https://spark.apache.org/docs/latest/sql-ref-datatypes.html
-#}

{#-
  `current_timestamp at time zone 'UTC'` is not Spark syntax. The package's
  timestamp columns are Spark `timestamp` (instants), so the current instant is
  right whatever the session zone: every comparison (acked_at >= built_at, the
  lock's lease) is made inside Spark between instants.
-#}
{% macro spark__braze_utc_now() -%}
  current_timestamp()
{%- endmacro %}

{#-
  One scan of the model instead of one per mapped column: Spark inlines the
  model (a view by default) into every branch of the default UNION ALL, and
  neither caches nor reuses it. stack() emits the same (attribute, value_text,
  value_type) rows, so the hashes are those of the default.
-#}
{% macro spark__braze_current_values_sql(relation, id_column, mappings) %}
    select cast({{ adapter.quote(id_column) }} as string) as braze_key,
           stack({{ mappings | length }}
           {%- for m in mappings %},
             '{{ m.attribute | replace("\\", "\\\\") | replace("'", "\\'") }}', {{ dbt_braze.braze_normalized_text(adapter.quote(m.column), m.value_type) }}, '{{ dbt_braze.braze_sent_type(m.value_type) }}'
           {%- endfor %}) as (attribute, value_text, value_type)
    from {{ relation }}
{% endmacro %}

{#-
  The default reads `timestamp_ntz` as zoned (it ends in "tz") and Spark's
  plain `timestamp` as naive: on Spark it is the other way round.
-#}
{% macro spark__braze_value_type(column) %}
  {%- set dtype = column.dtype | lower -%}
  {%- if dtype in ('timestamp', 'timestamp_ltz') -%}
    {{ return('timestamptz') }}
  {%- elif dtype == 'timestamp_ntz' -%}
    {{ return('timestamp') }}
  {%- endif -%}
  {{ return(dbt_braze.default__braze_value_type(column)) }}
{% endmacro %}

{#-
  - date: Spark's to_char reads `YYYY`/`DD` as week-year/day-of-year.
  - timestamps: date_format and `cast(timestamp as string)` render in the
    session zone, and to_utc_timestamp shifts through local wall-clock time
    (wrong in the hour a DST change skips). Only `cast(timestamp_ntz as
    string)` is zone-free, so an instant is first turned into the UTC wall
    clock with epoch arithmetic (unix_seconds, timestampadd on timestamp_ntz).
  - json: to_json drops null fields unless told not to, and renders nested
    timestamps in the session zone.
  - number: with ANSI off, `cast(decimal as string)` gives `1.000E-7` for small
    values; format_number with the pattern `0.<scale zeros>` (typeof gives
    the scale) prints the plain digits PostgreSQL and DuckDB print. Floats keep Spark's text (`1.0E20`, `100.0`):
    the sync parses both forms as the same JSON number.
-#}
{% macro spark__braze_normalized_text(expr, value_type) %}
  {%- if value_type == 'date' -%}
    date_format({{ expr }}, 'yyyy-MM-dd')
  {%- elif value_type == 'timestamp' -%}
    {{ dbt_braze._braze_spark_iso_text(expr) }}
  {%- elif value_type == 'timestamptz' -%}
    {{ dbt_braze._braze_spark_iso_text("timestampadd(SECOND, unix_seconds(" ~ expr ~ "), timestamp_ntz '1970-01-01 00:00:00')") }}
  {%- elif value_type == 'json' -%}
    to_json({{ expr }}, map('ignoreNullFields', 'false', 'timeZone', 'UTC',
                            'timestampFormat', "yyyy-MM-dd'T'HH:mm:ss'Z'",
                            'timestampNTZFormat', "yyyy-MM-dd'T'HH:mm:ss'Z'"))
  {%- elif value_type == 'number' -%}
    {%- set scale = "cast(substring_index(substring_index(typeof(" ~ expr ~ "), ',', -1), ')', 1) as int)" -%}
    case when typeof({{ expr }}) like 'decimal(%'
         then format_number({{ expr }}, concat('0', if({{ scale }} > 0, concat('.', repeat('0', {{ scale }})), '')))
         else cast({{ expr }} as string) end
  {%- else -%}
    {{ dbt_braze.default__braze_normalized_text(expr, value_type) }}
  {%- endif -%}
{% endmacro %}

{#- `YYYY-MM-DDTHH:MM:SSZ` of a timestamp_ntz, truncated to the second, zone-free. -#}
{% macro _braze_spark_iso_text(ntz_expr) -%}
  concat(replace(substr(cast({{ ntz_expr }} as string), 1, 19), ' ', 'T'), 'Z')
{%- endmacro %}
