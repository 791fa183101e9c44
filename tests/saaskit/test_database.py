"""The database connection of a long-lived process (a granian worker, a Celery worker) outlives a cut.

Found by ``make chaos``: after ``pg_terminate_backend`` (what a PostgreSQL restart or a failover does to every
connection), each web worker answered its next request 500, because the persistent connection (CONN_MAX_AGE)
was reused without a look. With CONN_HEALTH_CHECKS Django pings a reused connection once per request (and
per task: Celery workers close old connections around each task) and opens a new one if it is gone.
"""

import psycopg
import pytest
from django.conf import settings
from django.db import close_old_connections, connection


def test_persistent_connections_are_health_checked():
    assert settings.DATABASES["default"]["CONN_MAX_AGE"] > 0
    assert settings.DATABASES["default"]["CONN_HEALTH_CHECKS"] is True


@pytest.mark.django_db(transaction=True)
def test_the_next_request_after_a_terminated_connection_gets_a_fresh_one():
    close_old_connections()  # request_started
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (first_pid,) = cursor.fetchone()
    close_old_connections()  # request_finished: the connection is kept for the next request
    with psycopg.connect(settings.DATABASE_URL, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [first_pid])

    close_old_connections()  # the next request_started
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (second_pid,) = cursor.fetchone()

    assert second_pid != first_pid
