"""Timer draining: fire every timer due at the clock's now, each exactly once
(DESIGN.md §3.2), however many workers drain one database.

Timers are taken in batches — on PostgreSQL in one statement under ``FOR UPDATE SKIP
LOCKED``, elsewhere under a lease — and a batch's effects are recorded with set-based
statements in one commit; a batch that meets a concurrent change is retried one timer
at a time, and one bad timer never stops the others. A database that is down is not a
bad timer: :class:`StorageUnavailable` ends the run (what it committed stays; what it
leased is retaken when the lease runs out), and the worker tries again on its next tick.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from datetime import datetime, timedelta
from typing import Any

from . import faultpoints, timers
from .calendar_sync import CalendarSync
from .clock import Clock
from .errors import BaoflowError, ConflictError, StorageUnavailable, first_line
from .leases import Renew, Renewal
from .notices import outbox_rows
from .registry import Registry
from .store import IntegrityViolation, Store, TimerTx
from .store.rows import CaseBump, HistoryRow, InstanceProgress, OutboxRow
from .transition import Stepper
from .types import Actor, TimerRun

log = logging.getLogger("baoflow.engine")

_TIMER_ACTOR = Actor.system("timer").to_json()


class Drainer:
    """Fires due timers for one engine."""

    def __init__(
        self,
        store: Store,
        registry: Registry,
        stepper: Stepper,
        clock: Clock,
        calendar_sync: CalendarSync,
    ) -> None:
        self.store = store
        self.registry = registry
        self.stepper = stepper
        self.clock = clock
        self._calendar_sync = calendar_sync

    def run(
        self,
        *,
        worker: str | None = None,
        batch: int = 100,
        lease: timedelta = timedelta(seconds=10),
        limit: int | None = None,
    ) -> TimerRun:
        """Fire every timer due at the clock's now, each exactly once.

        Timers are leased in batches (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so
        several workers can drain one table; each effect commits on its own with the
        check that the timer is still pending and leased to this worker. A timer whose
        instance has ended (the case moved on) is skipped and the reason recorded on the
        timer; a case that changed meanwhile is released and retried on the next run.
        Nothing here raises for one bad timer: it is logged and released.

        Raises:
            StorageUnavailable: the database is down or the connection was lost; the
                timers fired before it stay fired.
        """
        with self.store.pinned():
            with self.store.write() as tx:  # on the pinned connection: a worker sees an
                self._calendar_sync.sync(tx, lock=False)  # import within a tick
            return self._drain(worker, batch, lease, limit)

    def _drain(
        self, worker: str | None, batch: int, lease: timedelta, limit: int | None
    ) -> TimerRun:
        me = worker or f"worker-{os.getpid()}-{id(self):x}"
        fired = skipped = retried = 0
        worst = 0.0
        renew = self._renewer(me)
        while limit is None or fired + skipped < limit:
            # Each claim reads the clock: its lease runs from when it was taken, and each
            # effect is stamped with the time it happened.
            now = self.clock.now()
            take = batch if limit is None else min(batch, limit - fired - skipped)
            locked = (
                self._fire_locked_batch(now, me, take, lease)
                if self.store.locks_timer_batches
                else None
            )
            done: tuple[list[Any], int, list[Any]] | None
            with ExitStack() as leases:
                if locked is not None:
                    claimed, done = locked
                    if not claimed:
                        break
                    held = None
                else:
                    # SQLite, or a PostgreSQL batch that met a concurrent change: lease
                    # first, then fire the batch (and, if that conflicts too, one by one),
                    # the leases renewed from the claim on (engine/leases.py).
                    with self.store.write() as tx:
                        claimed = tx.claim_due_timers(now, me, now + lease, take)
                    if not claimed:
                        break
                    ids = [t.id for t in claimed]
                    held = leases.enter_context(Renewal(renew, ids, lease, self.clock))
                    done = self._fire_leased_batch(claimed, me, now)
                batch_retried = 0
                individually = list(claimed)
                if done is not None:
                    batch_fired, batch_skipped, individually = done
                    fired += len(batch_fired)
                    skipped += batch_skipped
                    for timer in batch_fired:
                        worst = max(worst, (now - timer.due_at).total_seconds())
                if held is None:  # what the locked batch leased for one-by-one firing
                    ids = [t.id for t in individually]
                    held = leases.enter_context(Renewal(renew, ids, lease, self.clock))
                else:  # the batch's own are done with
                    later = {t.id for t in individually}
                    for timer in claimed:
                        if timer.id not in later:
                            held.done(timer.id)
                for timer in individually:
                    outcome = self._fire_one(timer, me, now)
                    held.done(timer.id)
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

    def _renewer(self, me: str) -> Renew:
        def renew(ids: Sequence[int], until: datetime) -> int:
            with self.store.write() as tx:
                return tx.renew_timers(ids, me, until)

        return renew

    def _fire_leased_batch(
        self, claimed: list[Any], me: str, now: datetime
    ) -> tuple[list[Any], int, list[Any]] | None:
        """The leased batch in one transaction (:meth:`_fire_batch`), or None to take
        its timers one by one: a case changed under it, or a timer of it failed."""
        try:
            with self.store.write() as tx:
                rows = tx.timer_batch([timer.id for timer in claimed])
                return self._fire_batch(tx, rows, me, now)
        except (ConflictError, *IntegrityViolation) as race:
            # a case changed under the batch, or another worker's write got there first
            # (an expected race): one by one
            log.info(
                "a batch of %d timers met a concurrent change: %s",
                len(claimed),
                first_line(race),
            )
        except StorageUnavailable:
            raise  # not the batch's fault: one by one would fail alike
        except Exception:
            log.exception("batch of %d timers failed; taking them one by one", len(claimed))
        return None

    def _fire_one(self, timer: Any, me: str, now: datetime) -> str:
        """One leased timer in a transaction of its own: its outcome, "retry" if it
        failed (logged) or met a concurrent change."""
        try:
            with self.store.write() as tx:
                return self._fire_timer(tx, timer, me, now)
        except StorageUnavailable:
            raise
        except (ConflictError, *IntegrityViolation) as race:  # another writer got there
            log.info(
                "timer %s (%s on case %s) met a concurrent change; released for a retry: %s",
                timer.id,
                timer.rule,
                timer.case_id,
                first_line(race),
            )
        except Exception:  # one bad timer must never stop the worker
            log.exception(
                "timer %s (%s on case %s) failed; released for a retry",
                timer.id,
                timer.rule,
                timer.case_id,
            )
        return "retry"

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
        except StorageUnavailable:
            raise
        except Exception:  # one bad timer must not stop the worker: the leased path
            log.exception("a locked batch failed; taking the leased path")  # isolates it
            return None
        return claimed, done

    def _fire_batch(
        self,
        tx: TimerTx,
        claimed: list[Any],
        me: str | None,
        now: datetime,
    ) -> tuple[list[Any], int, list[Any]]:
        """A whole claimed batch in one transaction, with set-based statements.

        ``claimed`` are rows of ``TimerTx.timer_batch`` (timer, case and instance in one
        read; the case data is not read), leased to ``me``; or, with ``me=None``, rows of
        ``TimerTx.take_due_timer_batch``, already marked fired in this transaction. Returns (timers fired, how many skipped, timers
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
        bumps: dict[int, CaseBump] = {}
        instances: dict[tuple[int, str, int], InstanceProgress] = {}
        history: list[HistoryRow] = []
        outbox: list[OutboxRow] = []
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
                    "number": row.number,
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
        faultpoints.point("timers.batch_recorded")
        return fired, len(skip_ids), later

    def _timer_check(self, row: Any) -> tuple[str | None, Any]:
        """(why the timer must not take effect or None, its rule) for a batch row."""
        if row.number is None:
            return "the case no longer exists", None
        definition = self.registry.get(row.workflow, row.workflow_version)
        rule = timers.rule_named(definition, row.rule)
        if rule is None or row.d_status is None:
            return f"the rule is not in {definition.name} v{definition.version}", None
        if row.d_status != "running":
            return (
                f"the deadline is {row.d_status}: the case moved on (now {row.state})",
                None,
            )
        return None, rule

    def _fire_timer(self, tx: TimerTx, timer: Any, me: str, now: datetime) -> str:
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
        bump = CaseBump(
            id=row.case_id, expected=row.version, version=seq, changes=dict(eff.changes), at=now
        )
        if tx.bump_cases([bump]) != 1:
            raise ConflictError(str(row.number), row.version, tx.current_version(row.case_id))
        tx.append_history(
            case_id=row.case_id,
            number=str(row.number),
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
                with tx.savepoint():
                    self.stepper.apply(tx, after, eff.fire, Actor.system("escalation"), {}, now)
            except StorageUnavailable:
                raise  # the database, not the escalation: the whole effect waits
            except BaoflowError as exc:
                log.warning("escalation of %s could not fire %r: %s", row.number, eff.fire, exc)
        return "fired"


def _priority(raw: Any) -> int:
    """The case's ``priority`` as ``raise_priority`` counts it (absent or not a number: 0)."""
    try:
        return int(raw or 0)
    except (TypeError, ValueError):
        return 0


def _progress(state: InstanceProgress, changes: Mapping[str, Any]) -> None:
    """Fold one effect's instance changes into the batch's running view of it."""
    state["warned"] = max(state["warned"], changes.get("warned", 0))
    state["level"] = max(state["level"], changes.get("level", 0))
    if state["breached_at"] is None and "breached_at" in changes:
        state["breached_at"] = changes["breached_at"]
