"""The envelope every event travels in, and the checks that keep malformed ones out."""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import fastjsonschema
from jsonschema import Draft7Validator

from events.catalogue import BY_NAME
from events.errors import EventError, PayloadSchemaError, UnknownEventError

if TYPE_CHECKING:
    from events.models import OutboxEvent

ENVELOPE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "format": "uuid", "description": "unique per event; the idempotency key"},
        "name": {"type": "string", "description": "catalogued event name"},
        "version": {"type": "integer", "minimum": 1, "description": "payload schema version"},
        "time": {"type": "string", "format": "date-time"},
        "instance": {
            "type": ["object", "null"],
            "properties": {"id": {"type": "integer"}, "slug": {"type": ["string", "null"]}},
            "required": ["id", "slug"],
        },
        "correlation_id": {"type": "string", "description": "id of the first event of the chain"},
        "causation_id": {"type": ["string", "null"], "description": "id of the event that caused this one"},
        "payload": {"type": "object"},
    },
    "required": ["id", "name", "version", "time", "instance", "correlation_id", "causation_id", "payload"],
}


@dataclass(frozen=True)
class Event:
    """What a consumer receives. ``id`` is a UUID; ``instance_id``/``instance_slug`` name the tenant (or None)."""

    id: uuid.UUID
    name: str
    version: int
    occurred_at: datetime
    instance_id: int | None
    instance_slug: str | None
    correlation_id: str
    causation_id: str | None
    payload: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The wire form described in the AsyncAPI document."""
        return {
            "id": str(self.id),
            "name": self.name,
            "version": self.version,
            "time": self.occurred_at.isoformat(),
            "instance": None if self.instance_id is None else {"id": self.instance_id, "slug": self.instance_slug},
            "correlation_id": self.correlation_id,
            "causation_id": self.causation_id,
            "payload": self.payload,
        }


_envelope_validator = fastjsonschema.compile(ENVELOPE_SCHEMA, use_default=False, use_formats=False)


def is_envelope(value: Any) -> bool:
    """Whether ``value`` has the envelope's shape (the payload is checked against its own schema separately)."""
    try:
        _envelope_validator(value)
    except fastjsonschema.JsonSchemaException:
        return False
    return True


@functools.cache
def payload_validator(name: str) -> Draft7Validator:
    spec = BY_NAME[name]
    return Draft7Validator(spec.payload)


@functools.cache
def fast_payload_validator(name: str) -> Callable[[Any], Any]:
    """The payload schema compiled to Python (a few microseconds a check instead of ~40). It only ever answers
    "valid" early: anything it refuses goes to the reference validator, which decides and names the bad field, so
    it may be stricter than the reference but never looser (a property test holds it to that)."""
    return fastjsonschema.compile(BY_NAME[name].payload, use_default=False, use_formats=False)


def check_payload(name: str, payload: Any) -> None:
    """Raise ``UnknownEventError`` or ``PayloadSchemaError`` (naming the first bad field) for a bad event."""
    if name not in BY_NAME:
        raise UnknownEventError(f"unknown event {name!r}: it is not declared in events.catalogue")
    try:
        fast_payload_validator(name)(payload)
        return
    except fastjsonschema.JsonSchemaException:
        pass  # the reference validator below decides
    errors = sorted(payload_validator(name).iter_errors(payload), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(payload)"
        raise PayloadSchemaError(f"{name} payload does not match its schema v{BY_NAME[name].version}: "
                                 f"{where}: {first.message}", errors=[e.message for e in errors])


class MalformedEvent(Exception):
    """An event (from the log or a message) that breaks the catalogue: the reason says how."""


def event_from_row(row: OutboxEvent) -> Event:
    """Rebuild and re-check the envelope; ``MalformedEvent`` says what is wrong."""
    return checked_event(row.id, row.name, row.version, row.occurred_at, row.instance_id, row.instance_slug,
                         row.correlation_id, row.causation_id, row.payload)


def checked_event(event_id: Any, name: str, version: int, occurred_at: datetime, instance_id: int | None,
                  instance_slug: str | None, correlation_id: str, causation_id: str | None, payload: Any) -> Event:
    """The Event, once its name, version and payload are checked against the catalogue (else ``MalformedEvent``)."""
    if name not in BY_NAME:
        raise MalformedEvent(f"unknown event {name!r}")
    if version != BY_NAME[name].version:
        raise MalformedEvent(f"{name} version {version} is not the catalogued {BY_NAME[name].version}")
    if isinstance(payload, str):  # Django leaves jsonb as text for its JSONField to decode
        try:
            payload = json.loads(payload)
        except ValueError as exc:
            raise MalformedEvent(f"payload is not JSON: {exc}") from exc
    try:
        check_payload(name, payload)
    except EventError as exc:
        raise MalformedEvent(str(exc)) from exc
    return Event(id=event_id, name=name, version=version, occurred_at=occurred_at, instance_id=instance_id,
                 instance_slug=instance_slug, correlation_id=correlation_id, causation_id=causation_id,
                 payload=payload)
