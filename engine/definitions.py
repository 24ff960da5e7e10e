"""Workflow definitions: frozen data, loaded from TOML (or any mapping) and validated.

A definition is data — states, transitions, which guard and action each transition
runs, the schema its payload must satisfy, the article it comes from. The code those
names refer to comes from an explicit :class:`Hooks` bundle passed at load, so an
unknown name is a load error with its location, never a runtime surprise.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel

from .deadlines import Period, Unit
from .errors import DefinitionError, Problem

if TYPE_CHECKING:
    from .types import Actor, Case

#: ``source = "*"`` in a transition means every state that is not final.
ANY_STATE = "*"
#: ``target = "."`` means the case stays where it is (an event recorded in any state).
SAME_STATE = "."

#: The case-data fields a workflow may expose for ``find_cases`` (``[workflow.index]``).
SEARCH_KEYS = ("policy_number", "insured_name", "id_number")


class TransitionContext:
    """What a guard or an action sees while an event is being fired.

    Guards read it and return reasons to refuse. Actions may change ``new_data`` (the
    case data as it will be stored) and append human-readable ``notes`` that go into
    the history row. ``case`` is ``None`` while a case is being opened.
    """

    __slots__ = ("actor", "case", "data", "event", "new_data", "notes", "now", "services")

    def __init__(
        self,
        *,
        case: Case | None,
        event: str,
        data: dict[str, Any],
        actor: Actor,
        now: datetime,
        services: Any,
        new_data: dict[str, Any],
    ) -> None:
        self.case = case
        self.event = event
        self.data = data
        self.actor = actor
        self.now = now
        self.services = services
        self.new_data = new_data
        self.notes: list[str] = []


class Guard(Protocol):
    def __call__(self, ctx: TransitionContext, /) -> Sequence[str]:
        """Return the reasons to refuse the transition; empty means it may go ahead."""
        ...


Action = Callable[[TransitionContext], None]


@dataclass(frozen=True)
class Intake:
    """What a workflow's intake hook decides when a case is opened.

    Attributes:
        duplicate_of: the id of an existing case this report duplicates; no case is
            created and that case is returned instead.
        then: an event the system fires right after the case is created, in the same
            transaction (e.g. ``register``, or ``hold_for_identity``).
        notes: what to tell the reporter, recorded in the history.
    """

    duplicate_of: int | None = None
    then: str | None = None
    notes: tuple[str, ...] = ()


IntakeHook = Callable[[TransitionContext], Intake]
Condition = Callable[[Mapping[str, Any]], bool]


@dataclass(frozen=True)
class NoticeSpec:
    """A notice a workflow can send: the fields its template receives, and how to build
    them from the case after the transition (``ctx.new_data``, ``ctx.data``, ``ctx.now``).

    The template set is checked against ``fields`` at load (a template that uses any
    other variable is refused); ``build`` must return exactly these keys, with
    JSON-native values (times already formatted for people to read)."""

    fields: frozenset[str]
    build: Callable[[TransitionContext], Mapping[str, Any]]


@dataclass(frozen=True)
class TransitionNotice:
    """``notify = [{ template = "...", to = "...", when = "..." }]`` on a transition:
    after it, tell ``to`` (a role, or a party of the case such as ``reporter``) with the
    notice ``template``, if the condition ``when`` (a name in ``Hooks.conditions``, over
    the case data after the transition) holds."""

    template: str
    to: str
    when: str | None = None


#: What an escalation level may do.
ESCALATION_ACTIONS = ("notify", "reassign", "raise_priority", "fire_event")


@dataclass(frozen=True)
class Escalation:
    """One level of the chain after a breach: ``after`` the breach, ``to`` a role."""

    level: int
    after: Period
    to: str
    actions: tuple[str, ...]
    event: str | None = None  # for the fire_event action


@dataclass(frozen=True)
class Extension:
    """``event`` extends a running instance to ``period``, counted from its start (e.g. a
    complex complaint: 15 days become 30; with a superior's approval, 60)."""

    event: str
    period: Period


@dataclass(frozen=True)
class DeadlineRule:
    """ "Within ``period`` of entering ``starts_on``, reach ``stops_on``" — with warnings
    before, escalations after, named pauses that stop the clock, and its article."""

    name: str
    title: str
    period: Period
    starts_on: tuple[str, ...]
    stops_on: tuple[str, ...]
    stops_on_events: tuple[str, ...] = ()
    #: events that start the clock too (when it is not running already), e.g. new facts
    #: that make a case major after intake
    starts_on_events: tuple[str, ...] = ()
    #: events that end the running instance and start a new one now (new facts from a
    #: complainant restart the period)
    restarts_on_events: tuple[str, ...] = ()
    #: events that extend a running instance to a longer period
    extensions: tuple[Extension, ...] = ()
    pauses: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    warnings: tuple[float, ...] = ()
    escalations: tuple[Escalation, ...] = ()
    when: str | None = None
    close_of_business: time | None = None
    article: str = ""
    #: who is told of the warnings and the breach (roles; escalation levels name their own)
    notify: tuple[str, ...] = ("handler",)


@dataclass(frozen=True)
class Hooks:
    """The code a definition may name: guards, actions, payload schemas, intake."""

    guards: Mapping[str, Guard] = field(default_factory=dict)
    actions: Mapping[str, Action] = field(default_factory=dict)
    schemas: Mapping[str, type[BaseModel]] = field(default_factory=dict)
    intake: Mapping[str, IntakeHook] = field(default_factory=dict)
    #: predicates over the case data that decide whether a deadline rule applies
    conditions: Mapping[str, Condition] = field(default_factory=dict)
    #: the notices transitions may send (``notify`` on a transition), by template name
    notices: Mapping[str, NoticeSpec] = field(default_factory=dict)


@dataclass(frozen=True)
class State:
    name: str
    title: str = ""
    final: bool = False
    description: str = ""


@dataclass(frozen=True)
class Permission:
    """A row of the workflow's permission table (核决权限): ``roles`` may fire ``events``
    — on their own org unit's cases only when ``own_org_unit`` — when the condition
    ``when`` (a name in ``Hooks.conditions``, over the case data with the event's data
    laid over it) holds. An event is allowed if any row allows it."""

    events: tuple[str, ...]
    roles: tuple[str, ...]
    own_org_unit: bool = True
    when: str | None = None
    title: str = ""  # how the condition reads to people, e.g. "up to 5,000 yuan"


@dataclass(frozen=True)
class Transition:
    event: str
    source: str
    target: str
    title: str = ""
    guards: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()
    schema: str | None = None
    store_as: str | None = None
    article: str = ""
    notices: tuple[TransitionNotice, ...] = ()


@dataclass(frozen=True)
class WorkflowDefinition:
    """A validated, immutable workflow definition with its hooks resolved."""

    name: str
    version: int
    title: str
    case_number_prefix: str
    initial: str
    states: tuple[State, ...]
    transitions: tuple[Transition, ...]
    open_schema: str | None
    intake: str | None
    hooks: Hooks
    #: search keys copied from the case data into indexed columns: key -> dotted path
    index: Mapping[str, str] = field(default_factory=dict)
    deadlines: tuple[DeadlineRule, ...] = ()
    #: who may fire what (empty: no table, every actor may fire every event)
    permissions: tuple[Permission, ...] = ()
    #: parts between the prefix and the date in a case number: ``org_unit`` (the
    #: opener's branch) or a dotted path into the opening data, e.g. TS-SH-20260506-…
    case_number_parts: tuple[str, ...] = ()
    source: str = "<mapping>"

    @cached_property
    def index_paths(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """``index`` with each dotted path split once (it is read on every transition)."""
        return tuple((key, tuple(path.split("."))) for key, path in self.index.items())

    @cached_property
    def index_roots(self) -> frozenset[str]:
        """The top-level data keys the search keys are read from."""
        return frozenset(parts[0] for _, parts in self.index_paths)

    def state(self, name: str) -> State:
        for s in self.states:
            if s.name == name:
                return s
        raise KeyError(name)

    @property
    def state_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.states)

    @property
    def final_states(self) -> frozenset[str]:
        return frozenset(s.name for s in self.states if s.final)

    @property
    def events(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t.event for t in self.transitions))

    def transition(self, event: str, source: str) -> Transition | None:
        return self._by_event_source.get((event, source))

    @cached_property
    def _by_event_source(self) -> dict[tuple[str, str], Transition]:
        found: dict[tuple[str, str], Transition] = {}
        for t in self.transitions:
            found.setdefault((t.event, t.source), t)  # validation refuses duplicates
        return found


