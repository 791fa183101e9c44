"""Resource types the ACL knows, the actions each allows, and which model (if any) holds their objects.

A policy names a type from here; an unknown type or an action the type does not list is rejected. Models
are named by label so this module imports nothing from the apps that own them (they may not exist yet).
"""

from __future__ import annotations

from dataclasses import dataclass

WILDCARD = "*"


@dataclass(frozen=True, slots=True)
class ResourceType:
    name: str
    actions: frozenset[str]
    model_label: str | None = None  # "app_label.ModelName" whose pk is the resource id
    hierarchical: bool = False  # objects form folders: a grant on a folder covers its subtree


_BASIC = frozenset({"get", "update", "delete"})

RESOURCE_TYPES: dict[str, ResourceType] = {
    rt.name: rt
    for rt in (
        ResourceType("orders", _BASIC | {"cancel"}, "orders.Order"),
        ResourceType("products", _BASIC, "inventory.Product"),
        ResourceType("wallets", _BASIC, "payments.Wallet"),
        ResourceType("resources", _BASIC, "authz.Resource", hierarchical=True),
    )
}

_BY_MODEL_LABEL = {rt.model_label.lower(): rt.name for rt in RESOURCE_TYPES.values() if rt.model_label}


def get_type(name: str) -> ResourceType | None:
    return RESOURCE_TYPES.get(name)


def type_for_model(model: type) -> str | None:
    """The resource type whose objects are rows of ``model`` (None when the model is not registered)."""
    return _BY_MODEL_LABEL.get(model._meta.label_lower)  # type: ignore[attr-defined]


def all_actions() -> frozenset[str]:
    return frozenset().union(*(rt.actions for rt in RESOURCE_TYPES.values()))
