{#-
  Databricks overrides. dbt-databricks dispatches databricks__, then spark__,
  then default__ (its plugin declares the spark adapter as a dependency), so
  every spark__ override in macros/adapters/spark.sql applies here too; this file holds
  only what differs from open-source Spark. Not run against a live workspace.
  See docs/warehouses.md.
-#}

{#-
  Tables are Delta by default on Databricks: CREATE OR REPLACE TABLE ... AS
  SELECT replaces the pending relation in one transaction, where
  drop-then-rename leaves a moment without it
  (https://docs.databricks.com/en/delta/drop-table.html#replace-a-table).
-#}
{% macro databricks__braze_swap_relation(staging, target) %}
  {%- do run_query(dbt_braze.databricks__braze_swap_sql(staging, target)) -%}
  {%- do adapter.drop_relation(staging) -%}
{% endmacro %}

{% macro databricks__braze_swap_sql(staging, target) -%}
  create or replace table {{ target }} as select * from {{ staging }}
{%- endmacro %}
