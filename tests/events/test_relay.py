"""The relay under a broker outage: a request that publishes answers at normal speed while Redis is stopped or
paused (SIGSTOP: connections hang instead of failing), since its outbox rows are committed and the sweep sends
them later."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time

import pytest
from rest_framework.test import APIClient

from events import relay
from events.models import Delivery
from inventory.services import product_create
from orders.models import Order
from saaskit.celery import app
from saaskit.settings import redis_url_for_kombu
from tests.factories import ProfileFactory, context_for
from tests.support import RedisServer


def use_broker(url: str) -> None:
    """Point this process's Celery app at ``url`` (its pools for each URL stay in kombu's registry)."""
    app.conf.broker_url = url
    app.conf.broker_write_url = None
    app._pool = None
    app.amqp._producer_pool = None
    relay.reset()  # the relay's own connections too


@pytest.fixture
def private_broker(tmp_path):
    server = RedisServer(tmp_path / "redis")
    server.start()
    original = app.conf.broker_url
    use_broker(redis_url_for_kombu(server.url(0)))
    try:
        yield server
    finally:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            os.kill(int((server.directory / "redis.pid").read_text()), signal.SIGCONT)
        use_broker(original)
        server.stop(save=False)


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("outage", ["stopped", "paused"])
def test_an_order_is_placed_at_normal_speed_while_the_broker_is_down(private_broker, instance, outage):
    profile = ProfileFactory(instance=instance, role="customer")
    client = APIClient()
    client.force_authenticate(user=profile.user, token=context_for(profile))
    apple = product_create(instance=instance, sku="APL", name="Apple", price="1.50", stock_on_hand=10)
    assert relay.send([(0, "events_test")]) == 1  # a live, pooled connection to the broker
    if outage == "stopped":
        private_broker.stop(save=False)
    else:  # a network partition: connections hang
        os.kill(int((private_broker.directory / "redis.pid").read_text()), signal.SIGSTOP)

    started = time.monotonic()
    response = client.post("/api/v1/orders/", {"currency": "USD", "lines": [{"product_id": apple.pk, "quantity": 1}]},
                           format="json")
    took = time.monotonic() - started

    assert response.status_code == 201
    assert took < 3.0  # a generous bound (one socket timeout of 1 s), not a speed goal: it used to hang
    order = Order.objects.get()
    assert order.status == "pending"
    # committed with the order and owed: the sweep sends them once the broker is back
    assert Delivery.objects.filter(status="pending").count() >= 1


@pytest.mark.django_db
def test_a_message_names_its_delivery_and_event_in_a_short_argsrepr(settings):
    """The relay writes the message's ``argsrepr`` itself (Celery's saferepr of the carried envelope cost a quarter
    of publish()); the sweep still reads the delivery id of a waiting message from it."""
    import redis

    from events.services import _message_delivery_id

    client = redis.Redis.from_url(settings.REDIS_URL)
    queue = "events_test_argsrepr"
    client.delete(queue)
    envelope = {"id": "0b7c6c58-8a4c-4a43-9d5e-2f4c1e0f8d11", "name": "event-suspicious-activity", "version": 1,
                "time": "2026-12-01T20:00:00+00:00", "instance": None, "correlation_id": "c", "causation_id": None,
                "payload": {"kind": "record", "detail": "x" * 5000, "user_id": None}}
    try:
        assert relay.send([(41, queue, "tests.activity", envelope), (42, queue)]) == 2
        raw = [client.rpop(queue), client.rpop(queue)]
    finally:
        client.delete(queue)

    headers = [json.loads(message)["headers"] for message in raw]
    assert [h["argsrepr"] for h in headers] == [
        "[41, 'tests.activity', {event event-suspicious-activity 0b7c6c58-8a4c-4a43-9d5e-2f4c1e0f8d11}]", "[42]"]
    assert [h["kwargsrepr"] for h in headers] == ["{}", "{}"]
    assert [_message_delivery_id(message) for message in raw] == [41, 42]
    body = json.loads(__import__("base64").b64decode(json.loads(raw[0])["body"]))
    assert body[0] == [41, "tests.activity", envelope]  # the message itself carries the whole envelope


def _queued_delivery_ids(client, queue: str) -> list[int]:
    from events.services import _message_delivery_id

    return [_message_delivery_id(raw) for raw in reversed(client.lrange(queue, 0, -1))]  # LPUSH: oldest last


@pytest.mark.django_db
def test_the_relay_sends_on_its_own_long_lived_connection_without_a_client_per_message(settings, monkeypatch):
    """``apply_async`` built a redis-py client for every message (kombu's Redis channel does, about a quarter of
    its CPU time); the relay's thread keeps one connection, channel and client, and its messages are Celery's."""
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL)
    queue = "events_test_one_client"
    client.delete(queue)
    relay.reset()
    try:
        assert relay.send([(1, queue)]) == 1  # this thread's sender: its connection and client
        sender = relay._sender()
        made = []
        original = redis.Redis.__init__
        monkeypatch.setattr(redis.Redis, "__init__", lambda self, *a, **kw: (made.append(1), original(self, *a, **kw))[1])
        assert relay.send([(2, queue), (3, queue)]) == 2
        assert relay._sender() is sender
        assert made == []
        assert _queued_delivery_ids(client, queue) == [1, 2, 3]
        headers = [json.loads(raw)["headers"] for raw in client.lrange(queue, 0, -1)]
        assert {(h["task"], h["lang"], h["ignore_result"], tuple(h["timelimit"])) for h in headers} == {
            ("events.deliver", "py", True, (settings.EVENTS_TASK_SOFT_TIME_LIMIT + 15,
                                            settings.EVENTS_TASK_SOFT_TIME_LIMIT))}
    finally:
        client.delete(queue)


@pytest.mark.integration
@pytest.mark.django_db
def test_after_a_broker_failure_the_relay_opens_a_new_connection_once_paused_long_enough(private_broker, settings):
    client = private_broker.client(0)
    assert relay.send([(1, "events_test")]) == 1
    before = relay._sender()
    private_broker.stop(save=False)

    assert relay.send([(2, "events_test"), (3, "events_test")]) == 0
    assert relay._paused_until > time.monotonic()  # left to the sweep for EVENTS_RELAY_PAUSE_SECONDS
    assert relay.send([(4, "events_test")]) == 0  # paused: not even tried

    private_broker.start()
    relay._paused_until = 0.0  # the pause is over
    assert relay.send([(5, "events_test")]) == 1
    assert relay._sender() is not before
    queued = _queued_delivery_ids(client, "events_test")
    assert queued[-1] == 5 and not {2, 3, 4} & set(queued)  # (1 is there if the AOF kept it)


@pytest.mark.django_db
def test_a_forked_child_opens_its_own_connection_and_leaves_the_parents_alone(monkeypatch):
    """A web server or a prefork pool that forks after the parent sent: the child must not share (or close) the
    parent's broker connection."""
    relay.reset()
    parent = relay._sender()
    closed = []
    monkeypatch.setattr(parent, "close", lambda: closed.append(True))
    monkeypatch.setattr(relay.os, "getpid", lambda: parent.pid + 1)  # as seen from a forked child

    child = relay._sender()

    assert child is not parent and child.pid == parent.pid + 1
    assert closed == []  # the parent's connection is the parent's to close
    assert relay._sender() is child
