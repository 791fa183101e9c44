"""Start a real ``celery -A saaskit worker`` subprocess against the pytest test database, and hurt it on purpose.

The worker gets DATABASE_URL of the test database (the one pytest created, e.g. ``test_events``) and the same
SAASKIT_REDIS_DB as the test process, so what the test publishes is what the worker consumes. Use it from a
``@pytest.mark.django_db(transaction=True)`` test: the worker only sees committed rows. Stop workers before the
test ends (a fixture's teardown runs before the database flush).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.db import connection

from saaskit.celery import APP_QUEUES

BASE_DIR = Path(settings.BASE_DIR)
_counter = itertools.count(1)


def current_database_url() -> str:
    """DATABASE_URL of the database this test process is using (the test database under pytest)."""
    parts = urlsplit(settings.DATABASE_URL)
    return urlunsplit((parts.scheme, parts.netloc, "/" + connection.settings_dict["NAME"], parts.query,
                       parts.fragment))


def worker_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "DJANGO_SETTINGS_MODULE": "saaskit.settings_test",
        "SAASKIT_ENV": "test",
        "DATABASE_URL": current_database_url(),
        "SAASKIT_REDIS_DB": str(settings.REDIS_DB),
        "PYTHONPATH": os.pathsep.join(p for p in (str(BASE_DIR), env.get("PYTHONPATH", "")) if p),
        "PYTHONUNBUFFERED": "1",
    })
    env.update(extra or {})
    return env


class Worker:
    def __init__(self, proc: subprocess.Popen[bytes], log_path: Path, name: str) -> None:
        self.proc = proc
        self.log_path = log_path
        self.name = name

    @property
    def pid(self) -> int:
        return self.proc.pid

    def children(self) -> list[int]:
        """Direct and indirect child processes (prefork pool, embedded beat)."""
        found: list[int] = []
        frontier = [self.pid]
        while frontier:
            pid = frontier.pop()
            path = Path(f"/proc/{pid}/task/{pid}/children")
            with contextlib.suppress(OSError):
                kids = [int(k) for k in path.read_text().split()]
                found += kids
                frontier += kids
        return found

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def _signal_all(self, sig: int, *, children_first: bool = True) -> None:
        pids = self.children()
        order = [*pids, self.pid] if children_first else [self.pid, *pids]
        for pid in order:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def kill(self) -> None:
        """SIGKILL the main process and every child at once (a crash: nothing is acked, nothing cleaned up)."""
        pids = [self.pid, *self.children()]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def pause(self) -> None:
        """SIGSTOP main and children: the worker holds its messages (and any row locks) without progressing."""
        self._signal_all(signal.SIGSTOP, children_first=False)

    def resume(self) -> None:
        self._signal_all(signal.SIGCONT, children_first=True)

    def stop(self, timeout: float = 20) -> None:
        """Warm shutdown (SIGTERM); SIGKILL whatever is left after ``timeout``."""
        stop_workers([self], timeout)

    def begin_stop(self) -> list[int]:
        """Send the warm shutdown (SIGTERM) without waiting; returns the pool children to kill afterwards."""
        if not self.alive():
            return []
        self.resume()
        kids = self.children()
        self.proc.send_signal(signal.SIGTERM)
        return kids

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while " ready." not in self.log():
            if not self.alive():
                raise RuntimeError(f"worker {self.name} exited ({self.proc.returncode}):\n{self.log()[-4000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"worker {self.name} not ready within {timeout}s:\n{self.log()[-4000:]}")
            time.sleep(0.05)


def stop_workers(workers: Iterable[Worker], timeout: float = 5) -> None:
    """Every worker's warm shutdown at once, then SIGKILL whatever is left after ``timeout``. A test's teardown
    keeps the default: the test has asserted what it wanted, and a warm shutdown that hangs on a restored
    message or a pool child waited 20 s per worker."""
    pending = [(worker, worker.begin_stop()) for worker in workers]
    deadline = time.monotonic() + timeout
    for worker, kids in pending:
        try:
            worker.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            worker.kill()
        for pid in kids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def start_worker(*, queues: Iterable[str] = ("default", *APP_QUEUES), pool: str = "solo", concurrency: int = 1,
                 beat: bool = False, env: Mapping[str, str] | None = None, log_dir: Path | None = None,
                 loglevel: str = "INFO", ready_timeout: float = 30, wait: bool = True) -> Worker:
    """Start ``celery -A saaskit worker -Q <queues> --pool <pool>`` on the test database; wait until ready.

    ``beat=True`` embeds beat (the periodic sweeps; run it in one worker only). ``env`` adds variables, e.g.
    ``EVENTS_SWEEP_INTERVAL_SECONDS=0.3`` or ``CELERY_VISIBILITY_TIMEOUT=2``.
    """
    name = f"w{os.getpid()}-{next(_counter)}"
    log_dir = Path(log_dir or BASE_DIR / ".saaskit" / "test-workers")
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    cmd = [sys.executable, "-m", "celery", "-A", "saaskit", "worker", "-Q", ",".join(queues), "--pool", pool,
           "--concurrency", str(concurrency), "--loglevel", loglevel, "-n", f"{name}@%h",
           "--without-gossip", "--without-mingle", "--without-heartbeat"]
    if beat:
        cmd += ["--beat", "--schedule", str(log_dir / f"{name}-beat-schedule")]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=BASE_DIR, env=worker_env(env), stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    worker = Worker(proc, log_path, name)
    if wait:
        worker.wait_ready(ready_timeout)
    return worker
