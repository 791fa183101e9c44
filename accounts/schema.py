"""drf-spectacular: describe AccessTokenAuthentication as HTTP bearer JWT, so /api/docs/ can authorize."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class AccessTokenAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.AccessTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):  # type: ignore[no-untyped-def]
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT (EdDSA; keys at /.well-known/jwks.json)"}
