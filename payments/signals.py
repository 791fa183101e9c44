"""payments' domain signals, sent by services inside their transaction.

``payment_processed``: ``{order_id, payment_id, status: "succeeded"|"failed", amount, reason}`` (event-payment).
``suspicious_activity``: ``{kind, detail, user_id}`` (event-suspicious-activity).
"""

from django.dispatch import Signal

payment_processed = Signal()
suspicious_activity = Signal()
