"""Browser tests: Playwright for Python driving Debian's ``chromium`` (``make test`` installs it with apt-get when
it is missing and we are root), against pytest-django's ``live_server``.

Where chromium or playwright cannot be had the tests are skipped with a message naming what is missing (shown
in pytest's ``-ra`` summary), never silently. Screenshots go to ``.saaskit/screenshots/`` (git-ignored).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connections

SCREENSHOTS_DIR = Path(settings.BASE_DIR) / ".saaskit" / "screenshots"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
TIMEOUT_MS = 20_000


def browser_unavailable_reason() -> str | None:
    """Why the browser tests cannot run here (the skip message), or None when chromium and playwright are there."""
    if shutil.which("chromium") is None:
        return ("browser test skipped: Debian's `chromium` is not on PATH "
                "(`make test` installs it with apt-get when run as root)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "browser test skipped: the `playwright` Python package is not installed (pip install -r requirements.txt)"
    return None


@pytest.fixture
def browser() -> Iterator[Any]:
    """A headless chromium for one test (skips, saying why, when chromium or playwright is missing).

    Per test rather than per session: while Playwright runs, Django's async-safety check is off (below), and
    that should not leak into the tests that follow.
    """
    yield from _chromium()


@pytest.fixture(scope="module")
def module_browser() -> Iterator[Any]:
    """One headless chromium for every test of a module (a module of browser tests only: Django's async-safety
    check stays off until the module ends). A module uses it by overriding ``browser``:
    ``browser = pytest.fixture(lambda module_browser: module_browser)``; each test still gets its own context."""
    yield from _chromium()


def _chromium() -> Iterator[Any]:
    reason = browser_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    # Playwright's sync API keeps an asyncio loop in this thread; Django's ORM, used by the test itself between
    # browser steps, would then refuse to run ("async context"). The test thread is not async: allow it.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_FLAGS)
    except Exception as exc:  # noqa: BLE001 - a chromium that cannot start is a skip with its reason, not an error
        playwright.stop()
        pytest.skip(f"browser test skipped: chromium at {executable} did not start: {exc}")
    try:
        yield chromium
    finally:
        chromium.close()
        # Django keeps connections in context variables, and Playwright's greenlets give the test body its own
        # context: connections the test opened are not seen (so not closed) once Playwright stops. Close them now.
        connections.close_all()
        playwright.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def browser_page(browser: Any, live_server: Any) -> Iterator[Any]:
    """A fresh page (own cookies) whose relative URLs go to the live server."""
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        yield page
    finally:
        page.goto("about:blank")  # no request left in flight on the live server
        context.close()


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page PNG as ``.saaskit/screenshots/<name>.png`` and return its path."""
    SCREENSHOTS_DIR.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS_DIR / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def admin_login(page: Any, *, email: str, password: str) -> None:
    """Log in through the admin's own login form, as a person would."""
    page.goto("/admin/login/?next=/admin/")
    page.fill("#id_username", email)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")
