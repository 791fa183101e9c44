"""Who am I, the role lattice, instances, their members and invitations (``/api/v1/me``, ``roles``,
``instances/...``, ``invitations/...``).

Member endpoints name the instance in the URL, but the caller must act for it through the token
(``accounts.selectors.access_instance_by_slug``): a missing instance and one the caller does not act for
answer the same 404. Adding a member is an invitation to an email, answered the same whether or not an
account holds it; the holder accepts or declines it under ``invitations/{id}``.
"""

from __future__ import annotations

import uuid

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors
from accounts.api.serializers import (
    InstanceOutput,
    InvitationOutput,
    MemberOutput,
    MeOutput,
    ProfileOutput,
    RoleOutput,
)
from accounts.services import instances as services
from authz import roles as authz_roles
from authz.context import acting_context
from saaskit.pagination import Pagination


class MeApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(operation_id="me_get", responses=MeOutput)
    def get(self, request: Request) -> Response:
        user = request.user
        profiles = list(selectors.user_profiles(user=user))
        invitations = list(selectors.invitations_open_for_user(user=user))
        return Response(MeOutput({"id": user.pk, "email": user.email, "name": user.name, "profiles": profiles,
                                  "invitations": invitations}).data)


class RolesApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(operation_id="roles_list", responses=RoleOutput(many=True))
    def get(self, request: Request) -> Response:
        return Response(authz_roles.LATTICE.as_json())


class InstanceListCreateApi(APIView):
    pagination_class = Pagination  # the schema shows the paged shape
    permission_classes = [IsAuthenticated]

    class InstanceCreateInput(serializers.Serializer):
        slug = serializers.CharField(max_length=63)
        name = serializers.CharField(max_length=200)

    @extend_schema(operation_id="instances_list", responses=InstanceOutput(many=True))
    def get(self, request: Request) -> Response:
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(selectors.instances_for_user(user=request.user), request, view=self)
        return paginator.get_paginated_response(InstanceOutput(page, many=True).data)

    @extend_schema(operation_id="instances_create", request=InstanceCreateInput, responses={201: InstanceOutput})
    def post(self, request: Request) -> Response:
        data = self.InstanceCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        instance = services.instance_create(creator=request.user, **data.validated_data)
        return Response(InstanceOutput(instance).data, status=status.HTTP_201_CREATED)


class InstanceMemberListCreateApi(APIView):
    pagination_class = Pagination  # the schema shows the paged shape
    permission_classes = [IsAuthenticated]

    class MemberAddInput(serializers.Serializer):
        email = serializers.EmailField(max_length=254)
        role = serializers.CharField(max_length=64)

    @extend_schema(operation_id="instance_members_list", responses=MemberOutput(many=True))
    def get(self, request: Request, slug: str) -> Response:
        actor = selectors.access_instance_by_slug(ctx=acting_context(request), slug=slug)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(selectors.members_of_instance(instance=actor.instance), request, view=self)
        return paginator.get_paginated_response(MemberOutput(page, many=True).data)

    @extend_schema(operation_id="instance_members_invite", request=MemberAddInput, responses={201: InvitationOutput},
                   description="Invites the email into the instance: 201 with the invitation whether or not an "
                               "account holds the email. The holder accepts it with POST /invitations/{id}/accept.")
    def post(self, request: Request, slug: str) -> Response:
        actor = selectors.access_instance_by_slug(ctx=acting_context(request), slug=slug)
        data = self.MemberAddInput(data=request.data)
        data.is_valid(raise_exception=True)
        invitation = services.member_invite(actor=actor, **data.validated_data)
        return Response(InvitationOutput(invitation).data, status=status.HTTP_201_CREATED)


class InstanceMemberDetailApi(APIView):
    permission_classes = [IsAuthenticated]

    class MemberChangeInput(serializers.Serializer):
        role = serializers.CharField(max_length=64)

    @extend_schema(operation_id="instance_members_change_role", request=MemberChangeInput, responses=MemberOutput)
    def patch(self, request: Request, slug: str, user_id: int) -> Response:
        actor = selectors.access_instance_by_slug(ctx=acting_context(request), slug=slug)
        data = self.MemberChangeInput(data=request.data)
        data.is_valid(raise_exception=True)
        profile = services.member_change_role(actor=actor, user_id=user_id, **data.validated_data)
        return Response(MemberOutput(profile).data)

    @extend_schema(operation_id="instance_members_remove", responses={204: None})
    def delete(self, request: Request, slug: str, user_id: int) -> Response:
        actor = selectors.access_instance_by_slug(ctx=acting_context(request), slug=slug)
        services.member_remove(actor=actor, user_id=user_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class InstanceInvitationListApi(APIView):
    pagination_class = Pagination  # the schema shows the paged shape
    permission_classes = [IsAuthenticated]

    @extend_schema(operation_id="instance_invitations_list", responses=InvitationOutput(many=True),
                   description="The instance's pending invitations (instance_admin only).")
    def get(self, request: Request, slug: str) -> Response:
        actor = selectors.access_instance_by_slug(ctx=acting_context(request), slug=slug)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(selectors.invitations_pending_in(actor=actor), request, view=self)
        return paginator.get_paginated_response(InvitationOutput(page, many=True).data)


class InstanceInvitationDetailApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(operation_id="instance_invitations_withdraw", responses={204: None})
    def delete(self, request: Request, slug: str, invitation_id: uuid.UUID) -> Response:
        actor = selectors.access_instance_by_slug(ctx=acting_context(request), slug=slug)
        services.invitation_withdraw(actor=actor, invitation_id=invitation_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class InvitationAcceptApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(operation_id="invitations_accept", request=None, responses={201: ProfileOutput})
    def post(self, request: Request, invitation_id: uuid.UUID) -> Response:
        profile = services.invitation_accept(user=request.user, invitation_id=invitation_id)
        return Response(ProfileOutput(profile).data, status=status.HTTP_201_CREATED)


class InvitationDeclineApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(operation_id="invitations_decline", request=None, responses={204: None})
    def post(self, request: Request, invitation_id: uuid.UUID) -> Response:
        services.invitation_decline(user=request.user, invitation_id=invitation_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
