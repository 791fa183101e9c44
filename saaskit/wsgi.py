"""The WSGI application granian serves (``granian --interface wsgi saaskit.wsgi:application``).

Django's application behind ``authzen.fastpath.FastPath``, which answers the common case of the decision
endpoints (AuthZEN evaluation(s), the batch check, ``/authorized``) without the middleware stack and DRF and
hands every other request to Django unchanged. ``SAASKIT_FAST_PATH=0`` serves Django alone (the same answers,
slower). This module is wiring: it may import any app.
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saaskit.settings")
django_application = get_wsgi_application()


def _fast_path_enabled() -> bool:
    return os.environ.get("SAASKIT_FAST_PATH", "1").strip().lower() not in ("0", "false", "no", "off")


if _fast_path_enabled():
    from authzen.fastpath import FastPath

    application = FastPath(django_application)
else:
    application = django_application
