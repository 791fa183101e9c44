"""accounts' periodic task: flushing expired refresh tokens.

Scheduled by beat (``CELERY_BEAT_SCHEDULE["accounts-refresh-tokens-flush"]`` in saaskit/settings.py), on the
accounts queue."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings

from accounts.services.tokens import refresh_tokens_flush_expired


@shared_task(name="accounts.refresh_tokens_flush", ignore_result=True, soft_time_limit=600, time_limit=660)
def refresh_tokens_flush() -> int:
    """Delete refresh tokens expired longer than ``REFRESH_TOKEN_FLUSH_GRACE_SECONDS``; returns how many."""
    return refresh_tokens_flush_expired(grace=timedelta(seconds=settings.REFRESH_TOKEN_FLUSH_GRACE_SECONDS))
