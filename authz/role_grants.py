"""What a role allows on objects without any policy: a small table in code.

| role           | allows                                                    |
|----------------|-----------------------------------------------------------|
| instance_admin | every action on every resource type in its instance       |
| clerk          | products: get, update; orders: get                        |
| accountant     | wallets: get; orders: get                                 |
| customer       | products: get                                             |

A role also allows what every role it *implicitly* acts in allows (``authz.roles.LATTICE``), so
instance_admin's row already includes clerk's and accountant's. super_admin must switch to
instance_admin first (explicit edge), so it gets nothing here by itself. Grants only ever apply inside
the subject's own instance.
"""

from __future__ import annotations

from authz.registry import RESOURCE_TYPES
from authz.roles import LATTICE

ALL = "*"

ROLE_GRANTS: dict[str, dict[str, frozenset[str]] | str] = {
    "instance_admin": ALL,
    "clerk": {"products": frozenset({"get", "update"}), "orders": frozenset({"get"})},
    "accountant": {"wallets": frozenset({"get"}), "orders": frozenset({"get"})},
    "customer": {"products": frozenset({"get"})},
}


def _pairs_for(role: str) -> frozenset[tuple[str, str]]:
    pairs: set[tuple[str, str]] = set()
    for name in LATTICE.roles:
        if not LATTICE.acts_in(role, name):
            continue
        grants = ROLE_GRANTS.get(name)
        if grants == ALL:
            pairs.update((rt.name, action) for rt in RESOURCE_TYPES.values() for action in rt.actions)
        elif isinstance(grants, dict):
            pairs.update((rtype, action) for rtype, actions in grants.items() for action in actions)
    return frozenset(pairs)


# role -> {(resource_type, action)} it allows, closed over the lattice's implicit edges.
ROLE_PAIRS: dict[str, frozenset[tuple[str, str]]] = {name: _pairs_for(name) for name in LATTICE.roles}
_EMPTY: frozenset[tuple[str, str]] = frozenset()


def role_pairs(role: str | None) -> frozenset[tuple[str, str]]:
    return ROLE_PAIRS.get(role, _EMPTY) if role else _EMPTY


def role_allows(role: str | None, action: str, resource_type: str) -> bool:
    return (resource_type, action) in role_pairs(role)


def granting_role(role: str | None, action: str, resource_type: str) -> str | None:
    """The role (the subject's own or one it acts in) whose table row allows the action, for explain."""
    if not role_allows(role, action, resource_type):
        return None
    for name in LATTICE.roles:
        if LATTICE.acts_in(role, name):  # type: ignore[arg-type]
            grants = ROLE_GRANTS.get(name)
            if grants == ALL or (isinstance(grants, dict) and action in grants.get(resource_type, ())):
                return name
    return role

_unknown = sorted(set(ROLE_GRANTS) - set(LATTICE.roles))
if _unknown:
    raise ValueError(f"ROLE_GRANTS names roles missing from the lattice: {', '.join(_unknown)}")
