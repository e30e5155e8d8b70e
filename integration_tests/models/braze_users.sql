select
    user_id,
    email,
    first_name,
    plan,
    cast(lifetime_value as decimal(12, 2)) as lifetime_value,
    is_vip,
    signed_up_on,
    last_seen_at
from {{ ref('demo_users') }}
