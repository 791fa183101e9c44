"""Who is asking and from where, for the code below a request that has no request object in hand (the audit log).

``RequestContextMiddleware`` (saaskit.middleware) binds it for each HTTP request; outside a request (management
commands, Celery workers) it is the default: no request id, no address, origin ``command``. A worker that wants
to say so binds ``origin="worker"`` with ``bound_request_context``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestContext:
    request_id: str = ""
    address: str | None = None
    origin: str = "command"  # "request" inside an HTTP request


_NO_REQUEST = RequestContext()
_current: ContextVar[RequestContext] = ContextVar("saaskit_request_context", default=_NO_REQUEST)


def current_request_context() -> RequestContext:
    return _current.get()


@contextlib.contextmanager
def bound_request_context(context: RequestContext) -> Iterator[RequestContext]:
    """Make ``context`` current for the block (and whatever it calls), then restore the previous one."""
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)
