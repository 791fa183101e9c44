"""The AuthZEN 1.0 endpoints of an instance (``/authzen/{slug}/access/v1/...``) and its metadata
(``/.well-known/authzen-configuration/authzen/{slug}``).

Callers: a service client of the instance (``Bearer sk_...``) or an instance admin acting in it may ask
about any subject; another member only about itself (403 otherwise). Bodies are parsed by
``authzen.protocol`` (400 for another content type, empty or malformed bodies, missing or mistyped
fields; unknown fields ignored). Responses are JSON; the request id is handled by
``saaskit.middleware.RequestContextMiddleware``.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors as account_selectors
from accounts.authentication import AccessTokenAuthentication
from accounts.models import Instance
from authz.context import acting_context
from authz.roles import INSTANCE_ADMIN, LATTICE
from authzen import pdp, protocol, selectors
from authzen.authentication import ServiceContext, ServiceKeyAuthentication
from authzen.paging import fingerprint, paginate
from saaskit.errors import ForbiddenError, NotFoundError

_OTHER_SUBJECT = "Checks about another subject need a service client or an instance admin."


class AuthzenApi(APIView):
    authentication_classes = [ServiceKeyAuthentication, AccessTokenAuthentication]
    permission_classes = [IsAuthenticated]
    renderer_classes = [JSONRenderer]
    instance: Instance
    self_only: int | None  # the caller's user id when it may only ask about itself

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        slug = kwargs["slug"]
        auth = request.auth
        if isinstance(auth, ServiceContext):
            if auth.instance_slug != slug:  # a key works only for its own instance
                raise NotFoundError("Instance not found.", code="instance_not_found")
            # The key's lookup (cached for at most a second) checked that the instance is active: no query here.
            self.instance, self.self_only = Instance(pk=auth.instance_id, slug=auth.instance_slug, is_active=True), None
            return
        actor = account_selectors.access_instance_by_slug(ctx=acting_context(request), slug=slug)
        self.instance = actor.instance
        self.self_only = None if LATTICE.acts_in(actor.role, INSTANCE_ADMIN) else actor.user_id

    def body(self, request: Request) -> dict[str, Any]:
        return protocol.parse_body(request.content_type, request.body)

    def check_subject(self, subject: protocol.Entity) -> None:
        """A member without admin rights may only ask about itself."""
        if self.self_only is None:
            return
        if subject.type != pdp.USER or selectors.subject_resolve(instance_id=self.instance.pk,
                                                                 subject_id=subject.id or "") != self.self_only:
            raise ForbiddenError(_OTHER_SUBJECT)


class EvaluationApi(AuthzenApi):
    @extend_schema(operation_id="authzen_evaluation", request=OpenApiTypes.OBJECT,
                   responses={200: OpenApiTypes.OBJECT})
    def post(self, request: Request, slug: str) -> Response:
        evaluation = protocol.parse_evaluation(self.body(request))
        self.check_subject(evaluation.subject)
        return Response(pdp.evaluate(instance=self.instance, evaluation=evaluation).as_dict())


class EvaluationsApi(AuthzenApi):
    @extend_schema(operation_id="authzen_evaluations", request=OpenApiTypes.OBJECT,
                   responses={200: OpenApiTypes.OBJECT})
    def post(self, request: Request, slug: str) -> Response:
        batch = protocol.parse_batch(self.body(request))
        if batch.single is not None:
            self.check_subject(batch.single.subject)
            return Response(pdp.evaluate(instance=self.instance, evaluation=batch.single).as_dict())
        for item in batch.items:
            if isinstance(item, protocol.Evaluation):
                self.check_subject(item.subject)
        results = pdp.evaluate_batch(instance=self.instance, items=batch.items, semantic=batch.semantic)
        return Response({"evaluations": results})


class _SearchApi(AuthzenApi):
    endpoint = ""

    def page(self, request: Request, slug: str, data: dict[str, Any], results: list[dict[str, Any]]) -> Response:
        page = protocol.parse_page(data)
        digest = fingerprint(endpoint=self.endpoint, slug=slug, body=data)
        return Response(paginate(results, page=page, digest=digest))


class SubjectSearchApi(_SearchApi):
    endpoint = "subject"

    @extend_schema(operation_id="authzen_search_subject", request=OpenApiTypes.OBJECT,
                   responses={200: OpenApiTypes.OBJECT})
    def post(self, request: Request, slug: str) -> Response:
        data = self.body(request)
        subject = protocol.parse_entity(data.get("subject"), "subject", require_id=False)
        action = protocol.parse_action(data.get("action"))
        resource = protocol.parse_entity(data.get("resource"), "resource")
        context = protocol.parse_context(data.get("context"))
        protocol.parse_page(data)
        if self.self_only is not None:
            raise ForbiddenError(_OTHER_SUBJECT)
        results = pdp.search_subjects(instance=self.instance, subject_type=subject.type, action=action,
                                      resource=resource, context=context, subject_properties=subject.properties)
        return self.page(request, slug, data, results)


class ResourceSearchApi(_SearchApi):
    endpoint = "resource"

    @extend_schema(operation_id="authzen_search_resource", request=OpenApiTypes.OBJECT,
                   responses={200: OpenApiTypes.OBJECT})
    def post(self, request: Request, slug: str) -> Response:
        data = self.body(request)
        subject = protocol.parse_entity(data.get("subject"), "subject")
        action = protocol.parse_action(data.get("action"))
        resource = protocol.parse_entity(data.get("resource"), "resource", require_id=False)
        context = protocol.parse_context(data.get("context"))
        protocol.parse_page(data)
        self.check_subject(subject)
        results = pdp.search_resources(instance=self.instance, subject=subject, action=action,
                                       resource_type=resource.type, resource_properties=resource.properties,
                                       context=context)
        return self.page(request, slug, data, results)


class ActionSearchApi(_SearchApi):
    endpoint = "action"

    @extend_schema(operation_id="authzen_search_action", request=OpenApiTypes.OBJECT,
                   responses={200: OpenApiTypes.OBJECT})
    def post(self, request: Request, slug: str) -> Response:
        data = self.body(request)
        subject = protocol.parse_entity(data.get("subject"), "subject")
        resource = protocol.parse_entity(data.get("resource"), "resource")
        context = protocol.parse_context(data.get("context"))
        protocol.parse_page(data)
        self.check_subject(subject)
        results = pdp.search_actions(instance=self.instance, subject=subject, resource=resource, context=context)
        return self.page(request, slug, data, results)


class MetadataApi(APIView):
    """PDP metadata at the well-known URI made by the spec's insertion rule from ``{origin}/authzen/{slug}``."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    renderer_classes = [JSONRenderer]

    @extend_schema(operation_id="authzen_metadata", responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request, slug: str) -> Response:
        if not Instance.objects.filter(slug=slug, is_active=True).exists():
            raise NotFoundError("Instance not found.", code="instance_not_found")
        base = request.build_absolute_uri(f"/authzen/{slug}")
        return Response({
            "policy_decision_point": base,
            "access_evaluation_endpoint": f"{base}/access/v1/evaluation",
            "access_evaluations_endpoint": f"{base}/access/v1/evaluations",
            "search_subject_endpoint": f"{base}/access/v1/search/subject",
            "search_resource_endpoint": f"{base}/access/v1/search/resource",
            "search_action_endpoint": f"{base}/access/v1/search/action",
        })
