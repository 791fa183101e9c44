"""The AsyncAPI document validates against the official AsyncAPI 3.0 JSON Schema (npm @asyncapi/specs,
installed by ``make asyncapi-specs`` into .saaskit/npm, git-ignored)."""

from __future__ import annotations

import copy
import json
from functools import cache
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from jsonschema import Draft7Validator

from events.asyncapi import asyncapi_document
from events.catalogue import CATALOGUE

SPEC_PATH = Path(settings.BASE_DIR) / ".saaskit/npm/node_modules/@asyncapi/specs/schemas/3.0.0.json"


@cache
def official_validator() -> Draft7Validator:
    if not SPEC_PATH.exists():
        pytest.fail(f"{SPEC_PATH} is missing: run `make asyncapi-specs` (make test does)")
    schema = json.loads(SPEC_PATH.read_text())
    assert schema["$id"] == "http://asyncapi.com/definitions/3.0.0/asyncapi.json"
    # Every $ref resolves inside the bundled file (its definitions carry their own $id): nothing is fetched.
    return Draft7Validator(schema)


def errors_of(document: dict) -> list[str]:
    return sorted(f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                  for e in official_validator().iter_errors(document))


def test_document_is_valid_asyncapi_3():
    assert errors_of(asyncapi_document()) == []


def test_validator_really_checks_nested_objects():
    document = copy.deepcopy(asyncapi_document())
    document["operations"]["send-event-payment"]["action"] = "publish"  # AsyncAPI 2 wording
    del document["channels"]["event-order-created"]["messages"]["event-order-created-v1"]["$ref"]
    document["channels"]["event-order-created"]["messages"]["event-order-created-v1"]["payload"] = 5

    assert errors_of(document) != []
    assert any(e.startswith("operations/send-event-payment") for e in errors_of(document))


def test_document_has_a_channel_message_and_send_operation_per_event():
    document = asyncapi_document()
    assert document["asyncapi"] == "3.0.0"
    assert sorted(document["channels"]) == sorted(spec.name for spec in CATALOGUE)
    for spec in CATALOGUE:
        message = document["components"]["messages"][f"{spec.name}-v{spec.version}"]
        assert message["payload"]["properties"]["payload"] == spec.payload
        assert message["payload"]["properties"]["name"] == {"type": "string", "const": spec.name}
        assert document["operations"][f"send-{spec.name}"]["channel"] == {"$ref": f"#/channels/{spec.name}"}


def test_document_has_a_receive_operation_per_consumer_on_its_queue():
    operations = asyncapi_document()["operations"]
    receive = {key: (op["channel"]["$ref"], op["x-queue"])
               for key, op in operations.items() if op["action"] == "receive"}
    assert receive["receive-inventory_reserve_for_order"] == ("#/channels/event-order-created", "inventory")
    assert receive["receive-orders_apply_payment"] == ("#/channels/event-payment", "orders")
    assert not any("tests" in key for key in receive)


def test_endpoint_serves_the_document_without_auth(api_client, db):
    response = api_client.get("/api/v1/events/asyncapi.json")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == json.loads(json.dumps(asyncapi_document()))


def test_endpoint_refuses_writes_with_a_json_error(api_client, db):
    response = api_client.post("/api/v1/events/asyncapi.json", {}, format="json")

    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_management_command_prints_the_same_document():
    out = StringIO()
    call_command("events", "asyncapi", stdout=out)
    assert json.loads(out.getvalue()) == json.loads(json.dumps(asyncapi_document()))


def test_document_includes_consumers_registered_by_apps_even_if_undeclared():
    from events.consumers import consumer, unregister

    def handler(event):
        return None

    handler.__module__ = "payments.consumers"
    consumer("event-suspicious-activity", name="payments.watch_suspicious", queue="payments")(handler)
    try:
        operation = asyncapi_document()["operations"]["receive-payments_watch_suspicious"]
    finally:
        unregister("payments.watch_suspicious")
    assert operation["channel"] == {"$ref": "#/channels/event-suspicious-activity"}
    assert operation["x-queue"] == "payments"
    assert errors_of(asyncapi_document()) == []
