"""``GET /metrics`` (events.api.metrics, events.metrics), ``manage.py events health`` and the alert rules."""

from __future__ import annotations

import json
import re
from io import StringIO
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.core.management import call_command
from django.test import Client

from events.choices import DeliveryStatus
from events.models import Delivery
from events.services import delivery_run
from tests.events.bus import ACTIVITY, activity, publish_and_relay

ALERTS = Path(settings.BASE_DIR) / "deploy" / "prometheus-alerts.yml"


def scrape(client: Client | None = None, **headers) -> tuple[int, str]:
    response = (client or Client()).get("/metrics", **headers)
    return response.status_code, response.content.decode()


def samples(text: str) -> dict[str, float]:
    """``name{labels}`` -> value of every sample line."""
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
            if line and not line.startswith("#")}


@pytest.mark.django_db
def test_metrics_count_deliveries_and_read_the_bus_state(test_consumers, bus_settings):
    done = publish_and_relay(activity("record", "ok"))
    failing = publish_and_relay(activity("boom", "x"))
    parked = publish_and_relay(activity("step", "m:2"))
    publish_and_relay(activity("record", "waiting"))
    dead = publish_and_relay(activity("record", "dead"))
    Delivery.objects.filter(pk=dead.pk).update(status=DeliveryStatus.DEAD)
    before = samples(scrape(REMOTE_ADDR="127.0.0.1")[1])
    assert [delivery_run(delivery_id=d.pk).outcome for d in (done, failing, parked)] == ["done", "retrying", "parked"]

    status, text = scrape(REMOTE_ADDR="127.0.0.1")

    assert status == 200
    after = samples(text)

    def grew(name: str) -> float:
        return after.get(name, 0) - before.get(name, 0)

    label = f'consumer="{ACTIVITY}"'
    assert grew(f'saaskit_events_deliveries_total{{{label},outcome="done"}}') == 1
    assert grew(f'saaskit_events_deliveries_total{{{label},outcome="retrying"}}') == 1
    assert grew(f'saaskit_events_deliveries_total{{{label},outcome="parked"}}') == 1
    assert grew(f"saaskit_events_delivery_latency_seconds_count{{{label}}}") == 1
    assert after["saaskit_events_parked_deliveries"] == 1
    assert after["saaskit_events_dead_deliveries"] == 1
    assert after['saaskit_events_open_deliveries{queue="events_test",status="pending"}'] == 1
    assert after['saaskit_events_open_deliveries{queue="events_test",status="retrying"}'] == 1
    assert 0 <= after['saaskit_events_oldest_pending_seconds{queue="events_test"}'] < 60
    assert after["saaskit_events_outbox_unsent"] == 0


@pytest.mark.django_db
def test_metrics_need_the_token_or_an_allowed_address(settings):
    settings.METRICS_BEARER_TOKEN = "s3cret"
    settings.METRICS_ALLOWED_ADDRESSES = ["127.0.0.1"]

    assert scrape(REMOTE_ADDR="127.0.0.1")[0] == 200
    assert scrape(REMOTE_ADDR="10.0.0.9", HTTP_AUTHORIZATION="Bearer s3cret")[0] == 200
    status, body = scrape(REMOTE_ADDR="10.0.0.9", HTTP_AUTHORIZATION="Bearer wrong")
    assert (status, json.loads(body)) == (403, {"error": {
        "code": "forbidden", "message": "metrics need the bearer token or an allowed address", "fields": {}}})
    settings.METRICS_BEARER_TOKEN = ""
    assert scrape(REMOTE_ADDR="10.0.0.9", HTTP_AUTHORIZATION="Bearer ")[0] == 403
    response = Client().post("/metrics", REMOTE_ADDR="127.0.0.1")
    assert (response.status_code, response.json()["error"]["code"]) == (405, "method_not_allowed")


