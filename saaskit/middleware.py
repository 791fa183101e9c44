import uuid
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

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
    in the ``X-Request-ID`` response header.

    The id comes from the ``X-Request-ID`` header when it is a short token (what a proxy in front sets), else
    a new one. The address is ``REMOTE_ADDR``: a proxy's forwarded-for header is not trusted here.
    """

    _ID_ALLOWED = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:")

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    @classmethod
    def request_id_from(cls, request: HttpRequest) -> str:
        given = request.META.get("HTTP_X_REQUEST_ID", "")
        if 0 < len(given) <= 64 and set(given) <= cls._ID_ALLOWED:
            return given
        return uuid.uuid4().hex

    def __call__(self, request: HttpRequest) -> HttpResponse:
        context = RequestContext(
            request_id=self.request_id_from(request),
            address=request.META.get("REMOTE_ADDR") or None,
            origin="request",
        )
        with bound_request_context(context):
            response = self.get_response(request)
        response["X-Request-ID"] = context.request_id
        return response
