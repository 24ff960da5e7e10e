"""The surrender workflow (退保处理, 细则第五条; 保险法第四十七条; DOMAIN.md §2).

The desk takes the request (any of the four channels), records the policy and the
reason — a reason from the list is required, with the customer's words — reminds the
customer of the documents to bring, refers them to the insurer (the
``surrender_documents`` notice), and chases the refund of the cash value, which the
insurer owes within 30 days of the request (a chase reminder, ``refund``), until it is
confirmed or the customer withdraws.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from baoflow.engine import (
    Hooks,
    Intake,
    NoticeSpec,
    TransitionContext,
    WorkflowDefinition,
    load_workflow,
)
from pydantic import AfterValidator, Field

from .common import (
    Assignment,
    Channel,
    Email,
    Phone,
    PolicyDetails,
    Strict,
    Text,
    Withdrawal,
    look_up_policy,
    not_in_future,
)

DEFINITION = Path(__file__).with_name("surrender.toml")


@dataclass(frozen=True)
class SurrenderSettings:
    """What the customer is told to bring to the insurer (the insurer's own list may be
    longer: the referral can add to it)."""

    documents: Sequence[str] = field(
        default_factory=lambda: (
            "保险单正本",
            "投保人有效身份证件",
            "退保申请书（投保人签字）",
            "最近一期保费收据",
            "投保人本人银行账户信息（用于退费）",
        )
    )


class SurrenderReason(StrEnum):
    financial = "financial"  # 经济原因
    product_unsuitable = "product_unsuitable"  # 产品不适合
    better_alternative = "better_alternative"  # 另购其他产品
    service = "service"  # 对服务不满意
    mis_selling = "mis_selling"  # 销售误导
    other = "other"  # 其他


REASON_TITLES = {
    SurrenderReason.financial: "经济原因",
    SurrenderReason.product_unsuitable: "产品不适合",
    SurrenderReason.better_alternative: "另购其他产品",
    SurrenderReason.service: "对服务不满意",
    SurrenderReason.mis_selling: "销售误导",
    SurrenderReason.other: "其他",
}


class Customer(Strict):
    """The policyholder asking (投保人)."""

    name: Text
    phone: Phone
    email: Email | None = None


class Reason(Strict):
    """Why (required): a reason from the list and the customer's own words."""

    code: SurrenderReason
    detail: Text


class SurrenderRequest(Strict):
    channel: Channel
    policy: PolicyDetails
    customer: Customer
    reason: Reason


class Referral(Strict):
    insurer: Text
    extra_documents: tuple[Text, ...] = ()


class RefundConfirmation(Strict):
    amount: Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2)]
    confirmed_at: Annotated[datetime, AfterValidator(not_in_future)]


def build(settings: SurrenderSettings | None = None) -> WorkflowDefinition:
    """The surrender workflow with its hooks, validated."""
    s = settings or SurrenderSettings()

    def intake(ctx: TransitionContext) -> Intake:
        ctx.new_data["requested_at"] = ctx.now.isoformat()
        return Intake(notes=look_up_policy(ctx))

    def list_documents(ctx: TransitionContext) -> None:
        extra = list(ctx.data.get("extra_documents", ()))
        ctx.new_data["referral"]["documents"] = [*s.documents, *extra]
        ctx.notes.append("已提醒客户准备：" + "、".join(ctx.new_data["referral"]["documents"]))

    def documents_notice(ctx: TransitionContext) -> dict[str, Any]:
        d = ctx.new_data
        assert ctx.case is not None
        return {
            "case_number": ctx.case.number,
            "customer_name": d["customer"]["name"],
            "policy_number": d["policy"]["number"],
            "insurer": d["referral"]["insurer"],
            "documents": list(d["referral"]["documents"]),
        }

    hooks = Hooks(
        schemas={
            "Assignment": Assignment,
            "SurrenderRequest": SurrenderRequest,
            "Referral": Referral,
            "RefundConfirmation": RefundConfirmation,
            "Withdrawal": Withdrawal,
        },
        actions={"list_documents": list_documents},
        intake={"surrender_intake": intake},
        notices={
            "surrender_documents": NoticeSpec(
                frozenset(
                    {"case_number", "customer_name", "policy_number", "insurer", "documents"}
                ),
                documents_notice,
            )
        },
    )
    return load_workflow(DEFINITION, hooks)
