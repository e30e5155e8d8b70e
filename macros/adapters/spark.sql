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
{% macro spark__braze_current_values_sql(relation, id_column, mappings, key_prefix='') %}
    select {{ dbt_braze.braze_key_sql(id_column, key_prefix) }} as braze_key,
           stack({{ mappings | length }}
           {%- for m in mappings %},
             {{ dbt_braze.braze_string_literal(m.attribute) }}, {{ dbt_braze.braze_mapped_text(m) }}, '{{ dbt_braze.braze_sent_type(m.value_type) }}'
           {%- endfor %}) as (attribute, value_text, value_type)
    from {{ relation }}
{% endmacro %}

{#-
  A Spark string literal: backslash is an escape, and '' is no quote ('a''b'
  reads as 'a' 'b', concatenated: "ab")
  (https://spark.apache.org/docs/latest/sql-ref-literals.html#string-literal).
-#}
{% macro spark__braze_string_literal(text) -%}
  '{{ text | replace("\\", "\\\\") | replace("'", "\\'") }}'
{%- endmacro %}

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
  - date: Spark's to_char reads `YYYY`/`DD` as week-year/day-of-year; its
    `yyyy` is the year of the era (1 BC prints `0001`), so years outside 1 to
    9999 keep Spark's own text, as in the default (_braze_iso_or_raw).
  - timestamps: date_format and `cast(timestamp as string)` render in the
    session zone, and to_utc_timestamp shifts through local wall-clock time
    (wrong in the hour a DST change skips). Only `cast(timestamp_ntz as
    string)` is zone-free, so an instant is first turned into the UTC wall
    clock with epoch arithmetic (unix_seconds, timestampadd on timestamp_ntz).
  - json: to_json drops null fields unless told not to, and renders nested
    timestamps in the session zone.
  - number: with ANSI off, `cast(decimal as string)` gives `1.000E-7` for small
    values; format_number with the pattern `0.<scale zeros>` (typeof gives
    the scale) prints the plain digits PostgreSQL and DuckDB print. Doubles
    and floats are rewritten from Java's text (`1.0E20`, `100.0`) into
    PostgreSQL's (`1e+20`, `100`): see _braze_spark_float_text.
-#}
{% macro spark__braze_normalized_text(expr, value_type) %}
  {%- if value_type == 'date' -%}
    {{ dbt_braze._braze_iso_or_raw(expr, "date_format(" ~ expr ~ ", 'yyyy-MM-dd')", "cast(" ~ expr ~ " as string)") }}
  {%- elif value_type in ('timestamp', 'timestamptz') -%}
    {%- set ntz = expr if value_type == 'timestamp'
                  else "timestampadd(SECOND, unix_seconds(" ~ expr ~ "), timestamp_ntz '1970-01-01 00:00:00')" -%}
    {{ dbt_braze._braze_iso_or_raw("cast(" ~ ntz ~ " as date)", dbt_braze._braze_spark_iso_text(ntz), "cast(" ~ ntz ~ " as string)") }}
  {%- elif value_type == 'json' -%}
    to_json({{ expr }}, map('ignoreNullFields', 'false', 'timeZone', 'UTC',
                            'timestampFormat', "yyyy-MM-dd'T'HH:mm:ss'Z'",
                            'timestampNTZFormat', "yyyy-MM-dd'T'HH:mm:ss'Z'"))
  {%- elif value_type == 'number' -%}
    {%- set scale = "cast(substring_index(substring_index(typeof(" ~ expr ~ "), ',', -1), ')', 1) as int)" -%}
    case when typeof({{ expr }}) like 'decimal(%'
         then format_number({{ expr }}, concat('0', if({{ scale }} > 0, concat('.', repeat('0', {{ scale }})), '')))
         when typeof({{ expr }}) in ('double', 'float')
         then {{ dbt_braze._braze_spark_float_text(expr) }}
         else cast({{ expr }} as string) end
  {%- else -%}
    {{ dbt_braze.default__braze_normalized_text(expr, value_type) }}
  {%- endif -%}
{% endmacro %}

{#- `YYYY-MM-DDTHH:MM:SSZ` of a timestamp_ntz, truncated to the second, zone-free. -#}
{% macro _braze_spark_iso_text(ntz_expr) -%}
  concat(replace(substr(cast({{ ntz_expr }} as string), 1, 19), ' ', 'T'), 'Z')
{%- endmacro %}

{#-
  A double or float as PostgreSQL prints it (float8out/float4out with the
  default extra_float_digits, Ryu): the shortest digits whose every nearby
  decimal reads back as the same value (the rounding interval without its
  bounds), the closest such; plain when the decimal exponent is in [-4, 15)
  (float: [-4, 6)), else `d.ddde+NN` (two exponent digits at least); no `.0`
  on whole numbers; `0`, `-0`, `NaN`, `Infinity`, `-Infinity`. The golden
  texts (`0.1`, `1e+20`, `1.5e-07`) are PostgreSQL's and DuckDB's alike; on
  whole numbers the two differ (`100`, `100.0`), and Spark gives
  PostgreSQL's, the warehouse the default macros are written for.
  Spark's `cast(x as string)` is Java's Double/Float.toString (`100.0`,
  `1.0E20`), whose digits before Java 19 are not always the shortest
  (4.9E-324; 1.2000000000000001E21 for 1.2e21; a quarter of floats, such as
  1.00000003E16 for 1e16). So its digits (those of the double, for a float:
  closer to the exact value) are only a start: rounded to fewer and fewer
  places, up or down (nearest first), the last candidate inside the interval
  wins, and is laid out as PostgreSQL does. Inside: the candidate nudged by
  one part in 10^20 either way casts back to the value. The lambdas name the
  parts so that `expr` is evaluated once. Compared with PostgreSQL 15 on
  300,000 random doubles and 250,000 floats, ANSI mode on and off: one or two
  doubles differ, 17-digit values where Java's last digit is not the closest
  (exact digits are out of reach in Spark SQL). Costs ~30 us per random
  double on one core, less for shorter values. Edge cases pinned in
  tests/integration/test_hash_stability.py (FLOAT_TEXTS).
-#}
{% macro _braze_spark_float_text(expr) -%}
  transform(array(named_struct(
      'value', abs({{ expr }}), 'text', cast(cast({{ expr }} as double) as string),
      'plain_up_to', if(typeof({{ expr }}) = 'double', 15, 6))),
    v -> transform(array(named_struct(
        'sign', if(v.text like '-%', '-', ''),
        'mantissa', regexp_replace(substring_index(v.text, 'E', 1), '^-', ''),
        'shift', if(v.text like '%E%', cast(substring_index(v.text, 'E', -1) as int), 0))),
      m -> transform(array(named_struct(
          {#- Java's digits, without leading or trailing zeros, and the decimal exponent of the first -#}
          'digits', if(m.mantissa rlike '^[0-9]', regexp_replace(regexp_replace(replace(m.mantissa, '.', ''), '^0+', ''), '0+$', ''), ''),
          'exponent', m.shift + length(substring_index(m.mantissa, '.', 1)) - 1
                      - (length(replace(m.mantissa, '.', '')) - length(regexp_replace(replace(m.mantissa, '.', ''), '^0+', ''))))),
        j -> transform(array(
            {#- from all of Java's places down, while a candidate is inside (if k places
                can hold one, k + 1 can): typical values stop after one or two steps -#}
            aggregate(sequence(greatest(length(j.digits), 1), 1, -1), named_struct('best', cast(null as string), 'done', false),
              (found, k) -> if(found.done, found, transform(array({{ dbt_braze._braze_spark_candidate('k') }}),
                hit -> if(hit is null, named_struct('best', found.best, 'done', true),
                                       named_struct('best', hit, 'done', false)))[0]),
              found -> coalesce(found.best, j.digits))),
          r -> transform(array(named_struct(
              'digits', regexp_replace(r, '0+$', ''),
              'exponent', j.exponent + length(r) - length(j.digits))),
            n -> case
              when v.text is null or v.text in ('NaN', 'Infinity', '-Infinity') then v.text
              when j.digits = '' then concat(m.sign, '0')
              when n.exponent < -4 or n.exponent >= v.plain_up_to
                then concat(m.sign, substr(n.digits, 1, 1), if(length(n.digits) > 1, concat('.', substr(n.digits, 2)), ''),
                            'e', if(n.exponent < 0, '-', '+'), if(abs(n.exponent) < 10, '0', ''), cast(abs(n.exponent) as string))
              when n.exponent < 0
                then concat(m.sign, '0.', repeat('0', -n.exponent - 1), n.digits)
              when length(n.digits) <= n.exponent + 1
                then concat(m.sign, n.digits, repeat('0', n.exponent + 1 - length(n.digits)))
              else concat(m.sign, substr(n.digits, 1, n.exponent + 1), '.', substr(n.digits, n.exponent + 2))
            end)[0])[0])[0])[0])[0]
{%- endmacro %}

{#-
  Inside the rounding interval of v.value (bounds excluded): the candidate
  `r` (digits scaled like j.digits), one part in 10^20 above and below it,
  casts back to the value.
-#}
{% macro _braze_spark_inside(r) -%}
  {%- set exponent = "'e', j.exponent - length(j.digits) - 19" -%}
  {%- set above = "concat(" ~ r ~ ", '00000000000000000001', " ~ exponent ~ ")" -%}
  {%- set below = "concat(cast(cast(" ~ r ~ " as decimal(38, 0)) - 1 as string), '99999999999999999999', " ~ exponent ~ ")" -%}
  if(v.plain_up_to = 15,
     cast({{ above }} as double) = v.value and cast({{ below }} as double) = v.value,
     cast({{ above }} as float) = v.value and cast({{ below }} as float) = v.value)
{%- endmacro %}

{#-
  The candidate of `k` places inside the interval, the nearest of the two
  roundings of j.digits first (half to even on an exact tie, as Ryu does), as
  an integer scaled like j.digits (a carry adds a digit); null if neither is.
-#}
{% macro _braze_spark_candidate(k) -%}
  transform(array(named_struct(
      'down', cast(concat('0', substr(j.digits, 1, {{ k }})) as decimal(38, 0)),
      'up_first', substr(j.digits, {{ k }} + 1, 1) > '5' or (substr(j.digits, {{ k }} + 1, 1) = '5'
                  and (length(j.digits) > {{ k }} + 1 or substr(j.digits, {{ k }}, 1) in ('1', '3', '5', '7', '9'))))),
    c -> transform(array(named_struct(
        'first', concat(cast(c.down + if(c.up_first, 1, 0) as string), repeat('0', length(j.digits) - {{ k }})),
        'second', concat(cast(c.down + if(c.up_first, 0, 1) as string), repeat('0', length(j.digits) - {{ k }})))),
      p -> case when {{ dbt_braze._braze_spark_inside('p.first') }} then p.first
                when {{ dbt_braze._braze_spark_inside('p.second') }} then p.second end)[0])[0]
{%- endmacro %}
