"""The claim workflow (理赔服务, 细则第四条; DOMAIN.md §1) — its schemas, guards and actions.

The states and transitions are data in ``claim.toml``; this module holds the rules
that need code, each citing where it comes from. ``build()`` returns the validated
definition; an app tunes the company's own figures through :class:`ClaimSettings`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Annotated, Any

from baoflow.engine import (
    SHANGHAI,
    Hooks,
    Intake,
    NoticeSpec,
    Policy,
    TransitionContext,
    WorkflowDefinition,
    WorkingCalendar,
    first_working_day_from,
    format_when,
    insurer_reference,
    load_workflow,
)
from baoflow.engine.deadlines import Period, Unit
from pydantic import AfterValidator, Field, ValidationInfo, model_validator

from .checklist import Checklist, Condition, load_checklist
from .common import (
    Assignment,
    Channel,
    Email,
    IdNumber,
    Phone,
    Strict,
    Text,
    beijing_minute,
    local_date,
    not_in_future,
)

DEFINITION = Path(__file__).with_name("claim.toml")


# --- settings ----------------------------------------------------------------------
@dataclass(frozen=True)
class ClaimSettings:
    """The company's own figures, with the regulation's values as defaults.

    Attributes:
        filing_limit_years: the limitation period per product line (保险法第二十六条:
            2 years for non-life, 5 for life); ``default`` applies to unlisted lines.
            Some read the Civil Code's 3 years as governing non-life: set it here.
        major_amount: the amount above which a case is major (细则第四条 重大案件 2).
        major_deaths: deaths in one accident that make a case major (重大案件 1).
        prompt_report: a report within this time of the incident is "prompt" (及时报案),
            which, for an accidental death, calls for scene preservation.
        late_notice: a report later than this after the incident is flagged as late
            notice (保险法第二十一条) — flagged, never refused.
        checklist: the desk's own materials checklist (a TOML file shaped like
            ``claim_materials.toml``, validated at ``build()``); the shipped one by default.
        underwriters: the underwriting insurer of each product (险种名称 -> 承保保险公司),
            the agency's own catalogue: the policy directory does not say who underwrites
            a policy. The scene-survey and survey notices go to the insurer named here
            (``underwriter.name`` on the case); a survey request may name it instead.
        survey_working_days: how long the desk's assistance with a major case's survey may
            run before it is chased (细则第四条(二) 调查 names no period: the company's
            choice; 10 working days leaves the insurer most of its 30 days, 保险法第二十三条).
    """

    filing_limit_years: Mapping[str, int] = field(default_factory=lambda: {"life": 5, "default": 2})
    major_amount: Decimal = Decimal("500000")
    major_deaths: int = 2
    prompt_report: timedelta = timedelta(hours=24)
    late_notice: timedelta = timedelta(days=10)
    #: The company's own deadlines (细则第四条): configuration, with the rules' values as
    #: defaults. The law's periods (保险法第二十三、二十五条; the life standards) are not.
    hand_over_working_days: int = 3
    major_report_hours: int = 24
    survey_working_days: int = 10
    checklist: Path | str | None = None
    underwriters: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("hand_over_working_days", "major_report_hours", "survey_working_days"):
            if getattr(self, name) < 1:
                raise ValueError(
                    f"ClaimSettings.{name} must be 1 or more, not {getattr(self, name)}"
                )

    def filing_limit(self, product_line: str) -> int:
        return self.filing_limit_years.get(product_line, self.filing_limit_years["default"])


# --- payloads ----------------------------------------------------------------------
class Cause(StrEnum):
    accident = "accident"  # 意外
    illness = "illness"  # 疾病
    fire = "fire"  # 火灾
    natural_disaster = "natural_disaster"  # 自然灾害
    theft = "theft"  # 盗抢
    other = "other"


ACCIDENTAL_CAUSES = {Cause.accident, Cause.fire, Cause.natural_disaster, Cause.theft}


class Injury(StrEnum):
    none = "none"
    minor = "minor"
    serious = "serious"
    disability = "disability"
    burn = "burn"
    death = "death"


class Diagnosis(StrEnum):
    """The diagnosis category of an illness claim: what decides the medical proof asked
    for (细则第四条(四)2 收集理赔资料 6: the pathology report)."""

    cancer = "cancer"  # 恶性肿瘤
    critical_illness = "critical_illness"  # 其他重大疾病
    other = "other"  # 一般疾病


class Complaint(StrEnum):
    regulator = "regulator"  # 主管机关
    association = "association"  # 同业公会
    media = "media"  # 媒体


class Litigation(StrEnum):
    possible = "possible"  # 可能引起诉讼
    filed = "filed"  # 已涉及诉讼


Amount = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2)]
Instant = Annotated[datetime, AfterValidator(not_in_future)]


class PolicyInfo(Strict):
    """保单信息: the insured's name is required; the number if the reporter has it."""

    number: Text | None = None
    product_name: Text | None = None
    insured_name: Text
    insured_id_number: IdNumber | None = None


class Dispute(Strict):
    """重大案件 3-4: disagreement, complaints, the media, litigation."""

    disagreement: bool = False
    complained_to: tuple[Complaint, ...] = ()
    media_involved: bool = False
    litigation: Litigation | None = None


class IncidentInfo(Strict):
    """出险情况."""

    time: Instant
    place: Text
    cause: Cause
    course: Text  # 经过
    injury: Injury
    deaths: int = Field(default=0, ge=0)
    measures: Text  # 采取措施
    condition: Text  # 目前状况
    hospital: Text | None = None
    hospitalised: bool = False
    property_damage: bool = False
    expected_amount: Amount | None = None
    outcome_undetermined: bool = False
    dispute: Dispute = Dispute()
    #: optional: reports taken before it existed, and accidents, have none
    diagnosis_category: Diagnosis | None = None

    @model_validator(mode="after")
    def _deaths_match_injury(self) -> IncidentInfo:
        if self.injury == Injury.death and self.deaths == 0:
            raise ValueError("injury is 'death' but deaths is 0; give the number of deaths")
        return self


class Reporter(Strict):
    """报案人情况."""

    name: Text
    address: Text
    phone: Phone
    relationship: Text  # 与出险人关系 (本人: the insured themself, the data subject)
    email: Email | None = None  # where written notices may go besides the phone


class ClaimReport(Strict):
    """What the desk asks when a claim is reported (接报案询问案情)."""

    channel: Channel
    policy: PolicyInfo
    incident: IncidentInfo
    reporter: Reporter


