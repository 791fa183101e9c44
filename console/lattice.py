"""The role lattice laid out for a server-rendered SVG (no JavaScript, nothing from a CDN).

Roles are placed in layers by their longest distance from the top role along any edge, so every edge points
down; within a layer they keep the order in which the lattice defines them. Pure geometry: the template draws it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from authz.roles import RoleLattice

NODE_WIDTH = 170
NODE_HEIGHT = 54
LAYER_GAP = 64
COLUMN_GAP = 40
MARGIN = 24


@dataclass(frozen=True)
class Node:
    name: str
    count: int
    url: str
    x: int
    y: int
    instance_bound: bool
    description: str

    @property
    def center_x(self) -> int:
        return self.x + NODE_WIDTH // 2

    @property
    def text_y(self) -> int:
        return self.y + 22

    @property
    def count_y(self) -> int:
        return self.y + 42


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    kind: str  # "implies" (solid) or "switch" (dashed)
    x1: int
    y1: int
    x2: int
    y2: int

    @property
    def dashed(self) -> bool:
        return self.kind == "switch"


@dataclass(frozen=True)
class Drawing:
    width: int
    height: int
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    node_width: int = NODE_WIDTH
    node_height: int = NODE_HEIGHT


def _layers(lattice: RoleLattice) -> dict[str, int]:
    """Longest path from the top along every edge (the lattice has no cycle: validated at import)."""
    depth = {lattice.top: 0}
    order = list(lattice.roles)
    changed = True
    while changed:  # a few passes over a handful of roles
        changed = False
        for name in order:
            if name not in depth:
                continue
            role = lattice.roles[name]
            for target in role.implies + role.switches_to:
                if depth.get(target, -1) < depth[name] + 1:
                    depth[target] = depth[name] + 1
                    changed = True
    return depth


def draw_lattice(lattice: RoleLattice, counts: Mapping[str, int], url_for: Callable[[str], str]) -> Drawing:
    depth = _layers(lattice)
    layers: dict[int, list[str]] = {}
    for name in lattice.roles:
        layers.setdefault(depth[name], []).append(name)
    widest = max(len(names) for names in layers.values())
    width = 2 * MARGIN + widest * NODE_WIDTH + (widest - 1) * COLUMN_GAP
    nodes: dict[str, Node] = {}
    for level, names in sorted(layers.items()):
        row_width = len(names) * NODE_WIDTH + (len(names) - 1) * COLUMN_GAP
        left = (width - row_width) // 2
        for column, name in enumerate(names):
            role = lattice.roles[name]
            nodes[name] = Node(name=name, count=counts.get(name, 0), url=url_for(name),
                               x=left + column * (NODE_WIDTH + COLUMN_GAP),
                               y=MARGIN + level * (NODE_HEIGHT + LAYER_GAP),
                               instance_bound=role.instance_bound, description=role.description)
    edges = []
    for name, role in lattice.roles.items():
        for kind, targets in (("implies", role.implies), ("switch", role.switches_to)):
            for target in targets:
                source, sink = nodes[name], nodes[target]
                edges.append(Edge(source=name, target=target, kind=kind, x1=source.center_x,
                                  y1=source.y + NODE_HEIGHT, x2=sink.center_x, y2=sink.y - 6))
    height = 2 * MARGIN + len(layers) * NODE_HEIGHT + (len(layers) - 1) * LAYER_GAP
    return Drawing(width=width, height=height, nodes=tuple(nodes.values()), edges=tuple(edges))
