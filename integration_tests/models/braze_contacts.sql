select
    email,
    first_name,
    -- `dbt run --vars '{demo_upgrade: true}'` unsubscribes Grace from the newsletter:
    -- the next sync sends that one subscription change, and no data point
    case when email = 'grace.h@example.org' and {{ var('demo_upgrade', false) }} then false else newsletter end
        as newsletter,
    sms_promos
from {{ ref('demo_contacts') }}