def load_workflow(spec: Mapping[str, Any] | Path | str, hooks: Hooks) -> WorkflowDefinition:
    """Build a definition from a TOML file or a mapping and validate it.

    Raises:
        DefinitionError: listing every problem found, each with its location.
    """
    from .validation import validate

    if isinstance(spec, (str, Path)):
        path = Path(spec)
        try:
            with path.open("rb") as fh:
                data: Mapping[str, Any] = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise DefinitionError(str(path), [Problem("", f"not valid TOML: {exc}")]) from exc
        source = str(path)
    else:
        data, source = spec, "<mapping>"
    definition, problems = _build(data, hooks, source)
    problems.extend(validate(definition) if definition is not None else [])
    if problems or definition is None:
        raise DefinitionError(source, problems)
    return definition


def _build(
    data: Mapping[str, Any], hooks: Hooks, source: str
) -> tuple[WorkflowDefinition | None, list[Any]]:
    """Turn raw data into a definition, collecting shape problems instead of stopping."""

    problems: list[Problem] = []

    def want(obj: Mapping[str, Any], key: str, typ: type, where: str, default: Any = ...) -> Any:
        if key not in obj:
            if default is ...:
                problems.append(Problem(f"{where}.{key}", f"is required ({typ.__name__})"))
            return None if default is ... else default
        value = obj[key]
        if (typ is int and isinstance(value, bool)) or not isinstance(value, typ):
            problems.append(
                Problem(f"{where}.{key}", f"must be {typ.__name__}, got {type(value).__name__}")
            )
            return None if default is ... else default
        return value

    wf = data.get("workflow")
    if not isinstance(wf, Mapping):
        return None, [Problem("workflow", "the [workflow] table is required")]
    name = want(wf, "name", str, "workflow")
    version = want(wf, "version", int, "workflow")
    title = want(wf, "title", str, "workflow", "")
    prefix = want(wf, "case_number_prefix", str, "workflow")
    initial = want(wf, "initial", str, "workflow")
    open_schema = want(wf, "open_schema", str, "workflow", None)
    intake = want(wf, "intake", str, "workflow", None)
    index = dict(want(wf, "index", dict, "workflow", {}))
    for key, path in index.items():
        if key not in SEARCH_KEYS:
            problems.append(
                Problem(
                    f"workflow.index.{key}", f"unknown search key; use {', '.join(SEARCH_KEYS)}"
                )
            )
        elif not isinstance(path, str):
            problems.append(Problem(f"workflow.index.{key}", "must be a dotted path string"))

    states: list[State] = []
    raw_states = data.get("states")
    if not isinstance(raw_states, Mapping) or not raw_states:
        problems.append(Problem("states", "at least one [states.NAME] table is required"))
        raw_states = {}
    for sname, sdata in raw_states.items():
        where = f"states.{sname}"
        if not isinstance(sdata, Mapping):
            problems.append(Problem(where, "must be a table"))
            continue
        states.append(
            State(
                name=sname,
                title=want(sdata, "title", str, where, ""),
                final=bool(want(sdata, "final", bool, where, False)),
                description=want(sdata, "description", str, where, ""),
            )
        )
    finals = {s.name for s in states if s.final}

    transitions: list[Transition] = []
    raw_transitions = data.get("transitions", [])
    if not isinstance(raw_transitions, list):
        problems.append(Problem("transitions", "must be an array of [[transitions]] tables"))
        raw_transitions = []
    for i, tdata in enumerate(raw_transitions):
        where = f"transitions[{i}]"
        if not isinstance(tdata, Mapping):
            problems.append(Problem(where, "must be a table"))
            continue
        event = want(tdata, "event", str, where)
        target = want(tdata, "target", str, where)
        raw_source = tdata.get("source")
        if isinstance(raw_source, str):
            sources = [raw_source]
        elif isinstance(raw_source, list) and all(isinstance(s, str) for s in raw_source):
            sources = list(raw_source)
        else:
            problems.append(Problem(f"{where}.source", "is required: a state name or a list"))
            sources = []
        if ANY_STATE in sources:
            sources = [s.name for s in states if s.name not in finals and s.name != target]
        guards = tuple(want(tdata, "guards", list, where, []))
        actions = tuple(want(tdata, "actions", list, where, []))
        for kind, names, known in (
            ("guards", guards, hooks.guards),
            ("actions", actions, hooks.actions),
        ):
            for j, hname in enumerate(names):
                if hname not in known:
                    problems.append(
                        Problem(
                            f"{where}.{kind}[{j}]",
                            f"no {kind[:-1]} named {hname!r}; known: {', '.join(known) or '(none)'}",
                        )
                    )
        schema = want(tdata, "schema", str, where, None)
        if schema is not None and schema not in hooks.schemas:
            problems.append(Problem(f"{where}.schema", f"no schema named {schema!r}"))
        notices = _build_notices(tdata.get("notify", []), f"{where}.notify", hooks, problems)
        for src in sources:
            transitions.append(
                Transition(
                    event=event or "",
                    source=src,
                    target=src if target == SAME_STATE else target or "",
                    title=want(tdata, "title", str, where, ""),
                    guards=guards,
                    actions=actions,
                    schema=schema,
                    store_as=want(tdata, "store_as", str, where, None),
                    article=want(tdata, "article", str, where, ""),
                    notices=notices,
                )
            )

    if open_schema is not None and open_schema not in hooks.schemas:
        problems.append(Problem("workflow.open_schema", f"no schema named {open_schema!r}"))
    if intake is not None and intake not in hooks.intake:
        problems.append(Problem("workflow.intake", f"no intake hook named {intake!r}"))
    if None in (name, version, prefix, initial):
        return None, problems
    return (
        WorkflowDefinition(
            name=name,
            version=version,
            title=title,
            case_number_prefix=prefix,
            initial=initial,
            states=tuple(states),
            transitions=tuple(transitions),
            open_schema=open_schema,
            intake=intake,
            hooks=hooks,
            index=index,
            deadlines=_build_deadlines(data.get("deadlines", []), hooks, problems),
            permissions=_build_permissions(data.get("permissions", []), hooks, problems),
            case_number_parts=_number_parts(wf.get("case_number_parts", []), problems),
            source=source,
        ),
        problems,
    )


