import pytest


@pytest.mark.django_db
def test_openapi_schema_lists_the_auth_endpoints_with_bearer_security(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    schema = response.json()
    assert {"/api/v1/auth/token", "/api/v1/auth/token/refresh", "/api/v1/auth/switch"} <= set(schema["paths"])
    assert schema["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT (EdDSA; keys at /.well-known/jwks.json)"}


def test_api_docs_page_is_served(client):
    response = client.get("/api/docs/")

    assert response.status_code == 200
    assert b"swagger" in response.content.lower()


def test_the_openapi_schema_generates_without_errors_or_warnings(tmp_path):
    from django.core.management import call_command

    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))

    assert "/api/v1/authz/check" in target.read_text()
