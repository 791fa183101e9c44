"""Management API of the AuthZEN app (instance admins): service clients and their keys, instance-defined
resource types and objects, stored subject properties and conditional policies. Thin adapters over
``authzen.services`` / ``authzen.selectors``."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors as account_selectors
from accounts.api.base import InstanceScopedAPIView
from accounts.models import Instance
from accounts.services.instances import member_set_external_id
from authz.context import acting_context
from authz.permissions import CanActIn
from authz.roles import INSTANCE_ADMIN, LATTICE
from authzen import selectors, services
from authzen.models import Policy, ResourceObject, ResourceType, ServiceClient, ServiceKey
from saaskit.errors import ForbiddenError


def _admin_instance(request: Request, slug: str) -> Instance:
    actor = account_selectors.access_instance_by_slug(ctx=acting_context(request), slug=slug)
    if not LATTICE.acts_in(actor.role, INSTANCE_ADMIN):
        raise ForbiddenError("Only an instance_admin of this instance may manage its service clients.")
    return actor.instance


def _key_out(key: ServiceKey) -> dict[str, Any]:
    return {"prefix": key.prefix, "created_at": key.created_at, "expires_at": key.expires_at,
            "last_used_at": key.last_used_at, "revoked_at": key.revoked_at}


def _client_out(client: ServiceClient, keys: list[ServiceKey] | None = None) -> dict[str, Any]:
    rows = keys if keys is not None else sorted(client.keys.all(), key=lambda k: k.pk)
    return {"id": client.pk, "name": client.name, "role": client.role, "created_at": client.created_at,
            "keys": [_key_out(k) for k in rows]}


class _KeyInput(serializers.Serializer):
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)


class ServiceClientsApi(APIView):
    permission_classes = [IsAuthenticated]

    class InputSerializer(_KeyInput):
        name = serializers.CharField(max_length=200)
        role = serializers.CharField(max_length=64)

    @extend_schema(operation_id="service_clients_list", responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request, slug: str) -> Response:
        instance = _admin_instance(request, slug)
        return Response({"items": [_client_out(c) for c in selectors.service_client_list(instance=instance)]})

    @extend_schema(operation_id="service_clients_create", request=InputSerializer,
                   responses={201: OpenApiTypes.OBJECT})
    def post(self, request: Request, slug: str) -> Response:
        instance = _admin_instance(request, slug)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        client, row, key = services.service_client_create(instance=instance, actor=request.user,
                                                          **data.validated_data)
        return Response({**_client_out(client, [row]), "key": key}, status=status.HTTP_201_CREATED)


class ServiceClientDetailApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(operation_id="service_clients_get", responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request, slug: str, client_id: str) -> Response:
        instance = _admin_instance(request, slug)
        return Response(_client_out(selectors.access_service_client_by_id(instance=instance, client_id=client_id)))

    @extend_schema(operation_id="service_clients_delete", responses={204: None})
    def delete(self, request: Request, slug: str, client_id: str) -> Response:
        instance = _admin_instance(request, slug)
        services.service_client_delete(client=selectors.access_service_client_by_id(instance=instance,
                                                                                    client_id=client_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ServiceKeysApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(operation_id="service_keys_create", request=_KeyInput, responses={201: OpenApiTypes.OBJECT})
    def post(self, request: Request, slug: str, client_id: str) -> Response:
        instance = _admin_instance(request, slug)
        client = selectors.access_service_client_by_id(instance=instance, client_id=client_id)
        data = _KeyInput(data=request.data)
        data.is_valid(raise_exception=True)
        row, key = services.service_key_create(client=client, actor=request.user, **data.validated_data)
        return Response({**_key_out(row), "key": key}, status=status.HTTP_201_CREATED)


class ServiceKeyDetailApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(operation_id="service_keys_revoke", responses={204: None})
    def delete(self, request: Request, slug: str, client_id: str, prefix: str) -> Response:
        instance = _admin_instance(request, slug)
        client = selectors.access_service_client_by_id(instance=instance, client_id=client_id)
        services.service_key_revoke(key=selectors.access_service_key_by_prefix(client=client, prefix=prefix),
                                     actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- instance-defined types, objects, subject properties, conditional policies (/api/v1/authz/...) --------
class _AdminApi(InstanceScopedAPIView):
    def get_permissions(self) -> list[Any]:
        return [IsAuthenticated(), CanActIn(INSTANCE_ADMIN)]


def _type_out(rtype: ResourceType) -> dict[str, Any]:
    return {"name": rtype.name, "actions": list(rtype.actions)}


def _object_out(obj: ResourceObject) -> dict[str, Any]:
    return {"id": obj.object_id, "properties": obj.properties}


def _policy_out(policy: Policy) -> dict[str, Any]:
    return {"id": policy.pk, "subject": "*" if policy.user_id is None else str(policy.user_id),
            "action": policy.action, "resource_type": policy.resource_type.name,
            "resource_id": policy.resource_id, "condition": policy.condition}


class ResourceTypesApi(_AdminApi):
    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=32)
        actions = serializers.ListField(child=serializers.CharField(max_length=32), min_length=1,
                                        max_length=services.MAX_ACTIONS)

    @extend_schema(operation_id="authz_types_list", responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request) -> Response:
        return Response({"items": [_type_out(t) for t in selectors.resource_type_list(instance=self.instance)]})

    @extend_schema(operation_id="authz_types_create", request=InputSerializer, responses={201: OpenApiTypes.OBJECT})
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        rtype = services.resource_type_create(instance=self.instance, **data.validated_data)
        return Response(_type_out(rtype), status=status.HTTP_201_CREATED)


class ResourceObjectsApi(_AdminApi):
    class InputSerializer(serializers.Serializer):
        id = serializers.CharField(max_length=255)
        properties = serializers.DictField(required=False, default=dict)

    @extend_schema(operation_id="authz_type_objects_list", responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request, name: str) -> Response:
        rtype = selectors.access_resource_type_by_name(instance=self.instance, name=name)
        return Response({"items": [_object_out(o) for o in selectors.resource_object_list(rtype=rtype)]})

    @extend_schema(operation_id="authz_type_objects_put", request=InputSerializer,
                   responses={201: OpenApiTypes.OBJECT})
    def post(self, request: Request, name: str) -> Response:
        rtype = selectors.access_resource_type_by_name(instance=self.instance, name=name)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        obj = services.resource_object_upsert(rtype=rtype, object_id=data.validated_data["id"],
                                              properties=data.validated_data["properties"])
        return Response(_object_out(obj), status=status.HTTP_201_CREATED)


class SubjectPropertiesApi(_AdminApi):
    class InputSerializer(serializers.Serializer):
        properties = serializers.DictField()

    @extend_schema(operation_id="authz_subject_properties_put", request=InputSerializer,
                   responses={200: OpenApiTypes.OBJECT})
    def put(self, request: Request, user_id: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        row = services.subject_properties_set(instance=self.instance, user_id=user_id,
                                              properties=data.validated_data["properties"])
        return Response({"user_id": row.user_id, "properties": row.properties})


class ConditionalPoliciesApi(_AdminApi):
    class InputSerializer(serializers.Serializer):
        subject = serializers.CharField(max_length=20)
        action = serializers.CharField(max_length=64)
        resource_type = serializers.CharField(max_length=32)
        resource_id = serializers.CharField(max_length=255, required=False, default="*")
        condition = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=True)

    @extend_schema(operation_id="authz_conditional_policies_list", responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request) -> Response:
        return Response({"items": [_policy_out(p) for p in selectors.policy_list(instance=self.instance)]})

    @extend_schema(operation_id="authz_conditional_policies_create", request=InputSerializer,
                   responses={201: OpenApiTypes.OBJECT})
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        d = data.validated_data
        rtype = selectors.access_resource_type_by_name(instance=self.instance, name=d.pop("resource_type"))
        policy = services.policy_create(instance=self.instance, rtype=rtype, **d)
        return Response(_policy_out(policy), status=status.HTTP_201_CREATED)


class ConditionalPolicyDetailApi(_AdminApi):
    @extend_schema(operation_id="authz_conditional_policies_delete", responses={204: None})
    def delete(self, request: Request, policy_id: str) -> Response:
        services.policy_delete(policy=selectors.access_policy_by_id(instance=self.instance, policy_id=policy_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class MemberExternalIdApi(APIView):
    """``/api/v1/instances/{slug}/members/{user_id}/external-id``: the member's id in the caller's world."""

    permission_classes = [IsAuthenticated]

    class InputSerializer(serializers.Serializer):
        external_id = serializers.CharField(max_length=255, allow_null=True, allow_blank=True)

    @extend_schema(operation_id="instance_members_external_id_put", request=InputSerializer,
                   responses={200: OpenApiTypes.OBJECT})
    def put(self, request: Request, slug: str, user_id: int) -> Response:
        actor = account_selectors.access_instance_by_slug(ctx=acting_context(request), slug=slug)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        profile = member_set_external_id(actor=actor, user_id=user_id, external_id=data.validated_data["external_id"])
        selectors.subject_cache_clear()
        return Response({"user_id": profile.user_id, "external_id": profile.external_id})
