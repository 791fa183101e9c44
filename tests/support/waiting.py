from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeout(AssertionError):
    pass


def wait_until(predicate: Callable[[], T], timeout: float = 30.0, interval: float = 0.05,
               message: str | Callable[[], str] = "") -> T:
    """Poll ``predicate`` until it returns something truthy (returned) or fail after ``timeout`` seconds with
    ``message`` (a string or a callable giving the state at that moment). Used only to wait, never to assert
    how long something took."""
    deadline = time.monotonic() + timeout
    last: T = predicate()
    while not last:
        if time.monotonic() > deadline:
            detail = message() if callable(message) else message
            raise WaitTimeout(f"condition not met within {timeout}s (last value {last!r}) {detail}".strip())
        time.sleep(interval)
        last = predicate()
    return last
