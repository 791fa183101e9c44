"""OpenAPI generation tuned to our conventions."""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema


class AutoSchema(SpectacularAutoSchema):
    """Names a serializer nested in its API class after both (``PoliciesApi.InputSerializer`` ->
    ``PoliciesApiInput``): every API class has its own ``InputSerializer``, which would otherwise collide."""

    def get_serializer_name(self, serializer: Any, direction: Any) -> str:
        qualname = type(serializer).__qualname__
        return qualname.replace(".", "") if "." in qualname else super().get_serializer_name(serializer, direction)


# Every operation can answer with the one error shape (saaskit.errors): declared here once, not per view.
ERROR_COMPONENT = "Error"
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "The one error shape of the API (saaskit.errors).",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string", "description": "Stable machine-readable code from an app's error_codes."},
                "message": {"type": "string"},
                "fields": {"type": "object", "additionalProperties": True,
                           "description": "Per-field messages for a 400 (empty otherwise)."},
            },
            "required": ["code", "message", "fields"],
            "additionalProperties": False,
        },
    },
    "required": ["error"],
    "additionalProperties": False,
}
# Status -> description. Any operation: malformed input, a bad token, a denial, a missing object, a throttle.
_ALWAYS = {
    "400": "Invalid input (error shape, per-field messages in `fields`).",
    "401": "Missing, invalid, expired or revoked token.",
    "403": "Not allowed for the caller's role or instance.",
    "404": "Not found, or not visible to the caller (the same answer).",
    "429": "Throttled.",
}
# Writes, in addition: a state conflict, an oversized or non-JSON body, a reused idempotency key.
_WRITES = {
    "409": "Conflicts with the current state.",
    "413": "The request body is too large.",
    "415": "The body is not JSON.",
    "422": "The Idempotency-Key was used with another request.",
}


def add_error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: declares the error shape on every operation (what a view
    declares itself is kept)."""
    result.setdefault("components", {}).setdefault("schemas", {})[ERROR_COMPONENT] = ERROR_SCHEMA
    reference = {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            statuses = dict(_ALWAYS)
            if method in ("post", "put", "patch", "delete"):
                statuses.update(_WRITES)
            for code, description in statuses.items():
                operation["responses"].setdefault(code, {
                    "description": description, "content": {"application/json": {"schema": reference}}})
    return result
