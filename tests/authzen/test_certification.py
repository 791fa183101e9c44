"""The AuthZEN certification scenario, every test of every sub-level, over HTTP against granian serving the
project as production does (``saaskit.server``: the general web server and the PDP listener; the fast path of
``saaskit.wsgi`` included) with the token ``manage.py authzen certification-fixture`` prints."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from authzen import authentication, index, selectors
from tests.authzen import scenario
from tests.support.server import granian_server

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module", params=["web", "pdp"])
def server(request, django_db_setup):
    with granian_server(pdp=request.param == "pdp") as base:
        yield base


@pytest.fixture
def pdp(server):
    authentication.forget_cached_keys()
    selectors.subject_cache_clear()
    index.index_clear()
    out = io.StringIO()
    call_command("authzen", "certification-fixture", "--json", "--base-url", server, stdout=out)
    answer = json.loads(out.getvalue())
    yield answer["policy_decision_point"], answer["token"]
    authentication.forget_cached_keys()
    selectors.subject_cache_clear()


@pytest.mark.parametrize("level", ["basic_core", "basic_properties", "batch_core", "batch_properties",
                                   "search_core", "search_properties", "discovery"])
def test_certification_level_passes_over_http(pdp, level):
    base, token = pdp
    assert scenario.run(scenario.cases()[level], base=base, token=token) == []
