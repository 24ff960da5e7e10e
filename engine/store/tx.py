"""The narrow interface a case operation needs from storage, inside one transaction.

Two implementations honour it, on SQLite and PostgreSQL alike, with the same
statements (``hot.HotStatements``): ``hot.HotTx``, the transaction
``Store.fire_transaction()`` gives ``open_case()`` and ``fire()`` (a DBAPI connection of
its own; on PostgreSQL in pipeline mode), and ``core.CoreTx`` (inside a SQLAlchemy
transaction, with the cold queries besides). ``tests/test_store_contract.py`` runs the
same contract against both on both databases and compares the rows they write.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from ..calendar import DeskYear
from ..types import Actor, Case, HistoryEntry
from .rows import DeadlineRow, OutboxRow, TimerArm


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
        number: str,
        workflow: str,
        workflow_version: int,
        state: str,
        data: Mapping[str, Any],
        now: datetime,
        keys: Mapping[str, str | None],
        org_unit: str | None = None,
    ) -> int:
        """A new case at version 1, created and updated ``now``, with its search keys
        (built-in ones as columns, a workflow's own as ``case_keys`` rows); its id."""
        ...

    def next_case_number(self, prefix: str, day: str) -> int:
        """The next sequence number of ``prefix`` on ``day``, unique across writers."""
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

    def desk_years(self) -> list[DeskYear]:
        """The current arrangement of every year the desk imported, with its days."""
        ...
