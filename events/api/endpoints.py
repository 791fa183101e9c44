from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from events.asyncapi import asyncapi_document


class AsyncApiDocumentApi(APIView):
    """The AsyncAPI 3.0 description of every catalogued event (public: it holds no data)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    renderer_classes = [JSONRenderer]

    @extend_schema(operation_id="events_asyncapi", tags=["events"], responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request) -> Response:
        return Response(asyncapi_document())
