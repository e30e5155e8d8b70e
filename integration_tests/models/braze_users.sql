select
    user_id,
    email,
    first_name,
    -- `dbt run --vars '{demo_upgrade: true}'` upgrades one user: the next sync sends one value
    case when user_id = 2 and {{ var('demo_upgrade', false) }} then 'pro' else plan end as plan,
    cast(lifetime_value as decimal(12, 2)) as lifetime_value,
    is_vip,
    signed_up_on,
    last_seen_at
from {{ ref('demo_users') }}
