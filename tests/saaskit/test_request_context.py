"""RequestContextMiddleware binds a request id and the client address for the request, and only for it."""

from __future__ import annotations

import re

import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from saaskit.middleware import RequestContextMiddleware
from saaskit.request_context import RequestContext, current_request_context


def run(request) -> tuple[RequestContext, HttpResponse]:
    seen: list[RequestContext] = []

    def view(req):
        seen.append(current_request_context())
        return HttpResponse("ok")

    response = RequestContextMiddleware(view)(request)
    return seen[0], response


def test_a_request_gets_a_new_id_and_its_address_while_it_runs():
    context, response = run(RequestFactory().get("/", REMOTE_ADDR="198.51.100.7"))

    assert re.fullmatch(r"[0-9a-f]{32}", context.request_id)
    assert (context.address, context.origin) == ("198.51.100.7", "request")
    assert response["X-Request-ID"] == context.request_id
    assert current_request_context() == RequestContext(request_id="", address=None, origin="command")


@pytest.mark.parametrize("given", ["edge-42:a.b_c", "has space", "quote'", "x" * 200])
def test_a_printable_incoming_request_id_is_kept(given):
    context, response = run(RequestFactory().get("/", HTTP_X_REQUEST_ID=given))
    assert context.request_id == given
    assert response["X-Request-ID"] == given


@pytest.mark.parametrize("given", ["x" * 201, "new\nline", "tab\there"])
def test_a_malformed_incoming_request_id_is_replaced(given):
    context, _ = run(RequestFactory().get("/", HTTP_X_REQUEST_ID=given))
    assert context.request_id != given
    assert re.fullmatch(r"[0-9a-f]{32}", context.request_id)


def test_the_context_is_restored_when_the_view_fails():
    def view(req):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        RequestContextMiddleware(view)(RequestFactory().get("/"))
    assert current_request_context().origin == "command"


@pytest.mark.django_db
def test_every_response_of_the_site_carries_a_request_id(client):
    response = client.get("/healthz", HTTP_X_REQUEST_ID="probe-1")
    assert response["X-Request-ID"] == "probe-1"


def test_forked_workers_generate_different_request_ids():
    """granian forks its workers from one process: each must draw its own ids, not replay its parent's."""
    import os

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the worker
        os.write(write, RequestContextMiddleware.request_id_from(RequestFactory().get("/")).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    parent = RequestContextMiddleware.request_id_from(RequestFactory().get("/"))
    assert re.fullmatch(r"[0-9a-f]{32}", child) and child != parent
