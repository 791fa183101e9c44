"""Integration helpers shared by every app's tests: real Celery workers, a private Redis, ``wait_until``.

    from tests.support import start_worker, wait_until

    @pytest.mark.integration
    @pytest.mark.django_db(transaction=True)
    def test_something(worker_factory):  # or start_worker(...) in a try/finally
        worker = start_worker(queues=["inventory"], pool="solo")
        ...
        wait_until(lambda: Order.objects.filter(status="approved").exists(), timeout=20)
        worker.stop()
"""

from tests.support.redis import RedisServer, restart_embedded_redis
from tests.support.waiting import wait_until
from tests.support.workers import Worker, current_database_url, start_worker, worker_env

__all__ = [
           "RedisServer",
           "Worker",
           "current_database_url",
           "restart_embedded_redis",
           "start_worker",
           "wait_until",
           "worker_env",
]
