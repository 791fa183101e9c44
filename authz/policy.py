"""Parsing ``subject:action:resource_type:resource_id`` strings (pure, no database).

The subject is a user id (``10``) or a group (``group/4``). ``resource_id`` is an object id or ``*``.
Errors name the bad part so the API can answer 400 with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from authz.error_codes import AuthzErrorCode
from authz.registry import WILDCARD, get_type
from saaskit.errors import ApplicationError

USER = "user"
GROUP = "group"
_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_INT = re.compile(r"^[1-9][0-9]{0,17}$")


@dataclass(frozen=True, slots=True)
class PolicySpec:
    subject_kind: str  # USER or GROUP
    subject_id: int
    action: str
    resource_type: str
    resource_id: str

    def as_string(self) -> str:
        subject = str(self.subject_id) if self.subject_kind == USER else f"group/{self.subject_id}"
        return f"{subject}:{self.action}:{self.resource_type}:{self.resource_id}"


class PolicyError(ApplicationError):
    """A policy string is invalid; ``part`` is subject, action, resource_type, resource_id or policy."""

    def __init__(self, text: str, part: str, reason: str, *, code: str, index: int | None = None) -> None:
        where = f"policies[{index}]" if index is not None else "policy"
        message = f"Invalid {part} in {where} {text!r}: {reason}"
        super().__init__(message, code=code, fields={where: [f"{part}: {reason}"]})
        self.part = part
        self.index = index


def parse_policy(text: object, *, index: int | None = None) -> PolicySpec:
    if not isinstance(text, str):
        raise PolicyError(str(text), "policy", "must be a string", code=AuthzErrorCode.INVALID_POLICY, index=index)
    parts = text.split(":")
    if len(parts) != 4:
        raise PolicyError(text, "policy", f"expected subject:action:resource_type:resource_id, got {len(parts)} "
                          "part(s)", code=AuthzErrorCode.INVALID_POLICY, index=index)
    subject, action, resource_type, resource_id = parts
    kind, _, raw_id = subject.rpartition("/") if subject.startswith("group/") else ("", "", subject)
    if not _INT.match(raw_id):
        raise PolicyError(text, "subject", f"{subject!r} is not a user id or group/<id>",
                          code=AuthzErrorCode.INVALID_POLICY, index=index)
    rtype = get_type(resource_type)
    if rtype is None:
        raise PolicyError(text, "resource_type", f"unknown resource type {resource_type!r}",
                          code=AuthzErrorCode.UNKNOWN_RESOURCE_TYPE, index=index)
    if action not in rtype.actions:
        raise PolicyError(text, "action", f"{resource_type} has no action {action!r} "
                          f"(allowed: {', '.join(sorted(rtype.actions))})", code=AuthzErrorCode.UNKNOWN_ACTION,
                          index=index)
    pattern = _INT if rtype.hierarchical else _ID
    if resource_id != WILDCARD and not pattern.match(resource_id):
        raise PolicyError(text, "resource_id", f"{resource_id!r} is not an object id or '*'",
                          code=AuthzErrorCode.INVALID_RESOURCE_ID, index=index)
    return PolicySpec(GROUP if kind else USER, int(raw_id), action, resource_type, resource_id)
