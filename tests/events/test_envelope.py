"""The payload check: a compiled fast path that may only answer "valid" when the reference validator agrees."""

from __future__ import annotations

from typing import Any

import fastjsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events.catalogue import BY_NAME, CATALOGUE
from events.envelope import check_payload, fast_payload_validator, payload_validator
from events.errors import PayloadSchemaError

NAMES = [spec.name for spec in CATALOGUE]


def _property_names(schema: Any) -> set[str]:
    names: set[str] = set()
    if isinstance(schema, dict):
        names |= set(schema.get("properties", {}))
        for value in schema.values():
            names |= _property_names(value)
    elif isinstance(schema, list):
        for value in schema:
            names |= _property_names(value)
    return names


KEYS = sorted(set().union(*(_property_names(spec.payload) for spec in CATALOGUE)) | {"extra"})

# Strings where regex dialects and type rules differ: a trailing newline, whitespace that only some engines call
# whitespace, digits, policy-shaped strings, the enum values.
TRICKY_STRINGS = st.sampled_from([
    "", "1", "12", "12\n", "-1.50", "1.", "1e3", " 1", "EUR", "succeeded", "failed", "a@b.c",
    "1:get:orders:5", "1:get:orders", "1:get:orders:5\n", "a\x1cb:get:orders:5", "a\u00a0b:get:orders:5",
    "group/3:*:orders:*", "1:get: orders:5",
])
STRINGS = (TRICKY_STRINGS | st.text(max_size=10) | st.from_regex(r"-?[0-9]{1,4}(\.[0-9]{1,2})?", fullmatch=True)
           | st.from_regex(r"[a-z0-9/*]{1,4}:[a-z*]{1,4}:[a-z*]{1,4}:[0-9*]{1,3}", fullmatch=True))
SCALARS = (st.none() | st.booleans() | st.integers(min_value=-2, max_value=2**40)
           | st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from([0, 1, 1.0, 2.0, -0.0, 1.5])
           | STRINGS)
JSON = st.recursive(SCALARS, lambda children: st.lists(children, max_size=3)
                    | st.dictionaries(st.sampled_from(KEYS), children, max_size=4), max_leaves=10)


@st.composite
def payloads(draw: Any) -> tuple[str, Any]:
    """An event name and a payload near its schema: mostly its own keys (all, some or extra), any values."""
    name = draw(st.sampled_from(NAMES))
    own = sorted(BY_NAME[name].payload["properties"])
    keys = draw(st.sets(st.sampled_from(own + ["extra"]), max_size=len(own) + 1) | st.just(set(own)))
    payload = {key: draw(JSON) for key in sorted(keys)}
    return name, draw(st.just(payload) | JSON)


def reference_valid(name: str, payload: Any) -> bool:
    return not any(True for _ in payload_validator(name).iter_errors(payload))


def fast_valid(name: str, payload: Any) -> bool:
    try:
        fast_payload_validator(name)(payload)
    except fastjsonschema.JsonSchemaException:
        return False
    return True


@settings(max_examples=600, deadline=None)
@given(payloads())
def test_the_fast_path_never_accepts_what_the_reference_refuses(case):
    name, payload = case
    if fast_valid(name, payload):
        assert reference_valid(name, payload), (name, payload)


@settings(max_examples=500, deadline=None)
@given(payloads())
def test_check_payload_answers_like_the_reference_validator(case):
    name, payload = case
    try:
        check_payload(name, payload)
        accepted = True
    except PayloadSchemaError:
        accepted = False
    assert accepted == reference_valid(name, payload)


@pytest.mark.parametrize(("name", "payload"), [
    ("event-order-created", {"order_id": 1, "customer_id": 2, "lines": [{"product_id": 3, "quantity": 1}],
                             "currency": "EUR"}),
    ("event-upsert-policy", {"policies": ["1:get:orders:5", "group/2:*:orders:*"]}),
    ("event-payment", {"order_id": 1, "payment_id": None, "status": "failed", "amount": "10.00", "reason": "x"}),
])
def test_the_fast_path_accepts_ordinary_payloads(name, payload):
    assert fast_valid(name, payload)


def test_a_value_only_the_reference_accepts_still_passes():
    # Python's ``$`` matches before a trailing newline; the compiled check refuses it, the reference decides.
    payload = {"order_id": 1, "customer_id": 2, "amount": "10\n", "currency": "EUR"}
    assert not fast_valid("event-product-reserved", payload)
    check_payload("event-product-reserved", payload)  # no error: the reference validator accepts it


def test_the_fast_path_leaves_the_payload_untouched():
    payload = {"kind": "k", "detail": "d", "user_id": None}
    check_payload("event-suspicious-activity", payload)
    assert payload == {"kind": "k", "detail": "d", "user_id": None}
