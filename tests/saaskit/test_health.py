import pytest


@pytest.mark.django_db
def test_healthz_reports_every_dependency_up(api_client):
    response = api_client.get("/healthz")

    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "up", "redis": "up", "broker": "up"}
    assert response.json()["down"] == []


@pytest.mark.django_db
def test_healthz_names_redis_when_it_is_down(api_client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"

    response = api_client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["down"] == ["redis"]


def test_unknown_api_path_is_a_json_404(client):
    response = client.get("/api/v1/does-not-exist")

    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "Not found.", "fields": {}}}


def test_oversized_body_is_a_json_413(client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100

    response = client.post("/api/v1/auth/token", data="x" * 200, content_type="application/json")

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"


@pytest.mark.django_db
def test_healthz_never_shows_why_a_component_is_down(api_client, settings, caplog):
    settings.REDIS_URL = "redis://secret-user:secret-pass@127.0.0.1:1/0"

    response = api_client.get("/healthz")

    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "down": ["redis"],
                               "checks": {"database": "up", "redis": "down", "broker": "up"}}
    assert "secret" not in response.content.decode()
    assert "Error" not in response.content.decode()
    assert "healthz: redis is down" in caplog.text
    assert "ConnectionError" in caplog.text
