from __future__ import annotations

import pytest

from authzen.conditions import MAX_LENGTH, ConditionError, condition_compile, condition_holds


def test_a_condition_compiles_once_and_is_cached():
    assert condition_compile('resource.properties.status != "archived"') is condition_compile(
        'resource.properties.status != "archived"')


@pytest.mark.parametrize(("source", "fragment"), [
    ("resource.properties.status ==", "Syntax error"),
    ("user.role == 'admin'", "unknown variable(s) user"),
    ("[1].all(x, [2].exists(y, y > x))", "inside another comprehension"),
    ("true || " * 200 + "true", f"at most {MAX_LENGTH} characters"),
])
def test_bad_conditions_are_refused_naming_the_error(source, fragment):
    with pytest.raises(ConditionError) as error:
        condition_compile(source)

    assert fragment in str(error.value)


def test_a_macro_name_inside_a_string_is_not_code():
    condition_compile('subject.properties.tags.exists(t, t == ".all(x, [1].exists(y, true))")')


def test_an_evaluation_error_is_false_and_an_empty_condition_is_true():
    activation = {"subject": {"properties": {}}, "resource": {"properties": {}}, "action": {"properties": {}},
                  "context": {}}

    assert condition_holds('subject.properties.role == "admin"', activation) is False  # missing key
    assert condition_holds("1 + 2.5 > 0", activation) is False  # no such overload
    assert condition_holds('"yes"', activation) is False  # not a boolean
    assert condition_holds("", activation) is True


@pytest.mark.django_db
def test_evaluating_a_condition_touches_no_database(django_assert_num_queries):
    condition_compile('context.ip.startsWith("10.") && resource.properties.size < 10')
    with django_assert_num_queries(0):
        assert condition_holds('context.ip.startsWith("10.") && resource.properties.size < 10',
                               {"subject": {}, "action": {}, "resource": {"properties": {"size": 3}},
                                "context": {"ip": "10.1.2.3"}}) is True
