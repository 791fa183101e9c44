"""``Idempotency-Key`` for POST endpoints (Stripe's semantics, IETF httpapi idempotency-key draft).

A request carrying the header runs at most once per (user, key) within ``IDEMPOTENCY_KEY_TTL_SECONDS``:
- the same key with the same request (method, path, body) answers the first response again, with
  ``Idempotent-Replayed: true``, and creates nothing;
- the same key with another request is ``422 idempotency_key_reused`` and changes nothing;
- a request that failed (4xx) keeps no record: it can be retried with the same key.

The record is inserted first, in the request's transaction, with a unique (user, key) index: a concurrent twin
request on any web host waits on that index until the first commits, then replays its answer. Written by hand:
the maintained packages we looked at keep keys in a cache (not shared with the same guarantee) or are tied to
one framework version; this is one insert and one update.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.response import Response

from payments.error_codes import PaymentsErrorCode
from payments.models import IdempotencyRecord
from saaskit.errors import ApplicationError

HEADER = "Idempotency-Key"
KEY_RE = re.compile(r"^[\x21-\x7e]{1,255}$")  # visible ASCII, as the draft's sf-string allows


def ttl() -> timedelta:
    return timedelta(seconds=float(getattr(settings, "IDEMPOTENCY_KEY_TTL_SECONDS", 24 * 3600)))


def _fingerprint(request: Request) -> str:
    body = json.dumps(request.data, sort_keys=True, cls=DjangoJSONEncoder, separators=(",", ":"))
    return hashlib.sha256(f"{request.method} {request.path}\n{body}".encode()).hexdigest()


def _replay(record: IdempotencyRecord) -> Response:
    return Response(record.response_body, status=record.status_code, headers={"Idempotent-Replayed": "true"})


def idempotent(request: Request, run: Callable[[], Response]) -> Response:
    """Run ``run()`` (the endpoint's work) at most once for the request's Idempotency-Key, if it has one."""
    key = request.headers.get(HEADER)
    if key is None:
        return run()
    key = key.strip().strip('"')  # the draft sends it as a structured-field string: "abc"
    if not KEY_RE.match(key):
        raise ApplicationError("Idempotency-Key must be 1 to 255 visible ASCII characters.",
                               code=PaymentsErrorCode.INVALID_IDEMPOTENCY_KEY,
                               fields={HEADER: ["1 to 255 visible ASCII characters."]})
    fingerprint = _fingerprint(request)
    with transaction.atomic():
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(user=request.user, key=key, fingerprint=fingerprint,
                                                          status_code=0, response_body={})
        except IntegrityError:
            # Committed by an earlier (or concurrent, now finished) request: lock it and look.
            record = IdempotencyRecord.objects.select_for_update().get(user=request.user, key=key)
            if record.created_at >= timezone.now() - ttl():
                if record.fingerprint != fingerprint:
                    raise ApplicationError(
                        "This Idempotency-Key was used with another request.", status_code=422,
                        code=PaymentsErrorCode.IDEMPOTENCY_KEY_REUSED,
                        fields={HEADER: ["Already used with a different body or endpoint."]}) from None
                return _replay(record)
            record.delete()  # expired: the key is free again
            record = IdempotencyRecord.objects.create(user=request.user, key=key, fingerprint=fingerprint,
                                                      status_code=0, response_body={})
        response = run()  # raises on a refused request: the record rolls back with everything else
        if not 200 <= response.status_code < 300:
            transaction.set_rollback(True)
            return response
        record.status_code = response.status_code
        record.response_body = json.loads(json.dumps(response.data, cls=DjangoJSONEncoder))
        record.save(update_fields=["status_code", "response_body"])
    return response


def idempotency_records_purge(*, now: datetime | None = None) -> int:
    """Delete records past their time to live (run by the saga sweep)."""
    return IdempotencyRecord.objects.filter(created_at__lt=(now or timezone.now()) - ttl()).delete()[0]


# For the endpoints' ``extend_schema(parameters=[IDEMPOTENCY_PARAMETER])``.
def _parameter():  # type: ignore[no-untyped-def]
    from drf_spectacular.types import OpenApiTypes
    from drf_spectacular.utils import OpenApiParameter

    return OpenApiParameter(HEADER, OpenApiTypes.STR, OpenApiParameter.HEADER, required=False,
                            description="Retry-safe key (per user, 24 h): the same key and body answer the first "
                                        "response again; the same key with another body is 422.")


IDEMPOTENCY_PARAMETER = _parameter()