#: The roles baoflow knows (a role in a permission table must be one of them).
ROLES = (
    "service_agent",
    "handler",
    "supervisor",
    "branch_manager",
    "headquarters",
    "auditor",
    "administrator",
)


def _build_permissions(raw: Any, hooks: Hooks, problems: list[Problem]) -> tuple[Permission, ...]:
    """``[[permissions]]``: shapes, roles and conditions here; events in validation.py."""
    if not isinstance(raw, list):
        problems.append(Problem("permissions", "must be an array of [[permissions]] tables"))
        return ()
    rows = []
    for i, p in enumerate(raw):
        where = f"permissions[{i}]"
        if not isinstance(p, Mapping):
            problems.append(Problem(where, "must be a table"))
            continue
        unknown = sorted(set(p) - {"events", "roles", "own_org_unit", "when", "title"})
        if unknown:
            problems.append(
                Problem(
                    where,
                    f"unknown key(s) {', '.join(unknown)}; use events, roles, "
                    "own_org_unit, when, title",
                )
            )
        events, roles = p.get("events"), p.get("roles")
        if (
            not isinstance(events, list)
            or not events
            or not all(isinstance(e, str) for e in events)
        ):
            problems.append(Problem(f"{where}.events", "must be a non-empty list of event names"))
            events = []
        if not isinstance(roles, list) or not roles or not all(isinstance(r, str) for r in roles):
            problems.append(Problem(f"{where}.roles", "must be a non-empty list of roles"))
            roles = []
        for j, role in enumerate(roles):
            if role not in ROLES:
                problems.append(
                    Problem(f"{where}.roles[{j}]", f"unknown role {role!r}; use {', '.join(ROLES)}")
                )
        when = p.get("when")
        if when is not None and when not in hooks.conditions:
            known = ", ".join(sorted(hooks.conditions)) or "(none)"
            problems.append(
                Problem(f"{where}.when", f"no condition named {when!r}; known: {known}")
            )
        rows.append(
            Permission(
                events=tuple(events),
                roles=tuple(roles),
                own_org_unit=bool(p.get("own_org_unit", True)),
                when=when if isinstance(when, str) else None,
                title=str(p.get("title", "")),
            )
        )
    return tuple(rows)


