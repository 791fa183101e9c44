from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from events.api.metrics import metrics
from saaskit.health import healthz

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path(".well-known/", include("accounts.api.wellknown_urls")),
    path("api/v1/", include("accounts.api.urls")),
    path("api/v1/authz/", include("authz.api.urls")),
    path("api/v1/events/", include("events.api.urls")),
    path("api/v1/orders/", include("orders.api.urls")),
    path("api/v1/products/", include("inventory.api.urls")),
    path("api/v1/wallets/", include("payments.api.urls")),
]

handler400 = "saaskit.errors.handler400"
handler403 = "saaskit.errors.handler403"
handler404 = "saaskit.errors.handler404"
handler500 = "saaskit.errors.handler500"
