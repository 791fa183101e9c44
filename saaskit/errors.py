"""One error shape for the whole API: ``{"error": {"code", "message", "fields"}}``.

Services raise ``ApplicationError``; DRF's own exceptions and Django's 404/PermissionDenied are translated
here, so no bad input ever reaches a 500.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpResponse, HttpResponsePermanentRedirect, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response


class ApplicationError(Exception):
    """A domain rule said no. ``code`` is a stable machine-readable string from an app's ``error_codes``."""

    status_code = status.HTTP_400_BAD_REQUEST

    def __init__(self, message: str, *, code: str = "invalid", fields: dict[str, Any] | None = None,
                 status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = str(code)
        self.fields = fields or {}
        if status_code is not None:
            self.status_code = status_code


class NotFoundError(ApplicationError):
    status_code = status.HTTP_404_NOT_FOUND

    def __init__(self, message: str = "Not found.", *, code: str = "not_found") -> None:
        super().__init__(message, code=code)


class ForbiddenError(ApplicationError):
    status_code = status.HTTP_403_FORBIDDEN

    def __init__(self, message: str = "You do not have permission to perform this action.", *,
                 code: str = "permission_denied") -> None:
        super().__init__(message, code=code)


def error_body(code: str, message: str, fields: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def _flatten_fields(detail: Any) -> dict[str, Any]:
    if isinstance(detail, dict):
        return {key: _flatten_fields(value) if isinstance(value, dict) else [str(v) for v in _as_list(value)]
                for key, value in detail.items()}
    return {"non_field_errors": [str(v) for v in _as_list(detail)]}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


_DRF_CODES = {
    exceptions.ParseError: "malformed_request",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "throttled",
}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApplicationError):
        return Response(error_body(exc.code, exc.message, exc.fields), status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        fields = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        return Response(error_body("invalid", "Invalid input.", fields), status=400)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    # Imported here: rest_framework.views loads the authentication classes, which import this module.
    from rest_framework.views import exception_handler as drf_exception_handler

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        body = error_body("invalid", "Invalid input.", _flatten_fields(exc.detail))
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        raised_code = getattr(detail, "code", None)
        if raised_code and raised_code != getattr(exc, "default_code", None):
            code = str(raised_code)  # a specific code given where it was raised (e.g. token_revoked)
        else:
            code = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), None) or raised_code or "error"
        body = error_body(str(code), str(detail))
    response.data = body
    return response


def json_error_response(status_code: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(error_body(code, message), status=status_code)


def handler404(request: Any, exception: Exception | None = None) -> JsonResponse:
    return json_error_response(404, "not_found", "Not found.")


def handler500(request: Any) -> JsonResponse:
    return json_error_response(500, "server_error", "Internal server error.")


def handler400(request: Any, exception: Exception | None = None) -> JsonResponse:
    return json_error_response(400, "bad_request", "Bad request.")


def handler403(request: Any, exception: Exception | None = None) -> JsonResponse:
    return json_error_response(403, "permission_denied", "Forbidden.")


@csrf_exempt
def api_not_found(request: Any) -> HttpResponse:
    """The catch-all under ``/api/``: a JSON 404 whatever DEBUG says (the normal handler serves the rest).

    With APPEND_SLASH, a path whose slashed form has a real route is redirected there, as Django's
    CommonMiddleware does for paths no route matches (it cannot here: this route matches them).
    """
    from django.conf import settings
    from django.urls import Resolver404, resolve

    path = request.path_info
    if settings.APPEND_SLASH and not path.endswith("/") and request.method in ("GET", "HEAD"):
        try:
            match = resolve(path + "/")
        except Resolver404:
            match = None
        if match is not None and match.func is not api_not_found:
            return HttpResponsePermanentRedirect(request.get_full_path(force_append_slash=True))
    return json_error_response(404, "not_found", "Not found.")
