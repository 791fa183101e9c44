"""authz's domain signals. ``events`` connects them to the outbox (see CONTRACTS.md).

policy_updated: sent inside the transaction of every committed policy change with
``instance=<Instance>``, ``payload={"subject_ids": [int], "resource_types": [str], "version": int}``.
An empty ``subject_ids`` with a change means "every subject of the instance" (group or folder changes).
"""

from django.dispatch import Signal

policy_updated = Signal()