@pytest.mark.django_db
def test_every_metric_the_alert_rules_name_exists(test_consumers):
    delivery_run(delivery_id=publish_and_relay(activity("record", "ok")).pk)  # a sample of every labelled series
    families = dict(re.findall(r"^# TYPE (\S+) (\S+)", scrape(REMOTE_ADDR="127.0.0.1")[1], re.M))
    series = set(families)
    for name, kind in families.items():
        if kind == "counter":
            series.add(f"{name}_total")
        if kind == "histogram":
            series |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}

    rules = [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]
    named = {m for rule in rules for m in re.findall(r"\b(saaskit_[a-z0-9_]+)", rule["expr"])}

    assert len(rules) == 10
    assert named and named <= series, sorted(named - series)


def health(*args: str) -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("events", "health", *args, stdout=out)
    except SystemExit as exc:
        return int(exc.code), out.getvalue()
    return 0, out.getvalue()


@pytest.mark.django_db
def test_health_exits_1_on_dead_letters_or_a_delivery_pending_too_long(test_consumers, settings):
    settings.EVENTS_HEALTH_MAX_PENDING_SECONDS = 300
    publish_and_relay(activity("record", "fresh"))
    code, out = health()
    assert (code, out.splitlines()[0]) == (0, "healthy")
    assert out.splitlines()[1].startswith("dead=0 parked=0 open=1 oldest_pending_seconds=")

    old = publish_and_relay(activity("record", "old"))
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("UPDATE events_delivery SET sent_at = clock_timestamp() - interval '10 minutes' WHERE id = %s",
                       [old.pk])
    Delivery.objects.filter(pk=publish_and_relay(activity("record", "d")).pk).update(status=DeliveryStatus.DEAD)

    code, out = health("--json")
    verdict = json.loads(out)
    assert code == 1
    assert verdict["healthy"] is False and (verdict["dead"], verdict["open"]) == (1, 2)
    assert verdict["problems"][0] == "1 dead-lettered deliveries (manage.py events dlq)"
    assert verdict["problems"][1].startswith("a delivery has been pending for 60")
    assert 600 <= verdict["oldest_pending_seconds"] < 660
    assert health()[1].startswith("unhealthy: 1 dead-lettered deliveries")


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_in_multiprocess_mode_a_scrape_adds_up_every_process(tmp_path):
    """granian and Celery processes of one host share PROMETHEUS_MULTIPROC_DIR: any of them answers for all."""
    import subprocess
    import sys

    from tests.support import worker_env

    env = worker_env({"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)})
    count = ("import django; django.setup(); from events import metrics; "
             "[metrics.delivery_ended('tests.mp', 'done') for _ in range({n})]")
    for n in (2, 3):  # two processes, each counting its own
        subprocess.run([sys.executable, "-c", count.replace("{n}", str(n))], env=env, check=True, timeout=60)
    scraped = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); from events import metrics; "
         "print(metrics.exposition().decode())"], env=env, check=True, timeout=60, capture_output=True, text=True)

    values = samples(scraped.stdout)
    assert values['saaskit_events_deliveries_total{consumer="tests.mp",outcome="done"}'] == 5
    assert values["saaskit_events_dead_deliveries"] == 0


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_in_multiprocess_mode_a_dead_process_gauge_is_not_scraped(tmp_path):
    """A killed web or worker process leaves its gauge file behind (granian has no hook to mark it dead): the
    scrape drops the live-mode gauges of processes that no longer exist, so a dead worker's last staleness does
    not stand for the living ones'."""
    import subprocess
    import sys

    from tests.support import worker_env

    env = worker_env({"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)})
    stale = ("import django; django.setup(); from saaskit import metrics; "
             "metrics.AUTHZ_STALENESS.set(99.0)")
    subprocess.run([sys.executable, "-c", stale], env=env, check=True, timeout=60)  # it set 99 s, then exited
    alive = ("import django; django.setup(); from saaskit import metrics; metrics.AUTHZ_STALENESS.set(0.25); "
             "from events import metrics as bus; print(bus.exposition().decode())")
    scraped = subprocess.run([sys.executable, "-c", alive], env=env, check=True, timeout=60, capture_output=True,
                             text=True)

    assert samples(scraped.stdout)["saaskit_authz_cache_staleness_seconds"] == 0.25
