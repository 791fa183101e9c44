"""The decision endpoints' lean path: a WSGI layer in front of Django (``saaskit.wsgi``) that answers the
well-formed, common requests of the four hot endpoints without Django's middleware stack, URL resolver or DRF:

- ``POST /authzen/{slug}/access/v1/evaluation`` and ``.../evaluations`` (a service client's key);
- ``POST /api/v1/authz/check/batch`` and ``GET /api/v1/authz/authorized`` (an access token).

It calls the same library functions as the views (``ServiceKeyAuthentication``, ``authenticate_access_token``,
``acting_instance``, ``authzen.protocol``, ``authzen.pdp.evaluate``, ``authz.selectors.check_many``,
``AuthzCache.authorized``), so every guarantee stays: token signature, kid and expiry, revocation and
``role_stale`` within a second, the key's instance, the caller's right to ask about another subject. Anything
else (bad JSON, missing or mistyped fields, another content type, an unknown slug, a failed authentication, a
403, a body over a limit, an SSL redirect, an unexpected error) is handed to Django unchanged, the body
replayed, so every error status and body is the one Django writes. The response carries what the Django path
carries: the same body bytes, ``X-Request-ID`` (echoed or new), the security middleware's headers, DRF's
``Vary``/``Allow``; the per-route latency histogram and the ``django.request`` warning on a 4xx are kept.

JSON is read with the standard library: orjson parses an evaluation body in 1 us instead of 2.7 us, under 4%
of a warm answer (~55 us of CPU here, against ~380 us through Django), not worth a dependency.

Hand-written because it is the project's own wiring (a router for four URLs over our own functions); the
equivalence with the Django path is tested request by request (tests/authzen/test_fastpath.py). It lives in
authzen, the one app above both authz and accounts; ``saaskit.wsgi`` wraps Django's application with it.
"""

from __future__ import annotations

import io
import json
import logging
import re
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

from django.conf import settings
from django.core import signals
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http.request import split_domain_port, validate_host

from accounts.api.base import acting_instance
from accounts.authentication import authenticate_access_token
from accounts.models import Instance
from authz import selectors
from authz.api.endpoints import MAX_BATCH, MAX_BATCH_BODY_BYTES, _validate_action
from authz.cache import default_cache
from authz.roles import can_act_in
from authzen import pdp, protocol
from authzen.authentication import ServiceContext, ServiceKeyAuthentication
from saaskit.client_address import client_address
from saaskit.metrics import http_request_observed
from saaskit.middleware import RequestContextMiddleware
from saaskit.request_context import RequestContext, bound_request_context

Environ = dict[str, Any]
StartResponse = Callable[..., Any]

_SLUG = re.compile(r"^[-a-zA-Z0-9_]+$")  # Django's ``<slug:...>`` converter
_USER_ID = re.compile(r"^[1-9][0-9]{0,17}$")  # AuthorizedApi's rule
_AUTHZEN_PREFIX = "/authzen/"
_EVALUATION = "/access/v1/evaluation"
_EVALUATIONS = "/access/v1/evaluations"
_CHECK_BATCH = "/api/v1/authz/check/batch"
_AUTHORIZED = "/api/v1/authz/authorized"
_REASONS = {200: "200 OK", 403: "403 Forbidden"}
_request_logger = logging.getLogger("django.request")
# The Accept headers DRF's negotiation answers with JSON on every one of the four views (the two authz views
# also offer the browsable API, so anything else goes to Django).
_JSON_ACCEPTS = frozenset(("", "*/*", "application/json"))


class Fallback(Exception):
    """Not the common case: Django answers."""


class _Meta:
    """What DRF's ``get_authorization_header`` (``headers``) and ``client_address`` (``META``) read of a
    request."""

    __slots__ = ("META",)

    def __init__(self, environ: Environ) -> None:
        self.META = environ

    @property
    def headers(self) -> _Meta:
        return self

    def get(self, name: str, default: Any = None) -> Any:
        """``request.headers.get``: a header by its HTTP name."""
        return self.META.get("HTTP_" + name.upper().replace("-", "_"), default)


