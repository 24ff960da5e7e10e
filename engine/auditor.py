"""Checking the tamper-evident history against the store, and sealing the days
(``engine/audit.py`` says what a hash and an anchor are).

``verify`` walks the cases by id, 500 at a time, and checks each one's chain; over
the whole database it also recomputes each sealed day's anchor from that day's rows
and compares it with the one sealed (and with any an auditor noted down). ``seal``
seals each day that is over — ``GRACE`` past its midnight in the desk's time zone, so
no transaction that began in it is still to commit — and not sealed yet.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta

from . import audit
from .audit import Anchor, AnchorBreak, AuditReport, ChainBreak
from .clock import SHANGHAI
from .store import IntegrityViolation, Store

#: how long after a day's midnight it is sealed
GRACE = timedelta(minutes=10)
_BATCH = 500


def verify(
    store: Store,
    cases: Sequence[int] | None = None,
    *,
    noted: Mapping[date, str] | None = None,
) -> AuditReport:
    """Every break in the chains of ``cases`` (ids; all if None), and over the whole
    database every sealed day whose anchor its rows no longer give, or that differs
    from the one ``noted`` for it."""
    breaks: list[ChainBreak] = []
    checked = rows = 0
    after = 0
    while True:
        with store.read() as tx:
            batch = tx.audit_cases(after, _BATCH, cases)
            if not batch:
                break
            stored = tx.audit_rows([case_id for case_id, _, _ in batch])
        for case_id, number, version in batch:
            breaks += audit.verify_case(number, version, stored[case_id])
            rows += len(stored[case_id])
        checked += len(batch)
        after = batch[-1][0]
    anchors: list[Anchor] = []
    anchor_breaks: list[AnchorBreak] = []
    if cases is None:
        anchors, anchor_breaks = _check_anchors(store, noted or {})
    return AuditReport(checked, rows, len(anchors), tuple(breaks), tuple(anchor_breaks))


def _check_anchors(
    store: Store, noted: Mapping[date, str]
) -> tuple[list[Anchor], list[AnchorBreak]]:
    with store.read() as tx:
        anchors = tx.anchors()
    breaks: list[AnchorBreak] = []
    prev, expected_day = audit.FIRST_ANCHOR, None
    for sealed in anchors:
        if expected_day is not None and sealed.day != expected_day:
            breaks.append(
                AnchorBreak(expected_day, f"no anchor from here to {sealed.day}: removed")
            )
        with store.read() as tx:
            day_rows = tx.day_rows(*day_span(sealed.day))
        again = audit.anchor(prev, sealed.day, day_rows)
        if again != sealed.hash:
            breaks.append(
                AnchorBreak(
                    sealed.day,
                    f"its rows ({len(day_rows)}, sealed with {sealed.rows}) no longer give "
                    "its anchor: a row of the day was changed, removed or added, or the "
                    "anchor itself was",
                )
            )
        prev, expected_day = sealed.hash, sealed.day + timedelta(days=1)
    by_day = {a.day: a for a in anchors}
    for day, hash_ in sorted(noted.items()):
        sealed_day = by_day.get(day)
        if sealed_day is None:
            breaks.append(AnchorBreak(day, "noted down, but no anchor is sealed for it"))
        elif sealed_day.hash != hash_.strip().lower():
            breaks.append(
                AnchorBreak(day, f"sealed as {sealed_day.hash}, not as noted down: {hash_}")
            )
    return anchors, breaks


def day_span(day: date) -> tuple[datetime, datetime]:
    """[start, end) of ``day`` in the desk's time zone."""
    start = datetime.combine(day, time(), SHANGHAI)
    return start, start + timedelta(days=1)


def seal(store: Store, now: datetime) -> list[Anchor]:
    """Seal every day over by ``now`` and not sealed yet (from the oldest row's day, or
    the day after the last sealed); the anchors sealed. Another worker sealing at the
    same time makes this one seal nothing."""
    last_over = (now - GRACE).astimezone(SHANGHAI).date() - timedelta(days=1)
    with store.read() as tx:
        anchors = tx.anchors()
        first_at = tx.first_history_at()
    if anchors:
        prev, day = anchors[-1].hash, anchors[-1].day + timedelta(days=1)
    elif first_at is not None:
        prev, day = audit.FIRST_ANCHOR, audit.desk_day(first_at)
    else:
        return []
    if day > last_over:
        return []  # nothing to seal: no write transaction
    sealed: list[Anchor] = []
    try:
        with store.write() as tx:
            while day <= last_over:
                rows = tx.day_rows(*day_span(day))
                anchor = Anchor(day, audit.anchor(prev, day, rows), len(rows), now)
                tx.insert_anchor(anchor)
                sealed.append(anchor)
                prev, day = anchor.hash, day + timedelta(days=1)
    except IntegrityViolation:
        return []  # sealed by another meanwhile
    return sealed
