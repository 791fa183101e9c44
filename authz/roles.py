"""Roles defined in code as an inheritance lattice (seed 003: CanActIn / CanActFor / SwitchTo).

Two kinds of edge leave a role:
- ``implies``: implicit inheritance. A user holding the role can act in every role below it along these
  edges, without doing anything.
- ``switches_to``: explicit inheritance. The role may *switch* into the target (new tokens) to gain its
  capabilities, but does not hold them implicitly. It protects powerful users from acting by accident.

This module is pure Python (no models), so every layer may import it. The lattice is validated when the
module is imported: a broken lattice fails start-up with a message naming the offending roles.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from authz.context import ActingContext, acting_context

SUPER_ADMIN = "super_admin"
INSTANCE_ADMIN = "instance_admin"
CLERK = "clerk"
ACCOUNTANT = "accountant"
CUSTOMER = "customer"
ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class Role:
    name: str
    instance_bound: bool
    implies: tuple[str, ...] = ()
    switches_to: tuple[str, ...] = ()
    spans_instances: bool = False  # an unbound role that may act for every instance (the platform operator)
    description: str = ""


class LatticeError(ValueError):
    """The role definitions do not form a valid lattice."""


class UnknownRole(KeyError):
    pass


class RoleSwitchDenied(PermissionError):
    pass


@dataclass
class RoleLattice:
    roles: Mapping[str, Role]
    top: str = field(init=False)
    bottom: str = field(init=False)

    def __init__(self, roles: Iterable[Role]) -> None:
        role_list = list(roles)
        names = [role.name for role in role_list]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise LatticeError(f"roles defined more than once: {', '.join(duplicates)}")
        self.roles = {role.name: role for role in role_list}
        self.top, self.bottom = self._validate()
        self._acts_in = {name: self._closure(name, implicit_only=True) for name in self.roles}
        self._reaches = {name: self._closure(name, implicit_only=False) for name in self.roles}

    # --- construction --------------------------------------------------------------------------
    def _edges(self, name: str, *, implicit_only: bool) -> tuple[str, ...]:
        role = self.roles[name]
        return role.implies if implicit_only else role.implies + role.switches_to

    def _closure(self, name: str, *, implicit_only: bool) -> frozenset[str]:
        seen = {name}
        stack = [name]
        while stack:
            for target in self._edges(stack.pop(), implicit_only=implicit_only):
                if target not in seen:
                    seen.add(target)
                    stack.append(target)
        return frozenset(seen)

    def _validate(self) -> tuple[str, str]:
        if not self.roles:
            raise LatticeError("the lattice has no roles")
        unknown = sorted({f"{role.name} -> {target}" for role in self.roles.values()
                          for target in role.implies + role.switches_to if target not in self.roles})
        if unknown:
            raise LatticeError(f"edges to undefined roles: {', '.join(unknown)}")
        self_loops = sorted(r.name for r in self.roles.values() if r.name in r.implies + r.switches_to)
        if self_loops:
            raise LatticeError(f"roles that inherit from themselves: {', '.join(self_loops)}")
        both = sorted(f"{r.name} -> {t}" for r in self.roles.values() for t in set(r.implies) & set(r.switches_to))
        if both:
            raise LatticeError(f"edges that are both implicit and explicit: {', '.join(both)}")
        cycle = self._find_cycle()
        if cycle:
            raise LatticeError(f"cycle between roles: {' -> '.join(cycle)}")
        has_parent = {t for r in self.roles.values() for t in r.implies + r.switches_to}
        tops = sorted(name for name in self.roles if name not in has_parent)
        bottoms = sorted(name for name, r in self.roles.items() if not (r.implies or r.switches_to))
        if len(tops) != 1:
            raise LatticeError(f"the lattice needs a single top role, found: {', '.join(tops)}")
        if len(bottoms) != 1:
            raise LatticeError(f"the lattice needs a single bottom role, found: {', '.join(bottoms)}")
        top, bottom = tops[0], bottoms[0]
        reachable = self._closure(top, implicit_only=False)
        unreachable = sorted(set(self.roles) - reachable)
        if unreachable:
            raise LatticeError(f"roles not reachable from {top}: {', '.join(unreachable)}")
        return top, bottom

    def _find_cycle(self) -> list[str] | None:
        white, grey, black = 0, 1, 2
        color = dict.fromkeys(self.roles, white)
        path: list[str] = []

        def visit(name: str) -> list[str] | None:
            color[name] = grey
            path.append(name)
            for target in self._edges(name, implicit_only=False):
                if color[target] == grey:
                    return path[path.index(target):] + [target]
                if color[target] == white:
                    found = visit(target)
                    if found:
                        return found
            path.pop()
            color[name] = black
            return None

        for name in sorted(self.roles):
            if color[name] == white:
                found = visit(name)
                if found:
                    return found
        return None

    # --- queries ------------------------------------------------------------------------------
    def get(self, name: str) -> Role:
        try:
            return self.roles[name]
        except KeyError:
            raise UnknownRole(name) from None

    def acts_in(self, held: str, wanted: str) -> bool:
        """Whether holding ``held`` lets one act in ``wanted`` without switching."""
        closure = self._acts_in.get(held)
        return closure is not None and wanted in closure

    def can_switch(self, held: str, target: str) -> bool:
        """Whether a user whose profile holds ``held`` may switch to ``target`` (implicit or explicit edges)."""
        closure = self._reaches.get(held)
        return closure is not None and target in closure

    def is_above(self, higher: str, lower: str) -> bool:
        """Strictly above along any edges: ``higher`` reaches ``lower`` and they differ."""
        return higher != lower and self.can_switch(higher, lower)

    def as_json(self) -> list[dict[str, Any]]:
        return [
            {
                "name": role.name,
                "instance_bound": role.instance_bound,
                "implies": list(role.implies),
                "switches_to": list(role.switches_to),
                "description": role.description,
            }
            for role in self.roles.values()
        ]

    def instance_roles(self) -> list[str]:
        return [name for name, role in self.roles.items() if role.instance_bound]


DEFAULT_ROLES = (
    Role(SUPER_ADMIN, instance_bound=False, switches_to=(INSTANCE_ADMIN,), spans_instances=True,
         description="Operates the platform; must switch explicitly into an instance to act in it."),
    Role(INSTANCE_ADMIN, instance_bound=True, implies=(CLERK, ACCOUNTANT),
         description="Administers one instance: members, roles, policies."),
    Role(CLERK, instance_bound=True, implies=(CUSTOMER,), description="Manages the inventory of an instance."),
    Role(ACCOUNTANT, instance_bound=True, implies=(CUSTOMER,), description="Manages payments of an instance."),
    Role(CUSTOMER, instance_bound=True, implies=(ANONYMOUS,), description="Places orders in an instance."),
    Role(ANONYMOUS, instance_bound=False, description="Anyone; no instance."),
)

LATTICE = RoleLattice(DEFAULT_ROLES)


def _instance_key(instance: Any) -> tuple[int | None, str | None]:
    if isinstance(instance, int):
        return instance, None
    if isinstance(instance, str):
        return None, instance
    return getattr(instance, "pk", None), getattr(instance, "slug", None)


def can_act_in(request_or_ctx: Any, role: str, *, lattice: RoleLattice = LATTICE) -> bool:
    """Whether the caller's *current* role lets it act in ``role`` (implicit edges only)."""
    ctx = acting_context(request_or_ctx)
    return ctx is not None and lattice.acts_in(ctx.role, role)


