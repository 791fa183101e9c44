"""Integration helpers shared by every app's tests: real Celery workers, a private Redis, ``wait_until``.

    from tests.support import start_worker, wait_until

    @pytest.mark.integration
    @pytest.mark.django_db(transaction=True)
    def test_something():
        worker = start_worker(queues=["inventory"], pool="solo", env={"EVENTS_SWEEP_INTERVAL_SECONDS": "0.5"})
        try:
            ...
            wait_until(lambda: Order.objects.filter(status="approved").exists(), timeout=20)
        finally:
            worker.stop()  # before the test database is flushed

``Worker.kill()`` (SIGKILL main and children), ``pause()``/``resume()`` (SIGSTOP/SIGCONT), ``log()``;
``RedisServer`` a private Redis to crash and restart; tests/events/conftest.py has a fixture that tracks
workers and stops them at teardown.
"""

from tests.support.redis import RedisServer, restart_embedded_redis
from tests.support.waiting import wait_until
from tests.support.workers import Worker, current_database_url, start_worker, stop_workers, worker_env

__all__ = [
           "RedisServer",
           "Worker",
           "current_database_url",
           "restart_embedded_redis",
           "start_worker",
           "stop_workers",
           "wait_until",
           "worker_env",
]
