from decimal import Decimal

import pytest

from inventory.models import Product
from inventory.services import product_create
from tests.factories import ProfileFactory
from tests.inventory.support import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def clerk(instance):
    return client_for(ProfileFactory(instance=instance, role="clerk"))


@pytest.fixture
def customer_client(instance):
    return client_for(ProfileFactory(instance=instance, role="customer"))


@pytest.fixture
def apple(instance):
    return product_create(instance=instance, sku="APL", name="Apple", price="1.50", stock_on_hand=10)


def test_clerk_adds_a_product(clerk, instance):
    response = clerk.post("/api/v1/products/", {"sku": "PR", "name": "Pear", "price": "2.25", "stock_on_hand": 4},
                          format="json")
    assert response.status_code == 201
    product = Product.objects.get()
    assert response.json() == {"id": product.pk, "sku": "PR", "name": "Pear", "price": "2.25", "currency": "USD",
                               "stock_on_hand": 4, "stock_reserved": 0, "stock_available": 4}
    assert product.instance_id == instance.pk


def test_customer_cannot_add_or_restock(customer_client, apple):
    response = customer_client.post("/api/v1/products/", {"sku": "X", "name": "X", "price": "1"}, format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (403, "permission_denied")
    response = customer_client.post(f"/api/v1/products/{apple.pk}/restock", {"quantity": 5}, format="json")
    assert response.status_code == 403
    apple.refresh_from_db()
    assert (Product.objects.count(), apple.stock_on_hand) == (1, 10)


def test_duplicate_sku_is_409(clerk, apple):
    response = clerk.post("/api/v1/products/", {"sku": "APL", "name": "Other", "price": "1"}, format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (409, "sku_taken")
    assert Product.objects.count() == 1


@pytest.mark.parametrize("body", [{}, {"sku": "X", "name": "X", "price": "-1"}, {"sku": "X", "name": "X", "price": "1.001"},
                                  {"sku": "X", "name": "X", "price": "1", "currency": "usd"},
                                  {"sku": "X", "name": "X", "price": "1", "stock_on_hand": -1}])
def test_bad_product_input_is_400(clerk, body):
    response = clerk.post("/api/v1/products/", body, format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid")
    assert Product.objects.count() == 0


def test_members_list_and_read_the_catalogue_of_their_instance_only(customer_client, apple, other_instance):
    product_create(instance=other_instance, sku="F", name="Foreign", price="1")
    assert [p["sku"] for p in customer_client.get("/api/v1/products/").json()["results"]] == ["APL"]
    assert customer_client.get(f"/api/v1/products/{apple.pk}/").json()["stock_available"] == 10


def test_clerk_restocks(clerk, apple):
    response = clerk.post(f"/api/v1/products/{apple.pk}/restock", {"quantity": 5}, format="json")
    assert (response.status_code, response.json()["stock_on_hand"]) == (200, 15)
    response = clerk.post(f"/api/v1/products/{apple.pk}/restock", {"quantity": 0}, format="json")
    assert response.status_code == 400
    apple.refresh_from_db()
    assert (apple.stock_on_hand, apple.price) == (15, Decimal("1.50"))


def test_product_of_another_instance_is_404(other_instance, apple):
    foreign_clerk = client_for(ProfileFactory(instance=other_instance, role="clerk"))
    assert foreign_clerk.get(f"/api/v1/products/{apple.pk}/").status_code == 404
    response = foreign_clerk.post(f"/api/v1/products/{apple.pk}/restock", {"quantity": 5}, format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (404, "product_not_found")
    apple.refresh_from_db()
    assert apple.stock_on_hand == 10


def test_out_of_range_product_id_is_404_not_500(clerk):
    response = clerk.post("/api/v1/products/99999999999999999999/restock", {"quantity": 1}, format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (404, "product_not_found")


def test_restock_overflow_is_400_not_500(clerk, apple):
    response = clerk.post(f"/api/v1/products/{apple.pk}/restock", {"quantity": 2**31 - 1}, format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (400, "stock_limit")


def test_product_list_query_count_does_not_grow_with_products(customer_client, instance, django_assert_num_queries):
    for i in range(4):
        product_create(instance=instance, sku=f"S{i}", name="S", price="1")
    with django_assert_num_queries(3):  # membership, count, page
        response = customer_client.get("/api/v1/products/")
    assert response.json()["count"] == 4


def test_restock_retried_with_its_idempotency_key_adds_the_units_once(clerk, apple):
    """A clerk whose restock was cut mid-request (found by make chaos: a killed web worker) retries it with the
    same Idempotency-Key: the units are added once and the first answer comes back."""
    first = clerk.post(f"/api/v1/products/{apple.pk}/restock", {"quantity": 5}, format="json",
                       HTTP_IDEMPOTENCY_KEY="restock-1")
    again = clerk.post(f"/api/v1/products/{apple.pk}/restock", {"quantity": 5}, format="json",
                       HTTP_IDEMPOTENCY_KEY="restock-1")
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    apple.refresh_from_db()
    assert apple.stock_on_hand == 15

    other = clerk.post(f"/api/v1/products/{apple.pk}/restock", {"quantity": 6}, format="json",
                       HTTP_IDEMPOTENCY_KEY="restock-1")
    assert (other.status_code, other.json()["error"]["code"]) == (422, "idempotency_key_reused")
    apple.refresh_from_db()
    assert apple.stock_on_hand == 15
