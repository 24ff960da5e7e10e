"""A graph as Mermaid ``stateDiagram-v2`` text (GitHub renders it in a ```mermaid block):
static, with live counts, or with a case's path. Pure and deterministic.

Mermaid ids cannot hold ``-``: a state's Mermaid id is its element id with ``_``
(``state_reported``). Mermaid draws no tooltips, so the roles that may fire a
transition are on its label, after its event and guards.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .model import (
    ANY_OPEN,
    ANY_OPEN_TITLE,
    FILLS,
    PATH_COLOUR,
    CasePath,
    Graph,
    counts_by_state,
    edge_label,
    everywhere,
    node_lines,
    open_edge_id,
    overlay,
    rule_line,
    state_id,
    step_line,
    who_line,
)


def mermaid_id(element_id: str) -> str:
    return element_id.replace("-", "_")


def _text(text: str) -> str:
    """Text Mermaid reads as text: no statement separators or quotes."""
    return text.replace('"', "'").replace(";", ",").replace("#", "＃").replace("\n", "<br/>")


def _label(text: str) -> str:
    """A transition's label: also no colon (the one before it starts the label)."""
    return _text(text).replace(":", "：")


def _class_name(css: str) -> str:
    return css.replace("-", "_")


def render_mermaid(
    graph: Graph,
    *,
    counts: Iterable[object] | Mapping[str, object] | None = None,
    path: CasePath | None = None,
) -> str:
    """Mermaid text of ``graph``; with ``counts`` (``Engine.state_counts``) each state
    shows its count line and takes the class of its worst deadline (``warned``,
    ``level_0``..``level_3``); with ``path`` the visited transitions are numbered, a
    note lists the steps, and the current state takes the class ``current``."""
    live = counts_by_state(counts) if counts is not None else None
    title = f"{graph.title} ({graph.workflow} v{graph.version})"
    if path is not None:
        title += f" — {path.case_number}"
    out = ["---", f"title: {_text(title)}", "---", "stateDiagram-v2", "    direction LR"]
    shared = everywhere(graph)
    applied: list[tuple[str, str]] = []
    for node in graph.nodes:
        lines = node_lines(node, shared)
        mid = mermaid_id(node.id)
        if live is not None:
            shown = overlay(live.get(node.name))
            lines.append(shown.label)
            applied += [(mid, _class_name(c)) for c in shown.classes if c in FILLS]
        if node.pause:
            applied.append((mid, "pause"))
        if path is not None and node.name == path.current:
            applied.append((mid, "current"))
        out.append(f'    state "{_text(chr(10).join(lines))}" as {mid}')
    any_id = mermaid_id(state_id(ANY_OPEN))
    if graph.wildcards:
        label = "\n".join([ANY_OPEN_TITLE, *(rule_line(r) for r in shared)])
        out.append(f'    state "{_text(label)}" as {any_id}')
        applied.append((any_id, "any_open"))

    def numbered(eid: str, label: str) -> str:
        if path is None:
            return label
        visits = path.visits(eid)
        if not visits:
            return label
        return f"{', '.join(str(s.number) for s in visits)}. {label}"

    out.append(
        f"    [*] --> {mermaid_id(state_id(graph.initial))} : "
        + _label(numbered(open_edge_id(graph), "open"))
    )
    for e in graph.drawn_edges:
        label = f"{edge_label(e.event, e.guards)} · {who_line(e.roles)}"
        out.append(
            f"    {mermaid_id(state_id(e.source))} --> {mermaid_id(state_id(e.target))} : "
            + _label(numbered(e.id, label))
        )
    for w in graph.wildcards:
        label = f"{edge_label(w.event, w.guards)} · {who_line(w.roles)}"
        dst = mermaid_id(state_id(w.target)) if w.target is not None else any_id
        out.append(f"    {any_id} --> {dst} : " + _label(numbered(w.id, label)))
    for node in graph.nodes:
        if node.final:
            out.append(f"    {mermaid_id(node.id)} --> [*]")
    if path is not None:
        out.append(f"    note right of {mermaid_id(state_id(path.current))}")
        out.append(f"        {_text(path.case_number)}, now in {_text(path.current)}")
        out += [f"        {_text(step_line(s))}" for s in path.steps]
        out.append("    end note")
    out.append("    classDef pause stroke-dasharray: 5 5")
    out.append("    classDef any_open fill:#f6f8fa,stroke-dasharray: 3 3")
    if live is not None:
        for css, fill in FILLS.items():
            dark = ",color:#ffffff" if css in ("level-2", "level-3") else ""
            out.append(f"    classDef {_class_name(css)} fill:{fill}{dark}")
    if path is not None:
        out.append(f"    classDef current stroke:{PATH_COLOUR},stroke-width:3px")
    for mid, css in applied:
        out.append(f"    class {mid} {css}")
    return "\n".join(out) + "\n"
