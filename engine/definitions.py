"""Workflow definitions: the frozen data types and the words a definition may use.

``loading.py`` builds them from TOML or a mapping and ``validation.py`` checks them;
this module imports neither, so the data types sit below both.

A definition is data — states, transitions, which guard and action each transition
runs, the schema its payload must satisfy, the article it comes from. The code those
names refer to comes from an explicit :class:`Hooks` bundle passed at load, so an
unknown name is a load error with its location, never a runtime surprise.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel

from . import limits
from .deadlines import Period

if TYPE_CHECKING:
    from .types import Actor, Case

#: ``source = "*"`` in a transition means every state that is not final.
ANY_STATE = "*"
#: ``target = "."`` means the case stays where it is (an event recorded in any state).
SAME_STATE = "."

#: The built-in search keys: case-data fields a workflow may expose for ``find_cases``
#: (``[workflow.index]``), each a column of ``cases`` of the same name, because the engine
#: itself reads them. ``insurer_reference`` holds ``"<insurer>:<reference>"``
#: (:func:`insurer_reference`): how an insurer's message finds the case it means by the
#: insurer's own reference. ``handler`` is the id of the person assigned to handle the
#: case (经办人): the desk's deadline list filters by it.
SEARCH_KEYS = ("policy_number", "insured_name", "id_number", "insurer_reference", "handler")

#: A workflow may declare keys of its own beside the built-in ones (``phone =
#: "complainant.phone"``): each a row of ``case_keys`` (name, value), indexed, so a new
#: key needs no migration. Names follow this pattern; values hold at most this many
#: characters.
OWN_KEY_NAME = re.compile(rf"[a-z][a-z0-9_]{{0,{limits.OWN_KEY_NAME.chars - 1}}}")
OWN_KEY_MAX = limits.OWN_KEY_VALUE.chars


def insurer_reference(insurer: str, reference: str) -> str:
    """The ``insurer_reference`` search key of a case the insurer ``insurer`` (its name
    in the desk's insurers config) knows by ``reference``: a workflow writes it into the
    case data at hand-over; ``Engine.receive_insurer_message`` looks it up."""
    return f"{insurer}:{reference}"


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

    @cached_property
    def pause_reasons(self) -> dict[str, str]:
        """Each state that pauses the clock, and the reason it gives (``pauses`` turned
        round once: it is read on every transition)."""
        return {s: reason for reason, states in self.pauses.items() for s in states}


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
    #: search keys read from the case data: key -> dotted path (the built-in keys are
    #: columns of ``cases``, the workflow's own ones rows of ``case_keys``)
    index: Mapping[str, str] = field(default_factory=dict)
    deadlines: tuple[DeadlineRule, ...] = ()
    #: who may fire what (empty: no table, every actor may fire every event)
    permissions: tuple[Permission, ...] = ()
    #: parts between the prefix and the date in a case number: ``org_unit`` (the
    #: opener's branch) or a dotted path into the opening data, e.g. TS-SH-20260506-…
    case_number_parts: tuple[str, ...] = ()
    #: ``[workflow.inbound]``: a kind of insurer message (receipt, decision, ...) -> the
    #: event it fires (``Engine.receive_insurer_message``)
    inbound: Mapping[str, str] = field(default_factory=dict)
    source: str = "<mapping>"

    @cached_property
    def memo(self) -> dict[Any, Any]:
        """Answers derived from this immutable definition, kept by the module that
        computes them (``engine.timers.rules_moved``): asked on every transition."""
        return {}

    @cached_property
    def index_paths(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """``index`` with each dotted path split once (it is read on every transition)."""
        return tuple((key, tuple(path.split("."))) for key, path in self.index.items())

    @cached_property
    def own_keys(self) -> frozenset[str]:
        """The search keys this workflow declares that are not built in (``case_keys``)."""
        return frozenset(self.index) - frozenset(SEARCH_KEYS)

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
