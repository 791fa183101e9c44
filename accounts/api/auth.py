"""Authentication endpoints: register, token, refresh, logout, logout-all, switch, JWKS."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.serializers import MemberInstanceOutput
from accounts.emails import normalize_email
from accounts.keys import KEY_RING
from accounts.selectors import member_instances
from accounts.services.passwords import user_password_change
from accounts.services.tokens import (
    InvalidToken,
    TokenPair,
    refresh_token_find,
    refresh_token_revoke,
    token_refresh,
    token_switch,
    user_revoke_all_tokens,
)
from accounts.services.users import user_login, user_register
from authz.context import acting_context
from saaskit.client_address import client_address


class TokenPairOutput(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()


def _pair_response(pair: TokenPair, status_code: int = status.HTTP_200_OK) -> Response:
    return Response({"access": pair.access, "refresh": pair.refresh}, status=status_code)


class NormalizedEmailField(serializers.EmailField):
    """An email in its normal form (``accounts.emails``), validated after normalising (so ``ＡＤＡ@x.com``
    is checked, and stored, as ``ada@x.com``)."""

    def to_internal_value(self, data: object) -> str:
        return normalize_email(super().to_internal_value(data))


class RegisterApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    class InputSerializer(serializers.Serializer):
        email = NormalizedEmailField(max_length=254)
        password = serializers.CharField(max_length=128, trim_whitespace=False)
        name = serializers.CharField(max_length=150)

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        email = serializers.EmailField()
        name = serializers.CharField()

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = user_register(**data.validated_data, client_address=client_address(request))
        return Response(self.OutputSerializer(user).data, status=status.HTTP_201_CREATED)


class TokenObtainApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    class InputSerializer(serializers.Serializer):
        email = serializers.CharField(max_length=254)
        password = serializers.CharField(max_length=128, trim_whitespace=False)
        instance = serializers.SlugField(max_length=63, required=False, allow_null=True)

    class OutputSerializer(TokenPairOutput):
        instances = MemberInstanceOutput(many=True, help_text=(
            "The instances the account is a member of. Without `instance`, an account in several gets tokens "
            "for no instance; log in again naming one (or POST /auth/switch) to act in it."))

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer})
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        pair = user_login(email=data.validated_data["email"], password=data.validated_data["password"],
                          instance_slug=data.validated_data.get("instance"),
                          client_address=client_address(request))
        response = _pair_response(pair)
        response.data["instances"] = MemberInstanceOutput(
            member_instances(user_id=pair.refresh_token.user_id), many=True).data
        return response


class RefreshInputSerializer(serializers.Serializer):
    refresh = serializers.CharField(max_length=512)


class TokenRefreshApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(request=RefreshInputSerializer, responses={200: TokenPairOutput})
    def post(self, request: Request) -> Response:
        data = RefreshInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return _pair_response(token_refresh(refresh=data.validated_data["refresh"]))


class LogoutApi(APIView):
    """Revoke one refresh token. Knowing the token is the proof; an access token is not required."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(request=RefreshInputSerializer, responses={204: None})
    def post(self, request: Request) -> Response:
        data = RefreshInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        stored = refresh_token_find(refresh=data.validated_data["refresh"])
        if stored is None:
            raise InvalidToken()
        refresh_token_revoke(token=stored, reason="logout", audited=False)  # the owner ending a session
        return Response(status=status.HTTP_204_NO_CONTENT)


class LogoutAllApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request) -> Response:
        user_revoke_all_tokens(user=request.user, reason="logout_all", actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SwitchApi(APIView):
    """New tokens acting in another role, along the lattice's edges from the profile role.

    Needs the access token and the session's current refresh token: the refresh token is rotated into the
    new pair (same family), so an access token alone cannot start a session.
    """

    permission_classes = [IsAuthenticated]

    class InputSerializer(serializers.Serializer):
        refresh = serializers.CharField(max_length=512, help_text="The session's current refresh token; "
                                        "it is rotated (used) by the switch.")
        instance = serializers.SlugField(max_length=63, required=False, allow_null=True)
        role = serializers.CharField(max_length=64)

    @extend_schema(request=InputSerializer, responses={200: TokenPairOutput},
                   description="Rotates `refresh` into a pair acting in `role`. 401 if `refresh` is not the "
                               "caller's usable refresh token (a reused one revokes its family), 403 "
                               "`role_switch_denied`, 409 `role_already_held` when the session already acts "
                               "in that role there; a refused switch issues nothing and leaves `refresh` usable.")
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        ctx = acting_context(request)
        assert ctx is not None
        pair = token_switch(user=request.user, refresh=data.validated_data["refresh"],
                            role=data.validated_data["role"],
                            instance_slug=data.validated_data.get("instance") or ctx.instance_slug)
        return _pair_response(pair)


class PasswordChangeApi(APIView):
    """Change the caller's password. Every refresh token of the user is revoked and every access token
    issued before stops (the caller's too): log in again with the new password."""

    permission_classes = [IsAuthenticated]

    class InputSerializer(serializers.Serializer):
        current_password = serializers.CharField(max_length=128, trim_whitespace=False)
        new_password = serializers.CharField(max_length=128, trim_whitespace=False)

    @extend_schema(request=InputSerializer, responses={204: None},
                   description="400 `invalid_credentials` for a wrong current password (counted as a failed "
                               "login, 429 when throttled), 400 `weak_password` for a weak new one.")
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user_password_change(user=request.user, current_password=data.validated_data["current_password"],
                             new_password=data.validated_data["new_password"],
                             client_address=client_address(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class JwksApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(responses={200: dict})
    def get(self, request: Request) -> Response:
        return Response({"keys": [key.jwk() for key in KEY_RING.all_keys()]})
