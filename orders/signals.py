"""orders' domain signals, sent by services inside their transaction (``events`` writes the outbox rows).

``order_created``: ``{order_id, customer_id, lines: [{product_id, quantity}], currency}``
``order_canceled``: ``{order_id, reason}``; ``order_approved``: ``{order_id}``
``policy_upsert_requested`` / ``policy_remove_requested``: ``{policies: ["sub:action:orders:id", ...]}``
(event-upsert-policy / event-remove-policy), for grants on orders; the saga sends none (customers reach their own
orders by ownership)
``suspicious_activity``: ``{kind, detail, user_id}`` (event-suspicious-activity): an order far above the customer's
median total
"""

from django.dispatch import Signal

order_created = Signal()
order_canceled = Signal()
order_approved = Signal()
policy_upsert_requested = Signal()
policy_remove_requested = Signal()
suspicious_activity = Signal()
