"""authz's event consumers (queue ``authz``). Thin: the work is in ``authz.services``."""

from __future__ import annotations

from authz import services
from events.consumers import consumer


@consumer("event-upsert-policy", name="authz.upsert_policies")
def upsert_policies(event) -> None:  # type: ignore[no-untyped-def]
    services.policies_apply_requested(instance_id=event.instance_id, policies=event.payload.get("policies") or [],
                                      remove=False)


@consumer("event-remove-policy", name="authz.remove_policies")
def remove_policies(event) -> None:  # type: ignore[no-untyped-def]
    services.policies_apply_requested(instance_id=event.instance_id, policies=event.payload.get("policies") or [],
                                      remove=True)


@consumer("event-account-authenticated", name="authz.warm_cache")
def warm_cache(event) -> None:  # type: ignore[no-untyped-def]
    services.cache_warm_for(user_id=int(event.payload["user_id"]), instance_slug=event.payload.get("instance"))


@consumer("event-account-deleted", name="authz.purge_subject")
def purge_subject(event) -> None:  # type: ignore[no-untyped-def]
    services.policies_purge_subject(user_id=int(event.payload["user_id"]))
