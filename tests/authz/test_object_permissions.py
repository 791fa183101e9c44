import pytest
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory, force_authenticate
from rest_framework.views import APIView

from authz import services
from authz.cache import watcher
from authz.object_permissions import HasObjectPermission, requires_object_permission
from tests.factories import context_for

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_watcher(feed):
    watcher.stop()
    yield
    watcher.stop()


class CancelOrder(APIView):
    permission_classes = (HasObjectPermission("cancel", "orders", lookup="order_id"),)

    def post(self, request, order_id):
        return Response({"canceled": order_id})


class UpdateProduct(APIView):
    permission_classes = ()

    @requires_object_permission("update", "products", lookup="product_id", deny_status=403)
    def post(self, request, product_id):
        return Response({"updated": product_id})


def call(view, member, **kwargs):
    request = APIRequestFactory().post("/", {}, format="json")
    force_authenticate(request, user=member, token=context_for(member.profiles.get()))
    return view.as_view()(request, **kwargs)


def test_permission_class_allows_granted_objects(instance, member):
    services.policies_upsert(instance=instance, policies=[f"{member.pk}:cancel:orders:5"])

    assert call(CancelOrder, member, order_id="5").data == {"canceled": "5"}


def test_permission_class_denies_as_404(instance, member):
    response = call(CancelOrder, member, order_id="6")

    assert response.status_code == 404
    assert response.data == {"error": {"code": "not_found", "message": "Not found.", "fields": {}}}


def test_decorator(instance, member):
    services.policies_upsert(instance=instance, policies=[f"{member.pk}:update:products:1"])

    assert call(UpdateProduct, member, product_id="1").data == {"updated": "1"}
    assert call(UpdateProduct, member, product_id="2").status_code == 403


def test_unknown_action_fails_at_definition():
    with pytest.raises(ValueError):
        HasObjectPermission("fly", "orders")
