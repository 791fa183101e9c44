"""The AsyncAPI 3.0 document of the bus, generated from ``events.catalogue``."""

from __future__ import annotations

import copy
from typing import Any

from events.catalogue import CATALOGUE, EventSpec
from events.consumers import all_subscriptions
from events.envelope import ENVELOPE_SCHEMA

ASYNCAPI_VERSION = "3.0.0"
DOCUMENT_VERSION = "1.0.0"


def _key(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)


def _message_key(spec: EventSpec) -> str:
    return _key(f"{spec.name}-v{spec.version}")


def _consumers(spec: EventSpec) -> list[tuple[str, str]]:
    """(consumer name, queue): the declared consumers plus any registered by an installed app."""
    found = {name: name.split(".")[0] for name in spec.consumers}
    for sub in all_subscriptions():
        if sub.event_name == spec.name and not sub.handler.__module__.startswith("tests."):
            found[sub.name] = sub.queue
    return sorted(found.items())


def _message(spec: EventSpec) -> dict[str, Any]:
    envelope = copy.deepcopy(ENVELOPE_SCHEMA)
    envelope["properties"]["name"] = {"type": "string", "const": spec.name}
    envelope["properties"]["version"] = {"type": "integer", "const": spec.version}
    envelope["properties"]["payload"] = copy.deepcopy(spec.payload)
    return {
        "name": spec.name,
        "title": spec.name,
        "summary": spec.summary,
        "contentType": "application/json",
        "payload": envelope,
        "correlationId": {"description": "shared by every event of one chain",
                          "location": "$message.payload#/correlation_id"},
        "x-version": spec.version,
        "x-producer": spec.producer,
        "x-signals": list(spec.signals),
    }


def asyncapi_document() -> dict[str, Any]:
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for spec in CATALOGUE:
        channel_key, message_key = _key(spec.name), _message_key(spec)
        messages[message_key] = _message(spec)
        channels[channel_key] = {
            "address": spec.name,
            "title": spec.name,
            "description": spec.summary,
            "messages": {message_key: {"$ref": f"#/components/messages/{message_key}"}},
        }
        channel_ref = {"$ref": f"#/channels/{channel_key}"}
        message_refs = [{"$ref": f"#/channels/{channel_key}/messages/{message_key}"}]
        operations[_key(f"send-{spec.name}")] = {
            "action": "send",
            "channel": channel_ref,
            "title": f"{spec.producer} publishes {spec.name}",
            "summary": f"Written to the outbox in the producer's transaction by signal(s) {', '.join(spec.signals)}.",
            "messages": message_refs,
        }
        for consumer, queue in _consumers(spec):
            operations[_key(f"receive-{consumer}")] = {
                "action": "receive",
                "channel": channel_ref,
                "title": consumer,
                "summary": f"Delivered as Celery task events.deliver on queue {queue!r}, once per event (idempotent).",
                "messages": message_refs,
                "x-queue": queue,
            }
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "saaskit events",
            "version": DOCUMENT_VERSION,
            "description": "Domain events of saaskit. Producers write an outbox row in their own transaction; a "
                           "relay hands one Celery message per subscriber (one delivery row each) to that "
                           "subscriber's queue (at least "
                           "once; consumers are idempotent per event id). The task events.deliver takes the "
                           "delivery id, the consumer's name and the event envelope described here (resends take "
                           "the delivery id alone); the worker checks the envelope against the event log before "
                           "it commits anything.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "redis": {"host": "localhost:6379", "protocol": "redis",
                      "description": "Celery broker; one list per queue (accounts, authz, events, orders, "
                                     "inventory, payments)."},
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }
