"""``manage.py services start|stop|status``: the embedded PostgreSQL and Redis under .saaskit/."""

from __future__ import annotations

import json
import os
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from saaskit import embedded


class Command(BaseCommand):
    help = "Start, stop or report the embedded PostgreSQL and Redis (used when DATABASE_URL/REDIS_URL are unset)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["start", "stop", "status"])

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        if action == "start":
            if not os.environ.get("DATABASE_URL"):
                embedded.postgres_url()
            if not os.environ.get("REDIS_URL"):
                embedded.redis_start()
        elif action == "stop":
            embedded.redis_stop()
            embedded.postgres_stop()
        self.stdout.write(json.dumps(embedded.status()))
