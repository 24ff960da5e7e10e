"""Inbound insurer messages (issue #12): receive one, find its case, fire its event as
the insurer — or keep it for a person, with the reason; never drop it.

A message is identified by (insurer, message id). The first delivery is decided and
stored together with the event it fired, in one transaction; a resend finds the row
and is answered from it, so it changes nothing and gets the same answer. The same id
with other content is not a resend and is refused (:class:`MessageIdReused`).

How a message finds its case: by our case number when it quotes one, or by the
insurer's own reference through the ``insurer_reference`` search key (an indexed
column holding ``"<insurer>:<reference>"``, which the workflow writes at hand-over).
Which event it fires: the case's workflow maps each kind of message to an event
(``[workflow.inbound]``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from . import limits
from .calendar_sync import CalendarSync
from .definitions import insurer_reference
from .errors import (
    ConflictError,
    EventNotAllowed,
    GuardRefused,
    InboundNotFound,
    InboundSettled,
    InvalidData,
    MessageIdReused,
    NotPermitted,
    Problem,
    UnknownEvent,
)
from .registry import Registry
from .store import InboundTx, IntegrityViolation, Store
from .store.rows import InboundRecord
from .transition import Stepper
from .types import (
    INBOUND_STATUSES,
    Actor,
    Case,
    InboundMessage,
    InboundResult,
    InsurerMessage,
)

#: The limit of each identifying field (engine/limits.py: the columns' sizes).
_LIMITS = {
    "insurer": limits.INSURER,
    "message_id": limits.MESSAGE_ID,
    "kind": limits.MESSAGE_KIND,
    "case_number": limits.CASE_NUMBER,
    "reference": limits.REFERENCE,
}


def insurer_actor(insurer: str) -> Actor:
    """Who fires an insurer's events: the system, as that insurer (the history says so)."""
    return Actor.system(f"insurer:{insurer}")


def fingerprint(message: InsurerMessage) -> str:
    """The message's content (kind, case number, reference, payload; keys sorted): a
    resend has the same, another message under a reused id does not."""
    canonical = orjson.dumps(
        [message.kind, message.case_number, message.reference, message.payload],
        option=orjson.OPT_SORT_KEYS,
        default=str,
    )
    return hashlib.sha256(canonical).hexdigest()


def checked(message: InsurerMessage) -> InsurerMessage:
    """The message with its fields stripped, or InvalidData naming each bad field (such
    a message cannot even be stored: it is refused, and the sender told why).

    A control character or NUL in any of it — its payload's text included — refuses
    the message rather than being stripped from it: what an insurer sent is kept as
    sent or not at all (engine/limits.py)."""
    problems = []
    values: dict[str, str | None] = {}
    for name, limit in _LIMITS.items():
        raw = getattr(message, name)
        value = raw.strip() if isinstance(raw, str) else raw
        required = name in ("insurer", "message_id", "kind")
        if value is not None and not isinstance(value, str):
            problems.append(Problem(name, f"must be text, not {type(raw).__name__}"))
        elif required and not value:
            problems.append(Problem(name, "is required"))
        elif value and (problem := limit.problem(value, name)) is not None:
            problems.append(problem)
        values[name] = value or None
    if not isinstance(message.payload, Mapping):
        problems.append(Problem("payload", "must be an object (the event's data)"))
    else:
        problems += limits.data_problems(message.payload, "payload")
    limits.refuse("an insurer message", problems)
    return InsurerMessage(
        insurer=values["insurer"] or "",
        message_id=values["message_id"] or "",
        kind=values["kind"] or "",
        case_number=values["case_number"],
        reference=values["reference"],
        payload=dict(message.payload),
    )


