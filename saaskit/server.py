"""How the project serves HTTP: granian (a Rust HTTP server) running ``saaskit.wsgi:application``.

One command line for every place that starts the web server (``manage.py dev``, the benches, the chaos run,
the live-server tests), so they all run what production runs. granian rather than gunicorn: its HTTP layer is
Rust, so a keep-alive request costs the Python process only the application's own work (hello-world WSGI on 2
cores: 50,900 req/s against gunicorn gthread's 10,900), which is what the decision endpoints need.

- ``workers``: processes (as many as the cores); a worker that dies (SIGKILL, OOM) is started again
  (``--respawn-failed-workers``), its in-flight requests are cut, the other workers go on serving.
- ``threads``: WSGI threads per worker (``--blocking-threads``); each holds its own database connection, so
  connections are bounded by workers x threads. No ``--backpressure``: granian counts it per open connection,
  not per request in Python, so at the thread count an idle keep-alive client held a slot and a client beyond
  workers x threads waited forever (``tests/saaskit/test_server.py``); granian's default (its backlog per worker)
  is kept.

The PDP listener (``pdp_command``) serves the same application tuned for policy enforcement points: one WSGI
thread per worker and granian's single-threaded runtime. A decision is answered from memory in tens of
microseconds, so a worker's threads only take turns on the GIL; at a moderate rate each request then paid for
waking a sleeping thread, and a second and third thread added wake-ups, not throughput. On 2 cores (open
loop at ~9,400 AuthZEN evaluations/s, half the peak, while choosing): p99 13-19 ms with 4 threads, 6 ms with one,
3-4 ms with one and the single-threaded runtime, at the same peak throughput (``bench/cerbos.py`` measures both
servers in every run). The price: a
request that waits on PostgreSQL (a cache miss, a Django page) holds the whole worker meanwhile, so this
listener is for decision traffic, and the general one (``granian_command``) serves everything else.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys

WSGI_APP = "saaskit.wsgi:application"


def granian_command(*, host: str = "127.0.0.1", port: int = 8000, workers: int = 2, threads: int = 4,
                    runtime_mode: str = "auto", access_log: bool = False, log_level: str = "warning") -> list[str]:
    """The argv that serves the project with granian (run it with the project directory as the cwd)."""
    runtime = [] if runtime_mode == "auto" else ["--runtime-mode", runtime_mode]
    return [sys.executable, "-m", "granian", "--interface", "wsgi", "--host", host, "--port", str(port),
            "--workers", str(workers), "--blocking-threads", str(threads), *runtime,
            "--respawn-failed-workers", "--workers-kill-timeout", "10", "--log-level", log_level,
            "--access-log" if access_log else "--no-access-log", WSGI_APP]


PDP_THREADS = 1  # WSGI threads per worker of the PDP listener (see the module docstring)
PDP_RUNTIME_MODE = "st"


def pdp_command(*, host: str = "127.0.0.1", port: int = 8001, workers: int = 2, access_log: bool = False,
                log_level: str = "warning") -> list[str]:
    """The argv of the PDP listener: the same application, one WSGI thread per worker and granian's
    single-threaded runtime, for the decision endpoints' callers (see the module docstring)."""
    return granian_command(host=host, port=port, workers=workers, threads=PDP_THREADS,
                           runtime_mode=PDP_RUNTIME_MODE, access_log=access_log, log_level=log_level)


def split_bind(bind: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:8000`` for IPv6) as a (host, port) pair."""
    host, _, port = bind.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


def server_stop(proc: subprocess.Popen, timeout: float = 20) -> None:
    """Stop a server started with ``start_new_session=True``: SIGTERM (granian stops its workers), then
    SIGKILL to its whole process group if it is still there after ``timeout`` seconds (a SIGTERM that lands
    while a worker is still loading the application can be lost)."""
    if proc.poll() is None:
        proc.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=timeout)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # the workers too, if the master left any behind
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)
