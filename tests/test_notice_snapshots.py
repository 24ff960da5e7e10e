"""The Chinese text of each claim notice for a fixed case, from the transition that
writes it to the rendered message (snapshots in tests/snapshots/cases/; rerun with
BAOFLOW_UPDATE_SNAPSHOTS=1 to rewrite them after a deliberate change, and read the
diff) (issue #5)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from baoflow.engine import ChineseOfficialCalendar, Engine, FakeClock, open_engine
from baoflow.notifications.templates import TemplateSet
from baoflow.workflows.claim import ClaimSettings, build

from tests.conftest import AGENT, HANDLER, ID_ZHANG, POLICIES, SUPERVISOR, report
from tests.test_claim_review import FIRE, ZHAO, day

#: The agency's catalogue: who underwrites the product of P-ACC-001.
UNDERWRITERS = {"综合意外险": "平安财险上海分公司"}

SNAPSHOTS = Path(__file__).parent / "snapshots" / "cases"
UPDATE = os.environ.get("BAOFLOW_UPDATE_SNAPSHOTS") == "1"


def notices(eng: Engine, case_id: int) -> dict[str, Any]:
    with eng.store.read() as tx:
        return {
            r.template: r.context for r in tx.list_outbox(case_id=case_id) if r.parent_id is None
        }


def check(templates: TemplateSet, notice: str, context: Any) -> None:
    rendered = templates.render(notice, context)
    text = f"{rendered.subject}\n\n{rendered.text}\n"
    path = SNAPSHOTS / f"{notice}.zh-CN.txt"
    if UPDATE:
        SNAPSHOTS.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{notice}: the text changed (see {path})"


def test_the_notices_of_a_fatal_accident_reported_at_once(eng: Engine, clock: FakeClock) -> None:
    """Two deaths in a fire-accident an hour ago, reported by a relative: accepted,
    scene to be preserved, a major case reported to headquarters, materials listed."""
    templates = TemplateSet(eng.notice_fields())
    case = eng.open_case(
        "claim",
        report(
            policy={"number": "P-ACC-001", "product_name": "综合意外险", "insured_name": "张伟"},
            incident={
                "time": "2026-05-06T08:00:00+08:00",
                "place": "上海市浦东新区世纪大道100号",
                "cause": "accident",
                "injury": "death",
                "deaths": 2,
            },
        ),
        AGENT,
    ).case
    eng.fire(
        case.id,
        "report_to_headquarters",
        SUPERVISOR,
        {"summary": "世纪大道100号工地事故，被保险人张伟等2人死亡，现场已保护。"},
    )
    eng.fire(case.id, "verify", HANDLER)
    eng.fire(
        case.id,
        "apply",
        HANDLER,
        {
            "applicant_name": "李娜",
            "applicant_id_number": "110101199003074514",
            "relationship": "spouse",
            "power_of_attorney": True,
        },
    )
    written = notices(eng, case.id)
    assert set(written) == {
        "claim_accepted",
        "scene_preservation",
        "scene_survey_request",
        "major_case_report",
        "materials_missing",
    }
    for notice, context in written.items():
        check(templates, notice, context)


def test_the_notices_of_a_major_case_surveyed_and_asked_for_more(
    eng: Engine, clock: FakeClock
) -> None:
    """A burn treated in hospital, 900,000 yuan expected: the insurer is asked to survey
    it; later the desk asks for a pathology report the one-time notice did not list."""
    templates = TemplateSet(eng.notice_fields())
    case = eng.open_case(
        "claim",
        report(
            policy={"number": "P-ACC-001", "product_name": "综合意外险", "insured_name": "张伟"},
            incident={"injury": "burn", "expected_amount": "900000", "course": "厨房燃气爆燃"},
        ),
        AGENT,
    ).case
    clock.advance(hours=1)
    eng.fire(case.id, "request_survey", HANDLER, {"reason": "核实爆燃原因及烧伤程度"})
    eng.fire(case.id, "verify", HANDLER)
    eng.fire(
        case.id,
        "apply",
        HANDLER,
        {"applicant_name": "张伟", "applicant_id_number": ID_ZHANG, "relationship": "self"},
    )
    eng.fire(
        case.id,
        "request_materials",
        HANDLER,
        {"items": ["pathology_report"], "reason": "烧伤创面病理检查结果为核定伤残等级所需"},
    )
    written = notices(eng, case.id)
    assert {"survey_request", "materials_requested"} <= set(written)
    for notice in ("survey_request", "materials_requested"):
        check(templates, notice, written[notice])


def test_the_written_notice_of_non_acceptance(eng: Engine) -> None:
    templates = TemplateSet(eng.notice_fields())
    case = eng.open_case(
        "claim", report(policy=ZHAO, incident={**FIRE, "time": day("2025-03-01")}), AGENT
    ).case
    eng.fire(
        case.id,
        "reject",
        HANDLER,
        {"reasons": ["outside_policy_period"], "notice": "保单已满期，不予受理。"},
    )
    check(templates, "claim_not_accepted", notices(eng, case.id)["claim_not_accepted"])


@pytest.fixture
def eng(tmp_path: Path, clock: FakeClock) -> Iterator[Engine]:
    """SQLite only: the text does not depend on the database."""
    engine_ = open_engine(
        f"sqlite:///{tmp_path / 'snap.db'}",
        clock=clock,
        calendar=ChineseOfficialCalendar(),
        workflows=[build(ClaimSettings(underwriters=UNDERWRITERS))],
    )
    engine_.policies.add(POLICIES)  # type: ignore[attr-defined]
    yield engine_
    engine_.close()
