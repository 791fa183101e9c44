"""The lattice layout: every role once, every edge of the code once, pointing down, switch edges marked."""

from __future__ import annotations

from authz.roles import LATTICE, Role, RoleLattice
from console.lattice import NODE_HEIGHT, NODE_WIDTH, draw_lattice


def code_edges(lattice: RoleLattice) -> set[tuple[str, str, str]]:
    return {(name, target, "implies") for name, role in lattice.roles.items() for target in role.implies} | {
        (name, target, "switch") for name, role in lattice.roles.items() for target in role.switches_to}


def test_the_default_lattice_is_drawn_top_down_with_every_edge():
    drawing = draw_lattice(LATTICE, {"clerk": 3}, lambda name: f"/p?role={name}")

    assert [n.name for n in drawing.nodes] == list(LATTICE.roles)
    by_name = {n.name: n for n in drawing.nodes}
    assert (by_name["clerk"].count, by_name["accountant"].count) == (3, 0)
    assert by_name["clerk"].url == "/p?role=clerk"
    assert {(e.source, e.target, e.kind) for e in drawing.edges} == code_edges(LATTICE)
    assert {(e.source, e.target) for e in drawing.edges if e.dashed} == {("super_admin", "instance_admin")}
    layers = [by_name[name].y for name in ("super_admin", "instance_admin", "clerk", "customer", "anonymous")]
    assert layers == sorted(set(layers))  # five distinct layers, top to bottom
    assert by_name["clerk"].y == by_name["accountant"].y
    assert all(e.y2 > e.y1 for e in drawing.edges)


def test_nodes_never_overlap_and_fit_the_picture():
    lattice = RoleLattice([
        Role("top", instance_bound=False, implies=("a", "b", "c"), switches_to=("d",)),
        Role("a", instance_bound=True, implies=("bottom",)),
        Role("b", instance_bound=True, implies=("bottom",)),
        Role("c", instance_bound=True, implies=("d",)),
        Role("d", instance_bound=True, implies=("bottom",)),
        Role("bottom", instance_bound=False),
    ])
    drawing = draw_lattice(lattice, {}, lambda name: "#")

    boxes = [(n.x, n.y, n.x + NODE_WIDTH, n.y + NODE_HEIGHT) for n in drawing.nodes]
    for i, a in enumerate(boxes):
        assert a[0] >= 0 and a[2] <= drawing.width and a[1] >= 0 and a[3] <= drawing.height
        for b in boxes[i + 1:]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]
    by_name = {n.name: n for n in drawing.nodes}
    assert by_name["d"].y > by_name["c"].y  # longest path: d sits below c, not beside it
    assert {(e.source, e.target, e.kind) for e in drawing.edges} == code_edges(lattice)
    assert all(e.y2 > e.y1 for e in drawing.edges)