class Inbound:
    """Receives, lists and resolves insurer messages for the facade."""

    def __init__(
        self, store: Store, registry: Registry, step: Stepper, calendar_sync: CalendarSync
    ) -> None:
        self.store = store
        self.registry = registry
        self.step = step
        self.calendar_sync = calendar_sync

    # --- receiving ----------------------------------------------------------------------
    def receive(self, message: InsurerMessage, now: datetime) -> tuple[InboundResult, str | None]:
        """The answer, and the workflow of the case its event fired on now (None when
        nothing fired: stored for a person, or a resend answered from the row)."""
        message = checked(message)
        fp = fingerprint(message)
        try:
            with self.store.write() as tx:
                self.calendar_sync.sync(tx, lock=True)  # before any row lock (see fire)
                prior = self._prior(tx, message, fp)
                if prior is not None:
                    return prior, None
                return self._decide(tx, message, fp, now)
        except (*IntegrityViolation, ConflictError):
            # A concurrent delivery of the same message committed first: answer as it was.
            with self.store.read() as tx:
                prior = self._prior(tx, message, fp)
            if prior is None:
                raise
            return prior, None

    def _prior(self, tx: InboundTx, message: InsurerMessage, fp: str) -> InboundResult | None:
        row = tx.inbound_by_message_id(message.insurer, message.message_id)
        if row is None:
            return None
        if row.fingerprint != fp:
            raise MessageIdReused(message.insurer, message.message_id)
        return InboundResult.from_json({**row.result, "id": row.id})

    def _decide(
        self, tx: InboundTx, message: InsurerMessage, fp: str, now: datetime
    ) -> tuple[InboundResult, str | None]:
        case, code, reason = correlate(tx, message)
        event: str | None = None
        state: str | None = None
        if case is not None:
            event, code, reason, fired = self._fire(tx, case, message, now)
            if fired is not None:
                state = fired.state
        status = "unresolved" if code is not None else "applied"
        answer = {  # what every resend is answered (with the row's id)
            "insurer": message.insurer,
            "message_id": message.message_id,
            "status": status,
            "case_number": case.number if case is not None else None,
            "event": event,
            "state": state,
            "reason_code": code,
            "reason": reason,
        }
        row_id = tx.insert_inbound(
            {
                "kind": message.kind,
                "reference": message.reference,
                "payload": dict(message.payload),
                "fingerprint": fp,
                "received_at": now,
                "case_id": case.id if case is not None else None,
                "result": answer,
                **answer,
                "case_number": message.case_number,  # as the insurer quoted it
            }
        )
        fired_in = case.workflow if case is not None and code is None else None
        return InboundResult.from_json({**answer, "id": row_id}), fired_in

    def _fire(
        self, tx: InboundTx, case: Case, message: InsurerMessage, now: datetime
    ) -> tuple[str | None, str | None, str | None, Case | None]:
        """Fire the message's event on ``case`` under a savepoint: (event, reason code,
        reason, the case afterwards) — a refusal leaves the transaction as it was."""
        definition = self.registry.get(case.workflow, case.workflow_version)
        event = definition.inbound.get(message.kind)
        if event is None:
            kinds = ", ".join(sorted(definition.inbound)) or "(none)"
            return (
                None,
                "unknown_kind",
                f"the {case.workflow} workflow takes no insurer message of kind "
                f"{message.kind!r}; it takes: {kinds}",
                None,
            )
        try:
            with tx.savepoint():
                fired, _notes = self.step.apply(
                    tx, case, event, insurer_actor(message.insurer), message.payload, now
                )
        except EventNotAllowed as exc:
            return event, "not_allowed", str(exc), None
        except InvalidData as exc:
            return event, "invalid", str(exc), None
        except (GuardRefused, NotPermitted, UnknownEvent) as exc:
            return event, "refused", str(exc), None
        return event, None, None, fired

    # --- reading --------------------------------------------------------------------------
    def list(self, status: str | None, limit: int, offset: int) -> list[InboundMessage]:
        if status is not None and status not in INBOUND_STATUSES:
            raise InvalidData(
                "inbound_messages",
                [Problem("status", f"{status!r} is not one of {', '.join(INBOUND_STATUSES)}")],
            )
        if limit < 1 or offset < 0:
            raise InvalidData(
                "inbound_messages", [Problem("limit", "limit must be >= 1 and offset >= 0")]
            )
        with self.store.read() as tx:
            rows = tx.list_inbound(status=status, limit=limit, offset=offset)
        return [_message(r) for r in rows]

    # --- a person resolves -------------------------------------------------------------------
    def retry(
        self, ref: int, case_ref: int | str, by: str, now: datetime
    ) -> tuple[InboundResult, str]:
        """Fire the stored message's event on the named case, as the insurer; the message
        is then ``resolved`` by ``by``. A refusal raises, and the message stays."""
        by = _person(by)
        with self.store.write() as tx:
            self.calendar_sync.sync(tx, lock=True)
            row = self._unresolved(tx, ref)
            case = tx.load_case(case_ref)
            definition = self.registry.get(case.workflow, case.workflow_version)
            event = definition.inbound.get(row.kind)
            if event is None:
                raise InvalidData(
                    f"insurer message {ref}",
                    [
                        Problem(
                            "kind",
                            f"the {case.workflow} workflow takes no insurer message of kind "
                            f"{row.kind!r}; dismiss it instead",
                        )
                    ],
                )
            fired, _notes = self.step.apply(
                tx, case, event, insurer_actor(row.insurer), row.payload, now
            )
            tx.settle_inbound(
                ref,
                {
                    "status": "resolved",
                    "case_id": case.id,
                    "event": event,
                    "resolved_at": now,
                    "resolved_by": by,
                    "resolution": f"retried against {case.number}",
                },
            )
            result = InboundResult(
                id=ref,
                insurer=row.insurer,
                message_id=row.message_id,
                status="resolved",
                case_number=case.number,
                event=event,
                state=fired.state,
            )
        return result, case.workflow

    def dismiss(self, ref: int, reason: str, by: str, now: datetime) -> InboundMessage:
        by = _person(by)
        if not isinstance(reason, str) or not reason.strip():
            raise InvalidData(
                f"dismissing insurer message {ref}",
                [Problem("reason", "say why the message is set aside (it stays on record)")],
            )
        limits.refuse(
            f"dismissing insurer message {ref}",
            limits.text_problems({"reason": (limits.DATA_TEXT, reason)}),
        )
        with self.store.write() as tx:
            self._unresolved(tx, ref)
            tx.settle_inbound(
                ref,
                {
                    "status": "dismissed",
                    "resolved_at": now,
                    "resolved_by": by,
                    "resolution": reason.strip(),
                },
            )
        return self.get(ref)

    def get(self, ref: int) -> InboundMessage:
        with self.store.read() as tx:
            rows = tx.list_inbound(ref=ref, limit=1, offset=0)
        if not rows:
            raise InboundNotFound(ref)
        return _message(rows[0])

    def _unresolved(self, tx: InboundTx, ref: int) -> Any:
        row = tx.inbound_row(ref, lock=True)
        if row is None:
            raise InboundNotFound(ref)
        if row.status != "unresolved":
            raise InboundSettled(ref, row.status, row.resolved_by)
        return row


