from django.urls import path

from payments.api.endpoints import AlertListApi

app_name = "alerts"

urlpatterns = [
    path("", AlertListApi.as_view(), name="list"),
]
