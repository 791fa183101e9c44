import pytest
from hypothesis import given
from hypothesis import strategies as st

from authz.policy import GROUP, USER, PolicyError, PolicySpec, parse_policy


def test_parses_a_user_policy():
    assert parse_policy("10:get:orders:15") == PolicySpec(USER, 10, "get", "orders", "15")


def test_parses_a_group_policy_with_wildcard():
    assert parse_policy("group/4:cancel:orders:*") == PolicySpec(GROUP, 4, "cancel", "orders", "*")


@pytest.mark.parametrize(("text", "part", "code"), [
    ("10:get:orders", "policy", "invalid_policy"),
    ("10:get:orders:1:2", "policy", "invalid_policy"),
    ("abc:get:orders:1", "subject", "invalid_policy"),
    ("0:get:orders:1", "subject", "invalid_policy"),
    ("10:fly:orders:1", "action", "unknown_action"),
    ("10:cancel:products:1", "action", "unknown_action"),
    ("10:get:planes:1", "resource_type", "unknown_resource_type"),
    ("10:get:orders:", "resource_id", "invalid_resource_id"),
    ("10:get:orders:a b", "resource_id", "invalid_resource_id"),
    ("10:get:resources:abc", "resource_id", "invalid_resource_id"),
])
def test_invalid_strings_name_the_bad_part(text, part, code):
    with pytest.raises(PolicyError) as raised:
        parse_policy(text)

    assert raised.value.part == part
    assert raised.value.code == code
    assert raised.value.status_code == 400
    assert f"Invalid {part} in policy" in raised.value.message


def test_a_non_string_is_invalid():
    with pytest.raises(PolicyError) as raised:
        parse_policy(12, index=3)

    assert raised.value.fields == {"policies[3]": ["policy: must be a string"]}


@given(st.one_of(st.text(max_size=80), st.lists(st.sampled_from(["1", "get", "orders", "*", "group/2", "", "x"]),
                                                 max_size=6).map(":".join)))
def test_any_string_parses_or_raises_a_policy_error(text):
    try:
        spec = parse_policy(text)
    except PolicyError as error:
        assert error.status_code == 400
    else:
        assert spec.as_string() == text
