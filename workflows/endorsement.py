"""The endorsement workflow (批改, 细则第六条; 保险法第二十条; DOMAIN.md §3).

What is to change is typed — beneficiary, contact details, payment account, the
insured's details, or other — and at least one change is required. The customer is
guided through the endorsement application, which goes to the insurer; the case ends
with the insurer's endorsement (批单) recorded, its refusal, or a withdrawal. Life and
health products keep the stricter periods of the 2010 service standard.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from baoflow.engine import Hooks, Intake, TransitionContext, WorkflowDefinition, load_workflow
from pydantic import Field, model_validator

from .common import (
    Assignment,
    Channel,
    Phone,
    PolicyDetails,
    Strict,
    Text,
    Withdrawal,
    look_up_policy,
)

DEFINITION = Path(__file__).with_name("endorsement.toml")


class Requester(Strict):
    name: Text
    phone: Phone
    relationship: Text  # to the policyholder (本人, 配偶 …)


class BeneficiaryChange(Strict):
    kind: Literal["beneficiary"]
    name: Text
    relationship: Text
    share_percent: Annotated[int, Field(ge=1, le=100)]


class ContactChange(Strict):
    kind: Literal["contact"]
    phone: Phone | None = None
    address: Text | None = None

    @model_validator(mode="after")
    def _something_changes(self) -> ContactChange:
        if self.phone is None and self.address is None:
            raise ValueError("a contact change gives the new phone, the new address or both")
        return self


class PaymentAccountChange(Strict):
    kind: Literal["payment_account"]
    bank: Text
    account_number: Annotated[str, Field(pattern=r"^\d{12,30}$")]


class InsuredDetailsChange(Strict):
    kind: Literal["insured_details"]
    field: Text  # e.g. 职业, 证件有效期
    value: Text


class OtherChange(Strict):
    kind: Literal["other"]
    detail: Text


Change = Annotated[
    BeneficiaryChange | ContactChange | PaymentAccountChange | InsuredDetailsChange | OtherChange,
    Field(discriminator="kind"),
]


class EndorsementRequest(Strict):
    channel: Channel
    policy: PolicyDetails
    requester: Requester
    changes: Annotated[tuple[Change, ...], Field(min_length=1)]


class Application(Strict):
    """批改申请单: signed by the policyholder."""

    form_number: Text
    signed_by_policyholder: Literal[True]


class Submission(Strict):
    insurer: Text


class Endorsement(Strict):
    endorsement_number: Text  # 批单号


class Decline(Strict):
    reason: Text


def _life_product(data: object) -> bool:
    policy = data.get("policy") if isinstance(data, dict) else None
    return bool(policy and policy.get("product_line") in ("life", "health"))


def build() -> WorkflowDefinition:
    """The endorsement workflow with its hooks, validated."""

    def intake(ctx: TransitionContext) -> Intake:
        ctx.new_data["requested_at"] = ctx.now.isoformat()
        not_ours = look_up_policy(ctx)
        kinds = "、".join(_KIND_TITLES[c["kind"]] for c in ctx.data["changes"])
        return Intake(notes=(f"批改内容：{kinds}；请指导客户填写批改申请单", *not_ours))

    hooks = Hooks(
        schemas={
            "Assignment": Assignment,
            "EndorsementRequest": EndorsementRequest,
            "Application": Application,
            "Submission": Submission,
            "Endorsement": Endorsement,
            "Decline": Decline,
            "Withdrawal": Withdrawal,
        },
        intake={"endorsement_intake": intake},
        conditions={"life_product": _life_product},
    )
    return load_workflow(DEFINITION, hooks)


_KIND_TITLES = {
    "beneficiary": "变更受益人",
    "contact": "变更联系方式",
    "payment_account": "变更缴费账户",
    "insured_details": "变更被保险人资料",
    "other": "其他",
}
