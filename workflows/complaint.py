"""Customer complaints (客户意见调整, 细则第七至九条; CBIRC Order 2020 No. 3; DOMAIN.md §4,
§5.3).

A complaint is registered (channel, complainant, what it concerns, what is asked) under
the numbering rule TS-<branch>-<date>-<sequence>; a handler with no conflict of interest
investigates; a proposed resolution is approved by the authority its level calls for
(核决权限: amount bands, the regulator or the media); the reply is due within 15 natural
days of acceptance — extended to 30 with a recorded reason, 30 more with a superior's
approval, restarted by new facts, paused for appraisal or mediation; a review may be
asked within 30 days of the reply and is decided within 30; the root cause and the
corrective action are tracked to done before the complaint closes with the
complainant's satisfaction. A withdrawal ends it at any point.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from baoflow.engine import (
    SHANGHAI,
    Hooks,
    Intake,
    NoticeSpec,
    TransitionContext,
    WorkflowDefinition,
    format_due,
    load_workflow,
)
from baoflow.engine.deadlines import Period, Unit, due_at, last_day
from pydantic import Field

from .common import Assignment, Channel, Phone, Strict, Text, beijing_minute

DEFINITION = Path(__file__).with_name("complaint.toml")

Amount = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2)]

#: Approval bands (核决权限): a supervisor up to this, a branch manager up to that;
#: above, or with the regulator or the media involved, headquarters.
SUPERVISOR_LIMIT = Decimal("5000")
BRANCH_LIMIT = Decimal("50000")
#: A major complaint (第二十九条): this many complainants together, or a disaster.
MAJOR_COMPLAINANTS = 20


class Category(StrEnum):
    claim = "claim"
    surrender = "surrender"
    endorsement = "endorsement"
    service = "service"
    sales = "sales"
    other = "other"


class Complainant(Strict):
    name: Text
    phone: Phone


class Concerns(Strict):
    """The policy or case the complaint is about (either may be unknown)."""

    policy_number: Text | None = None
    case_number: Text | None = None


class ComplaintRegistration(Strict):
    channel: Channel
    complainant: Complainant
    concerns: Concerns = Concerns()
    category: Category
    request: Text  # what the complainant asks for
    complainants: int = Field(default=1, ge=1)
    disaster: bool = False  # arising from a disaster or accident
    about_staff: tuple[Text, ...] = ()  # staff the complaint concerns (回避)


class MediationKind(StrEnum):
    appraisal = "appraisal"  # 鉴定
    inspection = "inspection"  # 检验
    mediation = "mediation"  # 调解


class Mediation(Strict):
    kind: MediationKind
    note: Text


class NewFacts(Strict):
    detail: Text


class Extension(Strict):
    reason: Text  # recorded, and told to the complainant


class Resolution(Strict):
    text: Text
    compensation: Amount = Decimal("0")
    regulator_or_media: bool = False  # the regulator or the media involved


class SendBack(Strict):
    reason: Text


class Reply(Strict):
    text: Text


class ReviewRequest(Strict):
    reason: Text


class ReviewOutcome(StrEnum):
    upheld = "upheld"
    changed = "changed"


class ReviewDecision(Strict):
    outcome: ReviewOutcome
    text: Text


class Improvement(Strict):
    """追踪改善: why it happened and what changes, tracked to done."""

    root_cause: Text
    corrective_action: Text
    done: bool = False


class Satisfaction(StrEnum):
    satisfied = "satisfied"
    neutral = "neutral"
    dissatisfied = "dissatisfied"


class Closing(Strict):
    satisfaction: Satisfaction


class Withdrawal(Strict):
    reason: Text


def _compensation(data: Mapping[str, Any]) -> Decimal:
    return Decimal(str((data.get("resolution") or {}).get("compensation", "0")))


def _public(data: Mapping[str, Any]) -> bool:
    return bool((data.get("resolution") or {}).get("regulator_or_media"))


def within_supervisor_authority(data: Mapping[str, Any]) -> bool:
    return _compensation(data) <= SUPERVISOR_LIMIT and not _public(data)


def within_branch_authority(data: Mapping[str, Any]) -> bool:
    return _compensation(data) <= BRANCH_LIMIT and not _public(data)


def _number(ctx: TransitionContext) -> str:
    assert ctx.case is not None
    return ctx.case.number


def build() -> WorkflowDefinition:
    """The complaint workflow with its hooks, validated."""

    def intake(ctx: TransitionContext) -> Intake:
        data = ctx.new_data
        data["accepted_at"] = ctx.now.isoformat()
        notes = []
        if data["complainants"] >= MAJOR_COMPLAINANTS or data["disaster"]:
            data["major_complaint"] = True
            notes.append("重大投诉（第二十九条）：须制定专项处理方案并及时报告")
        return Intake(then="acknowledge", notes=tuple(notes))

    def system_only(ctx: TransitionContext) -> list[str]:
        return [] if ctx.actor.is_system else [f"{ctx.event!r} is sent by the system"]

    def due_text(ctx: TransitionContext) -> str:
        """The reply's due time as the complainant reads it: the engine's own deadline,
        as this transition (an extension, say) left it."""
        assert ctx.case is not None
        due = ctx.services.cases.due_at(ctx.case.id, "reply")
        if due is None:
            return "（以通知为准）"
        return format_due(due)

    def acknowledged(ctx: TransitionContext) -> dict[str, Any]:
        d = ctx.new_data
        return {
            "case_number": _number(ctx),
            "complainant_name": d["complainant"]["name"],
            "accepted_at": beijing_minute(d["accepted_at"]),
            "request": d["request"],
            "due_at": due_text(ctx),
        }

    def extended(ctx: TransitionContext) -> dict[str, Any]:
        d = ctx.new_data
        return {
            "case_number": _number(ctx),
            "complainant_name": d["complainant"]["name"],
            "reason": ctx.data["reason"],
            "due_at": due_text(ctx),
        }

    def replied(ctx: TransitionContext) -> dict[str, Any]:
        d = ctx.new_data
        return {
            "case_number": _number(ctx),
            "complainant_name": d["complainant"]["name"],
            "accepted_at": beijing_minute(d["accepted_at"]),
            "reply": ctx.data["text"],
        }

    def major_report(ctx: TransitionContext) -> dict[str, Any]:
        d = ctx.new_data
        assert ctx.case is not None
        return {
            "case_number": _number(ctx),
            "org_unit": ctx.case.org_unit,
            "accepted_at": beijing_minute(d["accepted_at"]),
            "complainants": d["complainants"],
            "disaster": d["disaster"],
            "request": d["request"],
        }

    def no_conflict_of_interest(ctx: TransitionContext) -> list[str]:
        handler = ctx.data.get("handler_id")
        if handler in ctx.new_data.get("about_staff", ()):
            return [
                f"{handler} is the subject of this complaint and may not handle it "
                "(第十七条: 回避); assign someone else"
            ]
        return []

    def record(key: str) -> Any:
        def action(ctx: TransitionContext) -> None:
            ctx.new_data.setdefault(key, []).append(
                {**ctx.data, "event": ctx.event, "by": ctx.actor.id, "at": ctx.now.isoformat()}
            )

        return action

    def stamp_reply(ctx: TransitionContext) -> None:
        ctx.new_data["replied_at"] = ctx.now.isoformat()

    def within_review_window(ctx: TransitionContext) -> list[str]:
        replied = datetime.fromisoformat(ctx.new_data["replied_at"])
        last = due_at(replied, Period(30, Unit.natural_days), ctx.services.calendar)
        if ctx.now < last:
            return []
        return [
            f"a review may be asked within 30 days of the reply (第二十条); the reply was "
            f"sent {replied.astimezone(SHANGHAI):%Y-%m-%d} and the window closed at the end of "
            f"{last_day(last)}"
        ]

    def improvement_done(ctx: TransitionContext) -> list[str]:
        improvement = ctx.new_data.get("improvement")
        if improvement is None:
            return ["record the root cause and the corrective action first (追踪改善)"]
        if not improvement.get("done"):
            return ["the corrective action is not done yet (追踪改善): record it done first"]
        return []

    hooks = Hooks(
        schemas={
            "ComplaintRegistration": ComplaintRegistration,
            "Assignment": Assignment,
            "Mediation": Mediation,
            "NewFacts": NewFacts,
            "Extension": Extension,
            "Resolution": Resolution,
            "SendBack": SendBack,
            "Reply": Reply,
            "ReviewRequest": ReviewRequest,
            "ReviewDecision": ReviewDecision,
            "Improvement": Improvement,
            "Closing": Closing,
            "Withdrawal": Withdrawal,
        },
        guards={
            "system_only": system_only,
            "no_conflict_of_interest": no_conflict_of_interest,
            "within_review_window": within_review_window,
            "improvement_done": improvement_done,
        },
        actions={
            "record_facts": record("facts"),
            "record_extension": record("extensions"),
            "stamp_reply": stamp_reply,
        },
        intake={"complaint_intake": intake},
        notices={
            "complaint_acknowledged": NoticeSpec(
                frozenset({"case_number", "complainant_name", "accepted_at", "request", "due_at"}),
                acknowledged,
            ),
            "complaint_extended": NoticeSpec(
                frozenset({"case_number", "complainant_name", "reason", "due_at"}), extended
            ),
            "complaint_reply": NoticeSpec(
                frozenset({"case_number", "complainant_name", "accepted_at", "reply"}), replied
            ),
            "major_complaint_report": NoticeSpec(
                frozenset(
                    {
                        "case_number",
                        "org_unit",
                        "accepted_at",
                        "complainants",
                        "disaster",
                        "request",
                    }
                ),
                major_report,
            ),
        },
        conditions={
            "major_complaint": lambda data: bool(data.get("major_complaint")),
            "within_supervisor_authority": within_supervisor_authority,
            "within_branch_authority": within_branch_authority,
        },
    )
    return load_workflow(DEFINITION, hooks)
