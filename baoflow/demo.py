"""``baoflow demo``: a day of the service desk, played on a SQLite file.

Reports arrive through every channel; the desk registers them, reviews them, takes
applications, collects materials and hands cases to insurers. Some reports duplicate
earlier ones, some name nobody we insure, some share a name, some fail the review
for each of its three reasons, some are major. Everything goes through the public
Engine API, exactly as an embedding app would call it.
"""

from __future__ import annotations

import random
from collections import Counter
from contextlib import suppress
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from baoflow.engine import (
    SHANGHAI,
    Actor,
    BaoflowError,
    Case,
    Engine,
    FakeClock,
    GuardRefused,
    InvalidData,
    OutboxMessage,
    Policy,
    SqlPolicyDirectory,
    SystemClock,
    open_engine,
)
from baoflow.workflows import complaint, endorsement, surrender
from baoflow.workflows.claim import MATERIAL_TITLES, ClaimSettings, Material, missing_materials
from baoflow.workflows.claim import build as build_claim
from baoflow.workflows.common import CHANNEL_TITLES, Channel

AGENTS = [
    Actor("a01", "李静", roles=("service_agent",), org_unit="SH"),
    Actor("a02", "周洋", roles=("service_agent",), org_unit="SH"),
]
HANDLERS = [
    Actor("h01", "王芳", roles=("handler",), org_unit="SH"),
    Actor("h02", "刘洋", roles=("handler",), org_unit="SH"),
]
SUPERVISOR = Actor("s01", "陈刚", roles=("supervisor",), org_unit="SH")
#: The demo accounts' password (a demo database only: never a real one's).
DEMO_PASSWORD = "baoflow-demo"

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = [
    "伟",
    "芳",
    "娜",
    "敏",
    "静",
    "丽",
    "强",
    "磊",
    "军",
    "洋",
    "勇",
    "艳",
    "杰",
    "涛",
    "明",
    "超",
]
PLACES = ["浦东新区世纪大道", "徐汇区漕溪北路", "闵行区莘庄", "静安区南京西路", "嘉定区安亭镇"]
INSURERS = ["平安人寿", "中国人寿", "太平洋财险", "人保财险"]
#: The agency's catalogue: who underwrites each product (the survey notices go there;
#: notifications.demo.toml has each insurer's survey desk).
UNDERWRITERS = {
    "终身寿险": "中国人寿",
    "百万医疗险": "平安人寿",
    "综合意外险": "人保财险",
    "家庭财产险": "太平洋财险",
}
LINES = {
    "life": ("终身寿险", ("accident", "illness")),
    "health": ("百万医疗险", ("illness", "accident")),
    "accident": ("综合意外险", ("accident",)),
    "property": ("家庭财产险", ("fire", "theft", "natural_disaster")),
}

SCENARIOS = {
    "passes": 30,
    "missing_materials": 12,
    "rejected_period": 5,
    "rejected_coverage": 5,
    "rejected_late": 3,
    "major": 5,
    "scene": 3,
    "duplicate": 6,
    "no_policy": 4,
    "shared_name": 4,
    "withdrawn": 3,
    "bad_input": 4,
    "surrender": 6,
    "endorsement": 6,
    "complaint": 6,
}


@dataclass
class Day:
    eng: Engine
    clock: FakeClock
    rng: random.Random
    policies: list[Policy]
    opened: list[Case]
    refused_intake: Counter[str]
    duplicates: int = 0
    used: set[str] | None = None


def _id_number(rng: random.Random, birth: date) -> str:
    from baoflow.workflows.common import _ID_CHECK, _ID_WEIGHTS

    body = f"310115{birth:%Y%m%d}{rng.randint(0, 999):03d}"
    return body + _ID_CHECK[sum(int(d) * w for d, w in zip(body, _ID_WEIGHTS, strict=True)) % 11]