def _number_parts(raw: Any, problems: list[Problem]) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(p, str) and p for p in raw):
        problems.append(
            Problem(
                "workflow.case_number_parts",
                "must be a list such as ['org_unit'] or paths into the opening data",
            )
        )
        return ()
    return tuple(raw)


def _build_notices(
    raw: Any, where: str, hooks: Hooks, problems: list[Problem]
) -> tuple[TransitionNotice, ...]:
    """``notify = [{ template, to, when }]`` of a transition, checked against the hooks."""
    if not isinstance(raw, list):
        problems.append(Problem(where, "must be a list of { template = ..., to = ... } tables"))
        return ()
    notices = []
    for i, n in enumerate(raw):
        at = f"{where}[{i}]"
        if not isinstance(n, Mapping):
            problems.append(Problem(at, "must be a table: { template = ..., to = ... }"))
            continue
        unknown = sorted(set(n) - {"template", "to", "when"})
        if unknown:
            problems.append(
                Problem(at, f"unknown key(s) {', '.join(unknown)}; use template, to, when")
            )
        template, to, when = n.get("template"), n.get("to"), n.get("when")
        if template not in hooks.notices:
            known = ", ".join(sorted(hooks.notices)) or "(none)"
            problems.append(
                Problem(f"{at}.template", f"no notice named {template!r}; known: {known}")
            )
        if not isinstance(to, str) or not to:
            problems.append(
                Problem(
                    f"{at}.to", "who is told: a role (e.g. 'supervisor') or a party ('reporter')"
                )
            )
        if when is not None and when not in hooks.conditions:
            known = ", ".join(sorted(hooks.conditions)) or "(none)"
            problems.append(Problem(f"{at}.when", f"no condition named {when!r}; known: {known}"))
        if isinstance(template, str) and isinstance(to, str):
            notices.append(TransitionNotice(template, to, when if isinstance(when, str) else None))
    return tuple(notices)


