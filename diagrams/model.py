"""The graph model: a workflow definition as states and transitions, ready to draw.

``build_graph(definition)`` is pure and deterministic: the same definition always
gives the same graph with the same element ids (``state-reported``,
``tr-verify-reported-verified``), which the renderers carry into Mermaid, DOT and SVG
so that a live view can find a state's node in a layout made earlier.

An event that every open (non-final) state allows alike — ``source = "*"`` in the
definition, or a list naming every open state — is drawn once, from a pseudo-state
"any open state" (``state-any-open``), instead of once per state: in the claim,
``withdraw`` would otherwise be nine arrows. Its expanded edges stay in the model
(``Edge.wildcard`` true), so a case's path through one of them can still be shown.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from baoflow.engine import Case, HistoryEntry, Transition, WorkflowDefinition, format_when

#: The history's event for a case being opened (``baoflow.engine.runtime.OPEN_EVENT``).
OPEN_EVENT = "open"
#: The pseudo-state the wildcard events are drawn from.
ANY_OPEN = "any-open"
ANY_OPEN_TITLE = "任一未结状态 Any open state"
#: Collapse an event into the pseudo-state only when it covers at least this many
#: states (with two, two arrows read better than a pseudo-state).
MIN_WILDCARD_STATES = 3

_UNSAFE = re.compile(r"[^A-Za-z0-9_]+")


def slug(name: str) -> str:
    """A name as it appears inside an element id: letters, digits and ``_`` kept."""
    return _UNSAFE.sub("_", name).strip("_") or "_"


def state_id(name: str) -> str:
    return f"state-{slug(name)}"


def edge_id(event: str, source: str, target: str) -> str:
    return f"tr-{slug(event)}-{slug(source)}-{slug(target)}"


@dataclass(frozen=True)
class RuleInState:
    """A deadline rule as it stands in one state: running there, or paused there."""

    name: str
    title: str
    period: str  # "3 working_days"
    article: str
    #: the pause that stops its clock in this state (None: it runs here)
    paused_by: str | None = None
    #: the state starts it (entering it arms the deadline)
    starts: bool = False
    #: the condition it applies under (a name in the workflow's hooks), if any
    when: str | None = None


@dataclass(frozen=True)
class Node:
    id: str
    name: str
    title: str
    initial: bool = False
    final: bool = False
    #: a deadline rule pauses in this state
    pause: bool = False
    rules: tuple[RuleInState, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class Edge:
    id: str
    event: str
    title: str
    source: str
    target: str
    guards: tuple[str, ...] = ()
    #: the roles that may fire it, from the permission table; None: the workflow has no
    #: table (every actor may); () : no role may (only the system fires it)
    roles: tuple[str, ...] | None = None
    #: each permission row that lists the event, as people read it
    permits: tuple[str, ...] = ()
    #: part of a wildcard group (drawn from the "any open state" pseudo-state)
    wildcard: bool = False
    article: str = ""

    @property
    def loop(self) -> bool:
        return self.source == self.target


@dataclass(frozen=True)
class WildcardEdge:
    """An event every open state allows: drawn once from "any open state".

    ``target`` None means the case stays in whatever state it is in (a self-loop on
    the pseudo-state)."""

    id: str
    event: str
    title: str
    target: str | None
    guards: tuple[str, ...]
    roles: tuple[str, ...] | None
    permits: tuple[str, ...]
    members: tuple[str, ...]  # the ids of the expanded edges


@dataclass(frozen=True)
class Graph:
    workflow: str
    version: int
    title: str
    initial: str
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    wildcards: tuple[WildcardEdge, ...] = ()

    @property
    def id(self) -> str:
        return f"wf-{slug(self.workflow)}-v{self.version}"

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def edge(self, event: str, source: str) -> Edge | None:
        for e in self.edges:
            if e.event == event and e.source == source:
                return e
        return None

    def group_of(self, edge: Edge) -> WildcardEdge | None:
        for w in self.wildcards:
            if edge.id in w.members:
                return w
        return None

    @property
    def drawn_edges(self) -> tuple[Edge, ...]:
        """The edges drawn one by one (those not in a wildcard group)."""
        return tuple(e for e in self.edges if not e.wildcard)


def build_graph(definition: WorkflowDefinition) -> Graph:
    """The graph of ``definition``: every state and transition, with deadline rules,
    pause states, guards and the roles of the permission table."""
    open_states = [s.name for s in definition.states if not s.final]
    rules_in = _rules_by_state(definition)
    pause_states = {st for r in definition.deadlines for sts in r.pauses.values() for st in sts}
    nodes = tuple(
        Node(
            id=state_id(s.name),
            name=s.name,
            title=s.title or s.name,
            initial=s.name == definition.initial,
            final=s.final,
            pause=s.name in pause_states,
            rules=tuple(rules_in.get(s.name, ())),
            description=s.description,
        )
        for s in definition.states
    )
    groups = _wildcard_groups(definition, open_states)
    in_group = {(t.event, t.source) for keys in groups.values() for t in keys}
    edges = tuple(
        Edge(
            id=edge_id(t.event, t.source, t.target),
            event=t.event,
            title=t.title or t.event,
            source=t.source,
            target=t.target,
            guards=t.guards,
            roles=_roles(definition, t.event),
            permits=_permits(definition, t.event),
            wildcard=(t.event, t.source) in in_group,
            article=t.article,
        )
        for t in definition.transitions
    )
    wildcards = []
    for (event, target), members in groups.items():
        first = members[0]
        wildcards.append(
            WildcardEdge(
                id=edge_id(event, ANY_OPEN, target or "same"),
                event=event,
                title=first.title or event,
                target=target,
                guards=first.guards,
                roles=_roles(definition, event),
                permits=_permits(definition, event),
                members=tuple(edge_id(t.event, t.source, t.target) for t in members),
            )
        )
    return Graph(
        workflow=definition.name,
        version=definition.version,
        title=definition.title or definition.name,
        initial=definition.initial,
        nodes=nodes,
        edges=edges,
        wildcards=tuple(wildcards),
    )


def _wildcard_groups(
    definition: WorkflowDefinition, open_states: Sequence[str]
) -> dict[tuple[str, str | None], list[Transition]]:
    """(event, target or None for "stays") -> its transitions, for each event that every
    open state allows alike, with the same guards."""
    if len(open_states) < MIN_WILDCARD_STATES:
        return {}
    by_key: dict[tuple[str, str | None], list[Transition]] = {}
    for t in definition.transitions:
        key = (t.event, None if t.target == t.source else t.target)
        by_key.setdefault(key, []).append(t)
    wanted = set(open_states)
    groups: dict[tuple[str, str | None], list[Transition]] = {}
    for key, members in by_key.items():
        sources = {t.source for t in members}
        wanted_here = wanted - {key[1]} if key[1] is not None else wanted
        if (
            sources == wanted_here
            and len(sources) >= MIN_WILDCARD_STATES
            and len({t.guards for t in members}) == 1
        ):
            groups[key] = members
    return groups


def _roles(definition: WorkflowDefinition, event: str) -> tuple[str, ...] | None:
    if not definition.permissions:
        return None
    roles: dict[str, None] = {}
    for row in definition.permissions:
        if event in row.events:
            roles.update(dict.fromkeys(row.roles))
    return tuple(roles)


def _permits(definition: WorkflowDefinition, event: str) -> tuple[str, ...]:
    """Each permission row listing ``event``: ``supervisor (own org unit; up to ...)``."""
    found = []
    for row in definition.permissions:
        if event not in row.events:
            continue
        limits = []
        if row.own_org_unit:
            limits.append("own org unit")
        if row.when is not None:
            limits.append(row.title or row.when)
        found.append(", ".join(row.roles) + (f" ({'; '.join(limits)})" if limits else ""))
    return tuple(found)


def _rules_by_state(definition: WorkflowDefinition) -> dict[str, list[RuleInState]]:
    """The states each deadline rule runs (or is paused) in: from the states that
    start it, every state reachable without entering one that stops it."""
    finals = definition.final_states
    out: dict[str, list[RuleInState]] = {}
    for rule in definition.deadlines:
        starts = set(rule.starts_on)
        for t in definition.transitions:
            if t.event in rule.starts_on_events or t.event in rule.restarts_on_events:
                starts.add(t.target)
        stops = set(rule.stops_on) | finals
        paused_in = {st: name for name, sts in rule.pauses.items() for st in sts}
        seen: set[str] = set()
        todo = [s for s in definition.state_names if s in starts and s not in stops]
        while todo:
            state = todo.pop()
            if state in seen:
                continue
            seen.add(state)
            for t in definition.transitions:
                if t.source == state and t.target not in stops and t.target not in seen:
                    todo.append(t.target)
        for state in definition.state_names:  # in the definition's order
            if state in seen:
                out.setdefault(state, []).append(
                    RuleInState(
                        name=rule.name,
                        title=rule.title,
                        period=str(rule.period),
                        article=rule.article,
                        paused_by=paused_in.get(state),
                        starts=state in starts,
                        when=rule.when,
                    )
                )
    return out


# --- a case's path ----------------------------------------------------------------------
@dataclass(frozen=True)
class Step:
    """One transition a case went through: the ``number``-th, ``at`` (Beijing time in
    ``when``), by whom."""

    number: int
    event: str
    source: str | None  # None: the case was opened
    target: str
    at_text: str  # format_when(at): Beijing time
    by: str  # the actor's name (and id)
    edge: str  # the id of the edge drawn for it (a wildcard group's, or the opening)


@dataclass(frozen=True)
class CasePath:
    case_number: str
    workflow: str
    version: int
    current: str
    steps: tuple[Step, ...]

    def visits(self, edge: str) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.edge == edge)


def open_edge_id(graph: Graph) -> str:
    return edge_id(OPEN_EVENT, "initial", graph.initial)


def case_path(graph: Graph, case: Case, history: Sequence[HistoryEntry]) -> CasePath:
    """The states and transitions ``case`` went through, in order, from its history.

    History rows that are not transitions (a deadline's warning, breach or escalation,
    recorded on the case where it stands) are left out; a transition of a wildcard
    group is drawn on the group's edge."""
    steps: list[Step] = []
    for h in history:
        if h.from_state is None:
            edge = open_edge_id(graph)
        else:
            found = graph.edge(h.event, h.from_state)
            if found is None:
                continue
            group = graph.group_of(found)
            edge = group.id if group is not None else found.id
        who = h.actor.name if h.actor.name == h.actor.id else f"{h.actor.name} ({h.actor.id})"
        steps.append(
            Step(
                number=len(steps) + 1,
                event=h.event,
                source=h.from_state,
                target=h.to_state,
                at_text=format_when(h.at),
                by=who,
                edge=edge,
            )
        )
    return CasePath(
        case_number=case.number,
        workflow=case.workflow,
        version=case.workflow_version,
        current=case.state,
        steps=tuple(steps),
    )


