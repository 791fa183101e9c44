"""``manage.py dev`` (what ``make run`` calls): migrate, seed the demo once, then run the web server, the PDP
listener (``saaskit.server.pdp_command``, for policy enforcement points) and a Celery worker (with beat for the
periodic sweeps) until Ctrl-C, which stops every process it started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand, CommandParser

from saaskit import embedded
from saaskit.celery import APP_QUEUES
from saaskit.server import granian_command, pdp_command, split_bind


class Command(BaseCommand):
    help = ("Run saaskit for development: the web server (granian, saaskit.server) on 127.0.0.1:8000, the PDP "
            "listener on 127.0.0.1:8001, plus a Celery worker consuming every queue.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--bind", default="127.0.0.1:8000")
        parser.add_argument("--web-workers", type=int, default=2)
        parser.add_argument("--pdp-bind", default="127.0.0.1:8001",
                            help="where the PDP listener serves (the decision endpoints' own pool); '' for none")
        parser.add_argument("--pdp-workers", type=int, default=2)
        parser.add_argument("--keep-services", action="store_true", help="leave the embedded servers running")

    def handle(self, *args: Any, bind: str, web_workers: int, pdp_bind: str, pdp_workers: int,
               keep_services: bool, **options: Any) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)

        python = sys.executable
        data_dir = embedded.DATA_DIR
        host, port = split_bind(bind)
        children = [
            subprocess.Popen(granian_command(host=host, port=port, workers=web_workers, access_log=True,
                                             log_level="info")),
            subprocess.Popen([python, "-m", "celery", "-A", "saaskit", "worker", "--beat",
                              "--schedule", str(data_dir / "celerybeat-schedule"),
                              "-Q", ",".join(("default", *APP_QUEUES)), "--concurrency", "2", "--loglevel", "INFO"]),
        ]
        if pdp_bind:
            pdp_host, pdp_port = split_bind(pdp_bind)
            children.append(subprocess.Popen(pdp_command(host=pdp_host, port=pdp_port, workers=pdp_workers)))
        base = f"http://{bind}"
        pdp = f"  PDP:      http://{pdp_bind}/authzen/<instance slug>\n" if pdp_bind else ""
        self.stdout.write(self.style.SUCCESS(
            f"\nsaaskit is running\n  admin:    {base}/admin/\n  API docs: {base}/api/docs/\n{pdp}"
            f"  health:   {base}/healthz\n  database: {settings.DATABASES['default']['NAME']}\n"
        ))
        if "seed_demo" in get_commands():
            call_command("seed_demo", "--print-logins")
        self.stdout.write("Press Ctrl-C to stop.\n")

        stopping = False

        def stop(signum: int, frame: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping and all(child.poll() is None for child in children):
                time.sleep(0.3)
        finally:
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 20
            for child in children:
                try:
                    child.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    child.kill()
            if not keep_services and not os.environ.get("REDIS_URL"):
                embedded.redis_stop()
            if not keep_services and not os.environ.get("DATABASE_URL"):
                from django.db import connections

                connections.close_all()
                embedded.postgres_stop()
            self.stdout.write("stopped.\n")
