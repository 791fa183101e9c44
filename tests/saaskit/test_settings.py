"""Production settings, checked in fresh processes (settings are read once, at start-up)."""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings

ROOT = Path(__file__).resolve().parents[2]
SHOWN = ["DEBUG", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS",
         "SECURE_HSTS_PRELOAD", "SECURE_PROXY_SSL_HEADER", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE",
         "API_DOCS_ENABLED", "TRUSTED_PROXY_COUNT"]
SHOW = ("import json, django; from django.conf import settings; django.setup(); "
        f"print(json.dumps({{name: getattr(settings, name, None) for name in {SHOWN!r}}}))")


@pytest.fixture
def production_env(tmp_path):
    """What a production start needs, pointing at this checkout's embedded PostgreSQL and Redis."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("SECURE_", "SESSION_", "CSRF_", "API_DOCS", "DEBUG", "TRUSTED_PROXY"))}
    env.update({
        "DJANGO_SETTINGS_MODULE": "saaskit.settings",
        "SAASKIT_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(60),
        "DATABASE_URL": django_settings.DATABASE_URL,
        "REDIS_URL": django_settings.REDIS_URL,
        "JWT_KEYS_DIR": str(tmp_path / "jwt-keys"),
        "ALLOWED_HOSTS": "api.example.com",
    })
    return env


def run(args, env):
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)


def test_manage_check_deploy_passes_with_the_production_settings(production_env):
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], production_env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_turns_https_and_secure_cookies_on_and_docs_off(production_env):
    result = run(["-c", SHOW], production_env)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "DEBUG": False, "SECURE_SSL_REDIRECT": True, "SECURE_HSTS_SECONDS": 31536000,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True, "SECURE_HSTS_PRELOAD": True,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"], "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True, "API_DOCS_ENABLED": False, "TRUSTED_PROXY_COUNT": 0}


def test_each_production_default_is_overridable(production_env):
    production_env.update({
        "SECURE_SSL_REDIRECT": "0", "SECURE_HSTS_SECONDS": "600", "SECURE_HSTS_INCLUDE_SUBDOMAINS": "0",
        "SECURE_HSTS_PRELOAD": "0", "SECURE_PROXY_SSL_HEADER": "", "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0", "API_DOCS_ENABLED": "1", "TRUSTED_PROXY_COUNT": "2"})

    result = run(["-c", SHOW], production_env)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "DEBUG": False, "SECURE_SSL_REDIRECT": False, "SECURE_HSTS_SECONDS": 600,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": False, "SECURE_HSTS_PRELOAD": False, "SECURE_PROXY_SSL_HEADER": None,
        "SESSION_COOKIE_SECURE": False, "CSRF_COOKIE_SECURE": False, "API_DOCS_ENABLED": True,
        "TRUSTED_PROXY_COUNT": 2}


@pytest.mark.parametrize("debug", ["1", "true", "on"])
def test_production_refuses_debug(production_env, debug):
    production_env["DEBUG"] = debug

    result = run(["manage.py", "check"], production_env)

    assert result.returncode != 0
    assert "ImproperlyConfigured: DEBUG must be off when SAASKIT_ENV=production" in result.stderr


def test_a_malformed_proxy_ssl_header_stops_start_up(production_env):
    production_env["SECURE_PROXY_SSL_HEADER"] = "HTTP_X_FORWARDED_PROTO"

    result = run(["manage.py", "check"], production_env)

    assert result.returncode != 0
    assert "SECURE_PROXY_SSL_HEADER must look like HTTP_X_FORWARDED_PROTO=https" in result.stderr
