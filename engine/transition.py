"""The transition step: open a case, or fire one event on it, inside the caller's
transaction (DESIGN.md §3.1) — the permission check, the guards, the new state and
data, the deadlines it starts, stops or pauses, the history row and the notices.

Nothing here opens a transaction or reads the clock: the facade does, once per
operation, and passes ``tx`` and ``now`` down.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from . import authority, limits, timers
from .calendar import WorkingCalendar
from .calendar_sync import CalendarSync
from .clock import SHANGHAI
from .definitions import Intake, Transition, TransitionContext, WorkflowDefinition
from .errors import ConflictError, GuardRefused, InvalidData, NotPermitted, Problem
from .notices import Notice, outbox_rows
from .payloads import validated
from .policies import PolicyDirectory
from .registry import Registry
from .store import Tx
from .types import Actor, AvailableEvent, Case, HistoryEntry, OpenResult

OPEN_EVENT = "open"


class CaseFinder:
    """Case lookups inside the running transaction (for intake hooks and guards)."""

    def __init__(self, tx: Tx) -> None:
        self._tx = tx

    def find(self, **filters: Any) -> list[Case]:
        """Every matching case (no page limit unless ``limit=`` is given)."""
        filters.setdefault("limit", None)
        return self._tx.find_cases(**filters)

    def history(self, case_id: int) -> list[HistoryEntry]:
        return self._tx.history(case_id)

    def hold(self, key: str) -> None:
        """Serialise on ``key`` until the transaction ends (``Tx.hold``): an intake hook
        holds the subject of its duplicate check before looking, so two reports of one
        incident arriving at once, in two processes, open one case — the second waits,
        then finds the first."""
        self._tx.hold(key)

    def due_at(self, case_id: int, rule: str) -> datetime | None:
        """When the case's running (or paused) instance of deadline ``rule`` is due, as
        this transaction has it (after the transition's own changes), or None."""
        for row in self._tx.active_deadlines(case_id):
            if row.rule == rule:
                return row.due_at
        return None


class Services:
    """What guards, actions and intake hooks may use besides the case itself.

    A plain slotted class, not a frozen dataclass: one is built on every transition.
    """

    __slots__ = ("calendar", "cases", "policies")

    def __init__(
        self, policies: PolicyDirectory, cases: CaseFinder, calendar: WorkingCalendar
    ) -> None:
        self.policies = policies
        self.cases = cases
        self.calendar = calendar


class Stepper:
    """Opens cases and fires events in a given transaction."""

    def __init__(
        self,
        registry: Registry,
        policies: PolicyDirectory,
        calendar: WorkingCalendar,
        calendar_sync: CalendarSync,
    ) -> None:
        self.registry = registry
        self.policies = policies
        self.calendar = calendar
        self.calendar_sync = calendar_sync

    def open(
        self,
        tx: Tx,
        definition: WorkflowDefinition,
        payload: dict[str, Any],
        actor: Actor,
        now: datetime,
    ) -> OpenResult:
        services = Services(self.policies, CaseFinder(tx), self.calendar)
        ctx = TransitionContext(
            case=None,
            event=OPEN_EVENT,
            data=payload,
            actor=actor,
            now=now,
            services=services,
            new_data=dict(payload),
        )
        decision = Intake()
        if definition.intake is not None:
            decision = definition.hooks.intake[definition.intake](ctx)
        notes = (*ctx.notes, *decision.notes)
        if decision.duplicate_of is not None:
            existing = tx.load_case(decision.duplicate_of)
            return OpenResult(existing, created=False, notes=notes)
        if definition.deadlines:  # before the counter's row lock: count on current days
            self.calendar_sync.sync(tx, lock=True)  # on the generation the caller held
        day = now.astimezone(SHANGHAI).strftime("%Y%m%d")
        prefix = "-".join(
            [definition.case_number_prefix]
            + [number_part(p, actor, ctx.new_data) for p in definition.case_number_parts]
        )
        case_id, number = tx.insert_case(
            prefix=prefix,
            day=day,
            workflow=definition.name,
            workflow_version=definition.version,
            state=definition.initial,
            data=ctx.new_data,
            now=now,
            keys=search_keys(definition, ctx.new_data),
            org_unit=actor.org_unit,
        )
        if timers.touches(definition, None, definition.initial, OPEN_EVENT):
            notes = (
                *notes,
                *timers.on_transition(
                    tx,
                    definition,
                    case_id=case_id,
                    source=None,
                    target=definition.initial,
                    event=OPEN_EVENT,
                    data=ctx.new_data,
                    seq=1,
                    now=now,
                    calendar=self.calendar,
                ),
            )
        tx.append_history(
            case_id=case_id,
            number=number,
            seq=1,
            at=now,
            actor=actor,
            event=OPEN_EVENT,
            from_state=None,
            to_state=definition.initial,
            data=payload,
            notes=notes,
        )
        case = Case(
            id=case_id,
            number=number,
            workflow=definition.name,
            workflow_version=definition.version,
            state=definition.initial,
            data=ctx.new_data,
            version=1,
            created_at=now,
            updated_at=now,
            org_unit=actor.org_unit,
        )
        if decision.then is not None:
            case, then_notes = self.apply(tx, case, decision.then, Actor.system("intake"), {}, now)
            notes = (*notes, *then_notes)
        return OpenResult(case, created=True, notes=notes)

    def apply(
        self,
        tx: Tx,
        case: Case,
        event: str,
        actor: Actor,
        data: Mapping[str, Any],
        now: datetime,
    ) -> tuple[Case, list[str]]:
        """Fire ``event`` inside ``tx``; return the new snapshot and the history notes."""
        definition = self.registry.get(case.workflow, case.workflow_version)
        machine = self.registry.machine(definition)
        target = machine.target(case.state, event, case.number)
        transition = definition.transition(event, case.state)
        assert transition is not None  # the machine accepted it, so it is defined
        payload = validated(
            definition, transition.schema, data, now, lambda: f"{event!r} on case {case.number}"
        )
        new_data = dict(case.data)
        # Search keys can change only where an action runs or the payload is stored under
        # a key an index path starts from; read them before actions touch nested data,
        # and rewrite their columns only when they changed.
        writes = bool(transition.actions) or transition.store_as in definition.index_roots
        keys_before = search_keys(definition, new_data) if writes else None
        refused = authority.refusal(definition, actor, case, event, payload)
        if refused is not None:
            raise NotPermitted(case.number, event, who(actor), *refused)
        ctx = self.context(tx, case, event, payload, actor, now, new_data)
        reasons = run_guards(definition, transition, ctx)
        if event in self.registry.deadline_events:
            reasons += timers.extension_refusal(tx, definition, case.id, event, now)
        if reasons:
            raise GuardRefused(case.number, event, reasons)
        if transition.store_as is not None:
            previous = new_data.get(transition.store_as)
            new_data[transition.store_as] = (
                {**previous, **payload} if isinstance(previous, dict) else payload
            )
        for name in transition.actions:
            definition.hooks.actions[name](ctx)
        keys_after = search_keys(definition, new_data) if writes else None
        ok = tx.update_case(
            case_id=case.id,
            expected_version=case.version,
            state=None if target == case.state else target,
            data=new_data,
            now=now,
            keys=None if keys_after == keys_before else keys_after,
        )
        if not ok:
            raise ConflictError(case.number, case.version, tx.current_version(case.id))
        if event in self.registry.deadline_events and timers.touches(
            definition, case.state, target, event
        ):
            ctx.notes.extend(
                timers.on_transition(
                    tx,
                    definition,
                    case_id=case.id,
                    source=case.state,
                    target=target,
                    event=event,
                    data=new_data,
                    seq=case.version + 1,
                    now=now,
                    calendar=self.calendar,
                )
            )
        tx.append_history(
            case_id=case.id,
            number=case.number,
            seq=case.version + 1,
            at=now,
            actor=actor,
            event=event,
            from_state=case.state,
            to_state=target,
            data=payload,
            notes=ctx.notes,
        )
        if transition.notices:
            self.notify(tx, definition, transition, ctx, case.id, case.version + 1, now)
        new_case = Case(
            id=case.id,
            number=case.number,
            workflow=case.workflow,
            workflow_version=case.workflow_version,
            state=target,
            data=new_data,
            version=case.version + 1,
            created_at=case.created_at,
            updated_at=now,
            org_unit=case.org_unit,
        )
        return new_case, ctx.notes

    def notify(
        self,
        tx: Tx,
        definition: WorkflowDefinition,
        transition: Transition,
        ctx: TransitionContext,
        case_id: int,
        seq: int,
        now: datetime,
    ) -> None:
        """The transition's notices, to the outbox in its own transaction."""
        notices = []
        for n in transition.notices:
            if n.when is not None and not definition.hooks.conditions[n.when](ctx.new_data):
                continue
            spec = definition.hooks.notices[n.template]
            context = dict(spec.build(ctx))
            if context.keys() != spec.fields:
                raise ValueError(
                    f"the notice {n.template!r} of {definition.name} built fields "
                    f"{sorted(context)}, not the declared {sorted(spec.fields)}: fix its "
                    "NoticeSpec.build"
                )
            notices.append(Notice(n.template, n.to, context))
        if notices:
            rows = outbox_rows(
                tuple(notices),
                cause=f"case:{case_id}:{seq}",
                case_id=case_id,
                seq=seq,
                org_unit=None,
            )
            tx.insert_outbox(rows, now)

    def context(
        self,
        tx: Tx,
        case: Case,
        event: str,
        payload: dict[str, Any],
        actor: Actor,
        now: datetime,
        new_data: dict[str, Any],
    ) -> TransitionContext:
        return TransitionContext(
            case=case,
            event=event,
            data=payload,
            actor=actor,
            now=now,
            services=Services(self.policies, CaseFinder(tx), self.calendar),
            new_data=new_data,
        )

    def available_events(
        self, tx: Tx, current: Case, actor: Actor | None, now: datetime
    ) -> list[AvailableEvent]:
        """The events the case's state allows, each with the reasons it would be refused
        now (guards evaluated without event data); with ``actor``, also why the
        permission table would not let that actor fire it."""
        definition = self.registry.get(current.workflow, current.workflow_version)
        machine = self.registry.machine(definition)
        result = []
        for event in machine.allowed(current.state):
            transition = definition.transition(event, current.state)
            assert transition is not None
            acting = actor or Actor.system("preview")
            ctx = self.context(tx, current, event, {}, acting, now, dict(current.data))
            reasons = run_guards(definition, transition, ctx)
            refused = authority.refusal(definition, acting, current, event, {})
            if refused is not None:
                reasons.insert(0, f"not permitted: {refused[0]}")
            result.append(
                AvailableEvent(
                    event=event,
                    title=transition.title,
                    target=transition.target,
                    refusals=tuple(reasons),
                )
            )
        return result


def number_part(part: str, actor: Actor, data: Mapping[str, Any]) -> str:
    """One part of a case number: the opener's org unit, or a value of the opening data
    (letters and digits only, upper case, at most 8)."""
    if part == "org_unit":
        raw: Any = actor.org_unit or "HQ"
    else:
        raw = data
        for key in part.split("."):
            raw = raw.get(key) if isinstance(raw, Mapping) else None
    text = "".join(ch for ch in str(raw or "X") if ch.isalnum()).upper()
    return text[:8] or "X"


def who(actor: Actor) -> str:
    roles = "/".join(actor.roles) or "no role"
    unit = f", {actor.org_unit}" if actor.org_unit else ""
    return f"{actor.name} ({actor.id}: {roles}{unit})"


def run_guards(
    definition: WorkflowDefinition, transition: Transition, ctx: TransitionContext
) -> list[str]:
    """Every guard runs, so a refusal lists all its reasons at once."""
    reasons: list[str] = []
    for name in transition.guards:
        reasons.extend(definition.hooks.guards[name](ctx))
    return reasons


def search_keys(definition: WorkflowDefinition, data: Mapping[str, Any]) -> dict[str, str | None]:
    """Each search key the workflow declares, read from the case data (None: absent).

    Raises:
        InvalidData: a value is longer than its column holds, or holds a control
            character (``engine/limits.py``): nothing is stored, the transaction rolls
            back, on SQLite as on PostgreSQL.
    """
    keys: dict[str, str | None] = {}
    problems: list[Problem] = []
    for key, parts in definition.index_paths:
        value: Any = data
        for part in parts:
            value = value.get(part) if isinstance(value, dict) else None
        text = None if value is None else str(value)
        if text is not None:
            limit = limits.SEARCH_KEYS.get(key, limits.OWN_KEY_VALUE)
            problem = limit.problem(text, ".".join(parts), field=f"the search key {key!r}")
            if problem is not None:
                problems.append(problem)
        keys[key] = text
    if problems:
        raise InvalidData(f"the {definition.name}'s search keys", problems)
    return keys