def step_line(step: Step) -> str:
    """``3. 2026-05-06 09:00 王芳 (h01): verify, reported → verified``."""
    where = f"{step.source} → {step.target}" if step.source else f"opened in {step.target}"
    return f"{step.number}. {step.at_text} {step.by}: {step.event}, {where}"


# --- live counts, as the renderers read them ----------------------------------------------
@dataclass(frozen=True)
class Overlay:
    """What a live view shows on a state: its count label and its classes."""

    label: str
    classes: tuple[str, ...]  # "occupied" | "empty", "warned", "breached", "level-N"


def overlay(count: object | None) -> Overlay:
    """The overlay of a state from its :class:`baoflow.engine.StateCount` (None: none)."""
    cases = getattr(count, "cases", 0)
    warned = getattr(count, "warned", 0)
    breached = getattr(count, "breached", 0)
    levels: Mapping[int, int] = getattr(count, "levels", {}) or {}
    parts = [f"{cases:,} case" + ("" if cases == 1 else "s")]
    classes = ["occupied" if cases else "empty"]
    if warned:
        parts.append(f"{warned:,} warned")
    if breached:
        top = max(levels) if levels else 0
        parts.append(f"{breached:,} breached" + (f" (L{top})" if top else ""))
        classes += ["breached", f"level-{min(top, 3)}"]
    elif warned:
        classes.append("warned")
    return Overlay(" · ".join(parts), tuple(classes))


