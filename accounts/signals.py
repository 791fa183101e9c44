"""Domain signals of accounts. Services send them inside their transaction; the events app turns each into
its catalogued event (outbox row in the same transaction). Nothing else listens here."""

from django.dispatch import Signal

account_created = Signal()  # payload: {user_id, email}
account_deleted = Signal()  # payload: {user_id}
account_authenticated = Signal()  # payload: {user_id, instance, role}
# payload: {kind, detail, user_id} (event-suspicious-activity), sent once per instance the account belongs to
suspicious_activity = Signal()