def _policies(rng: random.Random, today: date) -> list[Policy]:
    made = []
    for i in range(80):
        line = rng.choice(list(LINES))
        product, coverages = LINES[line]
        start = today - timedelta(days=rng.randint(30, 900))
        lapsed = i % 10 == 0
        end = (
            (today - timedelta(days=rng.randint(40, 200)))
            if lapsed
            else start + timedelta(days=3650 if line == "life" else 364)
        )
        name = rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(["", *GIVEN])
        made.append(
            Policy(
                number=f"P{today:%y}{i:05d}",
                product_name=product,
                product_line=line,
                insured_name=name,
                insured_id_number=_id_number(
                    rng, date(rng.randint(1955, 2005), rng.randint(1, 12), rng.randint(1, 28))
                ),
                start_date=start,
                end_date=end,
                coverages=coverages,
                sum_insured=Decimal(rng.choice([100_000, 300_000, 500_000, 800_000, 1_000_000])),
                beneficiaries=(rng.choice(SURNAMES) + rng.choice(GIVEN),),
            )
        )
    # Two different people named 张伟: the shared-name case (重名).
    for j, birth in enumerate((date(1980, 3, 7), date(1992, 11, 2))):
        made.append(
            Policy(
                number=f"P{today:%y}9{j:04d}",
                product_name="综合意外险",
                product_line="accident",
                insured_name="张伟",
                insured_id_number=_id_number(rng, birth),
                start_date=today - timedelta(days=100),
                end_date=today + timedelta(days=265),
                coverages=("accident",),
                sum_insured=Decimal(200_000),
            )
        )
    return made


def _report(day: Day, policy: Policy, **incident: Any) -> dict[str, Any]:
    rng = day.rng
    now = day.clock.now()
    facts: dict[str, Any] = {
        "time": (now - timedelta(hours=rng.randint(30, 240))).isoformat(),
        "place": "上海市" + rng.choice(PLACES) + f"{rng.randint(1, 999)}号",
        "cause": rng.choice(policy.coverages),
        "course": "详见报案人口述",
        "injury": "minor",
        "measures": "已送医",
        "condition": "病情稳定",
        "hospital": "仁济医院",
    }
    facts.update(incident)
    return {
        "channel": rng.choice(list(Channel)).value,
        "policy": {
            "number": policy.number,
            "product_name": policy.product_name,
            "insured_name": policy.insured_name,
        },
        "incident": facts,
        "reporter": {
            "name": rng.choice(SURNAMES) + rng.choice(GIVEN),
            "address": "上海市" + rng.choice(PLACES),
            "phone": f"13{rng.randint(0, 9)}{rng.randint(10_000_000, 99_999_999)}",
            "relationship": rng.choice(["本人", "配偶", "子女", "同事"]),
        },
    }


def _in_force(day: Day, **want: Any) -> Policy:
    today = day.clock.now().astimezone(SHANGHAI).date()
    pool = [
        p
        for p in day.policies
        if p.covers_date(today - timedelta(days=10))
        and p.insured_name != "张伟"
        and all(getattr(p, k) == v for k, v in want.items())
    ]
    # One report per policy, so the only duplicates are the deliberate ones.
    used = day.used if day.used is not None else set()
    fresh = [p for p in pool if p.number not in used] or pool
    chosen = day.rng.choice(fresh)
    used.add(chosen.number)
    day.used = used
    return chosen


def _open(day: Day, data: dict[str, Any]) -> Case | None:
    try:
        result = day.eng.open_case("claim", data, day.rng.choice(AGENTS))
    except InvalidData as exc:
        day.refused_intake[exc.problems[0].location] += 1
        return None
    if not result.created:
        day.duplicates += 1
        return None
    day.opened.append(result.case)
    return result.case