# --- how elements read, shared by the renderers -------------------------------------------
def rule_line(rule: RuleInState) -> str:
    """``⏱ hand_over 3 working_days`` (running here) or ``⏸ insurer_decision (paused:
    awaiting_materials)``; ``if major_case`` when the rule has a condition."""
    if rule.paused_by is not None:
        return f"⏸ {rule.name} (paused: {rule.paused_by})"
    cond = f" if {rule.when}" if rule.when else ""
    return f"⏱ {rule.name} {rule.period}{cond}"


def everywhere(graph: Graph) -> tuple[RuleInState, ...]:
    """The deadline rules that run, unpaused, in every open state (those an event of
    any state may start): drawn once, on the "any open state" pseudo-state, when the
    graph has one, instead of on every state."""
    if not graph.wildcards:
        return ()
    open_nodes = [n for n in graph.nodes if not n.final]
    first = open_nodes[0].rules if open_nodes else ()
    return tuple(r for r in first if all(r in n.rules for n in open_nodes) and r.paused_by is None)


def node_lines(node: Node, skip: tuple[RuleInState, ...] = ()) -> list[str]:
    return [node.title, *(rule_line(r) for r in node.rules if r not in skip)]


def who_line(roles: tuple[str, ...] | None) -> str:
    if roles is None:
        return "anyone"
    return ", ".join(roles) if roles else "system only"


