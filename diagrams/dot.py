"""A graph as Graphviz DOT text: static, with live counts, or with a case's path.

Pure and deterministic: the same graph (and counts, and path) always gives the same
text. Every node and edge carries its stable id (``id="state-reported"``), which
Graphviz writes into the SVG; ``svg.py`` lays this text out once per workflow version.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .model import (
    ANY_OPEN,
    ANY_OPEN_TITLE,
    PATH_COLOUR,
    CasePath,
    Graph,
    counts_by_state,
    edge_label,
    edge_tooltip,
    everywhere,
    fill_of,
    node_lines,
    node_tooltip,
    open_edge_id,
    overlay,
    rule_line,
    state_id,
    step_line,
    who_line,
)

#: The count line a layout keeps free in every state (figure spaces: digit-wide), so a
#: live view can write "12,345 cases · 3 warned · 2 breached (L2)" without a new layout.
RESERVED = "\u2007" * 26
INITIAL_NODE = "(start)"
ANY_NODE = "(any open state)"


def quote(text: str) -> str:
    """A DOT double-quoted string (newlines as centred line breaks)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _attrs(**values: str | None) -> str:
    parts = [f"{k}={quote(v)}" for k, v in values.items() if v is not None]
    return "[" + " ".join(parts) + "]"


def render_dot(
    graph: Graph,
    *,
    counts: Iterable[object] | Mapping[str, object] | None = None,
    path: CasePath | None = None,
    reserve: bool = False,
) -> str:
    """DOT text of ``graph``; with ``counts`` (``Engine.state_counts``) each state shows
    its count line and is filled by its worst deadline; with ``path`` the visited edges
    are numbered in order and the current state is outlined. ``reserve`` keeps an empty
    count line in every state (the layout that live SVG views are drawn on)."""
    live = counts_by_state(counts) if counts is not None else None
    title = f"{graph.title} ({graph.workflow} v{graph.version})"
    if path is not None:
        title += f" — {path.case_number}, now in {path.current}"
    out = [
        f"digraph {quote(graph.workflow)} {{",
        "  graph "
        + _attrs(
            id=graph.id,
            label=title,
            rankdir="LR",
            labelloc="t",
            fontname="sans-serif",
            fontsize="14",
        ),
        '  node [shape="box" style="rounded,filled" fillcolor="#ffffff" '
        'fontname="sans-serif" fontsize="11"]',
        '  edge [fontname="sans-serif" fontsize="9"]',
        "  "
        + quote(INITIAL_NODE)
        + " "
        + _attrs(id="state-initial", shape="point", width="0.15", label="", **{"class": "initial"}),
    ]
    shared = everywhere(graph)
    for node in graph.nodes:
        lines = node_lines(node, shared)
        classes = ["state"]
        if node.final:
            classes.append("final")
        if node.pause:
            classes.append("pause")
        fill = None
        if live is not None:
            shown = overlay(live.get(node.name))
            lines.append(shown.label)
            classes += shown.classes
            fill = fill_of(shown.classes)
        elif reserve:
            lines.append(RESERVED)
        style = "rounded,filled,dashed" if node.pause else None
        extra: dict[str, str | None] = {
            "peripheries": "2" if node.final else None,
            "style": style,
            "fillcolor": fill,
        }
        if path is not None and node.name == path.current:
            classes.append("current")
            extra.update(color=PATH_COLOUR, penwidth="3")
        out.append(
            f"  {quote(node.name)} "
            + _attrs(
                id=node.id,
                label="\n".join(lines),
                tooltip=node_tooltip(node),
                **{"class": " ".join(classes)},
                **extra,
            )
        )
    if graph.wildcards:
        out.append(
            f"  {quote(ANY_NODE)} "
            + _attrs(
                id=state_id(ANY_OPEN),
                label="\n".join([ANY_OPEN_TITLE, *(rule_line(r) for r in shared)]),
                style="rounded,dashed",
                tooltip="events every open state allows alike",
                **{"class": "any-open"},
            )
        )

    def edge(eid: str, src: str, dst: str, label: str, tooltip: str, classes: str) -> str:
        extra: dict[str, str | None] = {}
        if path is not None:
            visits = path.visits(eid)
            if visits:
                numbers = ", ".join(str(s.number) for s in visits)
                label = f"{numbers}: {label}"
                classes += " visited"
                extra.update(color=PATH_COLOUR, fontcolor=PATH_COLOUR, penwidth="2.5")
        return f"  {quote(src)} -> {quote(dst)} " + _attrs(
            id=eid, label=label, tooltip=tooltip, **{"class": classes}, **extra
        )

    out.append(
        edge(
            open_edge_id(graph),
            INITIAL_NODE,
            graph.initial,
            "open",
            "a case is opened",
            "transition open",
        )
    )
    for e in graph.drawn_edges:
        tip = edge_tooltip(e.title, e.guards, e.roles, e.permits, e.article)
        label = edge_label(e.event, e.guards) + "\n" + who_line(e.roles)
        out.append(edge(e.id, e.source, e.target, label, tip, "transition"))
    for w in graph.wildcards:
        tip = edge_tooltip(w.title, w.guards, w.roles, w.permits, "")
        label = edge_label(w.event, w.guards) + "\n" + who_line(w.roles)
        dst = w.target if w.target is not None else ANY_NODE
        out.append(edge(w.id, ANY_NODE, dst, label, tip, "transition wildcard"))
    if path is not None:
        legend = "\\l".join(
            step_line(s).replace("\\", "\\\\").replace('"', '\\"') for s in path.steps
        )
        out.append(
            '  "(path)" [id="path-legend" shape="plaintext" fillcolor="none" '
            f'label="{path.case_number}\\l{legend}\\l"]'
        )
    out.append("}")
    return "\n".join(out) + "\n"
