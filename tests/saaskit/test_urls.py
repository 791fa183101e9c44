"""Routing at the edges: unknown /api/ paths, the normal 404 elsewhere, and the docs switch."""

import pytest


@pytest.mark.parametrize("debug", [True, False])
@pytest.mark.parametrize(("method", "path"), [
    ("get", "/api/v1/does-not-exist"),
    ("get", "/api/v1/orders/nope/deeper"),
    ("get", "/api/nope"),
    ("get", "/api"),
    ("post", "/api/v1/nope"),
    ("delete", "/api/v2/anything/"),
])
def test_unknown_api_paths_are_a_json_404_even_in_debug(client, settings, debug, method, path):
    settings.DEBUG = debug

    response = getattr(client, method)(path)

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"error": {"code": "not_found", "message": "Not found.", "fields": {}}}


def test_other_paths_keep_djangos_debug_404_page(client, settings):
    settings.DEBUG = True

    response = client.get("/not-an-api-path")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_other_paths_keep_the_project_404_handler_without_debug(client, settings):
    settings.DEBUG = False

    response = client.get("/not-an-api-path")

    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "Not found.", "fields": {}}}


def test_an_api_path_missing_its_slash_still_redirects(client):
    response = client.get("/api/docs?x=1")

    assert response.status_code == 301
    assert response["Location"] == "/api/docs/?x=1"


@pytest.mark.django_db
def test_docs_and_schema_are_served_while_enabled(client, settings):
    settings.API_DOCS_ENABLED = True

    assert client.get("/api/schema/").status_code == 200
    assert client.get("/api/docs/").status_code == 200


@pytest.mark.parametrize("path", ["/api/schema/", "/api/docs/"])
def test_docs_and_schema_can_be_turned_off(client, settings, path):
    settings.API_DOCS_ENABLED = False

    response = client.get(path)

    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "Not found.", "fields": {}}}
