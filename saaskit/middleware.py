import random
import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from saaskit.client_address import client_address
from saaskit.errors import json_error_response
from saaskit.request_context import RequestContext, bound_request_context


class RequestBodyLimitMiddleware:
    """Refuse oversized bodies (413) before anything reads them; DRF's parsers do not check the size."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw_length = request.META.get("CONTENT_LENGTH") or "0"
        try:
            length = int(raw_length)
        except ValueError:
            return json_error_response(400, "bad_request", "Content-Length is not a number.")
        if limit is not None and length > limit:
            return json_error_response(413, "request_too_large", f"The request body exceeds {limit} bytes.")
        return self.get_response(request)


class RequestContextMiddleware:
    """Bind the request id and client address for the request (``saaskit.request_context``), and echo the id
    in the ``X-Request-ID`` response header of every response (AuthZEN requires the echo of the caller's value).

    The id is the caller's ``X-Request-ID`` when it is printable and at most 200 characters (what a proxy in
    front or an AuthZEN PEP sends), else a new one; it is also left in ``request.META``. The address is
    ``saaskit.client_address`` (``TRUSTED_PROXY_COUNT`` hops of ``X-Forwarded-For``).
    """

    MAX_LENGTH = 200

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    @classmethod
    def request_id_from(cls, request: HttpRequest) -> str:
        given = request.META.get("HTTP_X_REQUEST_ID", "")
        if 0 < len(given) <= cls.MAX_LENGTH and given.isprintable():
            return given
        # 128 random bits as 32 hex digits, the shape uuid4().hex had: an id to correlate logs, not a secret, so
        # the module's Mersenne Twister (reseeded in every forked worker) instead of os.urandom, a system call
        # that cost a tenth of a warm decision on the fast path.
        return f"{random.getrandbits(128):032x}"

    def __call__(self, request: HttpRequest) -> HttpResponse:
        context = RequestContext(
            request_id=self.request_id_from(request),
            address=client_address(request) or None,
            origin="request",
        )
        request.META["HTTP_X_REQUEST_ID"] = context.request_id
        with bound_request_context(context):
            response = self.get_response(request)
        response["X-Request-ID"] = context.request_id
        return response


class RequestMetricsMiddleware:
    """Observe each request's duration by route pattern (``/api/v1/orders/<int:order_id>``, never the raw path,
    so the label set stays bounded), method and status class (``saaskit.metrics``)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from saaskit.metrics import http_request_observed

        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        route = f"/{match.route}" if match is not None and match.route else "(unmatched)"
        http_request_observed(route=route, method=request.method or "", status=response.status_code,
                              seconds=time.perf_counter() - started)
        return response
