"""The pathway graph's layered layout and its SVG."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from agentsms.agents.pathway import edges, load_demo_pathway, parse_pathway
from agentsms.dashboard import graph


def test_layers_are_breadth_first_distances_and_unreached_go_last() -> None:
    found = graph.layers(
        "a",
        ["a", "b", "c", "d", "lost"],
        [("a", "x", "b"), ("a", "y", "c"), ("b", "z", "d"), ("d", "back", "a")],
    )
    assert found == {"a": 0, "b": 1, "c": 1, "d": 2, "lost": 3}


def test_nodes_of_one_layer_share_a_row_and_never_overlap() -> None:
    boxes, width, height = graph.layout(
        "a", [("a", "ask"), ("b", "say"), ("c", "end")], [("a", "1", "b"), ("a", "2", "c")]
    )
    by_id = {box.id: box for box in boxes}
    assert by_id["b"].y == by_id["c"].y > by_id["a"].y
    assert abs(by_id["c"].x - by_id["b"].x) >= graph.NODE_WIDTH
    assert all(box.x >= 0 and box.x + graph.NODE_WIDTH <= width for box in boxes)
    assert all(box.y + graph.NODE_HEIGHT <= height for box in boxes)


def test_the_demo_pathway_draws_every_node_and_edge_as_valid_svg() -> None:
    pathway = parse_pathway(load_demo_pathway())
    found = edges(pathway)
    drawing = graph.svg(
        pathway.start,
        [(node.id, node.type) for node in pathway.nodes.values()],
        found,
        current="remind",
        title="<demo>",
    )
    root = ET.fromstring(drawing)
    ns = "{http://www.w3.org/2000/svg}"
    nodes = [g.get("data-node") for g in root.iter(f"{ns}g") if g.get("data-node")]
    assert sorted(nodes) == sorted(pathway.nodes)
    drawn_edges = [g for g in root.iter(f"{ns}g") if g.get("class") == "edge"]
    assert len(drawn_edges) == len(found)
    assert ("remind", "confirm", "confirmed") in found
    assert re.search(r'class="node start current" data-node="remind"', drawing)
    assert "&lt;demo&gt;" in drawing
