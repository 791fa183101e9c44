from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from authzen.api import pdp as authzen_pdp
from authzen.api import urls as authzen_urls
from saaskit.health import healthz

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path(".well-known/", include("accounts.api.wellknown_urls")),
    path(".well-known/authzen-configuration/authzen/<slug:slug>", authzen_pdp.MetadataApi.as_view(),
         name="authzen-metadata"),
    path("authzen/<slug:slug>/", include(authzen_urls.pdp_urls)),
    path("api/v1/instances/<slug:slug>/", include(authzen_urls.service_client_urls)),
    path("api/v1/", include("accounts.api.urls")),
    path("api/v1/authz/", include("authz.api.urls")),
    path("api/v1/authz/", include(authzen_urls.authz_urls)),
    path("api/v1/events/", include("events.api.urls")),
    path("api/v1/orders/", include("orders.api.urls")),
    path("api/v1/products/", include("inventory.api.urls")),
    path("api/v1/wallets/", include("payments.api.urls")),
]

handler400 = "saaskit.errors.handler400"
handler403 = "saaskit.errors.handler403"
handler404 = "saaskit.errors.handler404"
handler500 = "saaskit.errors.handler500"
