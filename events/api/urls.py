from django.urls import path

from events.api.endpoints import AsyncApiDocumentApi

urlpatterns = [
    path("asyncapi.json", AsyncApiDocumentApi.as_view(), name="events-asyncapi"),
]
