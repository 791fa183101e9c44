"""drf-spectacular: describe ServiceKeyAuthentication as an HTTP bearer service key."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ServiceKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "authzen.authentication.ServiceKeyAuthentication"
    name = "serviceKey"

    def get_security_definition(self, auto_schema):  # type: ignore[no-untyped-def]
        return {"type": "http", "scheme": "bearer", "bearerFormat": "service key (sk_...)"}
