"""The Engine: open cases, fire events, read state and history.

Every operation reads the clock once and runs in one transaction (DESIGN.md §3.1):
the version check, the guards, the new state, the history row and the idempotency
record commit together or not at all.
"""

from __future__ import annotations

import hashlib
import logging
import os
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from . import arrangements, authority, calendar_sync, timers
from .calendar import PACKAGE, ChineseOfficialCalendar, WorkingCalendar
from .calendar_sync import CalendarSync
from .clock import SHANGHAI, Clock, SystemClock
from .definitions import Intake, Transition, TransitionContext, WorkflowDefinition
from .errors import (
    BaoflowError,
    CalendarDisagrees,
    CalendarYearUnknown,
    ConflictError,
    GuardRefused,
    IdempotencyKeyReused,
    InvalidData,
    NotPermitted,
    Problem,
    StorageError,
    UnknownWorkflow,
)
from .machine import StateMachine
from .notices import TEMPLATE_FIELDS, Notice, outbox_rows
from .policies import PolicyDirectory
from .store import CoreTx, IntegrityViolation, Store, Tx
from .types import (
    Actor,
    AvailableEvent,
    Breach,
    CalendarImport,
    CalendarYear,
    CalendarYearStatus,
    Case,
    DeadlineStatus,
    HistoryEntry,
    OpenResult,
    Refusal,
    RuleSla,
    SlaReport,
    TimerRun,
)

log = logging.getLogger("baoflow.engine")

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

    def due_at(self, case_id: int, rule: str) -> datetime | None:
        """When the case's running (or paused) instance of deadline ``rule`` is due, as
        this transaction has it (after the transition's own changes), or None."""
        if not isinstance(self._tx, CoreTx):  # deadline-touching events run on Core
            return None
        for row in self._tx.active_deadlines(case_id):
            if row.rule == rule:
                return row.due_at  # type: ignore[no-any-return]
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


