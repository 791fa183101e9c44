import pytest
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import serializers
from rest_framework.exceptions import Throttled
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from saaskit.errors import ApplicationError


class EchoInput(serializers.Serializer):
    count = serializers.IntegerField(min_value=1)
    name = serializers.CharField(max_length=5)


class EchoView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    raises: Exception | None = None

    def post(self, request):
        if self.raises is not None:
            raise self.raises
        data = EchoInput(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(data.validated_data)


def call(body, *, raises=None, content_type="application/json"):
    request = APIRequestFactory().post("/echo", body, content_type=content_type)
    return EchoView.as_view(raises=raises)(request)


def test_malformed_json_is_a_400_in_the_error_shape():
    response = call('{"count": ')

    assert response.status_code == 400
    assert response.data["error"]["code"] == "malformed_request"
    assert response.data["error"]["fields"] == {}


def test_wrong_types_name_each_field():
    response = call('{"count": "many", "name": "far too long"}')

    assert response.status_code == 400
    assert response.data["error"]["code"] == "invalid"
    assert set(response.data["error"]["fields"]) == {"count", "name"}


def test_a_json_array_where_an_object_is_expected_is_a_400():
    response = call("[1, 2]")

    assert response.status_code == 400
    expected = {"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]}
    assert response.data["error"]["fields"] == expected


def test_unsupported_media_type_is_a_415():
    response = call("count=1", content_type="application/x-www-form-urlencoded")

    assert response.status_code == 415
    assert response.data["error"]["code"] == "unsupported_media_type"


@pytest.mark.parametrize(("exc", "status", "code"), [
    (ApplicationError("Out of stock.", code="out_of_stock", fields={"sku": ["gone"]}), 400, "out_of_stock"),
    (ApplicationError("Locked.", code="locked", status_code=409), 409, "locked"),
    (Http404(), 404, "not_found"),
    (DjangoPermissionDenied(), 403, "permission_denied"),
    (Throttled(wait=30), 429, "throttled"),
])
def test_every_exception_becomes_the_error_shape(exc, status, code):
    response = call("{}", raises=exc)

    assert response.status_code == status
    assert response.data["error"]["code"] == code
    assert set(response.data["error"]) == {"code", "message", "fields"}


def test_application_error_keeps_its_fields():
    response = call("{}", raises=ApplicationError("Out of stock.", code="out_of_stock", fields={"sku": ["gone"]}))

    assert response.data == {"error": {"code": "out_of_stock", "message": "Out of stock.", "fields": {"sku": ["gone"]}}}
