{#-
  A DuckDB DOUBLE or FLOAT as PostgreSQL prints it (float8out/float4out, Ryu):
  the shortest digits strictly inside the rounding interval, the closest such
  (half to even on a tie); plain when the decimal exponent is in [-4, 15)
  (FLOAT: [-4, 6)), else `d.ddde+NN`; no `.0` on whole numbers; `0`, `-0`,
  `NaN`, `Infinity`, `-Infinity`. Spark prints the same
  (_braze_spark_float_text), so a float hashes alike on the three.

  DuckDB's own text (fmt's shortest digits) differs in layout (`100.0`,
  `1000000000000000.0`, `-0.0`, `nan`, `-inf`); its DOUBLE digits count the
  bounds of the interval as inside (`1e+23`, an exact midpoint, where
  PostgreSQL prints `9.999999999999999e+22`), which only a value of 2^53 or
  more can meet (below, a bound has 17 digits, more than the value needs);
  its FLOAT digits are at times longer than the shortest (`432256.625` for
  `432256.62`, `263742992.0` for `2.6374299e+08`: 1 float in 200).
  - DOUBLE under 2^53 (money, scores, ratios): DuckDB's text, laid out again.
  - Otherwise: the k digits printf('%.*e') rounds to (correctly, half to
    even), k from a start up, the first inside winning. At a power of two the
    interval below is half the one above, so the rounding may fall out below
    while one unit above is inside: that candidate is tried too. Start: the
    length n of DuckDB's text (DOUBLE) or n - 1 and n (FLOAT), which nearly
    always hold the answer; else n + 1 to 17 (DOUBLE) or 1 to 9 (FLOAT).
  Inside: the candidate nudged by one part in 10^20 of its last digit either
  way casts back to the value (casts from text round correctly in DuckDB, to
  FLOAT directly, not through DOUBLE).

  Shaped for DuckDB, whose binder takes time with every lambda and more with
  each level of lambdas inside lambdas: one body for both types, with
  `typeof` (a constant) choosing casts and limits; `expr` evaluated once, as
  a one-element list's lambda variable; the search a pipeline of one-element
  lists. Lambda variables are `braze_*`: in `v.x`, a model column `v` would
  win. Compared with PostgreSQL 15 on 900,000 random doubles and floats and
  on every power of two and of ten with their neighbours: no difference
  (tests/integration/test_hash_stability.py checks 40,000). Cost:
  bench/bench_float_text.py.