class PolicyMatch(Strict):
    policy_number: Text


class IdentityConfirmation(Strict):
    id_number: IdNumber


def _not_after_today(value: date, info: ValidationInfo) -> date:
    now = (info.context or {}).get("now")
    if now is not None and value > now.astimezone(SHANGHAI).date():
        raise ValueError(f"{value} is in the future; give the day the claimant learnt of it")
    return value


class Verification(Strict):
    #: 保险法第二十六条 counts from when the claimant knew of the incident; by default
    #: the incident day. It cannot be before the incident (checked by the review).
    known_since: Annotated[date, AfterValidator(_not_after_today)] | None = None


class RejectReason(StrEnum):
    outside_policy_period = "outside_policy_period"  # 保单已失效 / 不在保险期间
    not_covered = "not_covered"  # 不属保障范围
    late_filing = "late_filing"  # 已超过申请时效


#: How a refusal's reasons read in the written notice (书面告知不予受理的原因).
REJECT_TITLES = {
    RejectReason.outside_policy_period: "出险日期不在保险期间内（保单已失效或尚未生效）",
    RejectReason.not_covered: "本次事故不属于保险合同的保障范围",
    RejectReason.late_filing: "已超过保险金申请时效（保险法第二十六条）",
}


class Rejection(Strict):
    """书面告知不予受理的原因: the reason codes and the written notice."""

    reasons: tuple[RejectReason, ...] = Field(min_length=1)
    notice: Text
    originals_returned: bool = True  # copies archived, originals returned (细则第四条)


class Relationship(StrEnum):
    self = "self"
    beneficiary = "beneficiary"
    spouse = "spouse"
    parent = "parent"
    child = "child"
    guardian = "guardian"
    other = "other"


class ClaimApplication(Strict):
    """理赔申请书 and the right-to-claim check (保险金请求权)."""

    applicant_name: Text
    applicant_id_number: IdNumber
    relationship: Relationship
    power_of_attorney: bool = False


class Material(StrEnum):
    policy_original = "policy_original"
    premium_receipt = "premium_receipt"
    id_insured = "id_insured"
    id_beneficiary = "id_beneficiary"
    claim_form = "claim_form"
    accident_proof = "accident_proof"
    death_certificate = "death_certificate"
    disability_proof = "disability_proof"
    burn_proof = "burn_proof"
    medical_records = "medical_records"
    test_results = "test_results"
    outpatient_receipts = "outpatient_receipts"
    inpatient_receipts = "inpatient_receipts"
    pathology_report = "pathology_report"
    repair_invoices = "repair_invoices"


class MaterialsReceived(Strict):
    items: tuple[Material, ...] = Field(min_length=1)


class HandOver(Strict):
    insurer: Text
    #: the insurer's own reference of the claim (报案号/赔案号)
    reference: Text | None = None
    #: the insurer's code in the desk's insurers config (``[insurers.<code>]``): with
    #: ``reference``, the insurer's messages find this case by their own reference
    insurer_code: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,63}$")] | None = None


class InsurerReceipt(Strict):
    """The insurer confirms it has the materials (the hand-over's, or the further ones
    it asked for): 保险法第二十三条 counts its 30 days from here."""

    received_at: datetime
    note: Text | None = None


class DecisionOutcome(StrEnum):
    approved = "approved"  # 属于保险责任，同意赔付
    partially_approved = "partially_approved"  # 部分赔付
    declined = "declined"  # 不属于保险责任，拒赔


class InsurerDecision(Strict):
    """The insurer's decision (核定): an amount agreed, or a refusal with its reasons."""

    outcome: DecisionOutcome
    amount: Amount | None = None
    reasons: Text | None = None
    decided_at: datetime

    @model_validator(mode="after")
    def _amount_or_reasons(self) -> InsurerDecision:
        if self.outcome != DecisionOutcome.declined and self.amount is None:
            raise ValueError(f"outcome {self.outcome.value!r} needs the amount agreed")
        if self.outcome != DecisionOutcome.approved and not self.reasons:
            # 保险法第二十四条: a refusal (or a partial one) states its reasons
            raise ValueError(f"outcome {self.outcome.value!r} needs the insurer's reasons")
        return self


class InsurerPayment(Strict):
    """The insurer has paid (赔款支付)."""

    amount: Amount
    paid_at: datetime
    payment_reference: Text | None = None


class Outcome(StrEnum):
    paid = "paid"
    partially_paid = "partially_paid"
    declined = "declined"


class Closing(Strict):
    outcome: Outcome
    amount: Amount | None = None
    note: Text | None = None

    @model_validator(mode="after")
    def _amount_when_paid(self) -> Closing:
        if self.outcome != Outcome.declined and self.amount is None:
            raise ValueError(f"outcome {self.outcome.value!r} needs the amount paid")
        return self


class MaterialsRequested(Strict):
    """What the insurer asks for after hand-over (it pauses the insurer's clock)."""

    items: tuple[Material, ...] = Field(min_length=1)


class DeskMaterialsRequest(Strict):
    """The desk asks the claimant for more materials after the one-time notice
    (保险法第二十二条: recorded, and flagged for each item that notice did not list)."""

    items: tuple[Material, ...] = Field(min_length=1)
    reason: Text  # why it is asked now and not in the one-time notice


class SurveyRequest(Strict):
    """调查: a major case needs the insurer's survey (细则第四条(二) 调查)."""

    reason: Text  # what is to be surveyed, and why
    #: the underwriting insurer, when the case does not know it yet (or to correct it)
    insurer: Text | None = None


class AssistanceStep(StrEnum):
    contacted_insurer = "contacted_insurer"  # 联系保险公司
    contacted_claimant = "contacted_claimant"  # 联系报案人、家属
    accompanied_survey = "accompanied_survey"  # 陪同查勘
    collected_documents = "collected_documents"  # 协助收集资料
    other = "other"


class SurveyAssistance(Strict):
    """One step of the desk's assistance with the survey (协助), by whoever fires it."""

    step: AssistanceStep
    note: Text


class SurveyFinding(StrEnum):
    confirmed = "confirmed"  # 查勘结果与报案相符
    partly_confirmed = "partly_confirmed"  # 部分相符
    not_confirmed = "not_confirmed"  # 与报案不符
    inconclusive = "inconclusive"  # 无法确定