def _carry(day: Day, case: Case, *, stop_missing: bool = False) -> None:
    """Take a registered case as far as the day allows."""
    eng, rng = day.eng, day.rng
    handler = rng.choice(HANDLERS)
    # the supervisor assigns the claim: the dashboard's deadline list filters by handler
    eng.fire(
        case.id, "assign", SUPERVISOR, {"handler_id": handler.id, "handler_name": handler.name}
    )
    case = eng.fire(case.id, "verify", handler)
    policy = case.data["policy"]
    death = case.data["incident"]["injury"] == "death"
    found = eng.policies.get(policy["number"])
    assert found is not None
    if death:
        applicant = {"applicant_name": found.beneficiaries[0], "relationship": "beneficiary"}
    else:
        applicant = {"applicant_name": policy["insured_name"], "relationship": "self"}
    applicant["applicant_id_number"] = (
        policy["insured_id_number"] if not death else _id_number(rng, date(1985, 1, 1))
    )
    case = eng.fire(case.id, "apply", handler, applicant)
    required = list(case.data["materials"]["required"])
    if stop_missing:
        keep = rng.sample(required, k=max(1, len(required) - rng.randint(1, 3)))
        eng.fire(case.id, "receive_materials", handler, {"items": keep})
        # Refused with the one-time list of what is missing: what the desk sends out.
        with suppress(GuardRefused):
            eng.fire(case.id, "complete_materials", handler)
        return
    eng.fire(case.id, "receive_materials", handler, {"items": required})
    case = eng.fire(case.id, "complete_materials", handler)
    progress = rng.random()
    if progress < 0.3:
        return
    case = eng.fire(case.id, "hand_over", handler, {"insurer": rng.choice(INSURERS)})
    if progress < 0.6:
        return
    eng.fire(
        case.id, "close", handler, {"outcome": "paid", "amount": str(rng.randint(800, 60_000))}
    )


def _survey(day: Day, case: Case) -> None:
    """调查: the insurer is asked to survey the major case; the desk assists."""
    eng, rng = day.eng, day.rng
    eng.fire(case.id, "request_survey", SUPERVISOR, {"reason": "核实事故经过及死亡人数"})
    eng.fire(
        case.id,
        "record_survey_assistance",
        rng.choice(AGENTS),
        {"step": "contacted_claimant", "note": "已联系家属，约定查勘时间"},
    )
    if rng.random() < 0.5:
        eng.fire(
            case.id,
            "complete_survey",
            SUPERVISOR,
            {"finding": "confirmed", "summary": "查勘结果与报案情况相符"},
        )


