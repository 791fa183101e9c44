"""``manage.py doctor``: is this deployment able to run? One check per line, each ``ok``, ``fail`` or
``unknown`` (could not tell; not a failure).

Each check is a function returning a ``Check``; an exception inside one is its failure, never the command's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings

OK, FAIL, UNKNOWN = "ok", "fail", "unknown"
# Beat writes its schedule file at least every 3 minutes (celery's default sync interval) while it runs.
BEAT_FRESH_SECONDS = 240


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str

    def as_json(self) -> dict[str, str]:
        return {"status": self.status, "detail": self.detail}


def _error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def check_settings() -> Check:
    from django.core import checks

    messages = checks.run_checks(include_deployment_checks=settings.PRODUCTION)
    errors = sorted({m.id or "?" for m in messages if m.level >= checks.ERROR})
    warnings = [m for m in messages if checks.WARNING <= m.level < checks.ERROR]
    base = f"SAASKIT_ENV={settings.SAASKIT_ENV} DEBUG={settings.DEBUG}"
    if settings.PRODUCTION and settings.DEBUG:
        return Check("settings", FAIL, f"{base}: DEBUG is on in production")
    if errors:
        return Check("settings", FAIL, f"{base}: system check errors {', '.join(errors)}")
    return Check("settings", OK, f"{base}, {len(warnings)} system check warnings")


def check_signing_keys() -> Check:
    from accounts.keys import KEY_RING

    KEY_RING.reload()
    key = KEY_RING.signing_key()
    probe = b"saaskit doctor"
    public = KEY_RING.public_key(key.kid)
    if public is None:
        return Check("signing_keys", FAIL, f"the signing key {key.kid} does not verify")
    public.verify(key.private_key.sign(probe), probe)  # raises InvalidSignature on a broken pair
    count = len(KEY_RING.all_keys())
    return Check("signing_keys", OK, f"{count} verifying key(s) in {KEY_RING.keys_dir}, signing with {key.kid}")


def check_database() -> Check:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT current_database(), current_setting('server_version')")
        name, version = cursor.fetchone()
    return Check("database", OK, f"PostgreSQL {version}, database {name}")


def check_redis() -> Check:
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1)
    info = client.info("server")
    return Check("redis", OK, f"Redis {info.get('redis_version', '?')}")


def check_broker() -> Check:
    from saaskit.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=1)
        transport = conn.transport_cls
    return Check("broker", OK, f"{transport} broker answers")


def expected_queues() -> tuple[str, ...]:
    from saaskit.celery import APP_QUEUES

    return (settings.CELERY_TASK_DEFAULT_QUEUE, *APP_QUEUES)


def check_workers(*, timeout: float) -> list[Check]:
    """One check per queue: some worker consuming it answered a control broadcast within ``timeout``."""
    from saaskit.celery import app

    queues = expected_queues()
    try:
        replies = app.control.inspect(timeout=timeout).active_queues() or {}
    except Exception as exc:  # noqa: BLE001 - the broker is down: every queue is unanswered, for that reason
        return [Check(f"worker:{queue}", FAIL, f"cannot ask the workers: {_error(exc)}") for queue in queues]
    consuming: dict[str, list[str]] = {}
    for worker, worker_queues in replies.items():
        for queue in worker_queues or ():
            consuming.setdefault(queue.get("name", ""), []).append(worker)
    checks = []
    for queue in queues:
        workers = sorted(consuming.get(queue, ()))
        if workers:
            checks.append(Check(f"worker:{queue}", OK, f"answered by {', '.join(workers)}"))
        else:
            checks.append(Check(f"worker:{queue}", FAIL, f"no worker consuming {queue!r} answered within {timeout}s"))
    return checks


def default_beat_schedule() -> Path:
    configured = getattr(settings, "CELERY_BEAT_SCHEDULE_FILENAME", None)
    return Path(configured) if configured else Path(settings.DATA_DIR) / "celerybeat-schedule"


def check_beat(*, schedule: Path) -> Check:
    """Beat cannot be asked; what can be seen is its schedule file, rewritten every few minutes while it runs.
    A missing or old file is ``unknown`` (beat may run elsewhere), not a failure."""
    files = [p for p in schedule.parent.glob(f"{schedule.name}*") if p.is_file()] if schedule.parent.is_dir() else []
    if not files:
        return Check("beat", UNKNOWN, f"unknown: no beat schedule file at {schedule}")
    age = time.time() - max(p.stat().st_mtime for p in files)
    if age <= BEAT_FRESH_SECONDS:
        return Check("beat", OK, f"schedule {schedule} written {age:.0f}s ago")
    return Check("beat", UNKNOWN, f"unknown: schedule {schedule} last written {age:.0f}s ago")


def check_lattice() -> Check:
    """The lattice the code uses validates, and no stored profile holds a role it does not define."""
    from django.db import DatabaseError

    from accounts.models import Profile
    from authz import roles

    lattice = roles.RoleLattice(roles.LATTICE.roles.values())  # raises LatticeError naming the roles
    detail = f"{len(lattice.roles)} roles, top {lattice.top}, bottom {lattice.bottom}"
    try:
        unknown = sorted(set(Profile.objects.exclude(role__in=list(lattice.roles)).order_by()
                             .values_list("role", flat=True).distinct()))
    except DatabaseError as exc:
        return Check("lattice", OK, f"{detail} (stored profiles not checked: {_error(exc)})")
    if unknown:
        return Check("lattice", FAIL, f"profiles hold roles the lattice does not define: {', '.join(unknown)}")
    return Check("lattice", OK, detail)


def check_migrations() -> Check:
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if plan:
        names = [f"{m.app_label}.{m.name}" for m, _backwards in plan]
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        return Check("migrations", FAIL, f"{len(names)} not applied: {shown}")
    return Check("migrations", OK, "all applied")


def _guarded(name: str, check: Callable[[], Check]) -> Check:
    try:
        return check()
    except Exception as exc:  # noqa: BLE001 - a check that raises has failed; the reason is its detail
        return Check(name, FAIL, _error(exc))


def run_checks(*, worker_timeout: float = 1.0, beat_schedule: Path | None = None) -> list[Check]:
    found = [
        _guarded("settings", check_settings),
        _guarded("signing_keys", check_signing_keys),
        _guarded("database", check_database),
        _guarded("redis", check_redis),
    ]
    broker = _guarded("broker", check_broker)
    found.append(broker)
    if broker.status == OK:
        found += check_workers(timeout=worker_timeout)
    else:
        found += [Check(f"worker:{queue}", FAIL, "the broker is down") for queue in expected_queues()]
    schedule = beat_schedule or default_beat_schedule()
    found.append(_guarded("beat", lambda: check_beat(schedule=schedule)))
    found.append(_guarded("lattice", check_lattice))
    found.append(_guarded("migrations", check_migrations))
    return found


def report(checks: list[Check]) -> dict[str, Any]:
    failed = [c.name for c in checks if c.status == FAIL]
    return {"ok": not failed, "failed": failed, "checks": {c.name: c.as_json() for c in checks}}
