from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from authz.context import ActingContext
from authz.roles import (
    LATTICE,
    LatticeError,
    Role,
    RoleLattice,
    RoleSwitchDenied,
    can_act_for,
    can_act_in,
    switch_to,
)


def ctx(role: str, *, profile_role: str | None = None, instance_id: int | None = 1,
        instance_slug: str | None = "acme") -> ActingContext:
    return ActingContext(user_id=7, instance_id=instance_id, instance_slug=instance_slug, role=role,
                         profile_role=profile_role or role)


# --- the default lattice ------------------------------------------------------------------------

def test_default_lattice_has_super_admin_on_top_and_anonymous_at_the_bottom():
    assert (LATTICE.top, LATTICE.bottom) == ("super_admin", "anonymous")


@pytest.mark.parametrize(("held", "wanted", "expected"), [
    ("instance_admin", "clerk", True),
    ("instance_admin", "accountant", True),
    ("instance_admin", "customer", True),
    ("instance_admin", "anonymous", True),
    ("clerk", "customer", True),
    ("clerk", "accountant", False),
    ("accountant", "clerk", False),
    ("customer", "clerk", False),
    ("super_admin", "instance_admin", False),  # explicit switch only
    ("super_admin", "customer", False),
    ("super_admin", "super_admin", True),
])
def test_can_act_in_follows_implicit_edges_only(held, wanted, expected):
    assert can_act_in(ctx(held), wanted) is expected


def test_super_admin_acts_in_instance_admin_after_an_explicit_switch():
    switched = switch_to(ctx("super_admin", instance_id=None, instance_slug=None), "instance_admin", "acme")

    assert switched.role == "instance_admin"
    assert switched.profile_role == "super_admin"
    assert switched.instance_slug == "acme"
    assert can_act_in(switched, "clerk") is True
    assert can_act_for(switched, "acme") is True
    assert can_act_for(switched, "other") is False


@pytest.mark.parametrize(("profile_role", "target"), [
    ("customer", "clerk"), ("clerk", "accountant"), ("instance_admin", "super_admin"), ("customer", "nope"),
])
def test_switch_against_the_edges_is_denied(profile_role, target):
    with pytest.raises(RoleSwitchDenied):
        switch_to(ctx(profile_role), target)


def test_switch_down_within_the_same_instance_is_allowed():
    assert switch_to(ctx("instance_admin"), "accountant").role == "accountant"


def test_an_instance_bound_profile_cannot_switch_into_another_instance():
    with pytest.raises(RoleSwitchDenied):
        switch_to(ctx("instance_admin"), "clerk", "other-instance")


def test_can_act_for_compares_the_acting_instance():
    assert can_act_for(ctx("clerk"), "acme") is True
    assert can_act_for(ctx("clerk"), 1) is True
    assert can_act_for(ctx("clerk"), "globex") is False
    assert can_act_for(ctx("super_admin", instance_id=None, instance_slug=None), "globex") is True
    assert can_act_for(ctx("anonymous", instance_id=None, instance_slug=None), "acme") is False


def test_no_context_can_do_nothing():
    assert can_act_in(None, "anonymous") is False
    assert can_act_for(None, "acme") is False


def test_lattice_as_json_lists_every_role_with_its_edges():
    by_name = {role["name"]: role for role in LATTICE.as_json()}

    assert set(by_name) == {"super_admin", "instance_admin", "clerk", "accountant", "customer", "anonymous"}
    assert by_name["super_admin"]["switches_to"] == ["instance_admin"]
    assert by_name["instance_admin"]["implies"] == ["clerk", "accountant"]
    assert by_name["customer"]["instance_bound"] is True
    assert by_name["super_admin"]["instance_bound"] is False


# --- validation ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("roles", "message"), [
    ([Role("a", False, implies=("b",)), Role("b", False, implies=("a",))], "a -> b -> a"),
    ([Role("a", False, implies=("b",)), Role("b", False), Role("c", False, implies=("b",))],
     "single top role, found: a, c"),
    ([Role("a", False, implies=("b", "c")), Role("b", False), Role("c", False)], "single bottom role, found: b, c"),
    ([Role("a", False, implies=("ghost",))], "a -> ghost"),
    ([Role("a", False, implies=("a",))], "inherit from themselves: a"),
    ([Role("a", False), Role("a", False)], "more than once: a"),
])
def test_a_broken_lattice_fails_naming_the_offending_roles(roles, message):
    with pytest.raises(LatticeError, match=message):
        RoleLattice(roles)


# --- adding a role below an existing one changes no existing check (property) -------------------

@st.composite
def lattices(draw):
    """A random valid lattice: roles r0 (top) .. r{n-1} (bottom) in topological order, each middle role
    with at least one parent above and one child below, edges randomly implicit or explicit."""
    n = draw(st.integers(min_value=2, max_value=7))
    names = [f"r{i}" for i in range(n)]
    edges: dict[int, dict[int, bool]] = {i: {} for i in range(n)}  # parent -> child -> implicit?
    for child in range(1, n):
        parents = draw(st.sets(st.integers(0, child - 1), min_size=1, max_size=child))
        for parent in parents:
            edges[parent][child] = draw(st.booleans())
    for parent in range(n - 1):
        if not edges[parent]:
            edges[parent][n - 1] = draw(st.booleans())
    roles = [Role(names[i], draw(st.booleans()),
                  implies=tuple(names[c] for c, imp in sorted(edges[i].items()) if imp),
                  switches_to=tuple(names[c] for c, imp in sorted(edges[i].items()) if not imp))
             for i in range(n)]
    return roles


def _all_checks(lattice: RoleLattice, names: list[str]) -> dict[tuple[str, str], tuple[bool, bool, bool]]:
    return {(a, b): (lattice.acts_in(a, b), lattice.can_switch(a, b), lattice.is_above(a, b))
            for a, b in itertools.product(names, repeat=2)}


@settings(max_examples=200, deadline=None)
@given(roles=lattices(), data=st.data())
def test_adding_a_role_below_an_existing_one_changes_no_existing_check(roles, data):
    before = RoleLattice(roles)
    names = list(before.roles)
    parent = data.draw(st.sampled_from(names))
    implicit = data.draw(st.booleans())
    new = "newcomer"
    extended: list[Role]
    if parent == before.bottom:
        # below the bottom: the newcomer becomes the new bottom
        extended = [r if r.name != parent else
                    Role(r.name, r.instance_bound,
                         implies=(new,) if implicit else (), switches_to=() if implicit else (new,))
                    for r in roles] + [Role(new, True)]
    else:
        extended = [r if r.name != parent else
                    Role(r.name, r.instance_bound,
                         implies=r.implies + ((new,) if implicit else ()),
                         switches_to=r.switches_to + (() if implicit else (new,)))
                    for r in roles]
        # The newcomer's own edge to the bottom may be implicit only where that grants nothing new:
        # its parent reaches it explicitly, or the parent already acts in the bottom.
        if not implicit or before.acts_in(parent, before.bottom):
            extended.append(Role(new, True, implies=(before.bottom,)))
        else:
            extended.append(Role(new, True, switches_to=(before.bottom,)))
    after = RoleLattice(extended)

    assert _all_checks(after, names) == _all_checks(before, names)
    assert after.can_switch(parent, new) is True
