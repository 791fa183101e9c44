"""The per-process index the decision path reads: each entry lives at most ``TTL_SECONDS``.

Keys are small: a subject's policies on one type (its own and the ``*`` ones), one object's stored
properties, one member's stored properties, a type's actions. A warm evaluation of an instance-defined type
therefore makes no query. A write in this process clears the index at once (``index_clear``, called by the
services); every other process sees a change within one second, the project's bound for revocations.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.db.models import Q

from authzen.models import Policy, ResourceObject, ResourceType, SubjectProperties

TTL_SECONDS = 1.0
MAX_ENTRIES = 100_000
T = TypeVar("T")
# (user_id or None for "*", action, resource_id, condition)
Row = tuple[int | None, str, str, str]

_entries: dict[tuple[Any, ...], tuple[Any, float]] = {}
_lock = threading.Lock()
_generation = [0]


def _cached(key: tuple[Any, ...], load: Callable[[], T]) -> T:
    now = time.monotonic()
    hit = _entries.get(key)
    if hit is not None and hit[1] > now:
        return hit[0]
    generation = _generation[0]
    value = load()
    with _lock:
        if generation == _generation[0]:  # no write in this process meanwhile: safe to keep
            if len(_entries) >= MAX_ENTRIES:
                _entries.clear()
            _entries[key] = (value, now + TTL_SECONDS)
    return value


def index_clear() -> None:
    with _lock:
        _generation[0] += 1
        _entries.clear()


def subject_rows(instance_id: int, type_name: str, user_id: int) -> dict[tuple[str, str], list[Row]]:
    """The policies on ``type_name`` that name the user or ``*``, by (action, resource_id)."""
    def load() -> dict[tuple[str, str], list[Row]]:
        rows = (Policy.objects.filter(Q(user_id=user_id) | Q(user__isnull=True), instance_id=instance_id,
                                      resource_type__name=type_name)
                .values_list("user_id", "action", "resource_id", "condition"))
        by_key: dict[tuple[str, str], list[Row]] = {}
        for row in rows:
            by_key.setdefault((row[1], row[2]), []).append(row)
        return by_key
    return _cached(("rows", instance_id, type_name, user_id), load)


def object_properties(instance_id: int, type_name: str, object_id: str) -> dict[str, Any] | None:
    """The stored properties of a registered object, None when the object is not registered."""
    return _cached(("object", instance_id, type_name, object_id), lambda: (
        ResourceObject.objects.filter(instance_id=instance_id, resource_type__name=type_name, object_id=object_id)
        .values_list("properties", flat=True).first()))


def subject_properties(instance_id: int, user_id: int) -> dict[str, Any]:
    return _cached(("subject", instance_id, user_id), lambda: (
        SubjectProperties.objects.filter(instance_id=instance_id, user_id=user_id)
        .values_list("properties", flat=True).first() or {}))


def type_actions(instance_id: int, type_name: str) -> list[str] | None:
    return _cached(("type", instance_id, type_name), lambda: (
        ResourceType.objects.filter(instance_id=instance_id, name=type_name).values_list("actions", flat=True)
        .first()))
