from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from authzen.api import pdp as authzen_pdp
from authzen.api import urls as authzen_urls
from events.api.metrics import metrics
from saaskit.errors import api_not_found
from saaskit.health import healthz


def _when_docs_enabled(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The docs and the schema answer 404 while ``API_DOCS_ENABLED`` is off (read on each request)."""

    def docs_view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not settings.API_DOCS_ENABLED:
            raise Http404("API docs are turned off.")
        return view(request, *args, **kwargs)

    return docs_view


urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),
    path("api/schema/", _when_docs_enabled(SpectacularAPIView.as_view()), name="schema"),
    path("api/docs/", _when_docs_enabled(SpectacularSwaggerView.as_view(url_name="schema")), name="api-docs"),
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
    path("api/v1/alerts/", include("payments.api.alert_urls")),
    # Last: anything else under /api/ is a JSON 404 in the error shape, in DEBUG too. Paths that gain a
    # route with a trailing slash are redirected there first (what APPEND_SLASH would have done).
    re_path(r"^api(?:/.*)?$", api_not_found, name="api-not-found"),
]

handler400 = "saaskit.errors.handler400"
handler403 = "saaskit.errors.handler403"
handler404 = "saaskit.errors.handler404"
handler500 = "saaskit.errors.handler500"