class SurveyOutcome(Strict):
    """The survey is done: what it found (the insurer's survey report)."""

    finding: SurveyFinding
    summary: Text
    surveyor: Text | None = None  # who surveyed (the insurer's surveyor)
    report_reference: Text | None = None  # the insurer's survey report number


class HeadquartersReport(Strict):
    """重大案件呈报: what headquarters is told (the criteria hit are the case's own)."""

    summary: Text
    estimated_amount: Amount | None = None


class HeadquartersAcknowledgement(Strict):
    """Headquarters confirms it has the report (and may say what it wants next)."""

    note: Text


class FactsUpdate(Strict):
    """New facts after intake (a second death, an amount raised, a complaint to the
    media, a lawsuit): the case is assessed again, and may become major."""

    deaths: int | None = Field(default=None, ge=0)
    expected_amount: Amount | None = None
    outcome_undetermined: bool | None = None
    dispute: Dispute | None = None
    diagnosis_category: Diagnosis | None = None  # a diagnosis made after the report
    note: Text


class Withdrawal(Strict):
    reason: Text


class NotOurs(Strict):
    note: Text


# --- pure rules --------------------------------------------------------------------
def _treated(data: Mapping[str, Any]) -> bool:
    incident = data["incident"]
    return bool(
        incident.get("hospital")
        or incident["cause"] == Cause.illness
        or incident["injury"] in (Injury.minor, Injury.serious, Injury.disability, Injury.burn)
    )


def _injury(kind: Injury) -> Condition:
    return lambda data: data["incident"]["injury"] == kind


def _diagnosis(kind: Diagnosis) -> Condition:
    return lambda data: data["incident"].get("diagnosis_category") == kind


#: The facts a checklist rule may depend on (``when`` in claim_materials.toml), over the
#: case data when the checklist is drawn up (at ``apply``) and checked (``complete_materials``).
CHECKLIST_CONDITIONS: dict[str, Condition] = {
    "always": lambda data: True,
    # the applicant is not the insured: their own ID is needed too
    "applicant_not_insured": lambda data: (
        (data.get("application") or {}).get("relationship", "self") != Relationship.self
    ),
    "accidental_cause": lambda data: data["incident"]["cause"] in ACCIDENTAL_CAUSES,
    "death": _injury(Injury.death),
    "disability": _injury(Injury.disability),
    "burn": _injury(Injury.burn),
    # treated by a doctor: at a hospital, for an illness, or for an injury that needs care
    "treated": _treated,
    "hospitalised": lambda data: bool(data["incident"].get("hospitalised")),
    "diagnosis_cancer": _diagnosis(Diagnosis.cancer),
    "diagnosis_critical_illness": _diagnosis(Diagnosis.critical_illness),
    "property_damage": lambda data: bool(data["incident"].get("property_damage")),
}

#: The shipped checklist (package data); a desk's own goes in ClaimSettings.checklist.
CHECKLIST = Path(__file__).with_name("claim_materials.toml")


def load_claim_checklist(path: Path | str = CHECKLIST) -> Checklist:
    """The claim checklist in ``path``, validated against the claim's materials and
    conditions.

    Raises:
        DefinitionError: every problem of the file, each with its location.
    """
    return load_checklist(
        path, materials=[m.value for m in Material], conditions=CHECKLIST_CONDITIONS
    )


@cache
def default_checklist() -> Checklist:
    return load_claim_checklist()


#: How each material reads to people, from the shipped checklist.
MATERIAL_TITLES = {Material(r.material): r.title for r in default_checklist().rules}


def required_materials(
    data: Mapping[str, Any], checklist: Checklist | None = None
) -> list[Material]:
    """The full checklist for this case (细则第四条 收集理赔资料 1-7), in order: the rules
    of ``checklist`` (the shipped one by default) that the facts make apply."""
    return [Material(m) for m in (checklist or default_checklist()).required(data)]


def missing_materials(
    data: Mapping[str, Any], checklist: Checklist | None = None
) -> list[Material]:
    """What the facts require, and the desk asked for since, that has not been received."""
    materials = data.get("materials") or {}
    received = set(materials.get("received", ()))
    wanted = [*required_materials(data, checklist)]
    wanted += [Material(m) for m in materials.get("requested", ()) if Material(m) not in wanted]
    return [m for m in wanted if m not in received]


def major_criteria(
    incident: Mapping[str, Any], sum_insured: Decimal | None, settings: ClaimSettings
) -> list[int]:
    """Which of the four major-case criteria (细则第四条 重大案件 1-4) hold."""
    hits = []
    if incident.get("deaths", 0) >= settings.major_deaths:
        hits.append(1)
    expected = incident.get("expected_amount")
    if (expected is not None and Decimal(expected) > settings.major_amount) or (
        sum_insured is not None
        and sum_insured > settings.major_amount
        and incident.get("outcome_undetermined")
    ):
        hits.append(2)
    dispute = incident.get("dispute") or {}
    if dispute.get("disagreement") and (
        dispute.get("complained_to") or dispute.get("media_involved")
    ):
        hits.append(3)
    if dispute.get("litigation"):
        hits.append(4)
    return hits


MAJOR_TITLES = {
    1: "一次事故导致2人或2人以上死亡",
    2: "预计理赔金额或保险金额超过50万元且结果暂时无法确定",
    3: "双方存在歧义且已向主管机关、同业公会或媒体投诉，或媒体已介入",
    4: "争议较大，可能引起诉讼或已涉及诉讼",
}


@dataclass(frozen=True)
class ReviewFailure:
    code: RejectReason
    message: str