def _json_dumps(data: Any) -> bytes:
    """What DRF's JSONRenderer writes (compact, UTF-8, no NaN, U+2028/2029 escaped)."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").encode()


class _Config:
    """The settings the fast path reads, read once (a ``setting_changed`` signal, as tests send, starts over):
    ``django.conf.settings`` costs a lazy lookup per attribute, which would be a fifth of a warm answer."""

    def __init__(self) -> None:
        s = settings
        self.enabled = not (s.PREPEND_WWW or s.DISALLOWED_USER_AGENTS)  # CommonMiddleware's rarer duties
        self.ssl_redirect = s.SECURE_SSL_REDIRECT
        self.proxy_ssl_header = getattr(s, "SECURE_PROXY_SSL_HEADER", None)
        self.forwarded_host = s.USE_X_FORWARDED_HOST
        allowed = list(s.ALLOWED_HOSTS)
        self.allowed_hosts = [".localhost", "127.0.0.1", "[::1]"] if s.DEBUG and not allowed else allowed
        self.body_limit = s.DATA_UPLOAD_MAX_MEMORY_SIZE
        self.hosts: dict[str, bool] = {}
        # What SecurityMiddleware and XFrameOptionsMiddleware add to a JSON response, over HTTP and HTTPS.
        plain = []
        if s.SECURE_CONTENT_TYPE_NOSNIFF:
            plain.append(("X-Content-Type-Options", "nosniff"))
        if s.SECURE_REFERRER_POLICY:
            policy = s.SECURE_REFERRER_POLICY
            plain.append(("Referrer-Policy", policy if isinstance(policy, str) else ",".join(policy)))
        if s.SECURE_CROSS_ORIGIN_OPENER_POLICY:
            plain.append(("Cross-Origin-Opener-Policy", s.SECURE_CROSS_ORIGIN_OPENER_POLICY))
        plain.append(("X-Frame-Options", getattr(s, "X_FRAME_OPTIONS", "DENY").upper()))
        secure = list(plain)
        if s.SECURE_HSTS_SECONDS:
            value = f"max-age={s.SECURE_HSTS_SECONDS}"
            if s.SECURE_HSTS_INCLUDE_SUBDOMAINS:
                value += "; includeSubDomains"
            if s.SECURE_HSTS_PRELOAD:
                value += "; preload"
            secure.insert(0, ("Strict-Transport-Security", value))
        self.headers = {False: plain, True: secure}

    def is_secure(self, environ: Environ) -> bool:
        """``HttpRequest.is_secure`` on a WSGI environ."""
        if self.proxy_ssl_header:
            name, secure_value = self.proxy_ssl_header
            value = environ.get(name)
            if value is not None:
                return value.split(",", 1)[0].strip() == secure_value
        return environ.get("wsgi.url_scheme") == "https"

    def host_allowed(self, environ: Environ) -> bool:
        """``HttpRequest.get_host``'s check against ALLOWED_HOSTS (CommonMiddleware answers 400 otherwise)."""
        if self.forwarded_host and "HTTP_X_FORWARDED_HOST" in environ:
            raw = environ["HTTP_X_FORWARDED_HOST"]
        else:
            raw = environ.get("HTTP_HOST", "")
        known = self.hosts.get(raw)
        if known is not None:
            return known
        # No host header: Django would build it from SERVER_NAME; that rare case is left to it.
        domain = split_domain_port(raw)[0] if raw else ""
        allowed = bool(domain) and validate_host(domain, self.allowed_hosts)
        if len(self.hosts) < 1000:
            self.hosts[raw] = allowed
        return allowed


_config: _Config | None = None


def config() -> _Config:
    global _config
    if _config is None:
        _config = _Config()
    return _config


@receiver(setting_changed)
def _settings_changed(**kwargs: Any) -> None:
    global _config
    _config = None


def _json_body(environ: Environ) -> bytes:
    """The request body of a JSON POST within the size limits, or Fallback (Django answers the rest)."""
    media = environ.get("CONTENT_TYPE", "").split(";", 1)
    if media[0].strip().lower() != "application/json" or (len(media) > 1 and media[1].strip().lower() not in (
            "charset=utf-8", "")):
        raise Fallback
    try:
        length = int(environ.get("CONTENT_LENGTH") or "")
    except ValueError:
        raise Fallback from None
    limit = config().body_limit
    if length <= 0 or (limit is not None and length > limit):
        raise Fallback
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)  # replayed to Django if it must answer after all
    if len(body) != length:
        raise Fallback
    return body


def _strict_json(body: bytes) -> Any:
    """DRF's JSONParser's reading (UTF-8, no NaN/Infinity); anything it would refuse is a Fallback."""
    def refuse(name: str) -> Any:
        raise Fallback

    try:
        return json.loads(body.decode("utf-8"), parse_constant=refuse)
    except (ValueError, RecursionError):
        raise Fallback from None