def _play(day: Day, scenario: str) -> None:
    rng, eng = day.rng, day.eng
    now = day.clock.now()
    if scenario in ("passes", "missing_materials"):
        case = _open(day, _report(day, _in_force(day)))
        if case and case.state == "reported":
            _carry(day, case, stop_missing=scenario == "missing_materials")
    elif scenario == "rejected_period":
        lapsed = rng.choice(
            [p for p in day.policies if p.end_date < now.date() - timedelta(days=20)]
        )
        case = _open(day, _report(day, lapsed))
        if case:
            _reject(day, case, "outside_policy_period", rng.choice(HANDLERS))
    elif scenario == "rejected_coverage":
        policy = _in_force(day, product_line="accident")
        case = _open(day, _report(day, policy, cause="illness"))
        if case:
            _reject(day, case, "not_covered", rng.choice(HANDLERS))
    elif scenario == "rejected_late":
        policy = rng.choice([p for p in day.policies if p.product_line == "property"])
        when = datetime.combine(
            policy.start_date + timedelta(days=3), datetime.min.time(), SHANGHAI
        )
        policy = Policy(**{**policy.__dict__, "start_date": when.date() - timedelta(days=30)})
        old = _report(day, policy, time=(now - timedelta(days=365 * 3)).isoformat(), cause="fire")
        # Backdate the policy so only the filing limit fails (保险法第二十六条: 2 years).
        assert isinstance(eng.policies, SqlPolicyDirectory)
        eng.policies.add(
            [
                Policy(
                    **{
                        **policy.__dict__,
                        "start_date": (now - timedelta(days=365 * 4)).date(),
                        "end_date": (now + timedelta(days=30)).date(),
                    }
                )
            ]
        )
        case = _open(day, old)
        if case:
            _reject(day, case, "late_filing", SUPERVISOR)
    elif scenario == "major":
        policy = _in_force(day, product_line="accident")
        case = _open(
            day,
            _report(
                day,
                policy,
                injury="death",
                deaths=2,
                cause="accident",
                time=(now - timedelta(hours=3)).isoformat(),
                expected_amount="900000",
            ),
        )
        if case:
            _survey(day, case)
            _carry(day, case)
    elif scenario == "scene":
        policy = _in_force(day, product_line="accident")
        _open(
            day,
            _report(
                day,
                policy,
                injury="death",
                deaths=1,
                cause="accident",
                time=(now - timedelta(hours=5)).isoformat(),
                hospital=None,
            ),
        )
    elif scenario == "duplicate":
        earlier = [
            c
            for c in day.opened
            if c.state not in ("withdrawn", "rejected") and "number" in c.data.get("policy", {})
        ]
        if earlier:
            first = rng.choice(earlier)
            again = _report(day, eng.policies.get(first.data["policy"]["number"]) or _in_force(day))
            again["incident"]["time"] = first.data["incident"]["time"]
            _open(day, again)
    elif scenario == "no_policy":
        stranger = Policy(
            "P-UNKNOWN",
            "某保险",
            "accident",
            rng.choice(SURNAMES) + "某某",
            None,
            now.date(),
            now.date(),
            ("accident",),
            Decimal(0),
        )
        case = _open(day, _report(day, stranger))
        if case and rng.random() < 0.5:
            eng.fire(
                case.id,
                "confirm_not_ours",
                rng.choice(HANDLERS),
                {"note": "经核实为他司保单，已告知报案人"},
            )
    elif scenario == "shared_name":
        twin = rng.choice([p for p in day.policies if p.insured_name == "张伟"])
        data = _report(day, twin)
        del data["policy"]["number"]
        case = _open(day, data)
        if case and case.state == "identity_pending" and rng.random() < 0.5:
            eng.fire(
                case.id,
                "confirm_identity",
                rng.choice(HANDLERS),
                {"id_number": twin.insured_id_number},
            )
    elif scenario == "withdrawn":
        case = _open(day, _report(day, _in_force(day)))
        if case:
            eng.fire(
                case.id, "withdraw", rng.choice(HANDLERS), {"reason": "客户来电表示不再申请理赔"}
            )
    elif scenario == "surrender":
        _surrender(day)
    elif scenario == "endorsement":
        _endorsement(day)
    elif scenario == "complaint":
        _complaint(day)
    elif scenario == "bad_input":
        data = _report(day, _in_force(day))
        flaw = rng.choice(["id", "future", "channel", "missing"])
        if flaw == "id":
            data["policy"]["insured_id_number"] = "110101199003074510"  # wrong check digit
        elif flaw == "future":
            data["incident"]["time"] = (now + timedelta(days=2)).isoformat()
        elif flaw == "channel":
            data["channel"] = "wechat"
        else:
            del data["incident"]["place"]
        _open(day, data)


def _surrender(day: Day) -> None:
    """退保: the request with its reason; most are referred, a few withdrawn at once."""
    rng, eng = day.rng, day.eng
    policy = _in_force(day)
    data = {
        "channel": rng.choice(list(Channel)).value,
        "policy": {
            "number": policy.number,
            "product_name": policy.product_name,
            "insured_name": policy.insured_name,
        },
        "customer": {
            "name": policy.insured_name,
            "phone": f"13{rng.randint(0, 9)}{rng.randint(10_000_000, 99_999_999)}",
        },
        "reason": rng.choice(
            [
                {"code": "financial", "detail": "家庭开支紧张，无力继续缴费"},
                {"code": "better_alternative", "detail": "已购买其他公司同类产品"},
                {"code": "product_unsuitable", "detail": "保障与需要不符"},
            ]
        ),
    }
    case = eng.open_case("surrender", data, rng.choice(AGENTS)).case
    if rng.random() < 0.2:
        eng.fire(case.id, "withdraw", rng.choice(AGENTS), {"reason": "客户决定继续持有保单"})
    else:
        eng.fire(case.id, "refer", rng.choice(HANDLERS), {"insurer": "承保保险公司上海分公司"})


