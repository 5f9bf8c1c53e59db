"""A pathway drawn as a graph: a simple layered layout rendered as SVG on the server.

Layers are the nodes' distance from the start node (breadth first); nodes no edge reaches
from the start (entry points) go below. Edges going down are straight lines; edges going
back up or sideways (retries, loops) curve around the right side.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

NODE_WIDTH = 168
NODE_HEIGHT = 46
COLUMN_GAP = 36
LAYER_GAP = 64
MARGIN = 24


@dataclass(frozen=True, slots=True)
class Box:
    """Where one node is drawn."""

    id: str
    kind: str
    layer: int
    x: float
    y: float


def layers(
    start: str, nodes: Sequence[str], edges: Sequence[tuple[str, str, str]]
) -> dict[str, int]:
    """Each node's layer: its breadth-first distance from ``start`` (unreached ones last)."""
    following: dict[str, list[str]] = {node: [] for node in nodes}
    for source, _, target in edges:
        if source in following and target in following:
            following[source].append(target)
    depth = {start: 0} if start in following else {}
    queue = deque(depth)
    while queue:
        node = queue.popleft()
        for target in following[node]:
            if target not in depth:
                depth[target] = depth[node] + 1
                queue.append(target)
    below = max(depth.values(), default=-1) + 1
    return {node: depth.get(node, below) for node in nodes}


def layout(
    start: str, nodes: Sequence[tuple[str, str]], edges: Sequence[tuple[str, str, str]]
) -> tuple[list[Box], float, float]:
    """Boxes for ``nodes`` (``(id, type)`` in document order), and the drawing's size."""
    depth = layers(start, [node for node, _ in nodes], edges)
    rows: dict[int, list[tuple[str, str]]] = {}
    for node, kind in nodes:
        rows.setdefault(depth[node], []).append((node, kind))
    widest = max((len(row) for row in rows.values()), default=1)
    width = MARGIN * 2 + widest * NODE_WIDTH + (widest - 1) * COLUMN_GAP + 80
    boxes = []
    for layer, row in sorted(rows.items()):
        used = len(row) * NODE_WIDTH + (len(row) - 1) * COLUMN_GAP
        left = (width - 80 - used) / 2
        for index, (node, kind) in enumerate(row):
            x = left + index * (NODE_WIDTH + COLUMN_GAP)
            y = MARGIN + layer * (NODE_HEIGHT + LAYER_GAP)
            boxes.append(Box(node, kind, layer, x, y))
    height = MARGIN * 2 + (max(rows, default=0) + 1) * (NODE_HEIGHT + LAYER_GAP) - LAYER_GAP
    return boxes, width, height


def _short(text: str, limit: int = 22) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def svg(
    start: str,
    nodes: Sequence[tuple[str, str]],
    edges: Sequence[tuple[str, str, str]],
    *,
    current: str | None = None,
    title: str = "Pathway",
) -> str:
    """The pathway as an SVG document fragment (escaped; safe to include in a page)."""
    boxes, width, height = layout(start, nodes, edges)
    where = {box.id: box for box in boxes}
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="pathway-graph" role="img" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" height="{height:.0f}" '
        f'aria-labelledby="graph-title"><title id="graph-title">{escape(title)}</title>',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'class="arrowhead"/></marker></defs>',
    ]
    for index, (source, label, target) in enumerate(edges):
        a, b = where.get(source), where.get(target)
        if a is None or b is None:
            continue
        x1, y1 = a.x + NODE_WIDTH / 2, a.y + NODE_HEIGHT
        if b.layer > a.layer:
            x2, y2 = b.x + NODE_WIDTH / 2, b.y
            path = f"M{x1:.0f},{y1:.0f} L{x2:.0f},{y2:.0f}"
            lx, ly = (x1 + x2) / 2, (y1 + y2) / 2
        else:
            # Back to an earlier (or the same) layer: around the right side of both boxes.
            x1, y1 = a.x + NODE_WIDTH, a.y + NODE_HEIGHT / 2
            x2, y2 = b.x + NODE_WIDTH, b.y + NODE_HEIGHT / 2 + 6
            bend = max(x1, x2) + 30 + (index % 3) * 12
            path = f"M{x1:.0f},{y1:.0f} C{bend:.0f},{y1:.0f} {bend:.0f},{y2:.0f} {x2:.0f},{y2:.0f}"
            lx, ly = bend - 4, (y1 + y2) / 2
        parts.append(
            f'<g class="edge" data-from="{escape(source)}" data-to="{escape(target)}">'
            f'<path d="{path}" marker-end="url(#arrow)"/>'
            f'<text x="{lx:.0f}" y="{ly:.0f}">{escape(_short(label, 16))}</text></g>'
        )
    for box in boxes:
        classes = (
            "node"
            + (" start" if box.id == start else "")
            + (" current" if box.id == current else "")
        )
        parts.append(
            f'<g class="{classes}" data-node="{escape(box.id)}">'
            f'<rect x="{box.x:.0f}" y="{box.y:.0f}" width="{NODE_WIDTH}" height="{NODE_HEIGHT}" '
            f'rx="8"/><text x="{box.x + NODE_WIDTH / 2:.0f}" y="{box.y + 19:.0f}" '
            f'class="node-id">{escape(_short(box.id))}</text>'
            f'<text x="{box.x + NODE_WIDTH / 2:.0f}" y="{box.y + 36:.0f}" '
            f'class="node-type">{escape(box.kind)}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)