class FastPath:
    """WSGI middleware: the four hot endpoints' common case here, everything else to ``django_app``."""

    def __init__(self, django_app: Callable[[Environ, StartResponse], Iterable[bytes]]) -> None:
        self.django_app = django_app
        self._routes: dict[str, str] | None = None
        self._instances: dict[tuple[int, str], Any] = {}

    # --- wiring -----------------------------------------------------------------------------------
    def _route_names(self) -> dict[str, str]:
        """The route patterns (the metric's label) of the four views, read once from Django's URLconf."""
        if self._routes is None:
            from django.urls import resolve

            self._routes = {name: "/" + resolve(path).route for name, path in (
                ("evaluation", "/authzen/x/access/v1/evaluation"), ("evaluations", "/authzen/x/access/v1/evaluations"),
                ("batch", _CHECK_BATCH), ("authorized", _AUTHORIZED))}
        return self._routes

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "")
        handler: Callable[[Environ, str], tuple[int, bytes, list[tuple[str, str]]]] | None = None
        slug = ""
        if method == "POST":
            if path.startswith(_AUTHZEN_PREFIX):
                if path.endswith(_EVALUATION):
                    slug, handler, name = path[len(_AUTHZEN_PREFIX):-len(_EVALUATION)], self._evaluation, "evaluation"
                elif path.endswith(_EVALUATIONS):
                    slug, handler, name = (path[len(_AUTHZEN_PREFIX):-len(_EVALUATIONS)], self._evaluations,
                                           "evaluations")
                if handler is not None and not _SLUG.match(slug):
                    handler = None
            elif path == _CHECK_BATCH:
                handler, name = self._check_batch, "batch"
        elif method == "GET" and path == _AUTHORIZED:
            handler, name = self._authorized, "authorized"
        cfg = config()
        if (handler is None or not cfg.enabled or environ.get("HTTP_ACCEPT", "").strip().lower() not in _JSON_ACCEPTS
                or (environ.get("QUERY_STRING") and method == "POST") or not cfg.host_allowed(environ)
                or (cfg.ssl_redirect and not cfg.is_secure(environ))):
            return self.django_app(environ, start_response)
        return self._answer(environ, start_response, handler, slug, name, method, path, cfg)

    def _answer(self, environ: Environ, start_response: StartResponse, handler: Any, slug: str, name: str,
                method: str, path: str, cfg: _Config) -> Iterable[bytes]:
        started = time.perf_counter()
        # Django's request_started and request_finished signals are not sent for an answer given here (~10 us
        # together, a fifth of a warm answer, most of it walking the thread's database connections). Their
        # receivers close a connection past CONN_MAX_AGE or left unusable, and reset the health check; the
        # warm path touches no database. A miss that does and finds its connection gone (a restart, a failover,
        # a pooler's timeout) raises, and the request goes to Django, which sends both signals (after
        # request_finished below has closed the broken connection) and answers on a new connection
        # (tests/authzen/test_fastpath.py). A connection past its age is closed by the next request Django
        # answers on that thread; until then it is only kept open longer.
        request_id = RequestContextMiddleware.request_id_from(_Meta(environ))
        context = RequestContext(request_id=request_id, address=client_address(_Meta(environ)) or None,
                                 origin="request")
        try:
            with bound_request_context(context):
                status, body, extra = handler(environ, slug)
        except Exception:  # noqa: BLE001 — Fallback, or any refusal/error: Django writes the canonical answer
            signals.request_finished.send(sender=self.__class__)  # closes a connection an error left unusable
            return self.django_app(environ, start_response)
        headers = [("Content-Type", "application/json"), *extra, ("Content-Length", str(len(body))),
                   *cfg.headers[cfg.is_secure(environ)], ("X-Request-ID", request_id)]
        start_response(_REASONS[status], headers)
        if status >= 400:
            _request_logger.warning("%s: %s", _REASONS[status][4:], path,
                                    extra={"status_code": status, "request": None})
        http_request_observed(route=self._route_names()[name], method=method, status=status,
                              seconds=time.perf_counter() - started)
        return [body]

    # --- AuthZEN (a service client's key) ---------------------------------------------------------
    def _service_instance(self, environ: Environ, slug: str) -> Any:
        """The instance of the caller's service key when it is ``slug``'s (as ``AuthzenApi.initial``)."""
        found = ServiceKeyAuthentication().authenticate(_Meta(environ))  # raises on a bad key
        if found is None or not isinstance(found[1], ServiceContext) or found[1].instance_slug != slug:
            raise Fallback
        ctx = found[1]
        key = (ctx.instance_id, ctx.instance_slug)
        instance = self._instances.get(key)
        if instance is None:
            if len(self._instances) > 10_000:
                self._instances.clear()
            instance = self._instances[key] = Instance(pk=ctx.instance_id, slug=ctx.instance_slug, is_active=True)
        return instance

    def _evaluation(self, environ: Environ, slug: str) -> tuple[int, bytes, list[tuple[str, str]]]:
        instance = self._service_instance(environ, slug)
        evaluation = protocol.parse_evaluation(protocol.parse_body("application/json", _json_body(environ)))
        return 200, _decision_bytes(pdp.evaluate(instance=instance, evaluation=evaluation)), _AUTHZEN_POST

    def _evaluations(self, environ: Environ, slug: str) -> tuple[int, bytes, list[tuple[str, str]]]:
        """``EvaluationsApi.post`` for a service client (no self-only rule: a service may ask about anyone)."""
        instance = self._service_instance(environ, slug)
        batch = protocol.parse_batch(protocol.parse_body("application/json", _json_body(environ)))
        if batch.single is not None:
            return 200, _decision_bytes(pdp.evaluate(instance=instance, evaluation=batch.single)), _AUTHZEN_POST
        results = pdp.evaluate_batch(instance=instance, items=batch.items, semantic=batch.semantic)
        return 200, _json_dumps({"evaluations": results}), _AUTHZEN_POST

    # --- authz checks (an access token) -----------------------------------------------------------
    def _token_instance(self, environ: Environ) -> tuple[Any, Any]:
        """The acting context and instance of the caller's access token (as ``InstanceScopedAPIView``)."""
        header = environ.get("HTTP_AUTHORIZATION", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token or " " in token or token.startswith("sk_") or not token.isascii():
            raise Fallback
        _, ctx = authenticate_access_token(token)  # AuthenticationFailed (401) -> Django
        return ctx, acting_instance(ctx)

    def _check_batch(self, environ: Environ, slug: str) -> tuple[int, bytes, list[tuple[str, str]]]:
        """``CheckBatchApi.post`` for well-typed checks (DRF's serializer would keep each value as it is)."""
        ctx, instance = self._token_instance(environ)
        body = _json_body(environ)
        if len(body) > MAX_BATCH_BODY_BYTES:
            raise Fallback
        data = _strict_json(body)
        items = data.get("checks") if isinstance(data, dict) else None
        if not isinstance(items, list) or len(items) > MAX_BATCH:
            raise Fallback
        checks = []
        for item in items:
            if not isinstance(item, dict):
                raise Fallback
            subject = item.get("subject")
            if type(subject) is not int or not 1 <= subject <= 2**63 - 1:
                raise Fallback
            fields = (item.get("action"), item.get("resource_type"), item.get("resource_id"))
            for value, longest in zip(fields, (32, 32, 64), strict=True):
                if type(value) is not str or not 0 < len(value) <= longest or not _plain(value):
                    raise Fallback
            checks.append(selectors.CheckQuery(subject, *fields))
        if not {c.user_id for c in checks} <= {ctx.user_id} and not can_act_in(ctx, "instance_admin"):
            raise Fallback  # 403 subject_forbidden
        for c in checks:
            _validate_action(c.resource_type, c.action)  # ApplicationError -> Django's 400
        results = selectors.check_many(instance_id=instance.pk, checks=checks)
        return 200, b'{"results":[' + b",".join(_ALLOWED[bool(r)] for r in results) + b"]}", _DRF_POST

    def _authorized(self, environ: Environ, slug: str) -> tuple[int, bytes, list[tuple[str, str]]]:
        """``AuthorizedApi.get``: 200 ``{"authorized": true}`` or 403 ``{"authorized": false}``."""
        _, instance = self._token_instance(environ)
        query = environ.get("QUERY_STRING", "")
        if not query.isascii():
            raise Fallback
        params = dict(parse_qsl(query, keep_blank_values=True, encoding="utf-8", errors="replace"))
        if "format" in params:  # DRF's format override (the browsable API)
            raise Fallback
        user_id, name = params.get("userId", ""), params.get("resourceName", "")
        if not _USER_ID.match(user_id) or not name or len(name) > 255 or user_id.endswith("\n"):
            raise Fallback  # Django's 400
        if default_cache().authorized(instance.pk, int(user_id), name):
            return 200, b'{"authorized":true}', _DRF_GET
        return 403, b'{"authorized":false}', _DRF_GET


# DRF's default headers: ``Allow``, and ``Vary: Accept`` where the view has more than one renderer (the authz
# views offer the browsable API; the AuthZEN views only JSON).
_AUTHZEN_POST = [("Allow", "POST, OPTIONS")]
_DRF_POST = [("Vary", "Accept"), ("Allow", "POST, OPTIONS")]
_DRF_GET = [("Vary", "Accept"), ("Allow", "GET, HEAD, OPTIONS")]
_ALLOWED = {True: b'{"allowed":true}', False: b'{"allowed":false}'}
_DECISIONS = {True: b'{"decision":true}', False: b'{"decision":false}'}


def _decision_bytes(decision: Any) -> bytes:
    if decision.reason is None:
        return _DECISIONS[decision.decision]
    return _json_dumps(decision.as_dict())


def _plain(value: str) -> bool:
    """A string DRF's CharField keeps as it is: printable ASCII without surrounding blanks."""
    return value.isascii() and value.isprintable() and value.strip() == value