def _build_deadlines(raw: Any, hooks: Hooks, problems: list[Problem]) -> tuple[DeadlineRule, ...]:
    """Shape checks of ``[[deadlines]]``; references to states and events are checked
    by validation.py once the whole definition exists."""
    if not isinstance(raw, list):
        problems.append(Problem("deadlines", "must be an array of [[deadlines]] tables"))
        return ()
    rules = []
    for i, r in enumerate(raw):
        where = f"deadlines[{i}]"
        if not isinstance(r, Mapping):
            problems.append(Problem(where, "must be a table"))
            continue
        name = r.get("name")
        if not isinstance(name, str) or not name:
            problems.append(Problem(f"{where}.name", "is required"))
            name = f"deadline_{i}"
        period = _period(r.get("period"), f"{where}.period", problems, allow_zero=False)
        warnings = r.get("warnings", [])
        if not isinstance(warnings, list) or not all(
            isinstance(w, (int, float)) and 0 < w < 1 for w in warnings
        ):
            problems.append(
                Problem(f"{where}.warnings", "must be fractions between 0 and 1, e.g. [0.5, 0.8]")
            )
            warnings = []
        pauses = r.get("pauses", {})
        if not isinstance(pauses, Mapping) or not all(isinstance(v, list) for v in pauses.values()):
            problems.append(
                Problem(f"{where}.pauses", "must map a pause reason to a list of states")
            )
            pauses = {}
        escalations = []
        for j, e in enumerate(r.get("escalations", [])):
            at = f"{where}.escalations[{j}]"
            if not isinstance(e, Mapping):
                problems.append(Problem(at, "must be a table"))
                continue
            to = e.get("to")
            if not isinstance(to, str) or not to:
                problems.append(
                    Problem(
                        f"{at}.to", "every escalation level needs a target role, e.g. 'supervisor'"
                    )
                )
            actions = tuple(e.get("actions", ["notify"]))
            for k, action in enumerate(actions):
                if action not in ESCALATION_ACTIONS:
                    problems.append(
                        Problem(
                            f"{at}.actions[{k}]",
                            f"unknown action {action!r}; use {', '.join(ESCALATION_ACTIONS)}",
                        )
                    )
            if "fire_event" in actions and not isinstance(e.get("event"), str):
                problems.append(Problem(f"{at}.event", "fire_event needs the event to fire"))
            escalations.append(
                Escalation(
                    level=j + 1,
                    after=_period(e.get("after", "0 hours"), f"{at}.after", problems, True),
                    to=to if isinstance(to, str) else "",
                    actions=actions,
                    event=e.get("event"),
                )
            )
        when = r.get("when")
        if when is not None and when not in hooks.conditions:
            problems.append(
                Problem(
                    f"{where}.when",
                    f"no condition named {when!r}; known: {', '.join(hooks.conditions) or '(none)'}",
                )
            )
        notify = r.get("notify", ["handler"])
        if not isinstance(notify, list) or not all(isinstance(n, str) and n for n in notify):
            problems.append(
                Problem(
                    f"{where}.notify",
                    "must be a list of roles told of the warnings and the breach, "
                    "e.g. ['handler'] ([] for nobody)",
                )
            )
            notify = ["handler"]
        cob = r.get("close_of_business")
        close = None
        if cob is not None:
            try:
                close = time.fromisoformat(cob)
            except (TypeError, ValueError):
                problems.append(
                    Problem(f"{where}.close_of_business", "must be HH:MM, e.g. '17:30'")
                )
        rules.append(
            DeadlineRule(
                name=name,
                title=str(r.get("title", "")),
                period=period,
                starts_on=tuple(r.get("starts_on", ())),
                stops_on=tuple(r.get("stops_on", ())),
                stops_on_events=tuple(r.get("stops_on_events", ())),
                starts_on_events=tuple(r.get("starts_on_events", ())),
                restarts_on_events=tuple(r.get("restarts_on_events", ())),
                extensions=_extensions(r.get("extensions", []), where, problems),
                pauses={k: tuple(v) for k, v in pauses.items()},
                warnings=tuple(float(w) for w in warnings),
                escalations=tuple(escalations),
                when=when,
                close_of_business=close,
                article=str(r.get("article", "")),
                notify=tuple(notify),
            )
        )
    return tuple(rules)


def _extensions(raw: Any, where: str, problems: list[Problem]) -> tuple[Extension, ...]:
    if not isinstance(raw, list):
        problems.append(Problem(f"{where}.extensions", "must be an array of tables"))
        return ()
    found = []
    for j, e in enumerate(raw):
        at = f"{where}.extensions[{j}]"
        if not isinstance(e, Mapping) or not isinstance(e.get("event"), str):
            problems.append(Problem(at, "needs event = '...' and period = '...'"))
            continue
        found.append(
            Extension(e["event"], _period(e.get("period"), f"{at}.period", problems, False))
        )
    return tuple(found)


def _period(raw: Any, where: str, problems: list[Problem], allow_zero: bool) -> Period:
    try:
        period = Period.parse(raw)
    except ValueError as exc:
        problems.append(Problem(where, str(exc)))
        return Period(1, Unit.hours)
    if period.amount == 0 and not allow_zero:
        problems.append(Problem(where, "a period must be longer than zero"))
    return period