def review(
    data: Mapping[str, Any],
    policy: Policy,
    now: datetime,
    settings: ClaimSettings,
    known_since: date | None = None,
    calendar: WorkingCalendar | None = None,
) -> list[ReviewFailure]:
    """The preliminary review (信息初步审核 1-3): every check that fails, with why."""
    failures = []
    incident = data["incident"]
    day = local_date(incident["time"])
    if not policy.covers_date(day):
        failures.append(
            ReviewFailure(
                RejectReason.outside_policy_period,
                f"出险日期 {day} 不在保险期间 {policy.start_date}～{policy.end_date} 内 "
                f"(incident date outside the policy period of {policy.number})",
            )
        )
    if incident["cause"] not in policy.coverages:
        failures.append(
            ReviewFailure(
                RejectReason.not_covered,
                f"出险原因 {incident['cause']} 不属保障范围 {', '.join(policy.coverages)} "
                "(cause not covered by the policy)",
            )
        )
    years = settings.filing_limit(policy.product_line)
    start = known_since or day
    try:
        limit = start.replace(year=start.year + years)
    except ValueError:  # 29 February
        limit = start.replace(year=start.year + years, day=28)
    today = now.astimezone(SHANGHAI).date()
    if today > limit and calendar is not None:
        # 民法典第二百零三条: a last day that is a rest day or holiday moves to the next
        # working day. Asked only when it matters, so a limit in a year the calendar
        # does not know yet (far in the future) is never looked up.
        limit = first_working_day_from(limit, calendar)
    if today > limit:
        failures.append(
            ReviewFailure(
                RejectReason.late_filing,
                f"已超过申请时效：{policy.product_line} 险种 {years} 年，自 {start} 起至 {limit} 止 "
                "(保险法第二十六条). A refusal for lateness needs a supervisor's confirmation "
                "(reject with reason late_filing); if the claimant learnt of the incident later, "
                "verify with known_since.",
            )
        )
    return failures


#: Product lines under the stricter life service standards (DOMAIN.md §5.4).
LIFE_LINES = frozenset({"life", "health"})


def is_major(data: Mapping[str, Any]) -> bool:
    return bool((data.get("major") or {}).get("is_major"))


def major_unreported(data: Mapping[str, Any]) -> bool:
    """Major, and not reported to headquarters yet: the 24 hours run (from intake, or
    from the new facts that made it major)."""
    return is_major(data) and "headquarters_report" not in data


def life_product(data: Mapping[str, Any]) -> bool:
    return (data.get("policy") or {}).get("product_line") in LIFE_LINES


def first_notice_items(data: Mapping[str, Any]) -> list[str]:
    """What the one-time notice of missing materials (保险法第二十二条) listed: nothing
    when there was none (the materials were complete at ``apply``). A case applied
    before the notice was recorded listed its checklist then (nothing was received
    before ``apply``)."""
    if "one_time_notice" in data:
        return list((data["one_time_notice"] or {}).get("items", ()))
    return list((data.get("materials") or {}).get("required", ()))


def survey_open(data: Mapping[str, Any]) -> bool:
    """A survey was requested and its outcome is not recorded yet (细则第四条(二) 调查)."""
    survey = data.get("survey")
    return survey is not None and survey.get("outcome") is None


# --- hooks -------------------------------------------------------------------------
def _policy_record(p: Policy) -> dict[str, Any]:
    return {
        "number": p.number,
        "product_name": p.product_name,
        "product_line": p.product_line,
        "insured_name": p.insured_name,
        "insured_id_number": p.insured_id_number,
        "start_date": p.start_date.isoformat(),
        "end_date": p.end_date.isoformat(),
        "coverages": list(p.coverages),
        "sum_insured": str(p.sum_insured),
    }


_CLOSED_OUT = ("withdrawn", "rejected")


def _intake(ctx: TransitionContext) -> Intake:
    """报案记录查询: duplicate, no policy of ours, a shared name, or register."""
    report = ctx.data
    policy_info = report["policy"]
    name = policy_info["insured_name"]
    id_number = policy_info.get("insured_id_number")
    incident_day = local_date(report["incident"]["time"])
    ctx.new_data["reported_at"] = ctx.now.isoformat()

    directory = ctx.services.policies
    match: Policy | None = None
    candidates: Sequence[Policy] = ()
    number = policy_info.get("number")
    if number:
        found = directory.get(number)
        if (
            found is not None
            and found.insured_name == name
            and (id_number is None or found.insured_id_number in (None, id_number))
        ):
            match = found
    if match is None:
        candidates = directory.by_insured(name, id_number)
        people = {p.insured_id_number or p.number for p in candidates}
        if len(people) == 1:
            match = _best_policy(candidates, incident_day)

    policy_number = match.number if match else number
    # Two desks reporting one incident at the same instant: the second waits here until
    # the first has committed, then finds its case (Tx.hold; on PostgreSQL the check
    # would otherwise pass in both transactions and open two cases).
    ctx.services.cases.hold(f"claim-intake:{policy_number or name}")
    # Narrow by the policy when it is known (indexed); every match is read, however many.
    earlier = (
        ctx.services.cases.find(workflow="claim", policy_number=policy_number)
        if policy_number is not None
        else ctx.services.cases.find(workflow="claim", insured_name=name)
    )
    for existing in earlier:
        if existing.state in _CLOSED_OUT:
            continue
        if local_date(existing.data["incident"]["time"]) != incident_day:
            continue
        if policy_number is not None:
            same_person = existing.data["policy"].get("number") == policy_number
        else:
            # Nobody identified yet (a shared name, or no policy of ours): only the same
            # caller about the same moment is the same report; a namesake is not.
            same_person = (
                existing.data["policy"].get("number") is None
                and existing.data["reporter"]["phone"] == report["reporter"]["phone"]
                and existing.data["incident"]["time"] == report["incident"]["time"]
            )
        if same_person:
            return Intake(
                duplicate_of=existing.id,
                notes=(
                    f"此报案已受理：案件 {existing.number}，当前状态 {existing.state}，"
                    f"最近更新 {format_when(existing.updated_at)}。"
                    f" (already reported as {existing.number}; no duplicate case opened)",
                ),
            )

    if match is not None:
        ctx.new_data["policy"] = _policy_record(match)
        return Intake(then="register")
    if len({p.insured_id_number or p.number for p in candidates}) > 1:
        ctx.new_data["identity_candidates"] = len(candidates)
        return Intake(
            then="hold_for_identity",
            notes=(
                f"系统中有多位名为 {name} 的被保险人，请与报案人核实出险人身份证号后再关联保单。"
                " (several insured share this name: confirm the ID number with the reporter)",
            ),
        )
    return Intake(
        then="no_policy",
        notes=(
            "未查到与出险人相关的保险合同，请立即告知报案人，并核实是否经我司投保。"
            " (no policy of ours found: tell the reporter now and check where it was bought)",
        ),
    )


def _best_policy(candidates: Sequence[Policy], day: date) -> Policy:
    covering = [p for p in candidates if p.covers_date(day)]
    return (covering or list(candidates))[0]


# --- notices (issue #5): what the claim tells people, and the fields of each ------------
def _number(ctx: TransitionContext) -> str:
    assert ctx.case is not None, "notices are sent by transitions of an existing case"
    return ctx.case.number


