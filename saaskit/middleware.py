import uuid
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from saaskit.errors import json_error_response


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


class RequestIdMiddleware:
    """Every response carries ``X-Request-ID``: the caller's (echoed, when it is a sane header value) or
    one made here. AuthZEN requires the echo; the rest of the API gets it for log correlation."""

    MAX_LENGTH = 200

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        given = request.META.get("HTTP_X_REQUEST_ID", "")
        if not given or len(given) > self.MAX_LENGTH or not given.isprintable():
            given = uuid.uuid4().hex
        request.META["HTTP_X_REQUEST_ID"] = given
        response = self.get_response(request)
        response["X-Request-ID"] = given
        return response
