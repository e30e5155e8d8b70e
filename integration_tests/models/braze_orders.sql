select order_id, user_id, event_name, ordered_at, amount
from {{ ref('demo_orders') }}
-- `dbt run --vars '{demo_upgrade: true}'` adds Grace's first order: the next sync sends that
-- one event, and never the others again
{% if var('demo_upgrade', false) %}
union all
select 'o-1004', 2, 'order_placed', timestamp '2026-11-29 08:00:00', 49.00
{% endif %}
