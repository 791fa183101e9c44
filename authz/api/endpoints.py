"""authz HTTP API (``/api/v1/authz/``): thin adapters over ``authz.services`` / ``authz.selectors``.

Who may call what: writing policies, groups, memberships, resources and grants needs ``instance_admin``;
explain and the policy/subject/object listings need ``instance_admin``; reading groups and resources
needs ``clerk``; ``check``, ``check/batch`` and ``authorized`` are open to every member of the instance,
but a check about a subject other than the caller needs ``instance_admin`` (403 otherwise).
Everything is scoped to the caller's instance (from the token).
"""

from __future__ import annotations

import re
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.base import InstanceScopedAPIView
from accounts.models import Profile
from authz import selectors, services
from authz.cache import default_cache
from authz.context import acting_context
from authz.error_codes import AuthzErrorCode
from authz.permissions import CanActIn
from authz.registry import RESOURCE_TYPES, get_type
from authz.roles import can_act_in
from saaskit.errors import ApplicationError, ForbiddenError, NotFoundError
from saaskit.pagination import Pagination

MAX_BATCH = 1000
# A full batch of the longest checks is ~200 KB of JSON: a larger body is refused before it is parsed.
MAX_BATCH_BODY_BYTES = 256 * 1024


def _validate_action(resource_type: str, action: str) -> None:
    rtype = get_type(resource_type)
    if rtype is None:
        raise ApplicationError(f"Unknown resource type {resource_type!r}.", code=AuthzErrorCode.UNKNOWN_RESOURCE_TYPE,
                               fields={"resource_type": [f"one of {', '.join(sorted(RESOURCE_TYPES))}"]})
    if action not in rtype.actions:
        raise ApplicationError(f"{resource_type} has no action {action!r}.", code=AuthzErrorCode.UNKNOWN_ACTION,
                               fields={"action": [f"one of {', '.join(sorted(rtype.actions))}"]})


def _paginate(view: InstanceScopedAPIView, request: Request, qs: Any, item: Any) -> Response:
    paginator = Pagination()
    page = paginator.paginate_queryset(qs, request, view=view)
    return paginator.get_paginated_response([item(x) for x in page or []])


def _count_items(request: Request, qs: QuerySet, item: Any) -> Response:
    """Seed 004's list shape ``{count, items}`` (``?limit=&offset=`` page through it)."""
    paginator = Pagination()
    page = paginator.paginate_queryset(qs, request)
    return Response({"count": paginator.count, "items": [item(x) for x in page or []]})


class _CheckInput(serializers.Serializer):
    subject = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    action = serializers.CharField(max_length=32)
    resource_type = serializers.CharField(max_length=32)
    resource_id = serializers.CharField(max_length=64)


def _may_ask_about(request: Request, subjects: set[int]) -> None:
    """A member may check only itself; checks about other subjects need ``instance_admin``."""
    ctx = acting_context(request)
    if ctx is not None and subjects <= {ctx.user_id}:
        return
    if not can_act_in(request, "instance_admin"):
        raise ForbiddenError("Only an instance admin may check another subject's permissions.",
                             code=AuthzErrorCode.SUBJECT_FORBIDDEN)