def _policy(data: Mapping[str, Any]) -> Mapping[str, Any]:
    return data.get("policy") or {}


def _accepted(ctx: TransitionContext) -> dict[str, Any]:
    d = ctx.new_data
    return {
        "case_number": _number(ctx),
        "reporter_name": d["reporter"]["name"],
        "insured_name": _policy(d).get("insured_name", ""),
        "policy_number": _policy(d).get("number") or "",
        "incident_time": beijing_minute(d["incident"]["time"]),
        "reported_at": beijing_minute(d.get("reported_at") or ctx.now),
    }


def _not_accepted(ctx: TransitionContext) -> dict[str, Any]:
    d = ctx.new_data
    return {
        "case_number": _number(ctx),
        "reporter_name": d["reporter"]["name"],
        "insured_name": _policy(d).get("insured_name", ""),
        "policy_number": _policy(d).get("number") or "",
        "reasons": [REJECT_TITLES[RejectReason(r)] for r in d["rejection"]["reasons"]],
        "decided_at": beijing_minute(ctx.now),
    }


def _applicant_name(d: Mapping[str, Any]) -> str:
    return str((d.get("application") or {}).get("applicant_name") or d["reporter"]["name"])


def _missing(checklist: Checklist) -> Any:
    def build(ctx: TransitionContext) -> dict[str, Any]:
        d = ctx.new_data
        return {
            "case_number": _number(ctx),
            "applicant_name": _applicant_name(d),
            "insured_name": _policy(d).get("insured_name", ""),
            "missing": [checklist.title(m) for m in missing_materials(d, checklist)],
        }

    return build


def _requested(checklist: Checklist) -> Any:
    def build(ctx: TransitionContext) -> dict[str, Any]:
        d = ctx.new_data
        return {
            "case_number": _number(ctx),
            "applicant_name": _applicant_name(d),
            "insured_name": _policy(d).get("insured_name", ""),
            "items": [checklist.title(m) for m in ctx.data["items"]],
            "reason": ctx.data["reason"],
        }

    return build


def _underwriter(d: Mapping[str, Any]) -> str:
    return str((d.get("underwriter") or {}).get("name") or "")


def _scene_survey(ctx: TransitionContext) -> dict[str, Any]:
    d = ctx.new_data
    incident = d["incident"]
    return {
        "case_number": _number(ctx),
        "insurer_name": _underwriter(d),
        "insured_name": _policy(d).get("insured_name", ""),
        "policy_number": _policy(d).get("number") or "",
        "product_name": _policy(d).get("product_name") or "",
        "incident_time": beijing_minute(incident["time"]),
        "incident_place": incident["place"],
        "incident_course": incident["course"],
        "deaths": incident.get("deaths", 0),
        "reported_at": beijing_minute(d.get("reported_at") or ctx.now),
    }


def _survey_request(ctx: TransitionContext) -> dict[str, Any]:
    d = ctx.new_data
    return {
        "case_number": _number(ctx),
        "org_unit": ctx.actor.org_unit,  # the branch asking
        "insurer_name": _underwriter(d),
        "insured_name": _policy(d).get("insured_name", ""),
        "policy_number": _policy(d).get("number") or "",
        "incident_time": beijing_minute(d["incident"]["time"]),
        "incident_place": d["incident"]["place"],
        "criteria": [MAJOR_TITLES[n] for n in (d.get("major") or {}).get("criteria", [])],
        "reason": ctx.data["reason"],
        "requested_at": beijing_minute(ctx.now),
    }


def _scene(ctx: TransitionContext) -> dict[str, Any]:
    d = ctx.new_data
    return {
        "case_number": _number(ctx),
        "reporter_name": d["reporter"]["name"],
        "incident_place": d["incident"]["place"],
        "instruction": d["scene_preservation"]["instruction"],
    }


def _major(ctx: TransitionContext) -> dict[str, Any]:
    d = ctx.new_data
    return {
        "case_number": _number(ctx),
        "org_unit": ctx.actor.org_unit,  # the branch reporting
        "insured_name": _policy(d).get("insured_name", ""),
        "policy_number": _policy(d).get("number") or "",
        "incident_time": beijing_minute(d["incident"]["time"]),
        "incident_place": d["incident"]["place"],
        "criteria": [MAJOR_TITLES[n] for n in (d.get("major") or {}).get("criteria", [])],
        "summary": ctx.data["summary"],
        "reported_at": beijing_minute(d.get("reported_at") or ctx.now),
    }


def _spec(build: Any, *fields: str) -> NoticeSpec:
    return NoticeSpec(frozenset(fields), build)


def claim_notices(checklist: Checklist) -> dict[str, NoticeSpec]:
    """The claim's notices (``notify`` in claim.toml), each with the fields its template
    gets; the materials notices name the materials as ``checklist`` titles them."""
    return {
        "claim_accepted": _spec(
            _accepted,
            "case_number",
            "reporter_name",
            "insured_name",
            "policy_number",
            "incident_time",
            "reported_at",
        ),
        "claim_not_accepted": _spec(
            _not_accepted,
            "case_number",
            "reporter_name",
            "insured_name",
            "policy_number",
            "reasons",
            "decided_at",
        ),
        "materials_missing": _spec(
            _missing(checklist), "case_number", "applicant_name", "insured_name", "missing"
        ),
        "materials_requested": _spec(
            _requested(checklist),
            "case_number",
            "applicant_name",
            "insured_name",
            "items",
            "reason",
        ),
        "scene_preservation": _spec(
            _scene, "case_number", "reporter_name", "incident_place", "instruction"
        ),
        "scene_survey_request": _spec(
            _scene_survey,
            "case_number",
            "insurer_name",
            "insured_name",
            "policy_number",
            "product_name",
            "incident_time",
            "incident_place",
            "incident_course",
            "deaths",
            "reported_at",
        ),
        "major_case_report": _spec(
            _major,
            "case_number",
            "org_unit",
            "insured_name",
            "policy_number",
            "incident_time",
            "incident_place",
            "criteria",
            "summary",
            "reported_at",
        ),
        "survey_request": _spec(
            _survey_request,
            "case_number",
            "org_unit",
            "insurer_name",
            "insured_name",
            "policy_number",
            "incident_time",
            "incident_place",
            "criteria",
            "reason",
            "requested_at",
        ),
    }


#: The notices with the shipped checklist.
NOTICES: dict[str, NoticeSpec] = claim_notices(default_checklist())


