"""The email normal form, and the data migration that brings stored emails to it."""

import importlib

import pytest
from django.apps import apps
from hypothesis import given
from hypothesis import strategies as st

from accounts.emails import normalize_email
from accounts.models import User
from tests.factories import UserFactory

migration = importlib.import_module("accounts.migrations.0005_normalize_emails")


@pytest.mark.parametrize(("raw", "normal"), [
    ("Ada@Example.COM", "ada@example.com"),
    ("  ada@example.com\t", "ada@example.com"),
    ("\uff21\uff24\uff21@example.com", "ada@example.com"),  # fullwidth
    ("\u212aate@example.com", "kate@example.com"),  # KELVIN SIGN
    ("\u017ftrasse@example.com", "strasse@example.com"),  # LONG S
    ("STRA\u1e9eE@example.com", "strasse@example.com"),  # CAPITAL SHARP S
    ("caf\u0065\u0301@example.com", "caf\u00e9@example.com"),  # combining accent composed
])
def test_normalize_email_gives_one_form_for_each_spelling(raw, normal):
    assert normalize_email(raw) == normal


@given(st.text(max_size=40))
def test_normalize_email_is_idempotent(text):
    once = normalize_email(text)

    assert normalize_email(once) == once


@given(st.text(max_size=40))
def test_the_migration_keeps_a_frozen_copy_of_the_normal_form(text):
    assert migration._normal(text) == normalize_email(text)


@pytest.mark.django_db
def test_the_migration_normalises_stored_emails_and_leaves_collisions_alone(caplog):
    plain = UserFactory(email="ada@example.com")
    fullwidth = UserFactory(email="\uff41da@example.com")  # normalises to ada@example.com: taken
    kelvin = UserFactory(email="\u212aate@example.com")
    upper = UserFactory(email="Bob@Example.com")

    migration.normalize_emails(apps, None)

    emails = dict(User.objects.values_list("pk", "email"))
    assert emails == {plain.pk: "ada@example.com", fullwidth.pk: "\uff41da@example.com",
                      kelvin.pk: "kate@example.com", upper.pk: "bob@example.com"}
    assert f"user {fullwidth.pk} keeps email" in caplog.text