def correlate(tx: InboundTx, message: InsurerMessage) -> tuple[Case | None, str | None, str | None]:
    """The one case the message means: (case, None, None), or (None | the case, reason
    code, reason) when there is none or more than one."""
    by_number = tx.find_cases(number=message.case_number, limit=1) if message.case_number else []
    by_reference: list[Case] = []
    if message.reference:
        key = insurer_reference(message.insurer, message.reference)
        by_reference = tx.find_cases(insurer_reference=key, limit=3)
    if by_number:
        case = by_number[0]
        if by_reference and all(c.id != case.id for c in by_reference):
            others = ", ".join(c.number for c in by_reference)
            return (
                None,
                "ambiguous",
                f"case number {message.case_number} and reference {message.reference!r} "
                f"({others}) name different cases",
            )
        return case, None, None
    if len(by_reference) == 1:
        return by_reference[0], None, None
    if by_reference:
        numbers = ", ".join(c.number for c in by_reference)
        return (
            None,
            "ambiguous",
            f"reference {message.reference!r} of {message.insurer} is on several cases: {numbers}",
        )
    asked = []
    if message.case_number:
        asked.append(f"case number {message.case_number}")
    if message.reference:
        asked.append(f"reference {message.reference!r} of {message.insurer}")
    return (
        None,
        "no_case",
        f"no case has {' or '.join(asked)}" if asked else "it names no case number or reference",
    )


def _person(by: str) -> str:
    if not isinstance(by, str) or not by.strip():
        raise InvalidData(
            "resolving an insurer message", [Problem("by", "say who resolves it (a user id)")]
        )
    limits.refuse("resolving an insurer message", limits.text_problems({"by": (limits.PERSON, by)}))
    return by.strip()


def _message(r: InboundRecord) -> InboundMessage:
    return InboundMessage(
        id=r.id,
        insurer=r.insurer,
        message_id=r.message_id,
        kind=r.kind,
        case_number=r.case_number,
        reference=r.reference,
        payload=r.payload,
        received_at=r.received_at,
        status=r.status,
        reason_code=r.reason_code,
        reason=r.reason,
        case=r.matched_number,
        event=r.event,
        resolved_at=r.resolved_at,
        resolved_by=r.resolved_by,
        resolution=r.resolution,
    )