def can_act_for(request_or_ctx: Any, instance: Any, *, lattice: RoleLattice = LATTICE) -> bool:
    """Whether the caller acts for ``instance`` (an Instance, its id or its slug).

    An instance-bound role acts for the instance in its token only; a role that spans instances (the
    platform operator) acts for every one; other unbound roles (anonymous) act for none.
    """
    ctx = acting_context(request_or_ctx)
    if ctx is None or ctx.role not in lattice.roles:
        return False
    role = lattice.roles[ctx.role]
    if not role.instance_bound:
        return role.spans_instances
    instance_id, slug = _instance_key(instance)
    if instance_id is not None and ctx.instance_id is not None:
        return instance_id == ctx.instance_id
    return slug is not None and slug == ctx.instance_slug


def switch_to(request_or_ctx: Any, role: str, instance: Any = None, *,
              lattice: RoleLattice = LATTICE) -> ActingContext:
    """The context after switching into ``role`` (in ``instance`` for an instance-bound role).

    Allowed only along the lattice's edges from the caller's *profile* role. A profile bound to an
    instance cannot carry its role into another instance; a role spanning instances may enter any.
    Raises RoleSwitchDenied (the caller answers 403).
    """
    ctx = acting_context(request_or_ctx)
    if ctx is None:
        raise RoleSwitchDenied("not authenticated")
    if role not in lattice.roles:
        raise RoleSwitchDenied(f"unknown role {role!r}")
    if not lattice.can_switch(ctx.profile_role, role):
        raise RoleSwitchDenied(f"{ctx.profile_role} cannot switch to {role}")
    target = lattice.roles[role]
    if not target.instance_bound:
        return ctx.acting_as(role=role, instance_id=None, instance_slug=None)
    if instance is None:
        instance_id, slug = ctx.instance_id, ctx.instance_slug
    else:
        instance_id, slug = _instance_key(instance)
    if instance_id is None and slug is None:
        raise RoleSwitchDenied(f"{role} is bound to an instance; name one")
    profile = lattice.roles.get(ctx.profile_role)
    same_instance = (instance_id is not None and instance_id == ctx.instance_id) or (
        slug is not None and slug == ctx.instance_slug)
    if profile is not None and profile.instance_bound and not same_instance:
        raise RoleSwitchDenied("a profile's role does not carry into another instance")
    return ctx.acting_as(role=role, instance_id=instance_id, instance_slug=slug)