-#}
{% macro _braze_duckdb_float_text(expr) -%}
  {%- set x = 'braze_x' -%}
  {#- the value, and the number of digits of DuckDB's text (no sign, point, leading or trailing zeros) #}
  {%- set digits = "list_transform([cast(" ~ x ~ " as varchar)], lambda braze_t: struct_pack(x := cast(" ~ x
      ~ " as double), n := length(replace(trim(left(braze_t, strpos(concat(braze_t, 'e'), 'e') - 1), '-0.'), '.', ''))))[1]" -%}
  {%- set is_float = "typeof(" ~ x ~ ") = 'FLOAT'" -%}
  list_transform([{{ expr }}], lambda {{ x }}: case
    when {{ x }} is null then null
    when isnan({{ x }}) then 'NaN'
    when isinf({{ x }}) then if({{ x }} > 0, 'Infinity', '-Infinity')
    when {{ x }} = 0 then if(signbit({{ x }}), '-0', '0')
    when not ({{ is_float }}) and abs({{ x }}) < 9007199254740992 then list_transform([cast({{ x }} as varchar)], lambda braze_t: case
      when strpos(braze_t, 'e') > 0 then braze_t
      {#- 16 digits before the point: PostgreSQL's exponent form (`1e+15`) #}
      when strpos(braze_t, '.') = 17 + ({{ x }} < 0)::int
        then printf('%.*e', length(rtrim(replace(ltrim(braze_t, '-'), '.', ''), '0')) - 1, {{ x }})
      when ends_with(braze_t, '.0') then braze_t[:-3]
      else braze_t end)[1]
    {#- DuckDB's length (DOUBLE), or it and one fewer (FLOAT); then the rest #}
    else coalesce(
      {{ dbt_braze._braze_duckdb_search(digits, 'if(' ~ is_float ~ ', greatest(braze_a.n - 1, 1), braze_a.n)', 'braze_a.n',
                                        'braze_s.found = braze_s.n or (' ~ is_float ~ ' and braze_s.found = 1)') }},
      {{ dbt_braze._braze_duckdb_search(digits, 'if(' ~ is_float ~ ', 1, braze_a.n + 1)', 'if(' ~ is_float ~ ', 9, 17)', 'true') }})
  end)[1]
{%- endmacro %}

{#-
  The text of the first candidate inside, of `first` to `last` digits (SQL
  over braze_a, the struct(x, n) `start` gives): printf's rounding
  (`d.ddde+NN`) or, at a power of two, one unit above it; laid out as
  PostgreSQL does. Null if none is inside, or if `accept` (SQL over braze_s:
  its digits `found` and DuckDB's `n`) is false.
-#}
{% macro _braze_duckdb_search(start, first, last, accept) -%}
  {%- set mantissa = "left(braze_c, strpos(braze_c, 'e') - 1)" -%}
  {%- set bumped = "rtrim(rtrim(cast(cast(" ~ mantissa ~ " as decimal(38, 20)) + cast(concat('1e-', length(replace("
      ~ mantissa ~ ", '.', '')) - 1) as decimal(38, 20)) as varchar), '0'), '.')" -%}
  {#- one unit above printf's rounding (9.99e+22 + one unit: 1e+23) #}
  {%- set bump = "if(" ~ bumped ~ " = '10', concat('1e', printf('%+03d', cast(braze_c[strpos(braze_c, 'e') + 1:] as int) + 1)), concat("
      ~ bumped ~ ", braze_c[strpos(braze_c, 'e'):]))" -%}
  {%- set exponent = "cast(braze_s.text[strpos(braze_s.text, 'e') + 1:] as int)" -%}
  {%- set sign = "if(braze_s.x < 0, '-', '')" -%}
  list_transform([list_transform([list_transform([list_transform([{{ start }}],
    lambda braze_a: struct_pack(x := braze_a.x, n := braze_a.n, first := {{ first }},
      texts := list_transform(range({{ first }}, {{ last }} + 1), lambda braze_k: printf('%.*e', braze_k - 1, abs(braze_a.x)))))[1]],
    {#- the candidates, then the same bumped if the value is a power of two #}
    lambda braze_b: struct_pack(x := braze_b.x, n := braze_b.n, first := braze_b.first, count := len(braze_b.texts),
      texts := list_concat(braze_b.texts, if(abs(braze_b.x) = pow(2, round(log2(abs(braze_b.x)))),
                                             list_transform(braze_b.texts, lambda braze_c: {{ bump }}), []))))[1]],
    lambda braze_p: list_transform([list_transform(braze_p.texts, lambda braze_c: {{ dbt_braze._braze_duckdb_inside('braze_c', 'abs(braze_p.x)') }})],
      {#- the first length with one inside; the rounding, nearer, before the bumped #}
      lambda braze_ok: list_transform([coalesce(
          if(list_position(braze_ok[:braze_p.count], true) <= coalesce(list_position(braze_ok[braze_p.count + 1:], true), 99),
             list_position(braze_ok[:braze_p.count], true), null),
          braze_p.count + list_position(braze_ok[braze_p.count + 1:], true))],
        lambda braze_at: struct_pack(x := braze_p.x, n := braze_p.n, found := braze_p.first + (braze_at - 1) % braze_p.count,
                                     bumped := braze_at > braze_p.count, text := braze_p.texts[braze_at]))[1])[1])[1]],
    lambda braze_s: case
      when braze_s.text is null or not ({{ accept }}) then null
      when {{ exponent }} not between -4 and if(typeof(braze_x) = 'FLOAT', 5, 14) then concat({{ sign }}, braze_s.text)
      when not braze_s.bumped then printf('%.*f', greatest(braze_s.found - 1 - {{ exponent }}, 0), braze_s.x)
      else concat({{ sign }}, rtrim(rtrim(cast(cast(braze_s.text as decimal(38, 20)) as varchar), '0'), '.'))
    end)[1]
{%- endmacro %}

{#-
  `text` (printf's `d.ddde+NN`) nudged by one part in 10^20 of its last digit
  either way casts back to `value` (positive; a FLOAT's as a FLOAT): the
  digits D, then D.00…01 and (D-1).99…9 at the exponent of the last digit.
-#}
{% macro _braze_duckdb_inside(text, value) -%}
  {%- set digits = "replace(left(" ~ text ~ ", strpos(" ~ text ~ ", 'e') - 1), '.', '')" -%}
  {%- set shift = "cast(" ~ text ~ "[strpos(" ~ text ~ ", 'e') + 1:] as int) - length(" ~ digits ~ ") - 19" -%}
  list_transform([concat({{ digits }}, '00000000000000000001e', {{ shift }}),
                  concat(cast({{ digits }} as bigint) - 1, '99999999999999999999e', {{ shift }})],
    lambda braze_n: if(typeof(braze_x) = 'FLOAT', cast(cast(braze_n as float) as double), cast(braze_n as double))) = [{{ value }}, {{ value }}]
{%- endmacro %}
