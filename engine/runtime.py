"""The Engine: the facade an app embeds — open cases, fire events, read state, history,
deadlines and reports.

Every operation reads the clock once and runs in one transaction (DESIGN.md §3.1).
The work is done by one module per concept, each readable in one sitting: the
workflow ``registry``, the ``transition`` step, ``idempotency``, timer ``draining``,
the ``reports``, and the desk's calendar (``calendar_sync``). This class only opens
the transaction, reads the clock and hands them down.
"""

from __future__ import annotations

import difflib
import logging
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from . import (
    accounts,
    auditor,
    authority,
    backups,
    calendar_sync,
    idempotency,
    limits,
    reports,
    tokens,
)
from .audit import Anchor, AuditReport
from .calendar import ChineseOfficialCalendar, WorkingCalendar
from .calendar_sync import CalendarSync
from .clock import SHANGHAI, Clock, SystemClock
from .definitions import WorkflowDefinition
from .draining import Drainer
from .errors import (
    ApiTokenRejected,
    CaseNotFound,
    ConflictError,
    GuardRefused,
    InvalidData,
    LogInRefused,
    NotPermitted,
    Problem,
    StorageError,
    UnknownApiToken,
    UnknownUser,
)
from .idempotency import Request
from .inbound import Inbound
from .payloads import validated
from .policies import PolicyDirectory
from .registry import Registry
from .store import IntegrityViolation, Store
from .store.rows import MAX_ID, OutboxRecord
from .transition import OPEN_EVENT, CaseFinder, Services, Stepper, search_keys, who
from .types import (
    Actor,
    ApiToken,
    AvailableEvent,
    BackupResult,
    Breach,
    CalendarImport,
    CalendarYear,
    CalendarYearStatus,
    Case,
    CaseFlow,
    CaseScope,
    DeadlineStatus,
    DeskDeadline,
    Gauges,
    HistoryEntry,
    ImportResult,
    InboundMessage,
    InboundResult,
    InboxItem,
    InsurerMessage,
    NewApiToken,
    OpenResult,
    OutboxMessage,
    Refusal,
    SlaReport,
    StateCount,
    TimerRun,
    User,
)

__all__ = ["OPEN_EVENT", "CaseFinder", "Engine", "Services"]

log = logging.getLogger("baoflow.engine")


