"""Schemathesis over the whole OpenAPI schema (drf-spectacular's, /api/schema/), in process through the WSGI
app: every example is sent as a customer, a clerk, an accountant and an instance admin of instance A, as a
stranger (a member of no instance) and with no token. No answer may be a 500, and every answer must conform to
the schema: a declared status code, the declared content type and body, the error shape for every error.

``FUZZ_EXAMPLES`` sets the generated examples per operation (a few in the normal run); ``FUZZ_COVERAGE=1`` adds
Schemathesis' coverage phase. ``make fuzz`` sets both.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from django.test import override_settings
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from saaskit.wsgi import application
from tests.support.hostile import ROLES, World, build_world, token_for

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "2"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


# Loaded at collection, in process (generating the schema touches no database): one test per operation.
with override_settings(API_DOCS_ENABLED=True):  # whatever the environment says about serving the docs
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)
# The coverage phase (boundary values of every parameter, a few dozen requests per operation) runs in `make fuzz`.
schema.config.phases.coverage.enabled = os.environ.get("FUZZ_COVERAGE") == "1"
pytestmark = pytest.mark.django_db


@pytest.fixture
def world(db, settings) -> World:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return build_world()


@pytest.fixture
def tokens(world) -> dict[str, str | None]:
    callers: dict[str, str | None] = {role: token_for(world.a.members[role].user, world.a.members[role])
                                      for role in ROLES}
    callers["stranger"] = token_for(world.stranger, None)
    callers["no_token"] = None
    return callers


@pytest.fixture(autouse=True)
def _keep_the_test_transactions_connection():
    """What Django's test client does: a request through the raw WSGI app must not close the connection that
    holds the test's transaction."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture(autouse=True)
def _no_throttle_counters_left():
    from tests.accounts.conftest import _delete_throttle_counters

    _delete_throttle_counters()
    yield
    _delete_throttle_counters()


@schema.parametrize()
@settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_every_operation_answers_in_its_schema_for_every_caller(case, world, tokens):
    if "slug" in (case.path_parameters or {}):
        case.path_parameters["slug"] = world.a.instance.slug  # random slugs only ever find nothing
    for caller, token in tokens.items():
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            case.call_and_validate(headers=headers, checks=CHECKS)
        except Exception as exc:
            exc.add_note(f"Called as: {caller}")
            raise
