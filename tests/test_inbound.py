"""Inbound insurer messages (issue #12): after hand-over the insurer's receipt, its
request for more materials, its decision and its payment arrive as messages; each
fires its event on the case it names, as the system acting for the insurer, once —
and a message that cannot be applied is kept for a person, never dropped.

The `eng` fixture runs each test on SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from baoflow.engine import (
    Engine,
    EventNotAllowed,
    FakeClock,
    InboundNotFound,
    InboundSettled,
    InsurerMessage,
    InvalidData,
    MessageIdReused,
)
from baoflow.engine.store import tables as t

from tests.conftest import HANDLER
from tests.test_timers import to_materials_complete

RECEIVED = "2026-05-08T10:00:00+08:00"
DECIDED = {"outcome": "approved", "amount": "8000.00", "decided_at": "2026-05-20T15:00:00+08:00"}
PAID = {"amount": "8000.00", "paid_at": "2026-05-25T11:00:00+08:00"}


def handed_over(eng: Engine, reference: str | None = "PA-2026-0001", code: str = "pingan") -> Any:
    case = to_materials_complete(eng)
    handover: dict[str, Any] = {"insurer": "中国平安财产保险", "insurer_code": code}
    if reference is not None:
        handover["reference"] = reference
    return eng.fire(case.id, "hand_over", HANDLER, handover)


def msg(message_id: str, kind: str, payload: dict[str, Any], **where: Any) -> InsurerMessage:
    return InsurerMessage("pingan", message_id, kind, payload=payload, **where)


def table_counts(eng: Engine) -> dict[str, int]:
    with eng.store.read() as tx:
        return {
            name: tx.conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            for name, table in (
                ("history", t.history),
                ("inbound", t.inbound_messages),
                ("outbox", t.outbox),
                ("timers", t.timers),
            )
        }


def test_each_kind_fires_its_event_as_the_insurer(eng: Engine, clock: FakeClock) -> None:
    case = handed_over(eng)

    receipt = eng.receive_insurer_message(
        msg("m1", "receipt", {"received_at": RECEIVED}, reference="PA-2026-0001")
    )
    assert (receipt.status, receipt.event, receipt.state) == (
        "applied",
        "insurer_confirms_receipt",
        "handed_over",
    )
    assert receipt.case_number == case.number

    asked = eng.receive_insurer_message(
        msg("m2", "materials_request", {"items": ["medical_records"]}, case_number=case.number)
    )
    assert (asked.event, asked.state) == ("insurer_requests_materials", "awaiting_materials")
    # The further materials' receipt ends the insurer's pause (解释(二)第十五条).
    again = eng.receive_insurer_message(
        msg("m3", "receipt", {"received_at": RECEIVED}, reference="PA-2026-0001")
    )
    assert again.state == "handed_over"

    decided = eng.receive_insurer_message(msg("m4", "decision", DECIDED, case_number=case.number))
    assert (decided.event, decided.state) == ("insurer_decides", "decided")
    paid = eng.receive_insurer_message(msg("m5", "payment", PAID, reference="PA-2026-0001"))
    assert (paid.event, paid.state) == ("insurer_pays", "closed")

    after = eng.get_case(case.id)
    assert after.data["outcome"] == {"outcome": "paid", "amount": "8000.00"}
    assert len(after.data["insurer_receipts"]) == 2
    history = eng.history(case.id)[-5:]
    assert [h.event for h in history] == [
        "insurer_confirms_receipt",
        "insurer_requests_materials",
        "insurer_confirms_receipt",
        "insurer_decides",
        "insurer_pays",
    ]
    assert {h.actor.id for h in history} == {"insurer:pingan"}
    assert all(h.actor.is_system for h in history)
    assert [m.status for m in eng.inbound_messages()] == ["applied"] * 5


def test_a_decision_stops_the_decision_clock_and_starts_the_payment_clock(eng: Engine) -> None:
    case = handed_over(eng)
    eng.receive_insurer_message(msg("d1", "decision", DECIDED, case_number=case.number))
    running = {d.rule: d.status for d in eng.deadlines(case.id)}
    assert running["insurer_decision"] == "met"
    assert running["advance_payment"] == "met"
    assert running["insurer_payment"] == "running"  # 10 days from the agreement (第二十三条)


def test_a_declined_claim_has_no_payment_and_is_closed_by_the_desk(eng: Engine) -> None:
    case = handed_over(eng)
    declined = {"outcome": "declined", "reasons": "不属于保险责任", "decided_at": RECEIVED}
    eng.receive_insurer_message(msg("d1", "decision", declined, case_number=case.number))
    assert "insurer_payment" not in {d.rule for d in eng.deadlines(case.id)}
    paid = eng.receive_insurer_message(msg("p1", "payment", PAID, case_number=case.number))
    assert paid.status == "unresolved" and paid.reason_code == "refused"
    assert "declined" in (paid.reason or "")
    closed = eng.fire(case.id, "close", HANDLER, {"outcome": "declined"})
    assert closed.state == "closed"


def test_a_resend_is_answered_as_the_first_time_and_changes_nothing(eng: Engine) -> None:
    case = handed_over(eng)
    message = msg("m1", "decision", DECIDED, case_number=case.number)
    first = eng.receive_insurer_message(message)
    before, counts = eng.get_case(case.id), table_counts(eng)

    # The same content with its keys in another order is the same message.
    resent = eng.receive_insurer_message(
        msg("m1", "decision", dict(reversed(DECIDED.items())), case_number=case.number)
    )
    assert resent == first
    assert eng.get_case(case.id).version == before.version
    assert table_counts(eng) == counts


def test_an_unresolved_message_is_answered_the_same_when_resent(eng: Engine) -> None:
    first = eng.receive_insurer_message(msg("x1", "receipt", {}, reference="NOPE"))
    counts = table_counts(eng)
    assert eng.receive_insurer_message(msg("x1", "receipt", {}, reference="NOPE")) == first
    assert table_counts(eng) == counts


def test_a_reused_message_id_with_other_content_is_refused(eng: Engine) -> None:
    case = handed_over(eng)
    eng.receive_insurer_message(msg("m1", "decision", DECIDED, case_number=case.number))
    counts = table_counts(eng)
    with pytest.raises(MessageIdReused, match="pingan already sent message 'm1'"):
        eng.receive_insurer_message(
            msg("m1", "decision", {**DECIDED, "amount": "9000.00"}, case_number=case.number)
        )
    assert table_counts(eng) == counts


def test_the_reference_is_the_insurers_own_not_anothers(eng: Engine) -> None:
    handed_over(eng, reference="R-1", code="cpic")
    other = InsurerMessage("pingan", "m1", "receipt", reference="R-1", payload={})
    result = eng.receive_insurer_message(other)
    assert (result.status, result.reason_code) == ("unresolved", "no_case")
    assert result.reason == "no case has reference 'R-1' of pingan"


def test_the_reference_is_an_indexed_search_key(eng: Engine) -> None:
    case = handed_over(eng, reference="PA-7")
    with eng.store.read() as tx:
        stored = tx.conn.execute(
            sa.select(t.cases.c.insurer_reference).where(t.cases.c.id == case.id)
        ).scalar_one()
    assert stored == "pingan:PA-7"
    assert any(list(ix.columns) == [t.cases.c.insurer_reference] for ix in t.cases.indexes)


def test_a_message_for_no_case_is_kept_and_resolved_against_a_named_case(
    eng: Engine, clock: FakeClock
) -> None:
    case = handed_over(eng, reference=None)  # the desk did not record the reference
    stored = eng.receive_insurer_message(
        msg("m9", "receipt", {"received_at": RECEIVED}, reference="PA-2026-0009")
    )
    assert (stored.status, stored.reason_code, stored.case_number) == (
        "unresolved",
        "no_case",
        None,
    )
    (waiting,) = eng.inbound_messages(status="unresolved")
    assert (waiting.id, waiting.kind, waiting.reference) == (stored.id, "receipt", "PA-2026-0009")

    resolved = eng.resolve_inbound(stored.id, case.number, by="h01")
    assert (resolved.status, resolved.event, resolved.case_number) == (
        "resolved",
        "insurer_confirms_receipt",
        case.number,
    )
    assert eng.history(case.id)[-1].actor.id == "insurer:pingan"
    settled = eng.inbound_message(stored.id)
    assert (settled.status, settled.resolved_by, settled.case) == ("resolved", "h01", case.number)
    assert eng.inbound_messages(status="unresolved") == []
    with pytest.raises(InboundSettled, match="is resolved by h01"):
        eng.resolve_inbound(stored.id, case.number, by="h01")
    # The insurer's resend still gets the answer it got first.
    assert (
        eng.receive_insurer_message(
            msg("m9", "receipt", {"received_at": RECEIVED}, reference="PA-2026-0009")
        )
        == stored
    )


def test_a_message_not_allowed_now_is_kept_with_the_reason(eng: Engine) -> None:
    case = handed_over(eng)
    early = eng.receive_insurer_message(msg("p1", "payment", PAID, case_number=case.number))
    assert (early.status, early.reason_code, early.case_number) == (
        "unresolved",
        "not_allowed",
        case.number,
    )
    assert "it is in 'handed_over'" in (early.reason or "")
    assert eng.get_case(case.id).state == "handed_over"
    (kept,) = eng.inbound_messages(status="unresolved")
    assert kept.case == case.number and kept.event == "insurer_pays"

    # Retrying while it is still not allowed refuses, and the message stays.
    with pytest.raises(EventNotAllowed):
        eng.resolve_inbound(kept.id, case.number, by="h01")
    assert eng.inbound_message(kept.id).status == "unresolved"

    dismissed = eng.dismiss_inbound(kept.id, "保险公司误发，已电话确认", by="s01")
    assert (dismissed.status, dismissed.resolved_by, dismissed.resolution) == (
        "dismissed",
        "s01",
        "保险公司误发，已电话确认",
    )


def test_invalid_data_and_unknown_kinds_are_kept_too(eng: Engine) -> None:
    case = handed_over(eng)
    bad = eng.receive_insurer_message(
        msg("b1", "decision", {"outcome": "maybe"}, case_number=case.number)
    )
    assert bad.reason_code == "invalid" and "outcome" in (bad.reason or "")
    odd = eng.receive_insurer_message(msg("b2", "survey_report", {}, case_number=case.number))
    assert odd.reason_code == "unknown_kind"
    assert odd.reason == (
        "the claim workflow takes no insurer message of kind 'survey_report'; "
        "it takes: decision, materials_request, payment, receipt"
    )
    assert eng.get_case(case.id).version == case.version  # nothing fired


def test_a_reference_on_several_cases_is_ambiguous(eng: Engine, clock: FakeClock) -> None:
    first = handed_over(eng, reference="DUP")
    clock.advance(days=1)  # another incident, not a duplicate report
    second = handed_over(eng, reference="DUP")
    result = eng.receive_insurer_message(
        msg("a1", "receipt", {"received_at": RECEIVED}, reference="DUP")
    )
    assert result.reason_code == "ambiguous"
    assert first.number in (result.reason or "") and second.number in (result.reason or "")
    # A number and a reference that name different cases are ambiguous too.
    clock.advance(days=1)
    third = handed_over(eng, reference="ONE")
    mixed = eng.receive_insurer_message(
        msg("a2", "receipt", {"received_at": RECEIVED}, case_number=first.number, reference="ONE")
    )
    assert mixed.reason_code == "ambiguous" and third.number in (mixed.reason or "")


def test_a_digit_case_number_is_not_read_as_a_case_id(eng: Engine) -> None:
    case = handed_over(eng)
    result = eng.receive_insurer_message(msg("n1", "receipt", {}, case_number=str(case.id)))
    assert result.reason_code == "no_case"


def test_a_message_without_its_identity_is_refused_and_not_stored(eng: Engine) -> None:
    with pytest.raises(InvalidData) as caught:
        eng.receive_insurer_message(InsurerMessage("pingan", " ", "", payload={}))
    assert [p.location for p in caught.value.problems] == ["message_id", "kind"]
    assert eng.inbound_messages() == []


def test_resolving_needs_a_person_and_a_stored_message(eng: Engine) -> None:
    stored = eng.receive_insurer_message(msg("z1", "receipt", {}, reference="Z"))
    with pytest.raises(InboundNotFound):
        eng.dismiss_inbound(stored.id + 100, "x", by="s01")
    with pytest.raises(InvalidData, match="say why"):
        eng.dismiss_inbound(stored.id, " ", by="s01")
    with pytest.raises(InvalidData, match="say who"):
        eng.resolve_inbound(stored.id, "LP-1", by="")
    with pytest.raises(InvalidData, match="is not one of"):
        eng.inbound_messages(status="lost")


def test_the_same_message_delivered_twice_at_once_fires_once_and_both_get_its_answer(
    eng: Engine,
) -> None:
    """An insurer that resends before the first answer came back: two workers take the
    same message at the same moment. One fires; the other is answered from its row."""
    import threading

    case = handed_over(eng)
    before = table_counts(eng)
    message = msg("m-race", "receipt", {"received_at": RECEIVED}, case_number=case.number)
    start = threading.Barrier(2)
    answers: list[Any] = []
    failures: list[BaseException] = []

    def deliver() -> None:
        start.wait()
        try:
            answers.append(eng.receive_insurer_message(message))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert failures == []
    assert len(answers) == 2 and answers[0] == answers[1]
    assert answers[0].status == "applied"
    after = table_counts(eng)
    assert after["inbound"] == before["inbound"] + 1
    assert after["history"] == before["history"] + 1  # one receipt recorded, not two
