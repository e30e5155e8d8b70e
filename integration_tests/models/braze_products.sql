select product_id, title,
       -- `dbt run --vars '{demo_upgrade: true}'` lowers one price and drops the iron teapot:
       -- the next sync sends that one field (PATCH) and deletes that one item
       {% if var('demo_upgrade', false) %}case when product_id = 'tea-sencha' then 5.50 else price end{% else %}price{% endif %} as price,
       in_stock
from {{ ref('demo_products') }}
{% if var('demo_upgrade', false) %}where product_id <> 'pot-iron'{% endif %}
