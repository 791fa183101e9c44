"""inventory's domain signals. Services send them inside their transaction; ``events`` turns them into outbox rows.

``product_reserved``: payload ``{order_id, customer_id, amount, currency}`` (event-product-reserved).
``product_reservation_failed``: payload ``{order_id, reason}`` (event-err-reserving-product).
"""

from django.dispatch import Signal

product_reserved = Signal()
product_reservation_failed = Signal()