class Engine:
    """The facade an app embeds. Build it with :func:`baoflow.open_engine`."""

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
        self._registry = Registry()
        self._calendar_sync = CalendarSync(self.calendar)
        self._step = Stepper(self._registry, policies, self.calendar, self._calendar_sync)
        self._drainer = Drainer(store, self._registry, self._step, self.clock, self._calendar_sync)
        self._inbound = Inbound(store, self._registry, self._step, self._calendar_sync)
        self._fired: Counter[tuple[str, str]] = Counter()
        self._fired_lock = threading.Lock()
        self._trusted = tokens.Trusted()
        for definition in workflows:
            self.register(definition)

    # --- workflows ----------------------------------------------------------------
    @property
    def backend(self) -> str:
        """The database it runs on: ``sqlite`` or ``postgresql``."""
        return self.store.dialect_name

    @property
    def database(self) -> str:
        """The database's URL, its password hidden (what a log line may say)."""
        return self.store.display_url

    def register(self, definition: WorkflowDefinition) -> None:
        """Add a workflow version; new cases use the highest version of each name."""
        self._registry.register(definition)

    def workflows(self) -> list[WorkflowDefinition]:
        """The newest version of every registered workflow."""
        return self._registry.latest()

    def workflow(self, name: str, version: int | None = None) -> WorkflowDefinition:
        """The definition of ``name`` (its newest version unless ``version``).

        Raises:
            UnknownWorkflow: with the names that are registered.
        """
        return self._registry.get(name, version)

    def notice_fields(self) -> dict[str, frozenset[str]]:
        """Every notice the registered workflows and the deadlines can send, with the
        fields its template receives (what the template set is checked against)."""
        return self._registry.notice_fields()

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
        limits.refuse(
            f"opening a {workflow}" if limits.WORKFLOW.fits(str(workflow)) else "opening a case",
            limits.text_problems(
                {
                    "workflow": (limits.WORKFLOW, workflow),
                    "idempotency_key": (limits.IDEMPOTENCY_KEY, idempotency_key),
                }
            )
            + limits.actor_problems(actor)
            + limits.data_problems(data),
        )
        definition = self.workflow(workflow)
        now = self.clock.now()
        payload = validated(
            definition, definition.open_schema, data, now, lambda: f"opening a {workflow}"
        )
        request = Request(idempotency_key, None, OPEN_EVENT, f"opening a {workflow}", data)
        try:
            with self.store.fire_transaction() as tx:
                if definition.deadlines:  # the intake may arm one: hold the calendar
                    tx.hold_calendar()  # (read with the first read; synced before arming)
                prior = idempotency.prior(tx, request)
                if prior is not None:
                    return idempotency.open_result_from_json(prior)
                result = self._step.open(tx, definition, payload, actor, now)
                if request.key is not None:
                    kept = idempotency.open_result_json(result)
                    idempotency.remember(tx, request, result.case.id, kept, now)
        except IntegrityViolation as exc:
            first = idempotency.prior_after_race(self.store, request, exc)
            return idempotency.open_result_from_json(first)
        if result.created:
            self._count(workflow, OPEN_EVENT)
        log.info("opened %s (%s) in %s", result.case.number, workflow, result.case.state)
        return result

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
            NotPermitted, ConflictError, IdempotencyKeyReused
        """
        data = data or {}
        limits.refuse(
            "firing an event",
            limits.text_problems(
                {
                    "event": (limits.EVENT, event),
                    "idempotency_key": (limits.IDEMPOTENCY_KEY, idempotency_key),
                },
            )
            + limits.actor_problems(actor)
            + limits.data_problems(data),
        )
        now = self.clock.now()
        deadline_event = event in self._registry.deadline_events
        if not deadline_event and self._calendar_sync.due():
            with self.store.read() as tx:  # guards count days too (the filing limit)
                self._calendar_sync.sync(tx, lock=False)
        request: Request | None = None
        try:
            with self.store.fire_transaction() as tx:
                # A deadline event holds the calendar before any row lock (an import
                # waits, or is waited for) and reads the case's deadlines with it.
                current = tx.load_case(case, deadlines=deadline_event)
                if deadline_event:
                    self._calendar_sync.sync(tx, lock=True)  # on the generation held
                if idempotency_key is not None:
                    what = f"{event!r} on {current.number}"
                    request = Request(idempotency_key, current.id, event, what, data)
                    prior = idempotency.prior(tx, request)
                    if prior is not None:
                        return idempotency.case_from_json(prior)
                if expected_version is not None and expected_version != current.version:
                    raise ConflictError(current.number, expected_version, current.version)
                result, _notes = self._step.apply(tx, current, event, actor, data, now)
                if request is not None:  # serialise the result only when kept
                    idempotency.remember(tx, request, result.id, idempotency.case_json(result), now)
            self._count(result.workflow, event)  # committed
            return result
        except IntegrityViolation as exc:
            if request is None:
                raise
            return idempotency.case_from_json(
                idempotency.prior_after_race(self.store, request, exc)
            )
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

    # --- reading ------------------------------------------------------------------
    def get_case(self, case: int | str, *, visible_to: Actor | None = None) -> Case:
        """The case with this id or case number. Raises :class:`CaseNotFound` — also
        when ``visible_to`` may not see it (:meth:`may_see`), so its existence is not
        told."""
        with self.store.read() as tx:
            return self._seen(tx.load_case(case), case, visible_to)

    # --- who sees what -----------------------------------------------------------------
    def may_see(self, case: Case, actor: Actor) -> bool:
        """Whether ``actor`` may read ``case``: the permission table's org-unit rows
        applied to reading (a role that may act on any unit's cases of the workflow
        sees them all; otherwise its own org unit's). Every read and search taking
        ``visible_to`` applies it."""
        return authority.may_see(self.workflow(case.workflow), actor, case)

    def scope(self, actor: Actor) -> CaseScope:
        """The cases ``actor`` may see (:meth:`may_see`), as a search filter."""
        return authority.scope(self.workflows(), actor)

    def _seen(self, found: Case, ref: int | str, actor: Actor | None) -> Case:
        if actor is not None and not self.may_see(found, actor):
            raise CaseNotFound(ref)
        return found

    def _scope(self, actor: Actor | None) -> CaseScope | None:
        if actor is None:
            return None
        limits.refuse("a search's viewer", limits.actor_problems(actor, "visible_to"))
        return self.scope(actor)

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
        newest_first: bool = False,
        after: int | None = None,
        visible_to: Actor | None = None,
        keys: Mapping[str, str] | None = None,
    ) -> list[Case]:
        """Cases matching every filter given, oldest first (or ``newest_first``).

        ``after`` (a case id) pages by key: only the cases past it in that order — a
        page boundary that cases opened meanwhile do not shift. ``visible_to``: only
        the cases that actor may see (:meth:`may_see`). ``keys``: search keys a
        workflow declares in ``[workflow.index]`` — its own (``{"phone": "138…"}``)
        or built-in ones — each with the value it must have.

        Raises:
            UnknownWorkflow: ``workflow`` is not registered.
            InvalidData: a ``state`` no registered workflow has (the error lists them),
                a key no registered workflow declares (the error lists those declared),
                or a limit below 1 or a negative offset.
        """
        if not (1 <= limit <= MAX_ID and 0 <= offset <= MAX_ID and 0 <= (after or 0) <= MAX_ID):
            raise InvalidData(
                "find_cases",
                [
                    Problem(
                        "limit",
                        f"limit must be >= 1, offset and after >= 0, each at most {MAX_ID}",
                    )
                ],
            )
        filters = self._case_filters(
            number, policy_number, insured_name, id_number, workflow, state, keys
        )
        if filters is None:  # a value longer than its column: no case has it
            return []
        with self.store.read() as tx:
            return tx.find_cases(
                **filters,
                limit=limit,
                offset=offset,
                newest_first=newest_first,
                after=after,
                scope=self._scope(visible_to),
            )

    def count_cases(
        self,
        *,
        number: str | None = None,
        policy_number: str | None = None,
        insured_name: str | None = None,
        id_number: str | None = None,
        workflow: str | None = None,
        state: str | Sequence[str] | None = None,
        visible_to: Actor | None = None,
        keys: Mapping[str, str] | None = None,
    ) -> int:
        """How many cases ``find_cases`` with these filters pages through."""
        filters = self._case_filters(
            number, policy_number, insured_name, id_number, workflow, state, keys
        )
        if filters is None:
            return 0
        with self.store.read() as tx:
            return tx.count_cases(**filters, scope=self._scope(visible_to))

    def rebuild_keys(self, workflow: str | None = None, *, batch: int = 500) -> int:
        """Write every case's search keys anew from its data, by its own workflow
        version's ``[workflow.index]`` (of ``workflow``'s cases, or every workflow's):
        what cases opened before a key was declared need to be found by it. The
        version, history and ``updated_at`` are left alone; ``batch`` cases a
        transaction. Returns how many cases were rewritten.

        Raises:
            UnknownWorkflow: ``workflow`` is not registered.
            InvalidData: a stored value is too long for its key (nothing of that
                batch is written; the error names the path).
        """
        names = [self.workflow(workflow).name] if workflow else [d.name for d in self.workflows()]
        done = 0
        for name in names:
            after = 0
            while True:
                with self.store.write() as tx:
                    page = tx.cases_of(name, after, batch)
                    for case_id, version, data in page:
                        definition = self._registry.get(name, version)
                        keys = search_keys(definition, data)
                        tx.rewrite_keys(case_id, keys, sorted(definition.own_keys))
                if not page:
                    break
                done += len(page)
                after = page[-1][0]
        return done

    def _case_filters(
        self,
        number: str | None,
        policy_number: str | None,
        insured_name: str | None,
        id_number: str | None,
        workflow: str | None,
        state: str | Sequence[str] | None,
        keys: Mapping[str, str] | None = None,
    ) -> dict[str, Any] | None:
        """The filters as the store takes them, checked: an unknown workflow, state or
        search key is an error that says what there is, not an empty list; a control
        character in a value is an error naming the filter. None: a value is longer
        than its column holds, so no case can match."""
        texts: dict[str, tuple[limits.Limit, Any]] = {
            "number": (limits.CASE_NUMBER, number),
            "policy_number": (limits.POLICY_NUMBER, policy_number),
            "insured_name": (limits.INSURED_NAME, insured_name),
            "id_number": (limits.ID_NUMBER, id_number),
            "workflow": (limits.WORKFLOW, workflow),
        }
        states = [state] if isinstance(state, str) else list(state or ())
        texts.update({f"state[{i}]": (limits.STATE, s) for i, s in enumerate(states)})
        for key, value in (keys or {}).items():
            if isinstance(key, str) and limits.OWN_KEY_NAME.fits(key):
                texts[f"keys.{key}"] = (limits.SEARCH_KEYS.get(key, limits.OWN_KEY_VALUE), value)
            else:
                texts[f"keys.{limits.shown(str(key))}"] = (limits.OWN_KEY_NAME, key)
        longer = {
            loc for loc, (lim, v) in texts.items() if isinstance(v, str) and len(v) > lim.chars
        }
        limits.refuse(
            "find_cases",
            limits.text_problems({loc: texts[loc] for loc in texts.keys() - longer}),
        )
        if longer:
            return None
        known = [self.workflow(workflow)] if workflow is not None else self.workflows()
        names = {s.name for d in known for s in d.states}
        wanted = [state] if isinstance(state, str) else list(state or ())
        where = f"workflow {workflow!r}" if workflow else "any registered workflow"
        problems = [
            Problem(
                "state",
                f"{s!r} is not a state of {where}; the states are {', '.join(sorted(names))}",
            )
            for s in wanted
            if s not in names
        ]
        declared = sorted({key for d in known for key in d.index})
        for key, value in (keys or {}).items():
            if key not in declared:
                near = difflib.get_close_matches(key, declared, n=1)
                problems.append(
                    Problem(
                        f"keys.{key}",
                        f"{key!r} is not a search key of {where}"
                        + (f" (did you mean {near[0]!r}?)" if near else "")
                        + f"; the keys are {', '.join(declared) or 'none'}",
                    )
                )
            elif not isinstance(value, str):
                problems.append(Problem(f"keys.{key}", f"must be text; got {value!r}"))
        if problems:
            raise InvalidData("find_cases", problems)
        filters: dict[str, Any] = {
            "number": number,
            "policy_number": policy_number,
            "insured_name": insured_name,
            "id_number": id_number.upper() if id_number else None,
            "workflow": workflow,
            "state": state,
        }
        if keys:
            filters["keys"] = {
                key: value.upper() if key == "id_number" else value for key, value in keys.items()
            }
        return filters

    def history(self, case: int | str, *, visible_to: Actor | None = None) -> list[HistoryEntry]:
        """The case's append-only history, oldest first."""
        with self.store.read() as tx:
            found = self._seen(tx.load_case(case), case, visible_to)
            return tx.history(found.id)

    def refusals(self, case: int | str) -> list[Refusal]:
        """Attempts on the case that were refused (not permitted, or by a guard), oldest
        first: who tried what, when, and why it was refused."""
        with self.store.read() as tx:
            return tx.refusals(tx.load_case(case).id)

    def available_events(
        self, case: int | str, actor: Actor | None = None, *, visible_to: Actor | None = None
    ) -> list[AvailableEvent]:
        """The events the case's state allows, each with the reasons it would be refused
        now (guards evaluated without event data); with ``actor``, also why the
        permission table would not let that actor fire it."""
        now = self.clock.now()
        with self.store.read() as tx:
            found = self._seen(tx.load_case(case), case, visible_to)
            return self._step.available_events(tx, found, actor, now)

    def count_by_state(self, workflow: str | None = None) -> dict[tuple[str, str], int]:
        """How many cases sit in each (workflow, state)."""
        with self.store.read() as tx:
            return tx.count_by_state(workflow)

    def state_counts(self, workflow: str, *, org_unit: str | None = None) -> list[StateCount]:
        """Per state of ``workflow`` (every state of its newest version, in order, then
        any state only older versions have), how many cases sit there and how many of
        them have a running or paused deadline warned, or breached, by escalation level —
        what a live state diagram shows. ``org_unit`` is the unit of whoever opened the
        case.

        Two aggregates in one read transaction, each over an index (the cases per state;
        the warned and breached deadlines folded per case): no case is loaded.

        Raises:
            UnknownWorkflow: with the names that are registered.
        """
        limits.refuse("state_counts", limits.filter_problems({"org_unit": org_unit}))
        definition = self.workflow(workflow)
        rules = sorted(self._registry.rule_names(workflow))
        with self.store.read() as tx:
            per_state = tx.count_by_state(workflow, org_unit)
            alerts = tx.alert_counts(workflow, org_unit, rules) if rules else []
        states = list(definition.state_names)
        states += sorted({s for _, s in per_state} - set(states))
        warned: dict[str, int] = {}
        breached: dict[str, int] = {}
        levels: dict[str, dict[int, int]] = {}
        for state, level, w, b in alerts:
            warned[state] = warned.get(state, 0) + w
            breached[state] = breached.get(state, 0) + b
            if b:
                levels.setdefault(state, {})[max(level, 0)] = b
        return [
            StateCount(
                workflow=workflow,
                state=state,
                cases=per_state.get((workflow, state), 0),
                warned=warned.get(state, 0),
                breached=breached.get(state, 0),
                levels=dict(sorted(levels.get(state, {}).items())),
            )
            for state in states
        ]

    # --- deadlines and timers -------------------------------------------------------
    def case_flow(
        self,
        workflow: str,
        *,
        since: datetime,
        until: datetime | None = None,
        visible_to: Actor | None = None,
    ) -> CaseFlow:
        """Cases of ``workflow`` opened, and cases that reached a final state, in
        [since, until) (no until: since ``since``); ``visible_to``: of the cases that actor sees.

        Raises:
            UnknownWorkflow: ``workflow`` is not registered.
        """
        finals = sorted(self._registry.get(workflow).final_states)
        # The viewer's scope for this one workflow: every case, or one unit's (a plain
        # org-unit test, which the (workflow, created_at) index serves; the scope's OR
        # over workflows would not be), or none.
        unit = None
        scope = self._scope(visible_to)
        if scope is not None and workflow not in scope.every_case_of:
            if scope.org_unit is None:
                return CaseFlow(workflow, since, until, 0, 0)
            unit = scope.org_unit
        with self.store.read() as tx:
            opened = tx.count_opened(workflow, since, until, unit)
            closed = tx.count_closed(workflow, finals, since, until, unit)
        return CaseFlow(workflow, since, until, opened, closed)

    def run_due_timers(
        self,
        *,
        worker: str | None = None,
        batch: int = 100,
        lease: timedelta = timedelta(seconds=10),
        limit: int | None = None,
    ) -> TimerRun:
        """Fire every timer due at the clock's now, each exactly once.

        Timers are leased in batches (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so
        several workers can drain one table; each effect commits with the check that
        the timer is still pending and its instance still running (the case is still
        where the timer was armed). Nothing here raises for one bad timer: it is logged
        and released. ``lease``: how long another worker waits for a timer this one
        leased; renewed every third of it while this one works (``engine/leases.py``).
        """
        return self._drainer.run(worker=worker, batch=batch, lease=lease, limit=limit)

    def next_timer_due(self) -> datetime | None:
        """When the earliest pending timer falls due (None when there is none)."""
        with self.store.read() as tx:
            return tx.next_due()

    def deadlines(
        self, case: int | str, *, visible_to: Actor | None = None
    ) -> list[DeadlineStatus]:
        """Every deadline rule instance of the case, oldest first: due, warned, breached,
        paused time, escalation level, and whether it is provisional."""
        now = self.clock.now()
        with self.store.read() as tx:
            found = self._seen(tx.load_case(case), case, visible_to)
            return reports.deadlines(tx, self._registry, found, now)

    def running_deadlines(
        self,
        *,
        workflow: str | None = None,
        rule: str | None = None,
        org_unit: str | None = None,
        min_level: int | None = None,
        handler: str | None = None,
        limit: int = 100,
        offset: int = 0,
        visible_to: Actor | None = None,
    ) -> list[DeskDeadline]:
        """Every running or paused deadline of the desk, the soonest due first (the
        breached ones, due in the past, at the top); ``org_unit`` is the case's,
        ``handler`` the id of the person assigned to it (the workflow's ``handler``
        search key)."""
        if limit < 1 or offset < 0:
            raise InvalidData(
                "running_deadlines", [Problem("limit", "limit must be >= 1 and offset >= 0")]
            )
        limits.refuse(
            "running_deadlines",
            limits.filter_problems(
                {"workflow": workflow, "rule": rule, "org_unit": org_unit, "handler": handler}
            ),
        )
        return reports.running_deadlines(
            self.store,
            self._registry,
            workflow=workflow,
            rule=rule,
            org_unit=org_unit,
            min_level=min_level,
            limit=limit,
            offset=offset,
            scope=self._scope(visible_to),
            handler=handler,
        )

    def breaches(
        self,
        *,
        workflow: str | None = None,
        rule: str | None = None,
        min_level: int | None = None,
        org_unit: str | None = None,
        visible_to: Actor | None = None,
    ) -> list[Breach]:
        """Cases with a running deadline past its due time, oldest due first; ``org_unit``
        is the unit of whoever opened the case."""
        limits.refuse(
            "breaches",
            limits.filter_problems({"workflow": workflow, "rule": rule, "org_unit": org_unit}),
        )
        return reports.breaches(
            self.store,
            self._registry,
            workflow=workflow,
            rule=rule,
            min_level=min_level,
            org_unit=org_unit,
            scope=self._scope(visible_to),
        )

    def sla_report(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        workflow: str | None = None,
        org_unit: str | None = None,
        per: str | None = None,
        visible_to: Actor | None = None,
    ) -> SlaReport:
        """On-time rate and breaches per rule and org unit for deadlines started in
        [since, until) — over the whole span, or ``per`` "day", "week" (ISO) or "month"
        of their start (Beijing time) — and the median time cases spend in each state
        (from the history)."""
        limits.refuse(
            "sla_report", limits.filter_problems({"workflow": workflow, "org_unit": org_unit})
        )
        return reports.sla_report(
            self.store,
            self._registry,
            self.clock.now(),
            since=since,
            until=until,
            workflow=workflow,
            org_unit=org_unit,
            per=per,
            scope=self._scope(visible_to),
        )

    # --- the outbox and the inbox ---------------------------------------------------
    def outbox(
        self,
        *,
        case: int | str | None = None,
        status: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[OutboxMessage]:
        """Notices and the messages they were resolved to, oldest first, with their
        attempts and last error (``status``: pending, expanded, delivered or dead)."""
        if status not in (None, *OUTBOX_STATUSES):
            raise InvalidData(
                "outbox",
                [Problem("status", f"{status!r} is not one of {', '.join(OUTBOX_STATUSES)}")],
            )
        with self.store.read() as tx:
            case_id = tx.load_case(case).id if case is not None else None
            rows = tx.list_outbox(status=status, case_id=case_id, limit=limit, offset=offset)
        return [_outbox_message(r) for r in rows]

    def retry_outbox(self, ids: Sequence[int] | None = None) -> int:
        """Put dead-letter messages (those of ``ids``, or every one) back to pending, due
        now, with fresh attempts. Returns how many; ids not in dead letter are left."""
        now = self.clock.now()
        with self.store.write() as tx:
            chosen = list(ids) if ids is not None else [r.id for r in tx.list_outbox(status="dead")]
            return tx.retry_outbox(chosen, now) if chosen else 0

    def inbox(self, user: str, *, unread_only: bool = False) -> list[InboxItem]:
        """A user's in-app inbox, newest first."""
        limits.refuse("inbox", limits.filter_problems({"user": user}))
        with self.store.read() as tx:
            rows = tx.inbox(user, unread_only=unread_only)
        return [
            InboxItem(
                id=r.id,
                user_id=r.user_id,
                case_number=r.case_number,
                template=r.template,
                subject=r.subject,
                body=r.body,
                created_at=r.created_at,
                read_at=r.read_at,
            )
            for r in rows
        ]

    def mark_read(self, user: str, ids: Sequence[int] | None = None) -> int:
        """Mark the user's unread inbox entries (those of ``ids``, or all) read."""
        limits.refuse("mark_read", limits.filter_problems({"user": user}))
        now = self.clock.now()
        with self.store.write() as tx:
            return tx.mark_inbox_read(user, None if ids is None else list(ids), now)

    # --- inbound insurer messages (issue #12) -------------------------------------------
    def receive_insurer_message(self, message: InsurerMessage) -> InboundResult:
        """Take one message from an insurer: find its case (by our case number, or by
        the insurer's reference through the ``insurer_reference`` search key), and fire
        the event the case's workflow maps its kind to, as the system acting for the
        insurer (``Actor.system("insurer:<name>")``) — in one transaction with storing
        the message.

        A message that matches no case, or several, or whose event is not allowed now,
        is invalid or refused, is stored ``unresolved`` with the reason, never dropped
        (:meth:`inbound_messages`, :meth:`resolve_inbound`, :meth:`dismiss_inbound`).
        A resend (same insurer and message id, same content) changes nothing and gets
        the first answer.

        Raises:
            InvalidData: the message lacks its insurer, message id or kind (nothing stored).
            MessageIdReused: the message id came before with other content.
        """
        result, fired_in = self._inbound.receive(message, self.clock.now())
        if fired_in is not None and result.event is not None:  # fired now, not a resend
            self._count(fired_in, result.event)
        return result

    def inbound_messages(
        self, *, status: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[InboundMessage]:
        """Stored insurer messages, oldest first (``status``: applied, unresolved,
        resolved or dismissed)."""
        return self._inbound.list(status, limit, offset)

    def inbound_message(self, ref: int) -> InboundMessage:
        """One stored insurer message. Raises :class:`InboundNotFound`."""
        return self._inbound.get(ref)

    def resolve_inbound(self, ref: int, case: int | str, *, by: str) -> InboundResult:
        """A person names the case an unresolved message means: its event fires there, as
        the insurer, and the message is ``resolved`` by ``by`` — in one commit. A
        refusal raises (EventNotAllowed, InvalidData, GuardRefused) and the message
        stays unresolved.

        Raises:
            InboundNotFound, InboundSettled, CaseNotFound, EventNotAllowed, InvalidData,
            GuardRefused, ConflictError
        """
        result, workflow = self._inbound.retry(ref, case, by, self.clock.now())
        self._count(workflow, result.event or "")
        return result

    def dismiss_inbound(self, ref: int, reason: str, *, by: str) -> InboundMessage:
        """A person sets an unresolved message aside, saying why; it stays on record.

        Raises:
            InboundNotFound, InboundSettled, InvalidData (no reason or no ``by``)
        """
        return self._inbound.dismiss(ref, reason, by, self.clock.now())

    # --- what the metrics read (issue #12) ------------------------------------------------
    def gauges(self) -> Gauges:
        """The desk's figures at the clock's now, in one read transaction, each an
        aggregate over an index (no case is loaded): cases per (workflow, state),
        breached running deadlines per (workflow, rule, escalation level), when the
        earliest pending timer falls due, the outbox's pending rows and dead letters, and
        the insurers' messages per status. What ``baoflow.api.metrics`` exposes."""
        now = self.clock.now()
        with self.store.read() as tx:
            pending, dead = tx.outbox_backlog()
            return Gauges(
                at=now,
                cases=tx.count_by_state(None),
                breaches=tx.breach_counts(),
                next_timer_due=tx.next_due(),
                outbox_pending=pending,
                outbox_dead=dead,
                inbound=tx.count_inbound(),
            )

    def transitions_fired(self) -> dict[tuple[str, str], int]:
        """How many events this engine object has fired and committed since it was made,
        per (workflow, event) — openings as ``open``, insurers' messages included; a
        replay answered from an idempotency key or a resend is not counted, nor are
        timer effects. Per process, as a Prometheus counter is."""
        with self._fired_lock:
            return dict(self._fired)

    def _count(self, workflow: str, event: str) -> None:
        with self._fired_lock:
            self._fired[(workflow, event)] += 1

    # --- the HTTP API's tokens (issue #12) --------------------------------------------
    def create_api_token(
        self, app: str, *, actor: Actor | None = None, act_for: Sequence[Actor] = ()
    ) -> NewApiToken:
        """Make a token for ``app`` that acts as ``actor``, or for one of the people of
        ``act_for`` named by each request, or both. The secret is in the result, this
        once: only its SHA-256 is stored (engine/tokens.py says why that suffices).

        Raises:
            InvalidData: no app, nobody to act as, the system, or a person twice.
        """
        tokens.checked(app, actor, act_for)
        now = self.clock.now()
        secret = tokens.new_secret()
        with self.store.write() as tx:
            row = tx.insert_api_token(tokens.row_values(app, secret, actor, act_for, now))
        return NewApiToken(tokens.token_from_row(row), secret)

    def api_tokens(self, *, include_revoked: bool = True) -> list[ApiToken]:
        """Every API token, oldest first (their secrets are not kept, so not shown)."""
        with self.store.read() as tx:
            rows = tx.api_tokens(include_revoked=include_revoked)
        return [tokens.token_from_row(r) for r in rows]

    def revoke_api_token(self, token_id: int) -> ApiToken:
        """Revoke a token: from now on every request with it is refused (401) — at once
        through this engine, within 2 s through another process's (:meth:`authenticate`).
        Revoking a revoked token changes nothing. Raises :class:`UnknownApiToken`."""
        now = self.clock.now()
        with self.store.write() as tx:
            row = tx.revoke_api_token(token_id, now)
        if row is None:
            raise UnknownApiToken(token_id)
        self._trusted.forget(token_id)
        return tokens.token_from_row(row)

    def authenticate(self, secret: str | None, act_for: str | None = None) -> Actor:
        """Who a request with this token secret acts as (``act_for``: the person the
        request names, one of the token's list). Notes the token's last use, at most
        once a minute. A token this engine looked up in the last
        ``tokens.TRUSTED_FOR`` (2) seconds is trusted without a query, so a revocation
        made through another process is refused within 2 s (through this one, at once).

        Raises:
            ApiTokenRejected: no secret, an unknown or revoked one (``reason``
                ``missing``, ``unknown``, ``revoked``), or a person the token may not
                act for (``act_for``).
        """
        if not secret:
            raise ApiTokenRejected(
                "missing", "no API token: send it as Authorization: Bearer TOKEN"
            )
        now = self.clock.now()
        key = tokens.digest(secret)
        token = self._trusted.get(key)
        if token is None:
            with self.store.read() as tx:
                row = tx.api_token_by_hash(key)
            if row is None:
                raise ApiTokenRejected(
                    "unknown",
                    "this API token is not known (mistyped, or its database is another); "
                    "`baoflow tokens add` makes one",
                )
            token = tokens.token_from_row(row)
            self._trusted.put(key, token)
        if token.revoked_at is not None:
            raise ApiTokenRejected(
                "revoked",
                f"API token {token.prefix}… ({token.app}) was revoked; ask for a new one",
            )
        actor = tokens.acting(token, act_for)
        if token.last_used_at is None or now - token.last_used_at >= tokens.TOUCH_EVERY:
            with self.store.write() as tx:
                tx.touch_api_token(token.id, now)
            self._trusted.put(key, replace(token, last_used_at=now))
        return actor

    # --- the dashboard's accounts (issue #13) ----------------------------------------
    def add_user(
        self,
        user_id: str,
        name: str,
        password: str,
        *,
        roles: Sequence[str] = (),
        org_unit: str | None = None,
    ) -> User:
        """Make a dashboard account: once logged in, the person acts as
        ``Actor(user_id, name, roles, org_unit)`` and sees what the permission table
        lets that actor see. Only the argon2 hash of ``password`` is stored.

        Raises:
            InvalidData: an empty id or name, a password under 8 characters, the
                ``system`` role, or an id already taken.
        """
        accounts.checked(user_id, name, password, roles, org_unit)
        values = accounts.row_values(user_id, name, password, roles, org_unit, self.clock.now())
        taken = InvalidData(
            "a user", [Problem("id", f"there is already a user {user_id!r}: choose another id")]
        )
        try:
            with self.store.write() as tx:
                if tx.user(user_id) is not None:
                    raise taken
                row = tx.insert_user(values)
        except IntegrityViolation:  # made by another process meanwhile
            raise taken from None
        return accounts.user_from_row(row)

    def users(self) -> list[User]:
        """Every dashboard account, by id (disabled ones too)."""
        with self.store.read() as tx:
            return [accounts.user_from_row(r) for r in tx.users()]

    def user(self, user_id: str) -> User:
        """One account. Raises :class:`UnknownUser`."""
        if not limits.ACTOR_ID.fits(user_id):  # no account can have that id
            raise UnknownUser(user_id)
        with self.store.read() as tx:
            row = tx.user(user_id)
        if row is None:
            raise UnknownUser(user_id)
        return accounts.user_from_row(row)

    def disable_user(self, user_id: str) -> User:
        """Disable an account: its log-ins are refused, and its open sessions end at
        their next request (the dashboard reads the account on each). Disabling a
        disabled account changes nothing. Raises :class:`UnknownUser`."""
        if not limits.ACTOR_ID.fits(user_id):
            raise UnknownUser(user_id)
        now = self.clock.now()
        with self.store.write() as tx:
            row = tx.disable_user(user_id, now)
        if row is None:
            raise UnknownUser(user_id)
        return accounts.user_from_row(row)

    def log_in(self, user_id: str, password: str, *, client: str = "") -> Actor:
        """Whom a person acts as, given their user id and password. ``client`` names
        where the attempt came from (the dashboard gives the client's address).

        After 5 wrong passwords within 15 minutes for one user id, or from one client,
        the next attempts are refused without being checked until 5 minutes after the
        last wrong one; a right password forgets the user id's wrong ones.

        Raises:
            LogInRefused: ``wrong`` (the id or the password: which is not told),
                ``disabled`` (right password, disabled account) or ``throttled``
                (with ``retry_after``).
        """
        now = self.clock.now()
        # Kept as the failures' keys: a control character escaped, so every database
        # stores it (and it shows harmlessly); an id holding one is no account's.
        client = limits.escaped(client)[:64]
        no_account = not limits.ACTOR_ID.fits(user_id)
        user_id = limits.escaped(user_id)
        with self.store.read() as tx:
            by_user, by_client = tx.login_failures_since(
                user_id[:64], client, now - accounts.WINDOW, accounts.LIMIT
            )
            row = None if no_account else tx.user(user_id)
        accounts.throttle(by_user, by_client, now)
        right = accounts.verify(password, None if row is None else row.password_hash)
        if row is None or not right:
            with self.store.write() as tx:
                tx.insert_login_failure(user_id[:64], client, now)
            by_user = [now, *by_user][: accounts.LIMIT]
            by_client = [now, *by_client][: accounts.LIMIT]
            try:
                accounts.throttle(by_user, by_client, now)
            except LogInRefused as refused:
                raise LogInRefused(
                    "throttled",
                    f"the user id or the password is wrong, and that was the "
                    f"{accounts.LIMIT}th wrong one lately: {refused}",
                    refused.retry_after,
                ) from None
            raise accounts.wrong()
        user = accounts.user_from_row(row)
        if not user.active:
            raise LogInRefused(
                "disabled", f"the account {user_id} is disabled; ask an administrator"
            )
        with self.store.write() as tx:
            tx.clear_login_failures(user_id, now - accounts.WINDOW)
        return user.actor

    def schema_revision(self) -> str | None:
        """The database's schema revision (``open_engine`` migrates it to the newest)."""
        return self.store.current_revision()

    # --- the tamper-evident history (issue #15) ----------------------------------------
    def verify_audit(
        self,
        cases: Sequence[int | str] | None = None,
        *,
        noted: Mapping[date, str] | None = None,
    ) -> AuditReport:
        """Check the history's hash chains: of ``cases`` (ids or numbers; CaseNotFound
        for one that does not exist), or of every case and every sealed day's anchor
        (and each anchor an auditor ``noted`` down, by day). The report lists each
        altered, removed or reordered row it found."""
        ids = None if cases is None else [self.get_case(ref).id for ref in cases]
        return auditor.verify(self.store, ids, noted=noted)

    def seal_audit(self) -> list[Anchor]:
        """Seal each day that is over and not sealed yet: its anchor, chained to the
        day before's, covers every history row of the day (the worker does this on its
        own). The anchors sealed, oldest first."""
        return auditor.seal(self.store, self.clock.now())

    def audit_anchors(self) -> list[Anchor]:
        """Every sealed day's anchor, oldest first: what an auditor notes down."""
        with self.store.read() as tx:
            return tx.anchors()

    # --- backups (issue #15 item 5, docs/backups.md) ------------------------------------
    def export_cases(self, cases: Sequence[int | str] | None = None) -> Iterator[str]:
        """The lines of an export of every case (or of ``cases``, ids or numbers): a
        header (format, version, schema revision, the time of the export), then one
        JSON object per case — its row, search keys, history, deadlines, timers,
        outbox, refusals and idempotency keys, by its number and without the
        database's ids. Write each with a newline; ``import_cases`` reads them back,
        on SQLite or PostgreSQL alike. All of it is read in one snapshot, while writers
        go on.

        Raises:
            CaseNotFound: one of ``cases`` is no case (raised before the first line).
        """
        yield from backups.export(self.store, cases, self.schema_revision(), self.clock.now())

    def import_cases(self, lines: Iterable[str]) -> ImportResult:
        """Import an export (``export_cases``' lines, e.g. a file's) in one transaction:
        every case with the rows it had, given new ids; the case counters raised so a
        case opened later is not given an imported number.

        Raises:
            ImportRefused: another format or schema revision, a malformed line (its
                number and what is wrong), a case number this database has (every one
                of them), or a workflow, version or state not registered here;
                nothing is imported.
        """
        return backups.import_lines(self.store, self._registry, lines, self.schema_revision())

    def backup_database(self, to: str | Path) -> BackupResult:
        """Copy a SQLite database to the new file ``to`` with SQLite's online backup,
        safe while workers write (the copy is the database as of one commit); checked
        with ``PRAGMA integrity_check``. Restore by copying it back with every worker
        stopped (docs/backups.md).

        Raises:
            BackupRefused: the database is PostgreSQL (use ``pg_dump``), ``to`` exists,
                or its folder does not.
        """
        path = Path(to)
        size, integrity = self.store.backup(path)
        if integrity != "ok":
            raise StorageError(
                f"the backup {str(path)!r} fails SQLite's integrity check ({integrity}); "
                "keep it for a look, and check the database with `PRAGMA integrity_check`"
            )
        return BackupResult(str(path), size, integrity)

    # --- the calendar (issue #10) -----------------------------------------------------
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
            return calendar_sync.recompute(tx, self._registry, self.calendar, now)

    def import_calendar(
        self,
        source: str | Path,
        actor: Actor,
        *,
        file_name: str | None = None,
        override: bool = False,
    ) -> CalendarImport:
        """Store a year's holiday arrangement typed from the State Council's notice
        (a file's path, or its text; the format is in ``baoflow.engine.arrangements``
        and docs/deadlines.md), and recompute in the same commit every running deadline
        that may count on that year.

        The file is checked whole first; nothing is imported if anything is wrong.
        Where ``chinesecalendar`` already has the year and says otherwise of some day,
        the import is refused unless ``override``.

        Raises:
            CalendarDataInvalid: every problem of the file, with its line.
            CalendarDisagrees: the file differs from the published arrangement.
            StorageError: this engine's calendar is not the official one.
        """
        return calendar_sync.import_arrangement(
            self.store,
            self._calendar_sync,
            self._registry,
            source,
            who(actor),
            self.clock.now(),
            file_name=file_name,
            override=override,
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

    def close(self) -> None:
        """Release the database connections."""
        self.store.dispose()


#: What a row of the outbox can be.
OUTBOX_STATUSES = ("pending", "expanded", "delivered", "dead")


def _outbox_message(r: OutboxRecord) -> OutboxMessage:
    return OutboxMessage(
        id=r.id,
        case_number=r.case_number,
        template=r.template,
        recipient=r.recipient,
        status=r.status,
        attempts=r.attempts,
        next_attempt_at=r.next_attempt_at,
        created_at=r.created_at,
        delivered_at=r.delivered_at,
        last_error=r.last_error,
        channel=r.channel,
        address=r.address,
        parent_id=r.parent_id,
        context=r.context,
    )
