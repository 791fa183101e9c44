from __future__ import annotations

import pytest
from jsonschema import Draft7Validator

from events.apps import EventsConfig, connect_catalogued_signals, signal_paths
from events.catalogue import BY_NAME, CATALOGUE
from events.consumers import all_subscriptions

EXPECTED = [
    "event-account-created", "event-account-deleted", "event-account-authenticated", "event-upsert-policy",
    "event-policy-updated", "event-remove-policy", "event-order-created", "event-order-canceled",
    "event-order-approved", "event-product-reserved", "event-err-reserving-product", "event-payment",
    "event-suspicious-activity",
]


def test_catalogue_declares_every_event_once_in_order():
    assert [spec.name for spec in CATALOGUE] == EXPECTED


@pytest.mark.parametrize("spec", CATALOGUE, ids=lambda s: s.name)
def test_each_event_is_fully_described(spec):
    assert spec.version >= 1
    assert len(spec.summary) > 20
    assert spec.producer in {"accounts", "authz", "orders", "inventory", "payments", "any"}
    assert spec.signals and all(path.count(".") >= 2 for path in spec.signals)
    Draft7Validator.check_schema(spec.payload)
    assert spec.payload["type"] == "object" and spec.payload["additionalProperties"] is False


@pytest.mark.parametrize(("name", "good", "bad"), [
    ("event-account-created", {"user_id": 1, "email": "a@b.c", "instance": None}, {"user_id": 1}),
    ("event-account-authenticated", {"user_id": 1, "instance": "acme", "role": "clerk"}, {"user_id": 1, "role": 1,
                                                                                          "instance": None}),
    ("event-upsert-policy", {"policies": ["1:get:orders:5"]}, {"policies": ["1:get:orders"]}),
    ("event-policy-updated", {"subject_ids": [], "resource_types": ["orders"], "version": 3},
     {"subject_ids": ["1"], "resource_types": [], "version": 3}),
    ("event-order-created", {"order_id": 1, "customer_id": 2, "lines": [{"product_id": 3, "quantity": 1}],
                             "currency": "EUR"},
     {"order_id": 1, "customer_id": 2, "lines": [{"product_id": 3, "quantity": 0}], "currency": "EUR"}),
    ("event-product-reserved", {"order_id": 1, "customer_id": 2, "amount": "10.50", "currency": "EUR"},
     {"order_id": 1, "customer_id": 2, "amount": 10.5, "currency": "EUR"}),
    ("event-payment", {"order_id": 1, "payment_id": None, "status": "failed", "amount": "0.00", "reason": "x"},
     {"order_id": 1, "payment_id": 4, "status": "pending", "amount": "1.00", "reason": None}),
    ("event-suspicious-activity", {"kind": "k", "detail": "", "user_id": None}, {"kind": "", "detail": "",
                                                                                 "user_id": None}),
])
def test_payload_schemas_accept_the_contract_shapes_and_refuse_others(name, good, bad):
    validator = Draft7Validator(BY_NAME[name].payload)
    assert list(validator.iter_errors(good)) == []
    assert list(validator.iter_errors(bad)) != []


def test_every_declared_consumer_is_registered_for_its_event():
    registered = {(s.event_name, s.name) for s in all_subscriptions() if not s.handler.__module__.startswith("tests.")}
    declared = {(spec.name, consumer) for spec in CATALOGUE for consumer in spec.consumers}
    assert declared - registered == set()
    # Consumers an app registers without declaring them still get deliveries and appear in `events list` and the
    # AsyncAPI document (see test_asyncapi); declaring them here documents them.


def test_wildcard_signals_expand_over_installed_apps():
    assert "orders.signals.policy_upsert_requested" in signal_paths("*.signals.policy_upsert_requested")
    assert "events.signals.policy_upsert_requested" not in signal_paths("*.signals.policy_upsert_requested")
    assert signal_paths("authz.signals.policy_updated") == ["authz.signals.policy_updated"]


def test_ready_connected_the_signals_that_exist_and_skipped_the_rest():
    connected = EventsConfig.connected_signals
    assert connected["event-order-created"] == ["orders.signals.order_created"]
    assert connected["event-payment"] == ["payments.signals.payment_processed"]
    assert connected["event-policy-updated"] == ["authz.signals.policy_updated"]
    assert "orders.signals.policy_upsert_requested" in connected["event-upsert-policy"]
    every_path = {p for paths in connected.values() for p in paths}
    assert all(p.split(".")[0] in {"accounts", "authz", "orders", "inventory", "payments"} for p in every_path)
    assert connect_catalogued_signals() == connected  # idempotent: dispatch_uid prevents double connections


def test_connecting_twice_publishes_once(db):
    from events.models import OutboxEvent
    from orders.signals import order_approved

    connect_catalogued_signals()
    order_approved.send(sender=None, instance=None, payload={"order_id": 1})

    assert OutboxEvent.objects.count() == 1


def test_a_missing_signal_module_is_skipped_but_a_broken_one_raises(tmp_path, monkeypatch):
    from events.apps import _import_optional

    (tmp_path / "broken_signals_pkg").mkdir()
    (tmp_path / "broken_signals_pkg" / "__init__.py").write_text("")
    (tmp_path / "broken_signals_pkg" / "signals.py").write_text("import not_a_module_anywhere\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    assert _import_optional("no_such_app.signals") is None
    assert _import_optional("orders.no_such_module") is None
    with pytest.raises(ModuleNotFoundError, match="not_a_module_anywhere"):
        _import_optional("broken_signals_pkg.signals")
