"""``manage.py authzen certification-fixture [--json] [--base-url URL]``: create the AuthZEN certification
fixture (idempotent) and print the PDP's base URL and a fresh service key for the harness."""

from __future__ import annotations

import json
import os
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from authzen.certification import SLUG, certification_fixture


class Command(BaseCommand):
    help = "AuthZEN tools. certification-fixture: create the certification scenario's fixture, print a token."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="what", required=True)
        fixture = sub.add_parser("certification-fixture", help="create the fixture; print the PDP URL and a key")
        fixture.add_argument("--json", action="store_true", help="print one JSON object")
        fixture.add_argument("--base-url", default=os.environ.get("AUTHZEN_BASE_URL", "http://127.0.0.1:8001"),
                             help="where the PDP is reached (default $AUTHZEN_BASE_URL, else the PDP listener "
                                  "of `manage.py dev`, http://127.0.0.1:8001)")

    def handle(self, *args: Any, **options: Any) -> None:
        made = certification_fixture()
        answer = {"policy_decision_point": f"{options['base_url'].rstrip('/')}/authzen/{SLUG}", "token": made.token}
        if options["json"]:
            self.stdout.write(json.dumps(answer))
        else:
            self.stdout.write(f"policy_decision_point: {answer['policy_decision_point']}\n"
                              f"token: {answer['token']}  (shown once; running this again revokes it)")
