from django.apps import AppConfig


class AuthzConfig(AppConfig):
    name = "authz"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from authz import receivers

        receivers.connect()
