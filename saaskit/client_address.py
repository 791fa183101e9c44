"""The address of the client that made a request, honouring only the proxies we run ourselves.

Each proxy in front of the app appends the address it received the request from to ``X-Forwarded-For``.
With ``TRUSTED_PROXY_COUNT = N`` the client is therefore the N-th entry from the right: the entries left
of it were written by the client itself and are never trusted. With N = 0 (the default: the app faces
the network directly) the header is ignored and ``REMOTE_ADDR`` is the answer.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from django.conf import settings


def client_address(request: Any) -> str:
    """The client's IP address for throttling and logs (``REMOTE_ADDR`` when the header cannot be trusted).

    A header with fewer entries than trusted proxies (the request did not pass through all of them), or
    whose chosen entry is not an IP address, falls back to ``REMOTE_ADDR``.
    """
    meta = getattr(request, "META", request)
    remote = meta.get("REMOTE_ADDR", "") or ""
    hops = int(getattr(settings, "TRUSTED_PROXY_COUNT", 0) or 0)
    if hops <= 0:
        return remote
    entries = [part.strip() for part in meta.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    entries = [part for part in entries if part]
    if len(entries) < hops:
        return remote
    candidate = entries[-hops]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote
