from django.apps import AppConfig


class AuthzenConfig(AppConfig):
    """The OpenID AuthZEN 1.0 policy decision point: service clients, instance-defined resource types,
    conditional policies and the ``/authzen/{slug}`` endpoints. Sits above accounts and authz."""

    name = "authzen"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from authzen import receivers, schema  # noqa: F401  (schema registers the OpenAPI auth scheme)

        receivers.connect()
