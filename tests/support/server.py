"""Serve the project with granian (``saaskit.server``, what production runs) against the pytest test database,
for tests that must go over real HTTP: ``with granian_server() as base_url: ...`` (``pdp=True``: the PDP
listener's command line, ``saaskit.server.pdp_command``).

The server's processes get the test process's DATABASE_URL and Redis db (``tests.support.workers.worker_env``);
use it from ``@pytest.mark.django_db(transaction=True)`` tests, so the server sees committed rows.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

from saaskit.server import granian_command, pdp_command, server_stop
from tests.support.workers import BASE_DIR, worker_env

_counter = itertools.count(1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def granian_server(*, workers: int = 1, threads: int = 2, pdp: bool = False, env: Mapping[str, str] | None = None,
                   start_timeout: float = 90) -> Iterator[str]:
    """A granian server on a free loopback port; yields its base URL and stops it (SIGTERM, then SIGKILL)."""
    port = _free_port()
    log_dir = Path(BASE_DIR / ".saaskit" / "test-workers")
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"granian-{next(_counter)}.log"
    with open(log_path, "wb") as log:
        command = (pdp_command(port=port, workers=workers, log_level="info") if pdp
                   else granian_command(port=port, workers=workers, threads=threads, log_level="info"))
        proc = subprocess.Popen(command, cwd=BASE_DIR, env=worker_env(env), stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=2).read()
                break
            except urllib.error.HTTPError:
                break  # it answers
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"granian did not start:\n{log_path.read_text(errors='replace')[-4000:]}") from None
                time.sleep(0.2)
        yield base
    finally:
        server_stop(proc)
