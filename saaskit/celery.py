"""The Celery app. Every app's consumers sit on their own queue (accounts, authz, orders, inventory, payments),
so ``celery -A saaskit worker -Q inventory`` runs the inventory service alone."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saaskit.settings")

APP_QUEUES = ("accounts", "authz", "events", "orders", "inventory", "payments")

app = Celery("saaskit")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
