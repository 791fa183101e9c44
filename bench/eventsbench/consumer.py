"""The consumer bench/events.py measures: does nothing, on its own queue ``bench``. Loaded by the bench process
and its worker (EVENTS_EXTRA_CONSUMER_MODULES=bench.eventsbench.consumer)."""

from __future__ import annotations

from typing import Any

from events.consumers import consumer

QUEUE = "bench"
NAME = "bench.noop"


@consumer("event-suspicious-activity", name=NAME, queue=QUEUE)
def bench_noop(event: Any) -> None:
    return None
