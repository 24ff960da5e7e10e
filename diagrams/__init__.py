"""State diagrams: a workflow definition → a graph model → Mermaid, DOT or SVG; static,
with live counts per state, or with one case's path (docs/diagrams.md).

The entry point for a face (the CLI, the HTTP API)::

    from baoflow.diagrams import render
    svg = render(engine, "claim", "svg", live=True)          # bytes
    text = render(engine, "claim", "mermaid", case="LP-…")    # str

Everything it reads comes through the ``Engine`` facade: ``workflow``,
``state_counts``, ``get_case`` and ``history``.
"""

from __future__ import annotations

from typing import Literal, overload

from baoflow.engine import BaoflowError, Engine, WorkflowDefinition

from .dot import render_dot
from .mermaid import render_mermaid
from .model import (
    CasePath,
    Edge,
    Graph,
    Node,
    RuleInState,
    Step,
    WildcardEdge,
    build_graph,
    case_path,
)
from .svg import Diagrams, wasm_layout

__all__ = [
    "FORMATS",
    "CasePath",
    "DiagramRequestInvalid",
    "Diagrams",
    "Edge",
    "Graph",
    "Node",
    "RuleInState",
    "Step",
    "WildcardEdge",
    "build_graph",
    "case_path",
    "render",
    "render_dot",
    "render_mermaid",
    "static",
    "wasm_layout",
]

FORMATS = ("mermaid", "dot", "svg")

#: The layouts of this process (one per workflow version, made on first use).
DEFAULT = Diagrams()


def static(
    definition: WorkflowDefinition, fmt: str, *, diagrams: Diagrams | None = None
) -> str | bytes:
    """The static diagram of a definition (what ``diagrams/*.mmd|.dot|.svg`` hold)."""
    graph = build_graph(definition)
    if fmt == "mermaid":
        return render_mermaid(graph)
    if fmt == "dot":
        return render_dot(graph)
    if fmt == "svg":
        return (diagrams or DEFAULT).svg(graph)
    raise _bad_format(fmt)


@overload
def render(
    engine: Engine,
    workflow: str,
    fmt: Literal["mermaid", "dot"],
    *,
    live: bool = ...,
    case: int | str | None = ...,
    org_unit: str | None = ...,
    diagrams: Diagrams | None = ...,
) -> str: ...
@overload
def render(
    engine: Engine,
    workflow: str,
    fmt: str,
    *,
    live: bool = ...,
    case: int | str | None = ...,
    org_unit: str | None = ...,
    diagrams: Diagrams | None = ...,
) -> str | bytes: ...
def render(
    engine: Engine,
    workflow: str,
    fmt: str,
    *,
    live: bool = False,
    case: int | str | None = None,
    org_unit: str | None = None,
    diagrams: Diagrams | None = None,
) -> str | bytes:
    """The diagram of ``workflow`` in ``fmt`` (``mermaid`` and ``dot``: text; ``svg``:
    bytes). ``live``: each state with its count of cases and of warned and breached
    deadlines (``Engine.state_counts``, of ``org_unit``'s cases if given). ``case``
    (id or number): that case's path, on the version of the workflow it runs on.

    Raises:
        UnknownWorkflow: with the names that are registered.
        CaseNotFound: ``case`` does not exist.
        DiagramRequestInvalid: an unknown format, or a case of another workflow.
    """
    if fmt not in FORMATS:
        raise _bad_format(fmt)
    definition = engine.workflow(workflow)
    path: CasePath | None = None
    if case is not None:
        found = engine.get_case(case)
        if found.workflow != workflow:
            raise DiagramRequestInvalid(
                f"case {found.number} is a {found.workflow} case, not a {workflow}: "
                f"draw its path on {found.workflow!r}"
            )
        definition = engine.workflow(workflow, found.workflow_version)
        path = case_path(build_graph(definition), found, engine.history(found.id))
    graph = build_graph(definition)
    counts = engine.state_counts(workflow, org_unit=org_unit) if live else None
    if fmt == "mermaid":
        return render_mermaid(graph, counts=counts, path=path)
    if fmt == "dot":
        return render_dot(graph, counts=counts, path=path)
    return (diagrams or DEFAULT).svg(graph, counts=counts, path=path)


class DiagramRequestInvalid(BaoflowError):
    """A diagram asked for in a way that cannot be drawn (a case of another workflow,
    an unknown format); the message says what to ask instead."""


def _bad_format(fmt: str) -> DiagramRequestInvalid:
    return DiagramRequestInvalid(
        f"{fmt!r} is not a diagram format; use one of {', '.join(FORMATS)}"
    )