def _endorsement(day: Day) -> None:
    """批改: typed changes; the application, the insurer, the endorsement or a refusal."""
    rng, eng = day.rng, day.eng
    policy = _in_force(day)
    change = rng.choice(
        [
            {"kind": "beneficiary", "name": "王小明", "relationship": "子女", "share_percent": 100},
            {"kind": "contact", "address": "上海市" + rng.choice(PLACES)},
            {
                "kind": "payment_account",
                "bank": "工商银行",
                "account_number": "6222020200112233445",
            },
        ]
    )
    data = {
        "channel": rng.choice(list(Channel)).value,
        "policy": {
            "number": policy.number,
            "product_name": policy.product_name,
            "insured_name": policy.insured_name,
        },
        "requester": {
            "name": policy.insured_name,
            "phone": f"13{rng.randint(0, 9)}{rng.randint(10_000_000, 99_999_999)}",
            "relationship": "本人",
        },
        "changes": [change],
    }
    case = eng.open_case("endorsement", data, rng.choice(AGENTS)).case
    handler = rng.choice(HANDLERS)
    if rng.random() < 0.3:
        return  # the customer still has the application to fill in
    form = {"form_number": f"PG-F-{case.id:04d}", "signed_by_policyholder": True}
    eng.fire(case.id, "receive_application", handler, form)
    eng.fire(case.id, "submit", handler, {"insurer": "承保保险公司上海分公司"})
    if rng.random() < 0.8:
        eng.fire(case.id, "confirm", handler, {"endorsement_number": f"PD-{case.id:06d}"})
    else:
        eng.fire(case.id, "decline", handler, {"reason": "需被保险人书面同意"})


def _complaint(day: Day) -> None:
    """投诉: registered and acknowledged; assigned; some extended, some resolved and
    approved by the authority their amount calls for, replied and closed."""
    rng, eng = day.rng, day.eng
    data = {
        "channel": rng.choice(list(Channel)).value,
        "complainant": {
            "name": rng.choice(SURNAMES) + rng.choice(GIVEN),
            "phone": f"13{rng.randint(0, 9)}{rng.randint(10_000_000, 99_999_999)}",
        },
        "category": rng.choice(["claim", "service", "sales"]),
        "request": rng.choice(
            ["理赔进度缓慢，要求尽快处理", "对服务态度不满，要求道歉", "对销售说明有异议，要求解释"]
        ),
        "about_staff": ["h02"],
    }
    case = eng.open_case("complaint", data, rng.choice(AGENTS)).case
    eng.fire(case.id, "assign", SUPERVISOR, {"handler_id": "h01", "handler_name": "王芳"})
    handler = HANDLERS[0]
    roll = rng.random()
    if roll < 0.3:
        eng.fire(case.id, "extend", handler, {"reason": "涉及多家机构，需调取记录"})
        return
    if roll < 0.5:
        return  # still under investigation
    amount = rng.choice(["0", "800", "3000"])
    eng.fire(case.id, "propose", handler, {"text": "核实后补正并致歉", "compensation": amount})
    eng.fire(case.id, "approve", SUPERVISOR)
    eng.fire(case.id, "reply", handler, {"text": "经核实已处理，谨致歉意"})
    improvement = {
        "root_cause": "流程衔接不畅",
        "corrective_action": "纳入周例会跟踪",
        "done": True,
    }
    eng.fire(case.id, "record_improvement", handler, improvement)
    eng.fire(case.id, "close", SUPERVISOR, {"satisfaction": rng.choice(["satisfied", "neutral"])})


def _reject(day: Day, case: Case, reason: str, actor: Actor) -> None:
    notice = {
        "outside_policy_period": "经核实，出险日期不在保险期间内，本次报案不予受理。",
        "not_covered": "经核实，本次事故不属于保单保障范围，本次报案不予受理。",
        "late_filing": "经核实，本次申请已超过法定申请时效，本次报案不予受理。",
    }[reason]
    day.eng.fire(case.id, "reject", actor, {"reasons": [reason], "notice": notice})


