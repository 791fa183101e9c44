from __future__ import annotations

from events.checks import check_delivery_settings


def ids(settings) -> list[str]:
    return [message.id for message in check_delivery_settings()]


def test_project_settings_pass(settings):
    assert ids(settings) == []


def test_at_least_once_settings_are_required(settings):
    settings.CELERY_TASK_ACKS_LATE = False
    settings.CELERY_TASK_REJECT_ON_WORKER_LOST = False
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.CELERY_WORKER_PREFETCH_MULTIPLIER = 4
    assert ids(settings) == ["events.E001", "events.E002", "events.E003", "events.W001"]


def test_bounds_must_exceed_the_task_time_limit(settings):
    settings.EVENTS_TASK_SOFT_TIME_LIMIT = 60
    settings.EVENTS_REDELIVER_AFTER_SECONDS = 30
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {**settings.CELERY_BROKER_TRANSPORT_OPTIONS, "visibility_timeout": 60}
    assert ids(settings) == ["events.W002", "events.W003"]


def test_the_cache_in_the_brokers_database_and_a_publish_without_timeout_are_flagged(settings):
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": settings.REDIS_URL}}
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {**settings.CELERY_BROKER_TRANSPORT_OPTIONS, "socket_timeout": None}
    assert ids(settings) == ["events.W004", "events.W005"]
