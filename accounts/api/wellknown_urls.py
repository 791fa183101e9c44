from django.urls import path

from accounts.api.auth import JwksApi

urlpatterns = [path("jwks.json", JwksApi.as_view(), name="jwks")]
