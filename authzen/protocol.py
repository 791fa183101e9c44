"""The AuthZEN 1.0 request shapes, checked by hand (pure, no database).

The spec wants 400 for a missing or mistyped field, unknown fields ignored, and per-item failures inside
a batch; DRF serializers would turn unknown-field and nested-default rules into more code than this.
Every error names the field (``subject.id``, ``evaluations[1].resource``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from authzen.error_codes import AuthzenErrorCode as Code
from saaskit.errors import ApplicationError

SEMANTICS = ("execute_all", "deny_on_first_deny", "permit_on_first_permit")
MAX_EVALUATIONS = 1000
MAX_DEPTH = 32  # conditions see properties and context; CEL converts them recursively


class RequestError(ApplicationError):
    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}", code=Code.INVALID_REQUEST, fields={where: [reason]})
        self.where = where
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Entity:
    """A subject or resource: ``type``, ``id`` (None when it is what a search looks for), properties."""

    type: str
    id: str | None
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Action:
    name: str
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Evaluation:
    subject: Entity
    action: Action
    resource: Entity
    context: dict[str, Any]


def parse_body(content_type: str, body: bytes) -> dict[str, Any]:
    """The JSON object of the request, or 400 for another content type, an empty or malformed body,
    or a top level that is not an object."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media != "application/json":
        raise ApplicationError("Content-Type must be application/json.", code=Code.UNSUPPORTED_MEDIA_TYPE,
                               fields={"Content-Type": [media or "missing"]})
    if not body or not body.strip():
        raise RequestError("body", "the request body is empty")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestError("body", f"malformed JSON ({exc})") from None
    except RecursionError:
        raise RequestError("body", f"nested deeper than {MAX_DEPTH} levels") from None
    if not isinstance(data, dict):
        raise RequestError("body", "the request body must be a JSON object")
    # A body with no more opening brackets than the limit cannot nest deeper (brackets inside strings only
    # over-count): the walk is skipped for the common, small body (it was a tenth of a warm evaluation).
    if body.count(b"{") + body.count(b"[") > MAX_DEPTH and _depth(data) > MAX_DEPTH:
        raise RequestError("body", f"nested deeper than {MAX_DEPTH} levels")
    return data


def _depth(value: Any) -> int:
    """How deeply arrays and objects nest (iterative: a hostile body cannot exhaust the stack)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            if level <= MAX_DEPTH:
                stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _string(obj: dict[str, Any], key: str, where: str, *, required: bool) -> str | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise RequestError(f"{where}.{key}", "is required")
        return None
    if not isinstance(value, str) or not value:
        raise RequestError(f"{where}.{key}", "must be a non-empty string")
    if "\x00" in value or len(value) > 1024:
        raise RequestError(f"{where}.{key}", "must hold at most 1024 characters and no NUL")
    return value


def _properties(obj: dict[str, Any], where: str) -> dict[str, Any]:
    value = obj.get("properties")
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RequestError(f"{where}.properties", "must be an object")
    return value


def parse_entity(value: Any, where: str, *, require_id: bool = True) -> Entity:
    """A subject or resource. When ``require_id`` is false (the searched-for entity) an ``id`` is ignored."""
    if value is None:
        raise RequestError(where, "is required")
    if not isinstance(value, dict):
        raise RequestError(where, "must be an object")
    type_ = _string(value, "type", where, required=True)
    entity_id = _string(value, "id", where, required=True) if require_id else None
    return Entity(type_, entity_id, _properties(value, where))  # type: ignore[arg-type]


def parse_action(value: Any, where: str = "action") -> Action:
    if value is None:
        raise RequestError(where, "is required")
    if not isinstance(value, dict):
        raise RequestError(where, "must be an object")
    return Action(_string(value, "name", where, required=True), _properties(value, where))  # type: ignore[arg-type]


def parse_context(value: Any, where: str = "context") -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RequestError(where, "must be an object")
    return value


def parse_evaluation(data: dict[str, Any], where: str = "") -> Evaluation:
    prefix = f"{where}." if where else ""
    return Evaluation(parse_entity(data.get("subject"), f"{prefix}subject"),
                      parse_action(data.get("action"), f"{prefix}action"),
                      parse_entity(data.get("resource"), f"{prefix}resource"),
                      parse_context(data.get("context"), f"{prefix}context"))


@dataclass(frozen=True, slots=True)
class Batch:
    """An Access Evaluations request: each item is an Evaluation or the RequestError that made it fail."""

    items: list[Evaluation | RequestError]
    semantic: str
    single: Evaluation | None  # set when there is no (or an empty) ``evaluations`` array


def parse_batch(data: dict[str, Any]) -> Batch:
    """Defaults at the top level, whole-entity overrides per item; a malformed item fails alone."""
    options = data.get("options")
    if options is not None and not isinstance(options, dict):
        raise RequestError("options", "must be an object")
    semantic = (options or {}).get("evaluations_semantic", "execute_all")
    if semantic not in SEMANTICS:
        raise RequestError("options.evaluations_semantic", f"must be one of {', '.join(SEMANTICS)}")
    evaluations = data.get("evaluations")
    if evaluations is None or evaluations == []:
        return Batch([], semantic, parse_evaluation(data))
    if not isinstance(evaluations, list):
        raise RequestError("evaluations", "must be an array")
    if len(evaluations) > MAX_EVALUATIONS:
        raise RequestError("evaluations", f"at most {MAX_EVALUATIONS} items")
    # Defaults that are present must be well-formed: a broken default breaks every item, so the payload.
    for key, check in (("subject", parse_entity), ("resource", parse_entity), ("action", parse_action),
                       ("context", parse_context)):
        if data.get(key) is not None:
            check(data[key], key)
    items: list[Evaluation | RequestError] = []
    for i, item in enumerate(evaluations):
        where = f"evaluations[{i}]"
        if not isinstance(item, dict):
            items.append(RequestError(where, "must be an object"))
            continue
        merged = {key: item[key] if item.get(key) is not None else data.get(key)
                  for key in ("subject", "action", "resource", "context")}
        try:
            items.append(parse_evaluation(merged, where))
        except RequestError as exc:
            items.append(exc)
    return Batch(items, semantic, None)


@dataclass(frozen=True, slots=True)
class Page:
    token: str | None
    limit: int | None


def parse_page(data: dict[str, Any]) -> Page:
    page = data.get("page")
    if page is None:
        return Page(None, None)
    if not isinstance(page, dict):
        raise RequestError("page", "must be an object")
    token = page.get("token")
    if token is not None and not isinstance(token, str):
        raise RequestError("page.token", "must be a string")
    limit = page.get("limit")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
        raise RequestError("page.limit", "must be a non-negative integer")
    return Page(token or None, limit or None)
