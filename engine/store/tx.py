"""The narrow interfaces the engine needs from storage, inside one transaction, by
concern — each method's docstring is its contract:

- :class:`Tx`: a case operation (``open_case()``, ``fire()``): the case, its history,
  notices, idempotency keys, its deadlines and timers, the desk's arrangements;
- :class:`TimerTx`: the timer worker's leases and batches (``engine/draining.py``);
- :class:`InboundTx`: the insurers' messages (``engine/inbound.py``);
- :class:`CalendarTx`: an arrangement's import and the deadlines it moves
  (``engine/calendar_sync.py``);
- :class:`ReportTx`: what the desk reads back (``engine/reports.py``).

One class implements them all on SQLite and PostgreSQL: ``core.CoreTx`` (inside a
SQLAlchemy transaction); and ``hot.HotTx`` implements :class:`Tx` with the same
statements (``hot.HotStatements``) on a DBAPI connection of its own — what
``Store.fire_transaction()`` gives; on PostgreSQL in pipeline mode. No module outside
the store knows which database or which class it has. ``tests/test_store_contract.py``
runs the case-operation contract against both classes on both databases and compares
the rows they write.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol

from ..calendar import DeskDay, DeskYear
from ..types import Actor, Case, CaseScope, HistoryEntry, RuleSla
from .rows import (
    CaseBump,
    DeadlineRow,
    HistoryRow,
    InstanceProgress,
    OutboxRow,
    Record,
    SlaMedians,
    StoredTimer,
    TimerArm,
    TimerRow,
)


class Tx(Protocol):
    def load_case(self, ref: int | str, *, deadlines: bool = False) -> Case:
        """The case with this id (an int or digits) or case number; CaseNotFound if none.

        ``deadlines``: this transaction will compute the case's deadlines. The calendar
        generation is then held first, as ``calendar_generation(lock=True)`` holds it,
        and the case's active deadlines are read with the case (on PostgreSQL the three
        in one round trip); later ``calendar_generation(lock=True)`` and
        ``active_deadlines(case.id)`` calls answer from that read, the deadlines until
        this transaction writes one of the case's.
        """
        ...

    def current_version(self, case_id: int) -> int | None:
        """The stored version, or None if the case does not exist."""
        ...

    def hold(self, key: str) -> None:
        """Hold ``key`` until this transaction ends: another transaction holding the same
        key waits here until this one commits or rolls back, and then reads what it
        wrote. What a check-then-insert (a duplicate report) serialises on. On SQLite a
        writing transaction holds the whole database already, so this does nothing."""
        ...

    def insert_case(
        self,
        *,
        prefix: str,
        day: str,
        workflow: str,
        workflow_version: int,
        state: str,
        data: Mapping[str, Any],
        now: datetime,
        keys: Mapping[str, str | None],
        org_unit: str | None = None,
    ) -> tuple[int, str]:
        """A new case at version 1, created and updated ``now``, with its search keys
        (built-in ones as columns, a workflow's own as ``case_keys`` rows), numbered
        ``{prefix}-{day}-{n:06d}`` with ``n`` the next number of ``prefix`` on ``day``
        (unique across writers; more digits past 999,999); its id and number."""
        ...

    def update_case(
        self,
        *,
        case_id: int,
        expected_version: int,
        state: str | None,
        data: Mapping[str, Any],
        now: datetime,
        keys: Mapping[str, str | None] | None,
    ) -> bool:
        """Write data (and state) and bump the version, only if still at ``expected_version``.

        ``state=None`` keeps the state (a self-loop); ``keys`` are the search-key
        columns, ``None`` keeps them. Columns kept are left out of the statement, which
        spares the database their index maintenance. Returns False when the version had
        moved on — or, where the check is sent without waiting for its answer (on
        PostgreSQL's ``HotTx``), True, and the transaction raises ``ConflictError`` at
        its next wait or its end, every write rolled back.
        """
        ...

    def append_history(
        self,
        *,
        case_id: int,
        seq: int,
        at: datetime,
        actor: Actor,
        event: str,
        from_state: str | None,
        to_state: str,
        data: Mapping[str, Any],
        notes: Sequence[str],
    ) -> None:
        """Append one history row; (case_id, seq) is unique."""
        ...

    def insert_outbox(self, rows: Sequence[OutboxRow], now: datetime) -> None:
        """Outbox rows (``engine.notices.outbox_rows``), each pending and due for
        delivery at ``now``; ``key`` is unique."""
        ...

    def history(self, case_id: int) -> list[HistoryEntry]:
        """The case's history, oldest first."""
        ...

    def find_cases(
        self,
        *,
        number: str | None = None,
        policy_number: str | None = None,
        insured_name: str | None = None,
        id_number: str | None = None,
        workflow: str | None = None,
        state: str | Sequence[str] | None = None,
        limit: int | None = 100,
        offset: int = 0,
    ) -> list[Case]:
        """Cases matching every filter given, oldest first; ``limit=None`` for all."""
        ...

    def idempotent_result(self, key: str) -> Any:
        """The stored request under ``key`` (``.case_id``, ``.event``, ``.fingerprint``,
        ``.result``), or None."""
        ...

    def remember_result(
        self,
        *,
        key: str,
        case_id: int,
        event: str,
        fingerprint: str,
        result: Any,
        now: datetime,
    ) -> None:
        """Store a request's result under ``key``; a second insert of a key fails."""
        ...

    # --- the case's deadlines and their timers (engine/timers.py) ---------------------
    def active_deadlines(self, case_id: int) -> list[DeadlineRow]:
        """The case's running or paused rule instances, as this transaction has them."""
        ...

    def insert_deadline(self, row: DeadlineRow) -> None:
        """A new rule instance; (case_id, rule, armed_seq) is unique."""
        ...

    def update_deadline(self, case_id: int, rule: str, armed_seq: int, **values: Any) -> None:
        """Set the named columns (``rows.DEADLINE_COLUMNS``) of one rule instance."""
        ...

    def insert_timers(self, rows: Sequence[TimerArm]) -> None:
        """An instance's timers; (case_id, rule, armed_seq, kind, level) is unique."""
        ...

    def set_timer_status(
        self, case_id: int, rule: str, armed_seq: int, *, from_: Sequence[str], to: str
    ) -> None:
        """Move an instance's timers in one of the ``from_`` statuses to ``to`` (cancel,
        pause), dropping any lease. Returns nothing: a write whose answer nobody waits
        for (on PostgreSQL it rides with the commit)."""
        ...

    def retime_timer(
        self,
        case_id: int,
        rule: str,
        armed_seq: int,
        kind: str,
        level: int,
        due: datetime,
        status: str = "paused",
    ) -> None:
        """Give the instance's (kind, level) timer, if in ``status``, a new due time and
        make it pending."""
        ...

    # --- the desk's holiday arrangements (engine/calendar_sync.py) --------------------
    def calendar_generation(self, *, lock: bool = False) -> int:
        """Which stored arrangements are current; with ``lock``, held until this
        transaction ends, so no import interleaves with the deadlines it computes."""
        ...

    def hold_calendar(self) -> None:
        """Hold the calendar generation as ``calendar_generation(lock=True)`` does, sent
        with this transaction's next read where the backend can (one round trip less);
        ``calendar_generation(lock=True)`` then answers from it. Call it before anything
        that takes a row lock."""
        ...

    def desk_years(self) -> list[DeskYear]:
        """The current arrangement of every year the desk imported, with its days."""
        ...


class SavepointTx(Tx, Protocol):
    """A case-operation transaction that can undo part of itself."""

    def savepoint(self) -> AbstractContextManager[Any]:
        """``with tx.savepoint():`` — if the block raises, its writes are undone and the
        rest of the transaction is kept (an insurer's message stored though its event
        was refused; a timer's effect kept though the escalation it fires was)."""
        ...


class TimerTx(SavepointTx, Protocol):
    """The timer worker's transactions (``engine/draining.py``): timers are leased in
    batches, and a batch's effects written with a few set-based statements. Where
    ``Store.locks_timer_batches``, due timers are taken under row locks in the
    transaction that fires them instead (:meth:`take_due_timer_batch`)."""

    def claim_due_timers(
        self, now: datetime, worker: str, lease_until: datetime, limit: int
    ) -> list[StoredTimer]:
        """Lease up to ``limit`` due timers to ``worker`` until ``lease_until``: pending,
        due at ``now``, and not leased to a live worker; the soonest due first. Two
        workers claiming at once never get the same timer."""
        ...

    def timer_batch(self, ids: Sequence[int]) -> list[TimerRow]:
        """The timers ``ids``, each with what its effect needs of its case and rule
        instance (one read; a gone case or instance as NULL fields), in due order."""
        ...

    def take_due_timer_batch(self, now: datetime, limit: int, by: str) -> list[TimerRow]:
        """Only where ``Store.locks_timer_batches``: take up to ``limit`` due timers not
        leased to a live worker, locked and marked fired by ``by``, read as
        :meth:`timer_batch` reads them. A worker that dies rolls the marks back with
        its effects."""
        ...

    def take_timers(self, ids: Sequence[int], worker: str, now: datetime) -> set[int]:
        """Mark fired those of ``ids`` still pending and leased to ``worker``; their ids."""
        ...

    def reopen_timers(self, ids: Sequence[int], worker: str, until: datetime) -> None:
        """Put timers taken by :meth:`take_due_timer_batch` back to pending, leased to
        ``worker`` until ``until`` (for one-by-one handling)."""
        ...

    def skip_timers(self, outcomes: Sequence[tuple[int, str]]) -> None:
        """Mark each (timer id, why) skipped, the reason kept as its outcome."""
        ...

    def finish_timer(
        self, timer_id: int, worker: str, status: str, now: datetime, outcome: str
    ) -> bool:
        """End one timer in ``status`` at ``now``, only if it is still pending and leased
        to ``worker``: whether it was (the check that makes each effect happen once)."""
        ...

    def release_timers(self, worker: str, ids: Sequence[int] | None = None) -> int:
        """Drop ``worker``'s leases on its pending timers (those of ``ids``); how many."""
        ...

    def bump_cases(self, rows: Sequence[CaseBump]) -> int:
        """Version-checked bumps, many at once: how many cases matched (fewer than
        given: one changed meanwhile)."""
        ...

    def record_effects(
        self,
        bumps: Sequence[CaseBump],
        history: Sequence[HistoryRow],
        deadlines: Sequence[InstanceProgress],
        outbox: Sequence[OutboxRow],
        now: datetime,
    ) -> int:
        """A batch of timer effects at once: the cases bumped (as :meth:`bump_cases`),
        their history rows, their rule instances' progress and their notices. How many
        cases the bump matched; the caller rolls back if fewer than ``bumps``."""
        ...


class InboundTx(SavepointTx, Protocol):
    """The insurers' messages (``engine/inbound.py``): each stored once per (insurer,
    message id), matched to a case or kept unresolved for a person."""

    def find_cases(
        self,
        *,
        number: str | None = None,
        policy_number: str | None = None,
        insured_name: str | None = None,
        id_number: str | None = None,
        workflow: str | None = None,
        state: str | Sequence[str] | None = None,
        limit: int | None = 100,
        offset: int = 0,
        newest_first: bool = False,
        insurer_reference: str | None = None,
        after: int | None = None,
        scope: CaseScope | None = None,
        keys: Mapping[str, str] | None = None,
    ) -> list[Case]:
        """:meth:`Tx.find_cases`, and by the insurer's own reference for the case,
        newest first, past a cursor (``after``), within what ``scope`` may see, and by
        a workflow's own search keys."""
        ...

    def inbound_by_message_id(self, insurer: str, message_id: str) -> Record | None:
        """The stored message (``inbound_messages`` row) (insurer, message_id), or None."""
        ...

    def inbound_row(self, ref: int, *, lock: bool = False) -> Record | None:
        """The stored message with this id (``lock``: held until the transaction ends)."""
        ...

    def insert_inbound(self, values: Mapping[str, Any]) -> int:
        """Store one message; its id. A second (insurer, message_id) fails on the key."""
        ...

    def settle_inbound(self, ref: int, values: Mapping[str, Any]) -> bool:
        """Mark an unresolved message resolved or dismissed (``values``); False if it was
        not unresolved any more."""
        ...

    def list_inbound(
        self, *, status: str | None = None, ref: int | None = None, limit: int, offset: int
    ) -> list[Record]:
        """Stored messages (those in ``status``, or the one ``ref``), oldest first, each
        with ``matched_number``: the number of the case it matched or fired on."""
        ...


class CalendarTx(Tx, Protocol):
    """An arrangement's import (``engine/calendar_sync.py``): stored, made current, and
    every running deadline that counts on it recomputed in the same transaction."""

    def bump_calendar_generation(self) -> int:
        """Take the arrangements' lock (every transaction arming a deadline waits) and
        move the generation on; the new generation."""
        ...

    def insert_calendar_import(
        self,
        *,
        year: int,
        source: str,
        file_name: str,
        imported_by: str,
        imported_at: datetime,
        override: bool,
        days: Sequence[DeskDay],
    ) -> int:
        """Store a year's arrangement as the current one (an earlier import of the year
        kept, no longer current); the import's id."""
        ...

    def calendar_imports(self, year: int) -> list[Record]:
        """Every import (``calendar_imports`` row) of ``year``, newest first."""
        ...

    def provisional_deadline_years(self) -> dict[str, int]:
        """Running and paused deadlines counted on provisional years, by their
        ``provisional`` value (``"2027"``, ``"2027,2028"``)."""
        ...

    def running_deadlines(self) -> list[DeadlineRow]:
        """Every running rule instance, by case and arming."""
        ...


class ReportTx(Protocol):
    """What the desk reads back (``engine/reports.py``): a case's deadlines and timers,
    the desk's deadline and breach lists, and the SLA report's figures."""

    def case_deadlines(self, case_id: int) -> list[DeadlineRow]:
        """Every rule instance of the case, in arming order."""
        ...

    def pending_timers(self, case_id: int) -> list[StoredTimer]:
        """The case's pending and paused timers, the soonest due first."""
        ...

    def desk_deadlines(
        self,
        *,
        workflow: str | None,
        rule: str | None,
        org_unit: str | None,
        min_level: int | None,
        limit: int,
        offset: int,
        scope: CaseScope | None = None,
        handler: str | None = None,
    ) -> list[Record]:
        """Running and paused deadlines with their case (number, workflow, version,
        state, org unit, handler), the soonest due first, filtered as given."""
        ...

    def breached(
        self,
        workflow: str | None,
        rule: str | None,
        min_level: int | None,
        org_unit: str | None = None,
        scope: CaseScope | None = None,
    ) -> list[Record]:
        """Running deadlines past their due time, with their case, oldest due first."""
        ...

    def sla_tallies(
        self,
        now: datetime,
        since: datetime | None,
        until: datetime | None,
        workflow: str | None,
        org_unit: str | None = None,
        scope: CaseScope | None = None,
        per: str | None = None,
    ) -> list[RuleSla]:
        """One row per (workflow, rule, org unit, period) of the rule instances started in
        [since, until) of the cases filtered as given: how many started, were met on
        time (``met``), met late (``breached_met``), are running or paused, and of those
        are past due at ``now`` (breached, or ``due_at <= now``). ``period``: the
        Beijing day ("2026-05-06"), ISO week ("2026-W19") or month ("2026-05") of the
        start for ``per`` "day", "week" or "month"; None for ``per`` None. Counted in
        the database; in no particular order."""
        ...

    def sla_medians(
        self,
        finals: Mapping[str, Collection[str]],
        workflow: str | None,
        scope: CaseScope | None = None,
        org_unit: str | None = None,
    ) -> SlaMedians:
        """Of the history of the cases filtered as given: the median stay in each
        (workflow, state) — from the row that entered the state to the row that left it,
        rows that keep the state not splitting it; a stay not left yet not counted — and
        per workflow the median time from a case's first row to its first row in one of
        ``finals[workflow]`` (its final states), of the cases that got there. Medians as
        ``statistics.median`` gives them of the spans in seconds (floats), computed in
        the database."""
        ...
