"""The narrow interfaces the engine needs from storage, inside one transaction, by
concern — each method's docstring is its contract:

- :class:`Tx`: a case operation (``open_case()``, ``fire()``): the case, its history,
  notices, idempotency keys, its deadlines and timers, the desk's arrangements;
- :class:`TimerTx`: the timer worker's leases and batches (``engine/draining.py``);
- :class:`InboundTx`: the insurers' messages (``engine/inbound.py``);
- :class:`CalendarTx`: an arrangement's import and the deadlines it moves
  (``engine/calendar_sync.py``);
- :class:`ReportTx`: what the desk reads back (``engine/reports.py``, the runtime's
  counts);
- :class:`DeskTx`: what the desk writes beside its case operations: refused attempts,
  inbox entries read, search keys rebuilt;
- :class:`PolicyTx`: the default policy directory's table;
- :class:`OutboxTx`: the notices' delivery (``notifications/delivery.py``);
- :class:`AccountTx`: the dashboard's accounts and the HTTP API's tokens;
- :class:`AuditTx`: the history's hashes and the days' anchors (``engine/audit.py``);
- :class:`BackupTx`: cases exported as documents and imported back
  (``engine/backups.py``).

:class:`StoreTx` is all of them: what ``Store.read()`` and ``Store.write()`` give.

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

from ..audit import Anchor, StoredRow
from ..calendar import DeskDay, DeskYear
from ..policies import Policy
from ..types import Actor, CalendarImportRecord, Case, CaseScope, HistoryEntry, Refusal, RuleSla
from .rows import (
    ApiTokenRecord,
    BreachRow,
    CaseBump,
    DeadlineRow,
    DeskDeadlineRow,
    HistoryRow,
    InboundRecord,
    InboxRecord,
    InstanceProgress,
    NoticeToExpand,
    OutboxRecord,
    OutboxRow,
    SlaMedians,
    StoredTimer,
    TimerArm,
    TimerRow,
    UserRecord,
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
        number: str,
        seq: int,
        at: datetime,
        actor: Actor,
        event: str,
        from_state: str | None,
        to_state: str,
        data: Mapping[str, Any],
        notes: Sequence[str],
    ) -> None:
        """Append one history row of case ``case_id`` (numbered ``number``), its hash
        chained to the case's row ``seq - 1`` (``engine/audit.py``); (case_id, seq) is
        unique."""
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

    def renew_timers(self, ids: Sequence[int], worker: str, until: datetime) -> int:
        """Move the leases of those of ``ids`` still pending and leased to ``worker`` on
        to ``until``; how many (a timer fired, released or taken over is left alone)."""
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

    def inbound_by_message_id(self, insurer: str, message_id: str) -> InboundRecord | None:
        """The stored message (``inbound_messages`` row) (insurer, message_id), or None."""
        ...

    def inbound_row(self, ref: int, *, lock: bool = False) -> InboundRecord | None:
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
    ) -> list[InboundRecord]:
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

    def calendar_imports(self, year: int) -> list[CalendarImportRecord]:
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
    ) -> list[DeskDeadlineRow]:
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
    ) -> list[BreachRow]:
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

    # --- counts: the dashboard's overview, the metrics, the listings' totals ----------
    def count_cases(
        self,
        *,
        number: str | None = None,
        policy_number: str | None = None,
        insured_name: str | None = None,
        id_number: str | None = None,
        workflow: str | None = None,
        state: str | Sequence[str] | None = None,
        scope: CaseScope | None = None,
        keys: Mapping[str, str] | None = None,
    ) -> int:
        """How many cases match every filter given (what ``find_cases`` pages through)."""
        ...

    def count_by_state(
        self, workflow: str | None = None, org_unit: str | None = None
    ) -> dict[tuple[str, str], int]:
        """Cases per (workflow, state), of one workflow and one org unit if given;
        counted on an index, no case row read."""
        ...

    def alert_counts(
        self, workflow: str, org_unit: str | None = None, rules: Sequence[str] | None = None
    ) -> list[tuple[str, int, int, int]]:
        """(state, level, warned cases, breached cases) of the workflow's cases (of
        ``org_unit``'s) with a running or paused deadline warned or breached; a case is
        breached if any of its deadlines is, at its highest level. ``rules``: the
        workflow's deadline rules (the others' alerted deadlines are left out first)."""
        ...

    def breach_counts(self) -> dict[tuple[str, str, int], int]:
        """How many running deadlines are breached, per (workflow, rule, level)."""
        ...

    def count_opened(
        self, workflow: str, since: datetime, until: datetime | None, org_unit: str | None
    ) -> int:
        """Cases of ``workflow`` (of ``org_unit``'s, if given) opened in [since, until)."""
        ...

    def count_closed(
        self,
        workflow: str,
        final_states: Sequence[str],
        since: datetime,
        until: datetime | None,
        org_unit: str | None,
    ) -> int:
        """Cases of ``workflow`` (of ``org_unit``'s, if given) that entered one of
        ``final_states`` in [since, until), each counted once."""
        ...

    def count_inbound(self) -> dict[str, int]:
        """How many stored insurer messages there are in each status."""
        ...

    def next_due(self) -> datetime | None:
        """When the soonest pending timer is due; None if none is pending."""
        ...

    # --- what else a case has ---------------------------------------------------------
    def refusals(self, case_id: int) -> list[Refusal]:
        """The case's refused attempts (``DeskTx.insert_refusal``), oldest first."""
        ...

    def inbox(self, user_id: str, *, unread_only: bool = False) -> list[InboxRecord]:
        """A person's in-app inbox (those not read yet, with ``unread_only``), newest
        first."""
        ...


class DeskTx(Tx, Protocol):
    """What the desk writes beside its case operations: refused attempts (the audit),
    inbox entries read, and search keys rebuilt (``baoflow db rebuild-keys``)."""

    def insert_refusal(
        self,
        case: int | str,
        at: datetime,
        actor: Actor,
        event: str,
        kind: str,
        reasons: Sequence[str],
    ) -> None:
        """Record that ``actor`` was refused ``event`` on the case (an id or number;
        CaseNotFound if none) at ``at``: ``kind`` (not_permitted, guard, ...) and the
        reasons given."""
        ...

    def mark_inbox_read(self, user_id: str, ids: Sequence[int] | None, now: datetime) -> int:
        """Mark the person's unread entries (those of ``ids``, or all) read at ``now``;
        how many. Another person's entries are never touched."""
        ...

    def cases_of(self, workflow: str, after: int, limit: int) -> list[tuple[int, int, Any]]:
        """(id, workflow version, data) of up to ``limit`` of ``workflow``'s cases past id
        ``after``, by id: what rewriting their search keys pages through."""
        ...

    def rewrite_keys(
        self, case_id: int, keys: Mapping[str, str | None], own: Sequence[str]
    ) -> None:
        """Set a case's search keys to ``keys`` without touching its version: the
        built-in ones, and its own keys — every own key not in ``own`` (keys the
        workflow no longer declares) dropped."""
        ...


class PolicyTx(Protocol):
    """The default policy directory's own table (``store/policy_directory.py``)."""

    def policy(self, number: str) -> Policy | None:
        """The policy with this number, or None."""
        ...

    def policies_by_insured(self, name: str, id_number: str | None) -> list[Policy]:
        """The policies of the insured person of this name (and ID number, if given), by
        policy number."""
        ...

    def upsert_policies(self, rows: Sequence[Mapping[str, Any]]) -> int:
        """Store each policy (``policies`` columns), replacing one of the same number;
        how many were given."""
        ...


class OutboxTx(Protocol):
    """The notices' delivery (``notifications/delivery.py``): a notice (``parent_id``
    None) is resolved to addresses as messages of its own (``channel`` set), and each
    message is leased, sent and finished once by one deliverer."""

    def outbox_to_expand(self, now: datetime, limit: int) -> list[NoticeToExpand]:
        """Up to ``limit`` notices not yet resolved to addresses, pending and due at
        ``now``, oldest first, with what the directory needs of their case; held until
        the transaction ends (two deliverers never expand the same notice)."""
        ...

    def insert_outbox_rows(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Whole outbox rows (every column given), e.g. a notice's per-address messages;
        ``key`` is unique."""
        ...

    def set_outbox(self, ids: Sequence[int], **values: Any) -> None:
        """Set the named outbox columns of the rows ``ids`` (a notice expanded or dead)."""
        ...

    def claim_outbox(
        self, now: datetime, worker: str, until: datetime, limit: int
    ) -> list[OutboxRecord]:
        """Lease up to ``limit`` messages (rows with an address) that are pending, due at
        ``now`` and not leased to a live worker to ``worker`` until ``until``; them,
        with their case number. Two deliverers claiming at once never get the same."""
        ...

    def finish_outbox(self, message_id: int, worker: str, **values: Any) -> bool:
        """Record a delivery attempt's outcome (the named columns), dropping the lease,
        only while the message is still pending and leased to ``worker``: whether it
        was (a deliverer whose lease ran out changes nothing)."""
        ...

    def renew_outbox(self, ids: Sequence[int], worker: str, until: datetime) -> int:
        """Move the leases of those of ``ids`` still pending and leased to ``worker`` on
        to ``until``; how many (a message finished or taken over is left alone)."""
        ...

    def release_outbox(self, worker: str) -> int:
        """Drop ``worker``'s leases on its pending messages; how many."""
        ...

    def insert_inbox(self, row: Mapping[str, Any]) -> bool:
        """One in-app inbox entry (``inbox`` columns); False if its key was delivered
        before (a retry), and nothing written."""
        ...

    def list_outbox(
        self,
        *,
        status: str | None = None,
        case_id: int | None = None,
        ids: Sequence[int] | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[OutboxRecord]:
        """Notices and messages with their case's number, oldest first, filtered as
        given; ``limit=None`` for all."""
        ...

    def outbox(self, case_id: int | None = None) -> list[OutboxRecord]:
        """Notices and messages, oldest first (of one case, or all), without their case
        number."""
        ...

    def retry_outbox(self, ids: Sequence[int], now: datetime) -> int:
        """Dead rows of ``ids`` back to pending, due ``now``, with fresh attempts and no
        lease (the last error kept until the next attempt replaces it); how many."""
        ...

    def outbox_backlog(self) -> tuple[int, int]:
        """How many rows are (pending, dead)."""
        ...


class AccountTx(Protocol):
    """The dashboard's accounts, their failed log-ins, and the HTTP API's tokens
    (``engine/accounts.py``, ``engine/tokens.py``): hashes kept, never a password or a
    token's secret."""

    def insert_user(self, values: Mapping[str, Any]) -> UserRecord:
        """A new account (``users`` columns), as stored; a second of the same id fails on
        the key."""
        ...

    def user(self, user_id: str) -> UserRecord | None:
        """The account with this id, or None."""
        ...

    def users(self) -> list[UserRecord]:
        """Every account, by id."""
        ...

    def disable_user(self, user_id: str, now: datetime) -> UserRecord | None:
        """Disable the account at ``now``, unless it is disabled already; the account as
        it now is, or None if there is no such account."""
        ...

    def insert_login_failure(self, user_id: str, client: str, at: datetime) -> None:
        """Record a wrong password for the user id tried, from ``client``, at ``at``."""
        ...

    def login_failures_since(
        self, user_id: str, client: str, since: datetime, limit: int
    ) -> tuple[list[datetime], list[datetime]]:
        """The newest ``limit`` failed log-ins since ``since`` for the user id and for
        the client, each newest first."""
        ...

    def clear_login_failures(self, user_id: str, before: datetime) -> None:
        """Forget the user's failed log-ins (after a right password), and everyone's
        older than ``before`` (out of every window)."""
        ...

    def insert_api_token(self, values: Mapping[str, Any]) -> ApiTokenRecord:
        """A new token (``api_tokens`` columns), as stored with its id; ``secret_hash``
        is unique."""
        ...

    def api_token(self, token_id: int) -> ApiTokenRecord | None:
        """The token with this id (revoked or not), or None — also for an id no row can
        have."""
        ...

    def api_token_by_hash(self, secret_hash: str) -> ApiTokenRecord | None:
        """The token whose secret hashes to ``secret_hash``, or None."""
        ...

    def api_tokens(self, *, include_revoked: bool) -> list[ApiTokenRecord]:
        """Every token (not revoked, unless ``include_revoked``), oldest first."""
        ...

    def revoke_api_token(self, token_id: int, now: datetime) -> ApiTokenRecord | None:
        """Revoke the token at ``now``, unless it is revoked already; the token as it now
        is, or None if there is no such token (also for an id no row can have)."""
        ...

    def touch_api_token(self, token_id: int, now: datetime) -> None:
        """Note that the token was used at ``now``."""
        ...


class AuditTx(Protocol):
    """The tamper-evident history (``engine/audit.py``): the rows as stored, with their
    hashes, and the days' anchors."""

    def audit_cases(
        self, after: int, limit: int, cases: Sequence[int] | None = None
    ) -> list[tuple[int, str, int]]:
        """(id, number, version) of the next ``limit`` cases by id after ``after`` (of
        ``cases`` only, if given)."""
        ...

    def audit_rows(self, case_ids: Sequence[int]) -> dict[int, list[StoredRow]]:
        """Every history row of each case, as stored, by case id."""
        ...

    def day_rows(self, start: datetime, end: datetime) -> list[tuple[str, int, str]]:
        """(case number, seq, hash) of every history row recorded in [start, end)."""
        ...

    def first_history_at(self) -> datetime | None:
        """When the oldest history row was recorded; None if there is none."""
        ...

    def anchors(self) -> list[Anchor]:
        """Every sealed day's anchor, oldest first."""
        ...

    def insert_anchor(self, anchor: Anchor) -> None:
        """Seal a day; a day sealed already fails on the key."""
        ...


class BackupTx(Protocol):
    """Cases exported as JSON-ready documents and imported back (``engine/backups.py``,
    ``store/export.py``): a document is the case row by its number and every row of its
    own tables, without the database's ids."""

    def case_ids(self, after: int, limit: int) -> list[int]:
        """The ids of up to ``limit`` cases past id ``after``, by id."""
        ...

    def export_cases(self, ids: Sequence[int]) -> list[dict[str, Any]]:
        """The documents of the cases ``ids`` (those that exist), by id: ``case`` (its
        row) and one list of rows per table of ``export.CASE_TABLES``, each in key
        order; every value JSON (instants ISO 8601 UTC with microseconds, dates ISO,
        decimals as strings), the same on every database."""
        ...

    def existing_numbers(self, numbers: Sequence[str]) -> set[str]:
        """Those of ``numbers`` that are numbers of stored cases."""
        ...

    def import_case(self, doc: Mapping[str, Any]) -> dict[str, int]:
        """Store a document ``export_cases`` gave (its case number not stored yet), its
        rows given new ids; how many rows of each table were written (``cases``: 1).
        ImportRefused (``malformed``, naming the row and column) if it is not such a
        document; the transaction must then be rolled back."""
        ...

    def raise_case_counters(self, numbers: Sequence[str]) -> None:
        """Raise the case counters so that no case opened later is given one of
        ``numbers`` (imported cases' numbers): each prefix and day's last number to
        the highest of them, where it is lower."""
        ...


class StoreTx(
    TimerTx,
    InboundTx,
    CalendarTx,
    ReportTx,
    DeskTx,
    PolicyTx,
    OutboxTx,
    AccountTx,
    AuditTx,
    BackupTx,
    Protocol,
):
    """Every concern at once: what ``Store.read()`` and ``Store.write()`` give. A module
    takes the narrowest of the interfaces above that it needs."""