def run(*, db: Path, seed: int, reports: int, console: Console) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    start = (
        SystemClock().now().astimezone(SHANGHAI).replace(hour=8, minute=30, second=0, microsecond=0)
    )
    clock = FakeClock(start)
    # The demo plays today: late in the year, a deadline reaching into a year whose
    # holiday arrangement is not published yet is counted provisionally, as the default
    # calendar does, and says so (docs/deadlines.md).
    workflows = [
        build_claim(ClaimSettings(underwriters=UNDERWRITERS)),
        surrender.build(),
        endorsement.build(),
        complaint.build(),
    ]
    eng = open_engine(f"sqlite:///{db}", clock=clock, workflows=workflows)
    rng = random.Random(seed)
    assert isinstance(eng.policies, SqlPolicyDirectory)
    policies = _policies(rng, start.date())
    eng.policies.add(policies)
    day = Day(eng, clock, rng, policies, [], Counter())
    plan = [s for s in SCENARIOS for _ in range(1)]  # every scenario at least once
    plan += rng.choices(
        list(SCENARIOS), weights=list(SCENARIOS.values()), k=max(0, reports - len(plan))
    )
    rng.shuffle(plan)
    workday = timedelta(hours=9)
    with Progress(console=console, transient=False) as progress:
        task = progress.add_task(f"{start:%Y-%m-%d} service desk", total=len(plan))
        for scenario in plan:
            clock.advance(workday / max(1, len(plan)))
            try:
                _play(day, scenario)
            except BaoflowError as exc:  # a demo must never hide a surprise
                console.print(f"[red]{scenario}: {exc}[/]")
            progress.advance(task)
    _summary(eng, day, db, console)
    eng.close()


def _notices(eng: Engine, console: Console) -> None:
    """Deliver the day's notices to the in-app inbox and count them by notice."""
    from baoflow.notifications.config import load_deliverer

    run = load_deliverer(eng, Path(__file__).with_name("notifications.demo.toml")).deliver_due()
    rows: list[OutboxMessage] = []
    while page := eng.outbox(limit=500, offset=len(rows)):
        rows.extend(page)
    messages = [r for r in rows if r.parent_id is not None]  # per address, not the notices
    by_notice = Counter((r.template, r.status) for r in messages)
    table = Table(title="Notices sent 通知 (in-app inbox)")
    table.add_column("notice")
    table.add_column("delivered", justify="right")
    table.add_column("dead letter", justify="right")
    for notice in sorted({t for t, _ in by_notice}):
        table.add_row(
            notice, str(by_notice[(notice, "delivered")]), str(by_notice[(notice, "dead")])
        )
    console.print(table)
    if run.dead:
        console.print(
            f"[yellow]{run.dead} notice(s) in dead letter: baoflow outbox list --status dead[/]"
        )


def _other_case_types(eng: Engine, console: Console) -> None:
    table = Table(title="Surrenders, endorsements, complaints 退保、批改与投诉")
    table.add_column("workflow")
    table.add_column("state")
    table.add_column("cases", justify="right")
    for name in ("surrender", "endorsement", "complaint"):
        definition = eng.workflow(name)
        counts = eng.count_by_state(name)
        for state in definition.states:
            n = counts.get((name, state.name), 0)
            if n:
                table.add_row(definition.title, f"{state.name} {state.title}", str(n))
    console.print(table)


