"""``manage.py jwt_keys list|rotate|prune``: the access-token signing key ring."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from accounts import keys


class Command(BaseCommand):
    help = "List, rotate or prune the access-token signing keys (settings.JWT_KEYS_DIR)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["list", "rotate", "prune"])

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        if action == "rotate":
            self.stdout.write(f"new signing key: {keys.rotate()}")
        elif action == "prune":
            removed = keys.prune()
            self.stdout.write(f"removed: {', '.join(removed) if removed else 'nothing'}")
        ring = keys.KEY_RING.all_keys(include_retired=True)
        for index, key in enumerate(ring):
            status = "signing" if index == 0 else "retired" if keys.KEY_RING.retired(key.kid) else "verifying"
            self.stdout.write(f"{key.kid}  created {key.created_at:%Y-%m-%d %H:%M:%S}Z  {status}")