# --- policies ----------------------------------------------------------------------------------------
class PoliciesApi(InstanceScopedAPIView):
    class InputSerializer(serializers.Serializer):
        policy = serializers.CharField(required=False, max_length=300)
        policies = serializers.ListField(child=serializers.CharField(max_length=300), required=False,
                                         min_length=1, max_length=services.MAX_POLICIES_PER_CALL)

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            if ("policy" in attrs) == ("policies" in attrs):
                raise serializers.ValidationError("Give exactly one of policy or policies.")
            return attrs

    class FilterSerializer(serializers.Serializer):
        subject = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
        resource_type = serializers.CharField(required=False, max_length=32)
        resource_id = serializers.CharField(required=False, max_length=64)

    def get_permissions(self) -> list[Any]:
        return [IsAuthenticated(), CanActIn("instance_admin")]

    def _policies(self, request: Request) -> list[str]:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return [data.validated_data["policy"]] if "policy" in data.validated_data else data.validated_data["policies"]

    @extend_schema(request=InputSerializer, responses={201: OpenApiTypes.OBJECT})
    def post(self, request: Request) -> Response:
        specs = services.policies_upsert(instance=self.instance, policies=self._policies(request),
                                         actor=request.user)
        return Response({"policies": [s.as_string() for s in specs]}, status=status.HTTP_201_CREATED)

    @extend_schema(request=InputSerializer, responses={204: None})
    def delete(self, request: Request) -> Response:
        services.policies_remove(instance=self.instance, policies=self._policies(request), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(parameters=[FilterSerializer], responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        qs = selectors.policy_list(instance=self.instance, **filters.validated_data)
        return _paginate(self, request, qs, lambda p: {
            "policy": p.as_string(), "subject": p.user_id, "group": p.group_id, "action": p.action,
            "resource_type": p.resource_type, "resource_id": p.resource_id})


# --- checks ------------------------------------------------------------------------------------------
class CheckApi(InstanceScopedAPIView):
    @extend_schema(request=_CheckInput, responses={200: OpenApiTypes.OBJECT, 403: OpenApiTypes.OBJECT})
    def post(self, request: Request) -> Response:
        data = _CheckInput(data=request.data)
        data.is_valid(raise_exception=True)
        d = data.validated_data
        _may_ask_about(request, {d["subject"]})
        _validate_action(d["resource_type"], d["action"])
        allowed = selectors.check(instance_id=self.instance.pk, user_id=d["subject"], action=d["action"],
                                  resource_type=d["resource_type"], resource_id=d["resource_id"])
        return Response({"allowed": allowed})


class CheckBatchApi(InstanceScopedAPIView):
    """Up to ``MAX_BATCH`` checks answered with one query; a body over ``MAX_BATCH_BODY_BYTES`` is a 413
    before anything parses it."""

    class InputSerializer(serializers.Serializer):
        checks = serializers.ListField(child=_CheckInput(), allow_empty=True, max_length=MAX_BATCH)

    @extend_schema(request=InputSerializer, responses={200: OpenApiTypes.OBJECT, 403: OpenApiTypes.OBJECT,
                                                       413: OpenApiTypes.OBJECT})
    def post(self, request: Request) -> Response:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0  # the body-limit middleware already answered 400
        if length > MAX_BATCH_BODY_BYTES:
            raise ApplicationError(f"A batch body may hold at most {MAX_BATCH_BODY_BYTES} bytes.",
                                   code="request_too_large", status_code=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        items = data.validated_data["checks"]
        _may_ask_about(request, {d["subject"] for d in items})
        checks = []
        for i, d in enumerate(items):
            try:
                _validate_action(d["resource_type"], d["action"])
            except ApplicationError as exc:
                exc.fields = {"checks": {str(i): exc.fields}}
                raise
            checks.append(selectors.CheckQuery(d["subject"], d["action"], d["resource_type"], d["resource_id"]))
        results = selectors.check_many(instance_id=self.instance.pk, checks=checks)
        return Response({"results": [{"allowed": r} for r in results]})


class ExplainApi(InstanceScopedAPIView):
    def get_permissions(self) -> list[Any]:
        return [IsAuthenticated(), CanActIn("instance_admin")]

    @extend_schema(request=_CheckInput, responses={200: OpenApiTypes.OBJECT})
    def post(self, request: Request) -> Response:
        data = _CheckInput(data=request.data)
        data.is_valid(raise_exception=True)
        d = data.validated_data
        _validate_action(d["resource_type"], d["action"])
        why = selectors.explain(instance_id=self.instance.pk, user_id=d["subject"], action=d["action"],
                                resource_type=d["resource_type"], resource_id=d["resource_id"])
        return Response(why.as_dict())


class SubjectObjectsApi(InstanceScopedAPIView):
    class FilterSerializer(serializers.Serializer):
        action = serializers.CharField(max_length=32)
        resource_type = serializers.CharField(max_length=32)

    def get_permissions(self) -> list[Any]:
        return [IsAuthenticated(), CanActIn("instance_admin")]

    @extend_schema(parameters=[FilterSerializer], responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request, subject_id: str) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        d = filters.validated_data
        _validate_action(d["resource_type"], d["action"])
        if not (subject_id.isdigit() and len(subject_id) < 19 and Profile.objects.filter(
                instance=self.instance, user_id=int(subject_id)).exists()):
            raise NotFoundError("Subject not found.", code="subject_not_found")
        qs = selectors.subject_objects(instance=self.instance, user_id=int(subject_id), **d)
        return _paginate(self, request, qs, lambda rid: {"resource_id": rid})


class ObjectSubjectsApi(InstanceScopedAPIView):
    class FilterSerializer(serializers.Serializer):
        action = serializers.CharField(max_length=32)

    def get_permissions(self) -> list[Any]:
        return [IsAuthenticated(), CanActIn("instance_admin")]

    @extend_schema(parameters=[FilterSerializer], responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request, resource_type: str, resource_id: str) -> Response:
        if get_type(resource_type) is None or len(resource_id) > 64:
            raise NotFoundError("Unknown resource type.", code="resource_type_not_found")
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        _validate_action(resource_type, filters.validated_data["action"])
        qs = selectors.object_subjects(instance=self.instance, resource_type=resource_type, resource_id=resource_id,
                                       action=filters.validated_data["action"])
        return _paginate(self, request, qs, lambda uid: {"subject": uid})


# --- groups and resources (seed 004 shapes) ------------------------------------------------------------
def _group_out(group: Any) -> dict[str, Any]:
    return {"id": str(group.pk), "name": group.name, "description": group.description}


def _resource_out(resource: Any) -> dict[str, Any]:
    return {"id": str(resource.pk), "name": resource.name,
            "parentId": str(resource.parent_id) if resource.parent_id else None}


class _AdminWritesClerkReads(InstanceScopedAPIView):
    def get_permissions(self) -> list[Any]:
        role = "clerk" if self.request.method in ("GET", "HEAD", "OPTIONS") else "instance_admin"
        return [IsAuthenticated(), CanActIn(role)]


class GroupsApi(_AdminWritesClerkReads):
    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=200)
        description = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")

    @extend_schema(request=InputSerializer, responses={200: OpenApiTypes.OBJECT})  # a create answers 200 here
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        group = services.group_create(instance=self.instance, **data.validated_data)
        return Response(_group_out(group), status=status.HTTP_200_OK)

    @extend_schema(operation_id="api_v1_authz_group_list", responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request) -> Response:
        return _count_items(request, selectors.group_list(instance=self.instance), _group_out)


class GroupDetailApi(_AdminWritesClerkReads):
    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request, group_id: str) -> Response:
        return Response(_group_out(selectors.access_group_by_id(instance=self.instance, group_id=group_id)))


class _UserRef(serializers.Serializer):
    userId = serializers.RegexField(r"^[1-9][0-9]{0,17}$", max_length=18)


class _ResourceRef(serializers.Serializer):
    resourceId = serializers.RegexField(r"^[1-9][0-9]{0,17}$", max_length=18)


class GroupUsersApi(_AdminWritesClerkReads):
    @extend_schema(request=_UserRef(many=True), responses={204: None})
    def post(self, request: Request, group_id: str) -> Response:
        group = selectors.access_group_by_id(instance=self.instance, group_id=group_id)
        data = _UserRef(data=request.data, many=True)
        data.is_valid(raise_exception=True)
        services.group_add_users(instance=self.instance, group=group,
                                 user_ids=[int(item["userId"]) for item in data.validated_data], actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request, group_id: str) -> Response:
        group = selectors.access_group_by_id(instance=self.instance, group_id=group_id)
        return _count_items(request, selectors.group_user_ids(group=group), lambda uid: {"userId": str(uid)})


class GroupAuthorizeApi(_AdminWritesClerkReads):
    @extend_schema(request=_ResourceRef(many=True), responses={204: None})
    def post(self, request: Request, group_id: str) -> Response:
        group = selectors.access_group_by_id(instance=self.instance, group_id=group_id)
        data = _ResourceRef(data=request.data, many=True)
        data.is_valid(raise_exception=True)
        services.group_authorize(instance=self.instance, group=group,
                                 resource_ids=[int(item["resourceId"]) for item in data.validated_data],
                                 actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class GroupResourcesApi(_AdminWritesClerkReads):
    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request, group_id: str) -> Response:
        group = selectors.access_group_by_id(instance=self.instance, group_id=group_id)
        return _count_items(request, selectors.group_resources(group=group), _resource_out)


class ResourcesApi(_AdminWritesClerkReads):
    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=255)
        parentId = serializers.RegexField(r"^[1-9][0-9]{0,17}$", max_length=18, required=False,
                                          allow_null=True)

    @extend_schema(request=InputSerializer, responses={200: OpenApiTypes.OBJECT})  # a create answers 200 here
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        parent = data.validated_data.get("parentId")
        resource = services.resource_create(instance=self.instance, name=data.validated_data["name"],
                                            parent_id=int(parent) if parent else None)
        return Response(_resource_out(resource), status=status.HTTP_200_OK)

    @extend_schema(operation_id="api_v1_authz_resource_list", responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request) -> Response:
        return _count_items(request, selectors.resource_list(instance=self.instance), _resource_out)