class Engine:
    """The facade an app embeds. Build it with :func:`engine.open_engine`."""

    def __init__(
        self,
        store: Store,
        workflows: Iterable[WorkflowDefinition],
        *,
        clock: Clock | None = None,
        policies: PolicyDirectory,
        calendar: WorkingCalendar | None = None,
    ) -> None:
        self.store = store
        self.clock: Clock = clock or SystemClock()
        self.policies = policies
        self.calendar: WorkingCalendar = calendar or ChineseOfficialCalendar()
        self._calendar_sync = CalendarSync(self.calendar)
        self._definitions: dict[tuple[str, int], WorkflowDefinition] = {}
        self._latest: dict[str, int] = {}
        self._machines: dict[tuple[str, int], StateMachine] = {}
        # Events that may start, stop, pause or resume a deadline in some workflow: they
        # run on SQLAlchemy Core, where the timer queries live; all others on the hot path.
        self._deadline_events: set[str] = set()
        for definition in workflows:
            self.register(definition)

    # --- workflows ----------------------------------------------------------------
    def register(self, definition: WorkflowDefinition) -> None:
        """Add a workflow version; new cases use the highest version of each name."""
        key = (definition.name, definition.version)
        self._definitions[key] = definition
        self._machines[key] = StateMachine(definition)
        for t in definition.transitions:
            if timers.touches(definition, t.source, t.target, t.event):
                self._deadline_events.add(t.event)
        self._latest[definition.name] = max(
            self._latest.get(definition.name, 0), definition.version
        )

    def workflows(self) -> list[WorkflowDefinition]:
        """The newest version of every registered workflow."""
        return [self._definitions[(n, v)] for n, v in sorted(self._latest.items())]

    def workflow(self, name: str, version: int | None = None) -> WorkflowDefinition:
        v = self._latest.get(name) if version is None else version
        definition = self._definitions.get((name, v)) if v is not None else None
        if definition is None:
            raise UnknownWorkflow(name, sorted(self._latest), version)
        return definition

    # --- operations ---------------------------------------------------------------
    def open_case(
        self,
        workflow: str,
        data: Mapping[str, Any],
        actor: Actor,
        *,
        idempotency_key: str | None = None,
    ) -> OpenResult:
        """Open a case of ``workflow`` from ``data`` (validated by the workflow's schema).

        The workflow's intake hook may find the report duplicates an existing case
        (that case is returned, nothing is created) or fire a first event right away.
        A retried request with the same ``idempotency_key`` returns the first result.

        Raises:
            UnknownWorkflow, InvalidData, GuardRefused, IdempotencyKeyReused
        """
        definition = self.workflow(workflow)
        now = self.clock.now()
        payload = _validated(
            definition, definition.open_schema, data, now, lambda: f"opening a {workflow}"
        )
        request = _Request(idempotency_key, None, OPEN_EVENT, f"opening a {workflow}", data)
        try:
            with self.store.write() as tx:
                if definition.deadlines:  # the intake may arm one: count on current days
                    self._calendar_sync.sync(tx, lock=True)
                prior = self._prior(tx, request)
                if prior is not None:
                    return _open_result_from_json(prior)
                result = self._open(tx, definition, payload, actor, now)
                if request.key is not None:
                    self._remember(tx, request, result.case.id, _open_result_json(result), now)
        except IntegrityViolation as exc:
            return _open_result_from_json(self._prior_after_race(request, exc))
        log.info("opened %s (%s) in %s", result.case.number, workflow, result.case.state)
        return result

    # --- idempotency: one stored result per key, for one request only --------------
    def _prior(self, tx: Tx, request: _Request) -> Any:
        """The first result of this request, or None; another request's key is refused."""
        if request.key is None:
            return None
        found = tx.idempotent_result(request.key)
        if found is None:
            return None
        same_case = request.case_id is None or found.case_id == request.case_id
        if (
            not same_case
            or found.event != request.event
            or found.fingerprint != request.fingerprint
        ):
            raise IdempotencyKeyReused(
                request.key,
                f"{found.event!r} on case id {found.case_id}",
                f"{request.what} with this data",
            )
        return found.result

    def _prior_after_race(self, request: _Request, error: Exception) -> Any:
        """After a unique-key violation: a concurrent request with our key committed first."""
        if request.key is not None:
            with self.store.read() as tx:
                prior = self._prior(tx, request)
            if prior is not None:
                return prior
        raise error

    def _remember(
        self, tx: Tx, request: _Request, case_id: int, result: Any, now: datetime
    ) -> None:
        assert request.key is not None
        tx.remember_result(
            key=request.key,
            case_id=case_id,
            event=request.event,
            fingerprint=request.fingerprint,
            result=result,
            now=now,
        )

    def _open(
        self,
        tx: CoreTx,
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
        day = now.astimezone(SHANGHAI).strftime("%Y%m%d")
        prefix = "-".join(
            [definition.case_number_prefix]
            + [_number_part(p, actor, ctx.new_data) for p in definition.case_number_parts]
        )
        number = f"{prefix}-{day}-{tx.next_case_number(prefix, day):06d}"
        case_id = tx.insert_case(
            number=number,
            workflow=definition.name,
            workflow_version=definition.version,
            state=definition.initial,
            data=ctx.new_data,
            now=now,
            keys=_search_keys(definition, ctx.new_data),
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
            case, then_notes = self._apply(tx, case, decision.then, Actor.system("intake"), {}, now)
            notes = (*notes, *then_notes)
        return OpenResult(case, created=True, notes=notes)

    def fire(
        self,
        case: int | str,
        event: str,
        actor: Actor,
        data: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        expected_version: int | None = None,
    ) -> Case:
        """Fire ``event`` on a case and return the case as it is afterwards.

        Args:
            case: the case id or case number.
            data: the event's payload, validated by the transition's schema.
            idempotency_key: a retried request with the same key returns the first
                result and fires nothing again.
            expected_version: the version the caller read; if the case has moved on
                since, :class:`ConflictError` is raised and nothing is written.

        Raises:
            CaseNotFound, UnknownEvent, EventNotAllowed, InvalidData, GuardRefused,
            ConflictError, IdempotencyKeyReused
        """
        now = self.clock.now()
        data = data or {}
        deadline_event = event in self._deadline_events
        if not deadline_event and self._calendar_sync.due():
            with self.store.read() as tx:  # guards count days too (the filing limit)
                self._calendar_sync.sync(tx, lock=False)
        try:
            transaction = self.store.write() if deadline_event else self.store.fire_transaction()
            with transaction as tx:
                if deadline_event:  # before any row lock: an import waits, or is waited for
                    assert isinstance(tx, CoreTx)
                    self._calendar_sync.sync(tx, lock=True)
                current = tx.load_case(case)
                if idempotency_key is not None:
                    request = _Request(
                        idempotency_key, current.id, event, f"{event!r} on {current.number}", data
                    )
                    prior = self._prior(tx, request)
                    if prior is not None:
                        return _case_from_json(prior)
                if expected_version is not None and expected_version != current.version:
                    raise ConflictError(current.number, expected_version, current.version)
                result, _notes = self._apply(tx, current, event, actor, data, now)
                if idempotency_key is not None:  # serialise the result only when kept
                    self._remember(tx, request, result.id, _case_json(result), now)
                return result
        except IntegrityViolation as exc:
            if idempotency_key is None:
                raise
            return _case_from_json(self._prior_after_race(request, exc))
        except NotPermitted as exc:
            self._audit_refusal(case, event, actor, "not_permitted", [exc.why], now)
            raise
        except GuardRefused as exc:
            self._audit_refusal(case, event, actor, "guard_refused", exc.reasons, now)
            raise

    def _audit_refusal(
        self,
        case: int | str,
        event: str,
        actor: Actor,
        kind: str,
        reasons: Sequence[str],
        now: datetime,
    ) -> None:
        """Record a refused attempt in its own transaction (the attempt's rolled back)."""
        try:
            with self.store.write() as tx:
                tx.insert_refusal(case, now, actor, event, kind, reasons)
        except Exception:  # the refusal itself must reach the caller whatever happens here
            log.exception("could not record the refusal of %r on %s", event, case)

    def refusals(self, case: int | str) -> list[Refusal]:
        """Attempts on the case that were refused (not permitted, or by a guard), oldest
        first: who tried what, when, and why it was refused."""
        with self.store.read() as tx:
            return tx.refusals(tx.load_case(case).id)

    def _apply(
        self,
        tx: Tx,
        case: Case,
        event: str,
        actor: Actor,
        data: Mapping[str, Any],
        now: datetime,
    ) -> tuple[Case, list[str]]:
        """Fire ``event`` inside ``tx``; return the new snapshot and the history notes."""
        definition = self.workflow(case.workflow, case.workflow_version)
        machine = self._machines[(definition.name, definition.version)]
        target = machine.target(case.state, event, case.number)
        transition = definition.transition(event, case.state)
        assert transition is not None  # the machine accepted it, so it is defined
        payload = _validated(
            definition, transition.schema, data, now, lambda: f"{event!r} on case {case.number}"
        )
        new_data = dict(case.data)
        # Search keys can change only where an action runs or the payload is stored under
        # a key an index path starts from; read them before actions touch nested data,
        # and rewrite their columns only when they changed.
        writes = bool(transition.actions) or transition.store_as in definition.index_roots
        keys_before = _search_keys(definition, new_data) if writes else None
        refused = authority.refusal(definition, actor, case, event, payload)
        if refused is not None:
            raise NotPermitted(case.number, event, _who(actor), *refused)
        ctx = self._context(tx, case, event, payload, actor, now, new_data)
        reasons = _run_guards(definition, transition, ctx)
        if event in self._deadline_events:
            assert isinstance(tx, CoreTx), "deadline events run on Core (see fire)"
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
        keys_after = _search_keys(definition, new_data) if writes else None
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
        if event in self._deadline_events and timers.touches(definition, case.state, target, event):
            assert isinstance(tx, CoreTx), "deadline events run on Core (see fire)"
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
            self._notify(tx, definition, transition, ctx, case.id, case.version + 1, now)
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

    def _notify(
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

    def notice_fields(self) -> dict[str, frozenset[str]]:
        """Every notice the registered workflows and the deadlines can send, with the
        fields its template receives (what the template set is checked against)."""
        fields = dict(TEMPLATE_FIELDS)
        for definition in self._definitions.values():
            for name, spec in definition.hooks.notices.items():
                fields[name] = spec.fields
        return fields

    def _context(
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

    # --- reading ------------------------------------------------------------------
    def get_case(self, case: int | str) -> Case:
        """The case with this id or case number. Raises :class:`CaseNotFound`."""
        with self.store.read() as tx:
            return tx.load_case(case)

    def find_cases(
        self,
        *,
        number: str | None = None,
        policy_number: str | None = None,
        insured_name: str | None = None,
        id_number: str | None = None,
        workflow: str | None = None,
        state: str | Sequence[str] | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Case]:
        """Cases matching every filter given, oldest first."""
        if limit < 1 or offset < 0:
            raise InvalidData(
                "find_cases", [Problem("limit", "limit must be >= 1 and offset >= 0")]
            )
        if workflow is not None:
            self.workflow(workflow)  # an unknown name is an error, not an empty list
        with self.store.read() as tx:
            return tx.find_cases(
                number=number,
                policy_number=policy_number,
                insured_name=insured_name,
                id_number=id_number.upper() if id_number else None,
                workflow=workflow,
                state=state,
                limit=limit,
                offset=offset,
            )

    def history(self, case: int | str) -> list[HistoryEntry]:
        """The case's append-only history, oldest first."""
        with self.store.read() as tx:
            found = tx.load_case(case)
            return tx.history(found.id)

    def available_events(self, case: int | str, actor: Actor | None = None) -> list[AvailableEvent]:
        """The events the case's state allows, each with the reasons it would be refused
        now (guards evaluated without event data); with ``actor``, also why the
        permission table would not let that actor fire it."""
        now = self.clock.now()
        with self.store.read() as tx:
            current = tx.load_case(case)
            definition = self.workflow(current.workflow, current.workflow_version)
            machine = self._machines[(definition.name, definition.version)]
            result = []
            for event in machine.allowed(current.state):
                transition = definition.transition(event, current.state)
                assert transition is not None
                who = actor or Actor.system("preview")
                ctx = self._context(tx, current, event, {}, who, now, dict(current.data))
                reasons = _run_guards(definition, transition, ctx)
                refused = authority.refusal(definition, who, current, event, {})
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

    # --- deadlines and timers -------------------------------------------------------
    def run_due_timers(
        self,
        *,
        worker: str | None = None,
        batch: int = 100,
        lease: timedelta = timedelta(seconds=60),
        limit: int | None = None,
    ) -> TimerRun:
        """Fire every timer due at the clock's now, each exactly once.

        Timers are leased in batches (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so
        several workers can drain one table; each effect commits on its own with the
        check that the timer is still pending and leased to this worker. A timer whose
        instance has ended (the case moved on) is skipped and the reason recorded on the
        timer; a case that changed meanwhile is released and retried on the next run.
        Nothing here raises for one bad timer: it is logged and released.
        """
        with self.store.pinned():
            with self.store.write() as tx:  # on the pinned connection: a worker sees an
                self._calendar_sync.sync(tx, lock=False)  # import within a tick
            return self._run_due_timers(worker, batch, lease, limit)

    def _run_due_timers(
        self, worker: str | None, batch: int, lease: timedelta, limit: int | None
    ) -> TimerRun:
        me = worker or f"worker-{os.getpid()}-{id(self):x}"
        fired = skipped = retried = 0
        worst = 0.0
        while limit is None or fired + skipped < limit:
            # Each claim reads the clock: its lease runs from when it was taken, and each
            # effect is stamped with the time it happened.
            now = self.clock.now()
            take = batch if limit is None else min(batch, limit - fired - skipped)
            locked = (
                self._fire_locked_batch(now, me, take, lease)
                if self.store.dialect_name == "postgresql"
                else None
            )
            if locked is not None:
                claimed, done = locked
                if not claimed:
                    break
            else:
                # SQLite, or a PostgreSQL batch that met a concurrent change: lease first,
                # then fire the batch (and, if that conflicts too, one by one).
                with self.store.write() as tx:
                    claimed = tx.claim_due_timers(now, me, now + lease, take)
                if not claimed:
                    break
                try:
                    with self.store.write() as tx:
                        rows = tx.timer_batch([timer.id for timer in claimed])
                        done = self._fire_batch(tx, rows, me, now)
                except ConflictError:
                    done = None  # a case changed under the batch: take them one by one
                except Exception:
                    log.exception("batch of %d timers failed; taking them one by one", len(claimed))
                    done = None
            batch_retried = 0
            individually = list(claimed)
            if done is not None:
                batch_fired, batch_skipped, individually = done
                fired += len(batch_fired)
                skipped += batch_skipped
                for timer in batch_fired:
                    worst = max(worst, (now - timer.due_at).total_seconds())
            for timer in individually:
                try:
                    with self.store.write() as tx:
                        outcome = self._fire_timer(tx, timer, me, now)
                except Exception:  # one bad timer must never stop the worker
                    log.exception(
                        "timer %s (%s on case %s) failed; released for a retry",
                        timer.id,
                        timer.rule,
                        timer.case_id,
                    )
                    outcome = "retry"
                if outcome == "retry":
                    with self.store.write() as tx:
                        tx.release_timers(me, [timer.id])
                    retried += 1
                    batch_retried += 1
                elif outcome == "fired":
                    fired += 1
                    worst = max(worst, (now - timer.due_at).total_seconds())
                elif outcome == "skipped":
                    skipped += 1
            if batch_retried == len(claimed):
                break  # everything this batch held is contended: leave it to the next run
        if fired or skipped:
            log.info(
                "timers: %d fired, %d skipped, %d retried (worst lateness %.1fs)",
                fired,
                skipped,
                retried,
                worst,
            )
        return TimerRun(fired=fired, skipped=skipped, retried=retried, max_late_seconds=worst)

    def _fire_locked_batch(
        self, now: datetime, me: str, take: int, lease: timedelta
    ) -> tuple[list[Any], tuple[list[Any], int, list[Any]]] | None:
        """PostgreSQL: claim and fire a batch in one transaction, holding row locks instead
        of a lease. Returns (claimed, batch result), or None when a case changed under the
        batch (everything rolled back; the caller takes the leased path). Escalations that
        fire an event are leased to ``me`` in the same commit, for one-by-one firing."""
        try:
            with self.store.write() as tx:
                claimed = tx.take_due_timer_batch(now, take, me)
                if not claimed:
                    return [], ([], 0, [])
                done = self._fire_batch(tx, claimed, None, now)
                if done[2]:
                    tx.reopen_timers([t.id for t in done[2]], me, now + lease)
        except (ConflictError, *IntegrityViolation):  # a case changed under the batch
            return None  # rolled back: the leased path takes it from here
        except Exception:  # one bad timer must not stop the worker: the leased path
            log.exception("a locked batch failed; taking the leased path")  # isolates it
            return None
        return claimed, done

    def _fire_batch(
        self,
        tx: CoreTx,
        claimed: list[Any],
        me: str | None,
        now: datetime,
    ) -> tuple[list[Any], int, list[Any]]:
        """A whole claimed batch in one transaction, with set-based statements.

        ``claimed`` are rows of ``CoreTx.timer_batch`` (timer, case and instance in one
        read; the case data is not read), leased to ``me``; or, with ``me=None``, rows of
        ``CoreTx.take_due_timer_batch``, already marked fired in this transaction. Returns (timers fired, how many skipped, timers
        left for one-by-one handling: those whose escalation fires an event). Raises
        ConflictError, rolling the batch back, if any case changed under it; the caller
        then goes one by one.
        """
        later: list[Any] = []
        skips: list[tuple[int, str]] = []
        plans: list[tuple[Any, timers.Effect, dict[str, Any]]] = []
        rules: dict[tuple[str, int, str], tuple[str | None, Any]] = {}
        effect = timers.effect
        for row in claimed:
            if row.number is None or row.d_status != "running":
                why, rule = self._timer_check(row)
            else:  # the common case: one lookup per rule and batch
                found = rules.get((row.workflow, row.workflow_version, row.rule))
                if found is None:
                    found = rules[row.workflow, row.workflow_version, row.rule] = self._timer_check(
                        row
                    )
                why, rule = found
            if why is not None or rule is None:
                skips.append((row.id, why or "no rule"))
                continue
            eff, changes = effect(
                rule,
                row,
                due_at=row.d_due_at,
                warned=row.d_warned,
                level=row.d_level,
                case_number=row.number,
                workflow=row.workflow,
                priority=_priority(row.priority),
                now=now,
            )
            if eff.fire is not None:
                later.append(row)
                continue
            plans.append((row, eff, changes))
        if me is None:  # taken in this transaction already
            owned = {p[0].id for p in plans}
            skip_ids = {i for i, _ in skips}
        else:
            owned = tx.take_timers([p[0].id for p in plans], me, now) if plans else set()
            skip_ids = tx.take_timers([i for i, _ in skips], me, now) if skips else set()
        tx.skip_timers([(i, why) for i, why in skips if i in skip_ids])
        bumps: dict[int, dict[str, Any]] = {}
        instances: dict[tuple[int, str, int], dict[str, Any]] = {}
        history: list[dict[str, Any]] = []
        outbox: list[dict[str, Any]] = []
        fired: list[Any] = []
        actor = _TIMER_ACTOR
        for row, eff, changes in plans:
            if row.id not in owned:
                continue  # re-leased by another worker after our lease ran out
            bump = bumps.get(row.case_id)
            if bump is None:
                bump = bumps[row.case_id] = {
                    "id": row.case_id,
                    "expected": row.version,
                    "version": row.version,
                    "changes": {},
                    "at": now,
                }
            bump["version"] += 1
            bump["changes"].update(eff.changes)
            seq = bump["version"]
            key = (row.case_id, row.rule, row.armed_seq)
            state = instances.get(key)
            if state is None:
                state = instances[key] = {
                    "case_id": row.case_id,
                    "rule": row.rule,
                    "armed_seq": row.armed_seq,
                    "warned": row.d_warned,
                    "breached_at": row.d_breached_at,
                    "level": row.d_level,
                }
            _progress(state, changes)
            history.append(
                {
                    "case_id": row.case_id,
                    "seq": seq,
                    "at": now,
                    "actor": actor,
                    "event": eff.event,
                    "from_state": row.state,
                    "to_state": row.state,
                    "data": eff.data,
                    "notes": list(eff.notes),
                }
            )
            if eff.notices:
                outbox += outbox_rows(
                    eff.notices,
                    cause=f"timer:{row.id}",
                    case_id=row.case_id,
                    seq=seq,
                    org_unit=row.org_unit,
                )
            fired.append(row)
        rows = list(bumps.values())
        if tx.record_effects(rows, history, list(instances.values()), outbox, now) != len(rows):
            raise ConflictError("(a batch of timers)", 0, None)
        return fired, len(skip_ids), later

    def _timer_check(self, row: Any) -> tuple[str | None, Any]:
        """(why the timer must not take effect or None, its rule) for a batch row."""
        if row.number is None:
            return "the case no longer exists", None
        definition = self.workflow(row.workflow, row.workflow_version)
        rule = timers.rule_named(definition, row.rule)
        if rule is None or row.d_status is None:
            return f"the rule is not in {definition.name} v{definition.version}", None
        if row.d_status != "running":
            return (
                f"the deadline is {row.d_status}: the case moved on (now {row.state})",
                None,
            )
        return None, rule

    def _fire_timer(self, tx: CoreTx, timer: Any, me: str, now: datetime) -> str:
        """One timer's effect, in ``tx``: "fired", "skipped", "retry" or "taken"."""
        # Its escalation may fire an event that arms a deadline: lock before any row.
        self._calendar_sync.sync(tx, lock=True)
        found = tx.timer_batch([timer.id])
        if not found:
            return "taken"  # the timer row itself is gone
        row = found[0]
        why, rule = self._timer_check(row)
        if why is not None or rule is None:
            tx.finish_timer(timer.id, me, "skipped", now, why or "no rule")
            return "skipped"
        eff, changes = timers.effect(
            rule,
            row,
            due_at=row.d_due_at,
            warned=row.d_warned,
            level=row.d_level,
            case_number=str(row.number),
            workflow=row.workflow,
            priority=_priority(row.priority),
            now=now,
        )
        if not tx.finish_timer(timer.id, me, "fired", now, eff.event):
            return "taken"  # another worker re-leased it after our lease ran out
        seq = row.version + 1
        bump = {"id": row.case_id, "expected": row.version, "version": seq}
        if tx.bump_cases([{**bump, "changes": dict(eff.changes), "at": now}]) != 1:
            raise ConflictError(str(row.number), row.version, tx.current_version(row.case_id))
        tx.append_history(
            case_id=row.case_id,
            seq=seq,
            at=now,
            actor=Actor.system("timer"),
            event=eff.event,
            from_state=row.state,
            to_state=row.state,
            data=eff.data,
            notes=eff.notes,
        )
        tx.update_deadline(row.case_id, rule.name, timer.armed_seq, **changes)
        tx.insert_outbox(
            outbox_rows(
                eff.notices,
                cause=f"timer:{row.id}",
                case_id=row.case_id,
                seq=seq,
                org_unit=row.org_unit,
            ),
            now,
        )
        if eff.fire is not None:
            after = tx.load_case(row.case_id)
            try:
                with tx.conn.begin_nested():
                    self._apply(tx, after, eff.fire, Actor.system("escalation"), {}, now)
            except BaoflowError as exc:
                log.warning("escalation of %s could not fire %r: %s", row.number, eff.fire, exc)
        return "fired"

    def deadlines(self, case: int | str) -> list[DeadlineStatus]:
        """Every deadline rule instance of the case, oldest first: due, warned, breached,
        paused time, escalation level."""
        now = self.clock.now()
        with self.store.read() as tx:
            found = tx.load_case(case)
            definition = self.workflow(found.workflow, found.workflow_version)
            pending: dict[tuple[str, int], datetime] = {}
            for t in tx.pending_timers(found.id):
                key = (t.rule, t.armed_seq)
                if t.status == "pending" and key not in pending:
                    pending[key] = t.due_at
            result = []
            for row in tx.case_deadlines(found.id):
                rule = timers.rule_named(definition, row.rule)
                paused = timedelta(seconds=row.paused_seconds)
                if row.paused_since is not None:
                    paused += now - row.paused_since
                result.append(
                    DeadlineStatus(
                        rule=row.rule,
                        title=rule.title if rule else row.rule,
                        article=rule.article if rule else "",
                        started_at=row.started_at,
                        due_at=row.due_at,
                        status=row.status,
                        pause_reason=row.pause_reason,
                        paused_for=paused,
                        warned=row.warned,
                        breached=row.breached_at is not None,
                        level=row.level,
                        stopped_at=row.stopped_at,
                        next_timer_at=pending.get((row.rule, row.armed_seq)),
                        calendar=row.calendar,
                        provisional_years=tuple(
                            int(y) for y in (row.provisional or "").split(",") if y
                        ),
                    )
                )
        return result

    def recompute_deadlines(self) -> int:
        """Recompute every running deadline on the calendar as it is now.

        Run it after the calendar data changed (a ``chinesecalendar`` upgrade that
        publishes a year; ``calendar import`` runs it itself): due times that move, or
        that are no longer provisional, are rewritten with their pending timers, and
        each change is a history row on its case (``deadline_recomputed``) with the old
        and new due time. Returns how many changed.
        """
        now = self.clock.now()
        with self.store.write() as tx:
            tx.bump_calendar_generation()  # no deadline is armed meanwhile
            self._calendar_sync.sync(tx, lock=False)
            return self._recompute(tx, now)

    def _recompute(self, tx: CoreTx, now: datetime, year: int | None = None) -> int:
        """Recompute the running deadlines (those started by the end of ``year``)."""
        moved = 0
        for row in tx.running_deadlines():
            if year is not None and row.started_at.astimezone(SHANGHAI).year > year:
                continue
            case = tx.load_case(row.case_id)
            definition = self.workflow(case.workflow, case.workflow_version)
            rule = timers.rule_named(definition, row.rule)
            if rule is None:
                continue
            paused = timedelta(seconds=row.paused_seconds)
            period = timers.instance_period(rule, row)
            try:
                plan = timers.schedule(rule, row.started_at, paused, self.calendar, period)
            except CalendarYearUnknown as exc:  # a strict calendar: keep it, say so
                log.warning("%s %s kept as it is: %s", case.number, rule.name, exc)
                continue
            if (plan.due, plan.calendar, plan.provisional) == (
                row.due_at,
                row.calendar,
                row.provisional,
            ):
                continue
            tx.update_deadline(
                case.id,
                rule.name,
                row.armed_seq,
                due_at=plan.due,
                calendar=plan.calendar,
                provisional=plan.provisional,
            )
            for (kind, level), at in plan.times.items():
                tx.retime_timer(
                    case.id, rule.name, row.armed_seq, kind, level, at, status="pending"
                )
            if not tx.update_case(
                case_id=case.id,
                expected_version=case.version,
                state=None,
                data=case.data,
                now=now,
                keys=None,
            ):
                raise ConflictError(case.number, case.version, tx.current_version(case.id))
            old, new = row.due_at.astimezone(SHANGHAI), plan.due.astimezone(SHANGHAI)
            title = rule.title or rule.name
            change = (
                f"{old:%Y-%m-%d %H:%M} → {new:%Y-%m-%d %H:%M}"
                if old != new
                else f"{new:%Y-%m-%d %H:%M} 不变"
            )
            tx.append_history(
                case_id=case.id,
                seq=case.version + 1,
                at=now,
                actor=Actor.system("calendar"),
                event="deadline_recomputed",
                from_state=case.state,
                to_state=case.state,
                data={
                    "rule": rule.name,
                    "old_due_at": old.isoformat(),
                    "new_due_at": new.isoformat(),
                    "calendar": plan.calendar,
                    "was_provisional": row.provisional,
                    "provisional": plan.provisional,
                },
                notes=[
                    f"日历数据更新，期限「{title}」重算：{change}（{plan.calendar}）"
                    f"{timers.caveat(plan)}"
                ],
            )
            moved += 1
        if moved:
            log.info(
                "recomputed %d deadline(s) on %s", moved, getattr(self.calendar, "source", "?")
            )
        return moved

    # --- the calendar (issue #10) -----------------------------------------------------
    def import_calendar(
        self,
        source: str | Path,
        actor: Actor,
        *,
        file_name: str | None = None,
        override: bool = False,
    ) -> CalendarImport:
        """Store a year's holiday arrangement typed from the State Council's notice
        (a file's path, or its text; the format is in ``engine.arrangements`` and
        docs/deadlines.md), and recompute in the same commit every running deadline
        that may count on that year.

        The file is checked whole first; nothing is imported if anything is wrong.
        Where ``chinesecalendar`` already has the year and says otherwise of some day,
        the import is refused unless ``override``.

        Raises:
            CalendarDataInvalid: every problem of the file, with its line.
            CalendarDisagrees: the file differs from the published arrangement.
            StorageError: this engine's calendar is not the official one.
        """
        calendar = self._calendar_sync.calendar
        if calendar is None:
            raise StorageError(
                f"this engine counts on {type(self.calendar).__name__}, not the official "
                "calendar: an imported arrangement would not be used. Open the engine "
                "with the default calendar (or a ChineseOfficialCalendar) to import one."
            )
        if isinstance(source, Path):
            file_name = file_name or str(source)
            source = arrangements.read(source)
        file_name = file_name or "the arrangement text"
        arrangement = arrangements.parse(source, file_name)
        differences = arrangements.disagreements(arrangement)
        if differences and not override:
            raise CalendarDisagrees(arrangement.year, PACKAGE, differences)
        now = self.clock.now()
        try:
            with self.store.write() as tx:
                generation = tx.bump_calendar_generation()  # first: every arming waits
                import_id = tx.insert_calendar_import(
                    year=arrangement.year,
                    source=arrangement.source,
                    file_name=file_name,
                    imported_by=_who(actor),
                    imported_at=now,
                    override=bool(differences),
                    days=arrangement.days,
                )
                calendar.load(generation, tx.desk_years())
                moved = self._recompute(tx, now, arrangement.year)
        except BaseException:
            self._calendar_sync.forget()  # what was loaded did not commit
            raise
        log.info(
            "imported the %d arrangement (%s) by %s; %d deadline(s) recomputed",
            arrangement.year,
            arrangement.source,
            _who(actor),
            moved,
        )
        return CalendarImport(
            year=arrangement.year,
            import_id=import_id,
            holidays=sum(not d.working for d in arrangement.days),
            workdays=sum(d.working for d in arrangement.days),
            recomputed=moved,
            overridden=tuple(differences),
        )

    def calendar_year(self, year: int) -> CalendarYear:
        """The year's holidays and make-up days, where each comes from, and who
        imported the desk's arrangement of it, when."""
        calendar = self._calendar_sync.calendar
        if calendar is None:
            raise StorageError(
                f"this engine counts on {type(self.calendar).__name__}: it has no layers to show"
            )
        with self.store.read() as tx:
            self._calendar_sync.sync(tx, lock=False)
            return calendar_sync.year_view(calendar, tx, year)

    def calendar_status(self, years: Sequence[int] | None = None) -> list[CalendarYearStatus]:
        """For this year and the next (or ``years``): where the working days come from,
        and how many running deadlines count on the year only provisionally."""
        if years is None:
            today = self.clock.now().astimezone(SHANGHAI).year
            years = [today, today + 1]
        with self.store.read() as tx:
            self._calendar_sync.sync(tx, lock=False)
            return calendar_sync.statuses(self.calendar, tx, list(years))

    def next_timer_due(self) -> datetime | None:
        """When the earliest pending timer falls due (None when there is none)."""
        with self.store.read() as tx:
            return tx.next_due()

    def breaches(
        self,
        *,
        workflow: str | None = None,
        rule: str | None = None,
        min_level: int | None = None,
        org_unit: str | None = None,
    ) -> list[Breach]:
        """Cases with a running deadline past its due time, oldest due first; ``org_unit``
        is the unit of whoever opened the case."""
        if workflow is not None:
            self.workflow(workflow)
        with self.store.read() as tx:
            rows = tx.breached(workflow, rule, min_level, org_unit)
        return [
            Breach(
                r.number,
                r.workflow,
                r.state,
                r.rule,
                r.due_at,
                r.breached_at,
                r.level,
                r.org_unit,
            )
            for r in rows
        ]

    def sla_report(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        workflow: str | None = None,
        org_unit: str | None = None,
        per: str | None = None,
    ) -> SlaReport:
        """On-time rate and breaches per rule and org unit for deadlines started in
        [since, until) — over the whole span, or ``per`` "day", "week" (ISO) or "month"
        of their start (Beijing time) — and the median time cases spend in each state
        (from the history)."""
        now = self.clock.now()
        if per not in _PERIODS:
            raise ValueError(
                f"per must be 'day', 'week' or 'month' (or None for the whole span), not {per!r}"
            )
        label = _PERIODS[per]
        if workflow is not None:
            self.workflow(workflow)
        with self.store.read() as tx:
            rows = tx.deadline_rows(since, until, workflow, org_unit)
            entries = tx.state_entries(workflow)
        tally: dict[tuple[str, str, str | None, str | None], list[int]] = {}
        running = breached_now = 0
        for r in rows:
            group = (r.workflow, r.rule, r.org_unit, label(r.started_at.astimezone(SHANGHAI)))
            counts = tally.setdefault(group, [0, 0, 0, 0])
            counts[0] += 1
            if r.status == "met":
                counts[1] += 1
            elif r.status == "breached_met":
                counts[2] += 1
            elif r.status in ("running", "paused"):
                running += 1
                if r.breached_at is not None or r.due_at <= now:
                    counts[3] += 1
                    breached_now += 1
        # A stay in a state runs from the row that entered it to the row that left it;
        # rows in between that keep the state (timer effects, self-loops) do not split it.
        durations: dict[tuple[str, str], list[float]] = {}
        entered: Any = None
        for e in entries:
            if entered is not None and entered.case_id == e.case_id:
                if e.to_state == entered.to_state:
                    continue
                key = (entered.workflow, entered.to_state)
                durations.setdefault(key, []).append((e.at - entered.at).total_seconds())
            entered = e
        return SlaReport(
            rules=[
                RuleSla(w, rule, c[0], c[1], c[2], c[3], unit, period)
                for (w, rule, unit, period), c in sorted(
                    tally.items(), key=lambda kv: tuple(x or "" for x in kv[0])
                )
            ],
            running=running,
            breached_now=breached_now,
            median_time_in_state={
                k: timedelta(seconds=statistics.median(v)) for k, v in sorted(durations.items())
            },
        )

    def count_by_state(self, workflow: str | None = None) -> dict[tuple[str, str], int]:
        """How many cases sit in each (workflow, state)."""
        with self.store.read() as tx:
            return tx.count_by_state(workflow)

    def close(self) -> None:
        self.store.dispose()


_TIMER_ACTOR = Actor.system("timer").to_json()

#: How ``Engine.sla_report(per=...)`` labels the period a deadline started in.
_PERIODS: dict[str | None, Callable[[datetime], str | None]] = {
    None: lambda _at: None,
    "day": lambda at: at.strftime("%Y-%m-%d"),
    "week": lambda at: "{}-W{:02d}".format(*at.isocalendar()[:2]),
    "month": lambda at: at.strftime("%Y-%m"),
}


def _number_part(part: str, actor: Actor, data: Mapping[str, Any]) -> str:
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


def _who(actor: Actor) -> str:
    roles = "/".join(actor.roles) or "no role"
    unit = f", {actor.org_unit}" if actor.org_unit else ""
    return f"{actor.name} ({actor.id}: {roles}{unit})"


def _priority(raw: Any) -> int:
    """The case's ``priority`` as ``raise_priority`` counts it (absent or not a number: 0)."""
    try:
        return int(raw or 0)
    except (TypeError, ValueError):
        return 0


def _progress(state: dict[str, Any], changes: Mapping[str, Any]) -> None:
    """Fold one effect's instance changes into the batch's running view of it."""
    state["warned"] = max(state["warned"], changes.get("warned", 0))
    state["level"] = max(state["level"], changes.get("level", 0))
    if state["breached_at"] is None and "breached_at" in changes:
        state["breached_at"] = changes["breached_at"]


def _run_guards(
    definition: WorkflowDefinition, transition: Transition, ctx: TransitionContext
) -> list[str]:
    """Every guard runs, so a refusal lists all its reasons at once."""
    reasons: list[str] = []
    for name in transition.guards:
        reasons.extend(definition.hooks.guards[name](ctx))
    return reasons


def _validated(
    definition: WorkflowDefinition,
    schema: str | None,
    data: Mapping[str, Any],
    now: datetime,
    what: Callable[[], str],
) -> dict[str, Any]:
    """The payload as the schema makes it; ``what`` names the operation in an error."""
    if not isinstance(data, Mapping):
        raise InvalidData(
            what(), [Problem("", f"data must be a mapping, got {type(data).__name__}")]
        )
    if schema is None:
        if data:
            raise InvalidData(
                what(), [Problem(k, "this event takes no data; leave it out") for k in data]
            )
        return {}
    model: type[BaseModel] = definition.hooks.schemas[schema]
    if not data and (constant := _constant_empty_payload(model)) is not None:
        return dict(constant)
    try:
        parsed = model.model_validate(
            data if type(data) is dict else dict(data), context={"now": now}
        )
    except ValidationError as exc:
        raise InvalidData(
            what(),
            [
                Problem(".".join(str(p) for p in err["loc"]), _message(err))
                for err in exc.errors(include_url=False)
            ],
        ) from None
    # The serializer directly: model_dump's own wrapper is measurable on the hot path.
    dumped: dict[str, Any] = model.__pydantic_serializer__.to_python(
        parsed, mode="json", exclude_none=True
    )
    return dumped


@cache
def _constant_empty_payload(model: type[BaseModel]) -> dict[str, Any] | None:
    """What an empty payload validates to, when nothing but the model decides it.

    Many events carry no data (``verify``, ``complete_materials``); validating ``{}``
    against a model with no model-level validators and no validated defaults always
    gives the same scalars, so it is done once per model. Otherwise None: validate.
    """
    validated_defaults = model.model_config.get("validate_default") or any(
        f.validate_default for f in model.model_fields.values()
    )
    if model.__pydantic_decorators__.model_validators or validated_defaults:
        return None
    try:
        parsed = model.model_validate({})
    except ValidationError:
        return None  # required fields: let the caller validate and report them
    dumped: dict[str, Any] = model.__pydantic_serializer__.to_python(
        parsed, mode="json", exclude_none=True
    )
    scalars = all(isinstance(v, (str, int, float, bool)) for v in dumped.values())
    return dumped if scalars else None


def _message(err: Any) -> str:
    msg = str(err["msg"])
    # pydantic prefixes custom errors with "Value error, "; the prefix helps nobody.
    return msg.removeprefix("Value error, ")


def _search_keys(definition: WorkflowDefinition, data: Mapping[str, Any]) -> dict[str, str | None]:
    keys: dict[str, str | None] = {}
    for key, parts in definition.index_paths:
        value: Any = data
        for part in parts:
            value = value.get(part) if isinstance(value, dict) else None
        keys[key] = None if value is None else str(value)
    return keys


class _Request:
    """An operation as the idempotency record knows it."""

    __slots__ = ("case_id", "event", "fingerprint", "key", "what")

    def __init__(
        self, key: str | None, case_id: int | None, event: str, what: str, data: Mapping[str, Any]
    ) -> None:
        self.key = key
        self.case_id = case_id
        self.event = event
        self.what = what
        self.fingerprint = "" if key is None else _fingerprint(event, data)


def _fingerprint(event: str, data: Mapping[str, Any]) -> str:
    canonical = orjson.dumps([event, data], option=orjson.OPT_SORT_KEYS, default=str)
    return hashlib.sha256(canonical).hexdigest()


def _open_result_json(result: OpenResult) -> dict[str, Any]:
    return {"case": _case_json(result.case), "created": result.created, "notes": list(result.notes)}


def _open_result_from_json(raw: Mapping[str, Any]) -> OpenResult:
    return OpenResult(
        _case_from_json(raw["case"]), created=raw["created"], notes=tuple(raw["notes"])
    )


def _case_json(case: Case) -> dict[str, Any]:
    return {
        "id": case.id,
        "number": case.number,
        "workflow": case.workflow,
        "workflow_version": case.workflow_version,
        "state": case.state,
        "data": case.data,
        "version": case.version,
        "created_at": case.created_at.isoformat(),
        "updated_at": case.updated_at.isoformat(),
        "org_unit": case.org_unit,
    }


def _case_from_json(raw: Mapping[str, Any]) -> Case:
    return Case(
        id=raw["id"],
        number=raw["number"],
        workflow=raw["workflow"],
        workflow_version=raw["workflow_version"],
        state=raw["state"],
        data=raw["data"],
        version=raw["version"],
        created_at=datetime.fromisoformat(raw["created_at"]),
        updated_at=datetime.fromisoformat(raw["updated_at"]),
        org_unit=raw.get("org_unit"),
    )
