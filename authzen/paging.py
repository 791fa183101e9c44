"""Search pagination: opaque, tamper-proof page tokens (signed with django.core.signing).

A token carries the offset of the next page, the page size and a digest of the request's entities and
context; a token presented with a changed request, a changed limit, a forged or an expired token gets 400.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.core import signing

from authzen.error_codes import AuthzenErrorCode as Code
from authzen.protocol import Page
from saaskit.errors import ApplicationError

SALT = "authzen.search.page"
MAX_PAGE = 1000
TOKEN_MAX_AGE_SECONDS = 3600


def fingerprint(*, endpoint: str, slug: str, body: dict[str, Any]) -> str:
    rest = {k: v for k, v in body.items() if k != "page"}
    raw = json.dumps([endpoint, slug, rest], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def _bad(reason: str) -> ApplicationError:
    return ApplicationError(f"Invalid page token: {reason}.", code=Code.INVALID_PAGE_TOKEN,
                            fields={"page.token": [reason]})


def paginate(results: list[dict[str, Any]], *, page: Page, digest: str) -> dict[str, Any]:
    """``{"page": {next_token, count, total}, "results": [...]}`` for the page the request asks for."""
    offset, limit = 0, page.limit
    if page.token is not None:
        try:
            state = signing.loads(page.token, salt=SALT, max_age=TOKEN_MAX_AGE_SECONDS)
        except signing.BadSignature:
            raise _bad("not a token of this PDP, or expired") from None
        if not isinstance(state, dict) or state.get("f") != digest:
            raise _bad("the request differs from the one the token was issued for")
        if limit is not None and limit != state.get("l"):
            raise _bad("the page limit differs from the one the token was issued for")
        offset, limit = int(state.get("o", 0)), state.get("l")
    size = min(limit or MAX_PAGE, MAX_PAGE)
    chunk = results[offset:offset + size]
    end = offset + len(chunk)
    token = signing.dumps({"o": end, "l": limit, "f": digest}, salt=SALT) if end < len(results) else ""
    return {"page": {"next_token": token, "count": len(chunk), "total": len(results)}, "results": chunk}