def edge_tooltip(
    title: str,
    guards: tuple[str, ...],
    roles: tuple[str, ...] | None,
    permits: tuple[str, ...],
    article: str,
) -> str:
    lines = [title]
    if guards:
        lines.append("guards: " + ", ".join(guards))
    if roles is None:
        who = "anyone (the workflow has no permission table)"
    else:
        who = "; ".join(permits) if permits else "the system only (no role is listed)"
    lines.append("who may fire it: " + who)
    if article:
        lines.append(article)
    return "\n".join(lines)


def node_tooltip(node: Node) -> str:
    lines = [node.title]
    if node.description:
        lines.append(node.description)
    for r in node.rules:
        lines.append(f"{rule_line(r)} — {r.title}" + (f" ({r.article})" if r.article else ""))
    return "\n".join(lines)


def edge_label(event: str, guards: tuple[str, ...]) -> str:
    return f"{event} [{', '.join(guards)}]" if guards else event


#: The fill of a state in a live view, by the last of its classes that has one (the
#: breached ones by escalation level, darker as it climbs).
FILLS = {
    "empty": "#ffffff",
    "occupied": "#e8f1fb",
    "warned": "#fff3c4",
    "level-0": "#fdd9c4",
    "level-1": "#f9a98b",
    "level-2": "#ef6f52",
    "level-3": "#c9302c",
}
#: Visited edges and the current state on a case's path.
PATH_COLOUR = "#1f6feb"


def fill_of(classes: tuple[str, ...]) -> str:
    fill = FILLS["empty"]
    for c in classes:
        fill = FILLS.get(c, fill)
    return fill


def counts_by_state(counts: object) -> dict[str, object]:
    """``Engine.state_counts`` (a list of StateCount) keyed by state."""
    if counts is None:
        return {}
    if isinstance(counts, Mapping):
        return dict(counts)
    return {c.state: c for c in counts}  # type: ignore[attr-defined]