def build(settings: ClaimSettings | None = None) -> WorkflowDefinition:
    """The claim workflow with its hooks, validated; ``settings`` tune company figures.

    Raises:
        DefinitionError: the definition, or the checklist file, is invalid (every
            problem listed).
    """
    s = settings or ClaimSettings()
    checklist = load_claim_checklist(s.checklist) if s.checklist else default_checklist()

    def policy_of(ctx: TransitionContext) -> Policy | None:
        number = (ctx.new_data.get("policy") or {}).get("number")
        return ctx.services.policies.get(number) if number else None

    def system_only(ctx: TransitionContext) -> list[str]:
        if ctx.actor.is_system:
            return []
        return [f"{ctx.event!r} is the intake's own decision; staff cannot fire it"]

    def review_passes(ctx: TransitionContext) -> list[str]:
        policy = policy_of(ctx)
        if policy is None:
            return ["the case has no policy of ours attached; match the policy first"]
        known = ctx.data.get("known_since")
        known_since = date.fromisoformat(known) if known else None
        if known_since is not None:
            incident_day = local_date(ctx.new_data["incident"]["time"])
            if known_since < incident_day:
                return [
                    f"known_since {known_since} is before the incident day {incident_day}: "
                    "the claimant cannot have learnt of it earlier; correct it or leave it out"
                ]
        calendar = ctx.services.calendar
        return [f.message for f in review(ctx.new_data, policy, ctx.now, s, known_since, calendar)]

    def rejection_substantiated(ctx: TransitionContext) -> list[str]:
        policy = policy_of(ctx)
        if policy is None:
            return ["the case has no policy of ours attached; match the policy first"]
        failing = {
            f.code for f in review(ctx.new_data, policy, ctx.now, s, None, ctx.services.calendar)
        }
        reasons = []
        for code in ctx.data.get("reasons", ()):
            if code not in failing:
                reasons.append(
                    f"reason {code!r} is not borne out by the review of policy {policy.number}; "
                    "a written refusal may only give reasons that hold"
                )
            elif code == RejectReason.late_filing and not ctx.actor.has_role("supervisor"):
                reasons.append(
                    "a refusal for lateness (late_filing) needs a supervisor's confirmation "
                    "(保险法第二十六条); ask a supervisor to fire reject"
                )
        return reasons

    def policy_found(ctx: TransitionContext) -> list[str]:
        number = ctx.data.get("policy_number")
        if not number:
            return ["give policy_number: the policy of ours the reporter means"]
        found = ctx.services.policies.get(number)
        name = ctx.new_data["policy"]["insured_name"]
        if found is None:
            return [f"policy {number} is not in our policy directory"]
        if found.insured_name != name:
            return [f"policy {number} insures {found.insured_name}, not {name}"]
        return []

    def identity_matches(ctx: TransitionContext) -> list[str]:
        id_number = ctx.data.get("id_number")
        if not id_number:
            return ["give id_number: the insured's ID number, confirmed with the reporter"]
        name = ctx.new_data["policy"]["insured_name"]
        if not ctx.services.policies.by_insured(name, id_number):
            return [f"no policy of ours insures {name} with ID number {id_number[:6]}…"]
        return []

    def right_to_claim(ctx: TransitionContext) -> list[str]:
        app = ctx.data
        if not app:
            return ["give the claim application: applicant, ID number and relationship"]
        policy = ctx.new_data["policy"]
        incident = ctx.new_data["incident"]
        relationship = app["relationship"]
        found = policy_of(ctx)
        beneficiaries = found.beneficiaries if found else ()
        if relationship == Relationship.self:
            if incident["injury"] == Injury.death:
                return ["the insured has died: the claim is made by a beneficiary or heir"]
            if app["applicant_name"] != policy["insured_name"] or (
                policy.get("insured_id_number")
                and app["applicant_id_number"] != policy["insured_id_number"]
            ):
                return ["the applicant's name and ID number do not match the insured's"]
            return []
        if relationship == Relationship.beneficiary:
            if app["applicant_name"] not in beneficiaries:
                return [f"{app['applicant_name']} is not a named beneficiary of {policy['number']}"]
            return []
        if relationship in (Relationship.spouse, Relationship.parent, Relationship.child):
            if incident["injury"] == Injury.death and not beneficiaries:
                return []  # statutory heirs where no beneficiary is named
            if app.get("power_of_attorney"):
                return []
            return [
                f"a {relationship} has the right to claim only as an heir of a deceased insured "
                "with no named beneficiary, or with a power of attorney"
            ]
        if relationship == Relationship.guardian:
            return (
                []
                if incident["injury"] != Injury.death
                else ["a guardian acts for a living insured; after a death the heirs claim"]
            )
        if app.get("power_of_attorney"):
            return []
        return ["the applicant has no right to claim (保险金请求权) and no power of attorney"]

    def update_facts(ctx: TransitionContext) -> None:
        incident = ctx.new_data["incident"]
        for key in (
            "deaths",
            "expected_amount",
            "outcome_undetermined",
            "dispute",
            "diagnosis_category",
        ):
            if ctx.data.get(key) is not None:
                incident[key] = ctx.data[key]
        was_major = is_major(ctx.new_data)
        ctx.new_data.setdefault("facts_updates", []).append(
            {"at": ctx.now.isoformat(), "note": ctx.data["note"]}
        )
        assess(ctx)
        if is_major(ctx.new_data) and not was_major:
            ctx.notes.append("新情况使本案成为重大案件：自现在起24小时内向总部呈报")

    def reported_to_headquarters(ctx: TransitionContext) -> list[str]:
        if "headquarters_report" in ctx.new_data:
            return []
        return ["no major-case report has been made to headquarters yet"]

    def is_major_case(ctx: TransitionContext) -> list[str]:
        if is_major(ctx.new_data):
            return []
        return ["the case is not major (细则第四条 重大案件): there is nothing to report"]

    def materials_complete(ctx: TransitionContext) -> list[str]:
        missing = missing_materials(ctx.new_data, checklist)
        if not missing:
            return []
        listed = "、".join(f"{checklist.title(m)} ({m.value})" for m in missing)
        return [f"理赔材料不齐全，请一次性补齐：{listed} — {len(missing)} item(s) missing"]

    def assess(ctx: TransitionContext) -> None:
        """Major-case criteria, scene preservation and late notice, from the facts."""
        data = ctx.new_data
        incident = data["incident"]
        product = str((data.get("policy") or {}).get("product_name") or "")
        if "underwriter" not in data and product in s.underwriters:
            data["underwriter"] = {"name": s.underwriters[product], "source": "product"}
        sum_insured = (data.get("policy") or {}).get("sum_insured")
        hits = major_criteria(incident, Decimal(sum_insured) if sum_insured else None, s)
        was = (data.get("major") or {}).get("criteria", [])
        data["major"] = {"is_major": bool(hits), "criteria": hits}
        if hits and hits != was:
            ctx.notes.append(
                "重大案件，须在24小时内向总部呈报："
                + "；".join(f"({n}) {MAJOR_TITLES[n]}" for n in hits)
            )
        reported = datetime.fromisoformat(data["reported_at"])
        delay = reported - datetime.fromisoformat(incident["time"])
        if (
            incident["cause"] in ACCIDENTAL_CAUSES
            and incident["injury"] == Injury.death
            and delay <= s.prompt_report
            and "scene_preservation" not in data
        ):
            # Addressed to the reporter (it is quoted in the scene_preservation notice).
            instruction = (
                "请在确保安全的前提下保护事故现场，勿移动或清理，等候保险公司查勘人员到场。"
            )
            # 细则第四条(二) 现场保全: the same transition tells the underwriting insurer to
            # survey (scene_survey_request to "insurer"); its notice is in the outbox
            # from this commit on.
            data["scene_preservation"] = {
                "instruction": instruction,
                "insurer_notified_at": ctx.now.isoformat(),
            }
            ctx.notes.append(f"现场保全：{instruction} (scene preservation instructed)")
            if not _underwriter(data):
                ctx.notes.append(
                    "现场保全：承保保险公司未知（ClaimSettings.underwriters 无此险种），"
                    "查勘通知将无法送达，请直接通知承保公司查勘 "
                    "(the underwriter is unknown: the survey notice cannot be delivered)"
                )
        if delay > s.late_notice and not data.get("flags", {}).get("late_notice"):
            data.setdefault("flags", {})["late_notice"] = True
            ctx.notes.append(
                f"出险 {delay.days} 天后报案，已标记为迟延通知（保险法第二十一条），不影响受理。"
            )

    def attach_policy(ctx: TransitionContext) -> None:
        policy = ctx.services.policies.get(ctx.data["policy_number"])
        assert policy is not None  # policy_found passed
        ctx.new_data["policy"] = _policy_record(policy)

    def attach_identity(ctx: TransitionContext) -> None:
        name = ctx.new_data["policy"]["insured_name"]
        policies = ctx.services.policies.by_insured(name, ctx.data["id_number"])
        day = local_date(ctx.new_data["incident"]["time"])
        ctx.new_data["policy"] = _policy_record(_best_policy(policies, day))
        ctx.new_data.pop("identity_candidates", None)

    def record_checklist(ctx: TransitionContext) -> None:
        required = [m.value for m in required_materials(ctx.new_data, checklist)]
        ctx.new_data["materials"] = {"required": required, "received": []}
        # 保险法第二十二条: what the one-time notice (materials_missing, sent by this
        # same transition) lists is the yardstick every later request is held to.
        ctx.new_data["one_time_notice"] = (
            {"at": ctx.now.isoformat(), "by": ctx.actor.id, "items": required} if required else None
        )

    def flag_later_request(ctx: TransitionContext) -> None:
        """保险法第二十二条: an item asked for after the one-time notice that the notice
        did not list is flagged — the request stands; the flag is the compliance record."""
        data = ctx.new_data
        first = set(first_notice_items(data))
        late = [item for item in ctx.data["items"] if item not in first]
        if not late:
            return
        assert ctx.case is not None
        flags = data.setdefault("flags", {}).setdefault("not_in_one_time_notice", [])
        for item in late:
            flags.append(
                {
                    "item": item,
                    "at": ctx.now.isoformat(),
                    "by": ctx.actor.id,
                    "by_name": ctx.actor.name,
                    "request": ctx.event,
                    "seq": ctx.case.version + 1,  # the history row of the request
                }
            )
        listed = "、".join(f"{checklist.title(m)} ({m})" for m in late)
        first_at = (
            "首次补充材料通知未列明"
            if data.get("one_time_notice")
            else "受理时材料齐全、未发首次通知"
        )
        ctx.notes.append(
            f"保险法第二十二条（一次性通知）：{listed} — {first_at}，本次要求已记录并标记 "
            f"({len(late)} item(s) not in the one-time notice: flagged)"
        )

    def request_materials(ctx: TransitionContext) -> None:
        materials = ctx.new_data["materials"]
        asked = list(dict.fromkeys([*materials.get("requested", ()), *ctx.data["items"]]))
        materials["requested"] = asked
        flag_later_request(ctx)

    def receive(ctx: TransitionContext) -> None:
        materials = ctx.new_data["materials"]  # the checklist `apply` recorded
        received = list(dict.fromkeys([*materials["received"], *ctx.data["items"]]))
        materials["received"] = received
        # A note for the desk against the recorded checklist; `complete_materials`
        # re-derives the list from the facts before it lets the case move on.
        seen = set(received)
        wanted = dict.fromkeys([*materials["required"], *materials.get("requested", ())])
        missing = [code for code in wanted if code not in seen]
        ctx.notes.append(
            "仍缺：" + "、".join(checklist.title(m) for m in missing) if missing else "材料已齐全"
        )

    def insurer_agreed_to_pay(ctx: TransitionContext) -> list[str]:
        decision = ctx.new_data.get("insurer_decision") or {}
        if decision.get("outcome") in (None, DecisionOutcome.declined):
            return ["the insurer declined the claim: there is no payment to record; close it"]
        return []

    def index_insurer_reference(ctx: TransitionContext) -> None:
        handover = ctx.new_data["handover"]
        code, reference = handover.get("insurer_code"), handover.get("reference")
        if code and reference:
            handover["insurer_reference"] = insurer_reference(code, reference)

    def record_insurer_receipt(ctx: TransitionContext) -> None:
        ctx.new_data.setdefault("insurer_receipts", []).append(
            {**ctx.data, "recorded_at": ctx.now.isoformat(), "by": ctx.actor.id}
        )

    def record_payment(ctx: TransitionContext) -> None:
        decision = ctx.new_data["insurer_decision"]
        paid = (
            Outcome.paid
            if decision["outcome"] == DecisionOutcome.approved
            else Outcome.partially_paid
        )
        ctx.new_data["outcome"] = {"outcome": paid.value, "amount": ctx.data["amount"]}
        ctx.new_data.setdefault("timeline", {})["paid_at"] = ctx.now.isoformat()

    def survey_may_be_requested(ctx: TransitionContext) -> list[str]:
        reasons = []
        if not is_major(ctx.new_data):
            reasons.append(
                "the case is not major (细则第四条(二) 重大案件): only a major case is "
                "surveyed at the desk's request (细则第四条(二) 调查); if new facts make it "
                "major, record them with update_facts first"
            )
        if survey_open(ctx.new_data):
            since = ctx.new_data["survey"]["requested_at"]
            reasons.append(f"a survey is already under way (requested {beijing_minute(since)})")
        if not ctx.data.get("insurer") and not _underwriter(ctx.new_data):
            reasons.append(
                "the underwriting insurer is not known (ClaimSettings.underwriters has no "
                "entry for this product): give insurer, so the survey request reaches it"
            )
        return reasons

    def survey_under_way(ctx: TransitionContext) -> list[str]:
        if survey_open(ctx.new_data):
            return []
        if "survey" in ctx.new_data:
            return ["the survey is already complete; request a new one if it must be redone"]
        return ["no survey has been requested (request_survey) on this case"]

    def open_survey(ctx: TransitionContext) -> None:
        data = ctx.new_data
        if ctx.data.get("insurer"):
            data["underwriter"] = {"name": ctx.data["insurer"], "source": "survey_request"}
        if "survey" in data:  # a survey redone: the earlier one stays on record
            data.setdefault("earlier_surveys", []).append(data["survey"])
        data["survey"] = {
            "requested_at": ctx.now.isoformat(),
            "requested_by": ctx.actor.id,
            "reason": ctx.data["reason"],
            "insurer": _underwriter(data),
            "assistance": [],
            "outcome": None,
        }
        ctx.notes.append(
            f"调查：已通知承保保险公司 {_underwriter(data)} 查勘；协助至查勘完成 "
            "(细则第四条(二) 调查)"
        )

    def assist_survey(ctx: TransitionContext) -> None:
        ctx.new_data["survey"]["assistance"].append(
            {
                "at": ctx.now.isoformat(),
                "by": ctx.actor.id,
                "by_name": ctx.actor.name,
                "step": ctx.data["step"],
                "note": ctx.data["note"],
            }
        )

    def finish_survey(ctx: TransitionContext) -> None:
        ctx.new_data["survey"]["outcome"] = {
            **ctx.data,
            "completed_at": ctx.now.isoformat(),
            "recorded_by": ctx.actor.id,
        }

    def stamp(key: str) -> Any:
        def action(ctx: TransitionContext) -> None:
            ctx.new_data.setdefault("timeline", {})[key] = ctx.now.isoformat()

        return action

    hooks = Hooks(
        notices=claim_notices(checklist),
        guards={
            "system_only": system_only,
            "review_passes": review_passes,
            "rejection_substantiated": rejection_substantiated,
            "policy_found": policy_found,
            "identity_matches": identity_matches,
            "right_to_claim": right_to_claim,
            "materials_complete": materials_complete,
            "is_major_case": is_major_case,
            "reported_to_headquarters": reported_to_headquarters,
            "survey_may_be_requested": survey_may_be_requested,
            "survey_under_way": survey_under_way,
            "insurer_agreed_to_pay": insurer_agreed_to_pay,
        },
        actions={
            "assess": assess,
            "attach_policy": attach_policy,
            "attach_identity": attach_identity,
            "record_checklist": record_checklist,
            "update_facts": update_facts,
            "receive_materials": receive,
            "request_materials": request_materials,
            "flag_later_request": flag_later_request,
            "open_survey": open_survey,
            "assist_survey": assist_survey,
            "finish_survey": finish_survey,
            "stamp_materials_complete": stamp("materials_complete_at"),
            "stamp_handed_over": stamp("handed_over_at"),
            "index_insurer_reference": index_insurer_reference,
            "record_insurer_receipt": record_insurer_receipt,
            "stamp_decided": stamp("decided_at"),
            "record_payment": record_payment,
        },
        schemas={
            "Assignment": Assignment,
            "ClaimReport": ClaimReport,
            "PolicyMatch": PolicyMatch,
            "IdentityConfirmation": IdentityConfirmation,
            "Verification": Verification,
            "Rejection": Rejection,
            "ClaimApplication": ClaimApplication,
            "MaterialsReceived": MaterialsReceived,
            "HandOver": HandOver,
            "Closing": Closing,
            "Withdrawal": Withdrawal,
            "MaterialsRequested": MaterialsRequested,
            "DeskMaterialsRequest": DeskMaterialsRequest,
            "SurveyRequest": SurveyRequest,
            "SurveyAssistance": SurveyAssistance,
            "SurveyOutcome": SurveyOutcome,
            "HeadquartersReport": HeadquartersReport,
            "HeadquartersAcknowledgement": HeadquartersAcknowledgement,
            "FactsUpdate": FactsUpdate,
            "NotOurs": NotOurs,
            "InsurerReceipt": InsurerReceipt,
            "InsurerDecision": InsurerDecision,
            "InsurerPayment": InsurerPayment,
        },
        intake={"claim_intake": _intake},
        conditions={
            "scene_preservation_instructed": lambda data: "scene_preservation" in data,
            "materials_missing": lambda data: bool(missing_materials(data, checklist)),
            "is_major": is_major,
            "major_unreported": major_unreported,
            "life_product": life_product,
            "not_life_product": lambda data: not life_product(data),
            "insurer_agreed_to_pay": lambda data: (
                (data.get("insurer_decision") or {}).get("outcome")
                in (DecisionOutcome.approved, DecisionOutcome.partially_approved)
            ),
        },
    )
    definition = load_workflow(DEFINITION, hooks)
    company_periods = {
        "hand_over": Period(s.hand_over_working_days, Unit.working_days),
        "major_report": Period(s.major_report_hours, Unit.hours),
        "survey_assistance": Period(s.survey_working_days, Unit.working_days),
    }
    return replace(
        definition,
        deadlines=tuple(
            replace(rule, period=company_periods[rule.name])
            if rule.name in company_periods
            else rule
            for rule in definition.deadlines
        ),
    )
