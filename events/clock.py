"""The one clock the bus compares times by: the database server's. Web and worker hosts' clocks may be minutes
apart; every time the bus writes or compares (occurred, sent, next attempt, parked, staleness, retention) is taken
by PostgreSQL."""

from __future__ import annotations

from django.db.models import DateTimeField, Func


class DatabaseNow(Func):
    """``clock_timestamp()``: the database server's time when the statement runs (not the transaction's start)."""

    template = "clock_timestamp()"
    output_field = DateTimeField()