class ResourceDetailApi(_AdminWritesClerkReads):
    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request, resource_id: str) -> Response:
        return Response(_resource_out(selectors.access_resource_by_id(instance=self.instance,
                                                                      resource_id=resource_id)))

    @extend_schema(responses={204: None})
    def delete(self, request: Request, resource_id: str) -> Response:
        resource = selectors.access_resource_by_id(instance=self.instance, resource_id=resource_id)
        services.resource_delete(instance=self.instance, resource=resource)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ResourceMoveApi(_AdminWritesClerkReads):
    class InputSerializer(serializers.Serializer):
        parentId = serializers.RegexField(r"^[1-9][0-9]{0,17}$", max_length=18, allow_null=True)

    @extend_schema(request=InputSerializer, responses={200: OpenApiTypes.OBJECT})
    def post(self, request: Request, resource_id: str) -> Response:
        resource = selectors.access_resource_by_id(instance=self.instance, resource_id=resource_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        parent = data.validated_data["parentId"]
        moved = services.resource_move(instance=self.instance, resource=resource,
                                       parent_id=int(parent) if parent else None)
        return Response(_resource_out(moved))


class AuthorizedApi(InstanceScopedAPIView):
    """The hot path of seed 004: query parameters are checked by hand (no serializer machinery) and the
    answer comes from the process cache; errors keep the one error shape."""

    _USER_ID = re.compile(r"^[1-9][0-9]{0,17}$")

    @extend_schema(parameters=[OpenApiParameter("userId", str), OpenApiParameter("resourceName", str)],
                   responses={200: OpenApiTypes.OBJECT, 403: OpenApiTypes.OBJECT})
    def get(self, request: Request) -> Response:
        user_id = request.query_params.get("userId", "")
        name = request.query_params.get("resourceName", "")
        errors: dict[str, list[str]] = {}
        if not self._USER_ID.match(user_id):
            errors["userId"] = ["A user id (digits) is required."]
        if not name or len(name) > 255:
            errors["resourceName"] = ["A resource name of 1 to 255 characters is required."]
        if errors:
            raise serializers.ValidationError(errors)
        ok = default_cache().authorized(self.instance.pk, int(user_id), name)
        return Response({"authorized": ok}, status=status.HTTP_200_OK if ok else status.HTTP_403_FORBIDDEN)
