"""``manage.py doctor [--json]``: settings, signing keys, database, Redis, broker, a worker on each queue, beat,
the role lattice and migrations; one line per check; exits 1 naming what failed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from console.doctor import FAIL, OK, report, run_checks


class Command(BaseCommand):
    help = ("Check that this deployment can run: settings, signing keys, database, Redis, broker, a worker "
            "answering on each queue, beat, the role lattice, migrations. Exits 1 naming what failed.")
    requires_system_checks: list[str] = []  # the settings check runs them and reports them as one line
    requires_migrations_checks = False

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", dest="as_json",
                            help="print one JSON object instead of lines")
        parser.add_argument("--worker-timeout", type=float, default=1.0,
                            help="seconds to wait for the workers to answer (default 1)")
        parser.add_argument("--beat-schedule", type=Path, default=None,
                            help="beat's schedule file (default: CELERY_BEAT_SCHEDULE_FILENAME or "
                                 ".saaskit/celerybeat-schedule, where `manage.py dev` keeps it)")

    def handle(self, *args: Any, as_json: bool, worker_timeout: float, beat_schedule: Path | None,
               **options: Any) -> None:
        checks = run_checks(worker_timeout=worker_timeout, beat_schedule=beat_schedule)
        result = report(checks)
        if as_json:
            self.stdout.write(json.dumps(result, indent=2))
        else:
            width = max(len(c.name) for c in checks)
            for check in checks:
                style = {OK: self.style.SUCCESS, FAIL: self.style.ERROR}.get(check.status, self.style.WARNING)
                self.stdout.write(f"{style(check.status.ljust(7))} {check.name.ljust(width)}  {check.detail}")
        if result["failed"]:
            raise CommandError(f"doctor: failed: {', '.join(result['failed'])}")