def _summary(eng: Engine, day: Day, db: Path, console: Console) -> None:
    definition = eng.workflow("claim")
    counts = eng.count_by_state("claim")
    table = Table(title="Cases by state 案件状态", show_footer=True)
    table.add_column("state", footer="total")
    table.add_column("", footer="")
    table.add_column("cases", justify="right", footer=str(sum(counts.values())))
    for state in definition.states:
        n = counts.get(("claim", state.name), 0)
        if n:
            table.add_row(state.name, state.title, str(n))
    console.print(table)

    cases = eng.find_cases(workflow="claim", limit=10_000)
    reasons: Counter[str] = Counter()
    missing: Counter[str] = Counter()
    channels: Counter[str] = Counter()
    majors = scene = late = 0
    for c in cases:
        channels[c.data["channel"]] += 1
        for r in (c.data.get("rejection") or {}).get("reasons", ()):
            reasons[r] += 1
        if c.state == "applied":
            for item in missing_materials(c.data):
                missing[item.value] += 1
        majors += bool((c.data.get("major") or {}).get("is_major"))
        scene += "scene_preservation" in c.data
        late += bool((c.data.get("flags") or {}).get("late_notice"))

    side = Table(title="The day in figures 今日概况")
    side.add_column("what")
    side.add_column("n", justify="right")
    for ch in Channel:
        side.add_row(f"reports by {ch.value} ({CHANNEL_TITLES[ch]})", str(channels[ch.value]))
    side.add_row("duplicate reports answered with the existing case", str(day.duplicates))
    side.add_row("reports refused at intake (bad data)", str(sum(day.refused_intake.values())))
    side.add_row("major cases (report to HQ within 24 h)", str(majors))
    side.add_row("scene preservation instructed", str(scene))
    side.add_row("late notice flagged (保险法第二十一条)", str(late))
    console.print(side)

    rej = Table(title="Rejections by reason 不予受理原因")
    rej.add_column("reason")
    rej.add_column("cases", justify="right")
    for reason, n in reasons.most_common():
        rej.add_row(reason, str(n))
    console.print(rej)

    miss = Table(title="What is missing (cases collecting materials) 待补材料")
    miss.add_column("material")
    miss.add_column("cases", justify="right")
    for code, n in missing.most_common():
        miss.add_row(f"{MATERIAL_TITLES[Material(code)]} ({code})", str(n))
    console.print(miss)
    _other_case_types(eng, console)
    _notices(eng, console)
    for year in eng.calendar_status():
        if year.provisional and year.provisional_deadlines:
            console.print(
                f"\nCalendar: {year.year}'s holiday arrangement is not published yet; "
                f"{year.provisional_deadlines} running deadline(s) are counted on its "
                "statutory holidays for now and move when it is imported "
                f"(baoflow calendar status --url sqlite:///{db})"
            )
    console.print(
        f"\nDatabase: [bold]{db.resolve()}[/]\n"
        f"Look around: baoflow cases list --url sqlite:///{db}   "
        f"baoflow cases show {cases[0].number if cases else 'NUMBER'} --url sqlite:///{db}   "
        f"baoflow outbox list --url sqlite:///{db}"
    )
    # The HTTP API over the same database, with a token to try it (docs/http-api.md).
    token = eng.create_api_token("demo", actor=SUPERVISOR)
    console.print(
        f"\nServe it over HTTP: baoflow serve --url sqlite:///{db}   (then /docs in a browser)\n"
        f"A token acting as {SUPERVISOR.name} ({SUPERVISOR.id}, supervisor, "
        f"{SUPERVISOR.org_unit}), shown this once:\n  {token.secret}\n"
        f"Try: curl -H 'Authorization: Bearer {token.secret}' "
        "http://127.0.0.1:8000/v1/cases?limit=3\n"
        f"More tokens: baoflow tokens add APP --actor ID --role ROLE --org UNIT "
        f"--url sqlite:///{db}",
        soft_wrap=True,
        highlight=False,
    )
    # The supervisors' dashboard, served by the same command (docs/dashboard.md): a
    # demo account for the supervisor and one for a handler of the same branch.
    handler = HANDLERS[0]
    for person in (SUPERVISOR, handler):
        eng.add_user(
            person.id,
            person.name,
            DEMO_PASSWORD,
            roles=person.roles,
            org_unit=person.org_unit,
        )
    console.print(
        f"\nThe dashboard: open http://127.0.0.1:8000/ once it is served, and log in as\n"
        f"  {SUPERVISOR.id} ({SUPERVISOR.name}, supervisor, {SUPERVISOR.org_unit}) or "
        f"{handler.id} ({handler.name}, handler, {handler.org_unit}), "
        f"password {DEMO_PASSWORD}\n"
        f"More accounts: baoflow users add ID --name NAME --role ROLE --org UNIT "
        f"--url sqlite:///{db}",
        soft_wrap=True,
        highlight=False,
    )
