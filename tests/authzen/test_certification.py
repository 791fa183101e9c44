"""The AuthZEN certification scenario, every test of every sub-level, over HTTP against a live server
(pytest-django's ``live_server``) with the token ``manage.py authzen certification-fixture`` prints."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from authzen import authentication, index, selectors
from tests.authzen import scenario

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def pdp(live_server):
    authentication.forget_cached_keys()
    selectors.subject_cache_clear()
    index.index_clear()
    out = io.StringIO()
    call_command("authzen", "certification-fixture", "--json", "--base-url", live_server.url, stdout=out)
    answer = json.loads(out.getvalue())
    yield answer["policy_decision_point"], answer["token"]
    authentication.forget_cached_keys()
    selectors.subject_cache_clear()


@pytest.mark.parametrize("level", ["basic_core", "basic_properties", "batch_core", "batch_properties",
                                   "search_core", "search_properties", "discovery"])
def test_certification_level_passes_over_http(pdp, level):
    base, token = pdp
    assert scenario.run(scenario.cases()[level], base=base, token=token) == []
