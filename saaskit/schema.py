"""OpenAPI generation tuned to our conventions."""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema


class AutoSchema(SpectacularAutoSchema):
    """Names a serializer nested in its API class after both (``PoliciesApi.InputSerializer`` ->
    ``PoliciesApiInput``): every API class has its own ``InputSerializer``, which would otherwise collide."""

    def get_serializer_name(self, serializer: Any, direction: Any) -> str:
        qualname = type(serializer).__qualname__
        return qualname.replace(".", "") if "." in qualname else super().get_serializer_name(serializer, direction)
