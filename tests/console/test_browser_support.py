"""The browser fixture's skip reasons: a missing chromium or playwright is named, never skipped silently."""

from __future__ import annotations

import sys

from tests.support import browser


def test_a_missing_chromium_is_named(monkeypatch):
    monkeypatch.setattr(browser.shutil, "which", lambda name: None)
    assert browser.browser_unavailable_reason() == (
        "browser test skipped: Debian's `chromium` is not on PATH "
        "(`make test` installs it with apt-get when run as root)")


def test_a_missing_playwright_is_named(monkeypatch):
    monkeypatch.setattr(browser.shutil, "which", lambda name: "/usr/bin/chromium")
    monkeypatch.setitem(sys.modules, "playwright.sync_api", None)  # makes the import fail
    assert browser.browser_unavailable_reason() == (
        "browser test skipped: the `playwright` Python package is not installed (pip install -r requirements.txt)")


def test_the_chromium_flags_are_the_headless_sandboxless_quiet_ones():
    assert browser.CHROMIUM_FLAGS == [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ]
