"""The WSGI application granian serves (``granian --interface wsgi saaskit.wsgi:application``; ``saaskit.server``).

Django's application behind ``authzen.fastpath.FastPath``, which answers the common case of the decision
endpoints (AuthZEN evaluation(s), the batch check, ``/authorized``) without the middleware stack and DRF and
hands every other request to Django unchanged. ``SAASKIT_FAST_PATH=0`` serves Django alone (the same answers,
slower). This module is wiring: it may import any app.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saaskit.settings")
django_application = get_wsgi_application()

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def without_server_headers(app: WSGIApp, process_env: Mapping[str, str]) -> WSGIApp:
    """granian starts every request's environ from its own process environment: an ``HTTP_*`` variable there
    (``HTTP_PROXY``, say) would read as a header the client sent (the "httpoxy" trap). Drop such keys when
    they still hold the process's value (a header the client did send overrides it and is kept)."""
    leaked = {key: value for key, value in process_env.items() if key.startswith("HTTP_")}
    if not leaked:
        return app  # the usual case: nothing to do per request

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        for key, value in leaked.items():
            if environ.get(key) == value:
                del environ[key]
        return app(environ, start_response)

    return application


def _fast_path_enabled() -> bool:
    return os.environ.get("SAASKIT_FAST_PATH", "1").strip().lower() not in ("0", "false", "no", "off")


if _fast_path_enabled():
    from authzen.fastpath import FastPath

    application = without_server_headers(FastPath(django_application), os.environ)
else:
    application = without_server_headers(django_application, os.environ)
