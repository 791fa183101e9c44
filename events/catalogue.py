"""Every event the system carries, in one place: meaning, versioned payload schema, producer, consumers, signals.

The payload schemas are JSON Schema draft-07 (the dialect AsyncAPI 3.0 embeds), so the same dicts validate
``publish()`` calls and go verbatim into the AsyncAPI document. Bump ``version`` when a payload changes shape.

``signals`` are dotted paths ``<module>.<attribute>``; ``*`` as the app part means "every installed app's
signals module that defines it" (``*.signals.policy_upsert_requested``). ``EventsConfig.ready()`` connects them
by import string, so this module imports no other app; a module or attribute that does not exist is skipped.

``consumers`` documents the subscribers (``<app>.<function>`` as registered with ``@consumer``); delivery uses
the live registry, and a test keeps the two in step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class EventSpec:
    name: str
    summary: str
    version: int
    payload: dict[str, Any]
    producer: str
    signals: tuple[str, ...]
    consumers: tuple[str, ...] = field(default_factory=tuple)


_ID = {"type": "integer", "minimum": 1}
_NULLABLE_ID = {"type": ["integer", "null"], "minimum": 1}
_MONEY = {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$", "description": "decimal string"}
_CURRENCY = {"type": "string", "minLength": 1, "maxLength": 8}
_POLICY = {"type": "string", "pattern": r"^[^:\s]+:[^:\s]+:[^:\s]+:[^:\s]+$",
           "description": "subject:action:resource_type:resource_id"}


def _object(required: dict[str, Any], optional: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {**required, **(optional or {})},
        "required": sorted(required),
        "additionalProperties": False,
    }


CATALOGUE: tuple[EventSpec, ...] = (
    EventSpec(
        name="event-account-created",
        summary="An account was created. Subscribers may prepare per-account state.",
        version=1,
        payload=_object({"user_id": _ID, "email": {"type": "string", "minLength": 3}},
                        {"instance": {"type": ["string", "null"]}}),
        producer="accounts",
        signals=("accounts.signals.account_created",),
    ),
    EventSpec(
        name="event-account-deleted",
        summary="An account was deleted. Subscribers clean up what they hold for it (policies, caches).",
        version=1,
        payload=_object({"user_id": _ID}),
        producer="accounts",
        signals=("accounts.signals.account_deleted",),
        consumers=("authz.purge_subject",),
    ),
    EventSpec(
        name="event-account-authenticated",
        summary="An account authenticated. Used to warm authorization caches before its first request.",
        version=1,
        payload=_object({"user_id": _ID, "instance": {"type": ["string", "null"]}, "role": {"type": "string"}}),
        producer="accounts",
        signals=("accounts.signals.account_authenticated",),
        consumers=("authz.warm_cache",),
    ),
    EventSpec(
        name="event-upsert-policy",
        summary="Create or update ACL policies (sent by any service when it creates or changes a resource).",
        version=1,
        payload=_object({"policies": {"type": "array", "items": _POLICY, "minItems": 1}}),
        producer="any",
        signals=("*.signals.policy_upsert_requested",),
        consumers=("authz.upsert_policies",),
    ),
    EventSpec(
        name="event-policy-updated",
        summary="Policies changed for these subjects and resource types; local authz caches refresh. "
                "An empty subject_ids means every subject of the instance.",
        version=1,
        payload=_object({
            "subject_ids": {"type": "array", "items": _ID},
            "resource_types": {"type": "array", "items": {"type": "string"}},
            "version": {"type": "integer", "minimum": 0},
        }),
        producer="authz",
        signals=("authz.signals.policy_updated",),
    ),
    EventSpec(
        name="event-remove-policy",
        summary="Remove ACL policies (sent by any service when it deletes a resource).",
        version=1,
        payload=_object({"policies": {"type": "array", "items": _POLICY, "minItems": 1}}),
        producer="any",
        signals=("*.signals.policy_remove_requested",),
        consumers=("authz.remove_policies",),
    ),
    EventSpec(
        name="event-order-created",
        summary="An order was placed. Its products are not validated yet: inventory tries to reserve them.",
        version=1,
        payload=_object({
            "order_id": _ID,
            "customer_id": _ID,
            "lines": {"type": "array", "minItems": 1,
                      "items": _object({"product_id": _ID, "quantity": {"type": "integer", "minimum": 1}})},
            "currency": _CURRENCY,
        }),
        producer="orders",
        signals=("orders.signals.order_created",),
        consumers=("inventory.reserve_for_order",),
    ),
    EventSpec(
        name="event-order-canceled",
        summary="An order was canceled (customer, failed payment, unreservable stock). Services revert their part.",
        version=1,
        payload=_object({"order_id": _ID, "reason": {"type": "string"}}),
        producer="orders",
        signals=("orders.signals.order_canceled",),
        consumers=("inventory.release_for_order", "payments.refund_for_order"),
    ),
    EventSpec(
        name="event-order-approved",
        summary="An order was paid and is ready for shipment.",
        version=1,
        payload=_object({"order_id": _ID}),
        producer="orders",
        signals=("orders.signals.order_approved",),
        consumers=("inventory.commit_for_order",),
    ),
    EventSpec(
        name="event-product-reserved",
        summary="Inventory reserved every line of an order; payments charges the amount.",
        version=1,
        payload=_object({"order_id": _ID, "customer_id": _ID, "amount": _MONEY, "currency": _CURRENCY}),
        producer="inventory",
        signals=("inventory.signals.product_reserved",),
        consumers=("payments.charge_for_order",),
    ),
    EventSpec(
        name="event-err-reserving-product",
        summary="Inventory could not reserve an order's products; orders cancels it.",
        version=1,
        payload=_object({"order_id": _ID, "reason": {"type": "string"}}),
        producer="inventory",
        signals=("inventory.signals.product_reservation_failed",),
        consumers=("orders.cancel_unreservable",),
    ),
    EventSpec(
        name="event-payment",
        summary="A charge for an order succeeded or failed; orders approves or cancels it.",
        version=1,
        payload=_object({
            "order_id": _ID,
            "payment_id": _NULLABLE_ID,
            "status": {"type": "string", "enum": ["succeeded", "failed"]},
            "amount": _MONEY,
            "reason": {"type": ["string", "null"]},
        }),
        producer="payments",
        signals=("payments.signals.payment_processed",),
        consumers=("orders.apply_payment",),
    ),
    EventSpec(
        name="event-suspicious-activity",
        summary="Any service saw something unusual worth investigating (e.g. repeated failed charges).",
        version=1,
        payload=_object({"kind": {"type": "string", "minLength": 1}, "detail": {"type": "string"},
                         "user_id": _NULLABLE_ID}),
        producer="any",
        signals=("*.signals.suspicious_activity",),
        consumers=("payments.record_alert",),
    ),
)

BY_NAME: dict[str, EventSpec] = {spec.name: spec for spec in CATALOGUE}
if len(BY_NAME) != len(CATALOGUE):  # pragma: no cover - a typo in the table above
    raise RuntimeError("duplicate event name in events.catalogue")


def get_spec(name: str) -> EventSpec | None:
    return BY_NAME.get(name)
