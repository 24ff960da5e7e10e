"""The notice templates: every notice renders in Chinese and English, the Chinese text is
pinned by snapshots, an app can replace any template, and a broken template is refused
when the set is built, not when a message is sent."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2
import pytest
from baoflow.engine.notices import TEMPLATE_FIELDS
from baoflow.notifications.message import NotificationConfigError
from baoflow.notifications.templates import BUILTIN_DIR, TemplateSet, UnknownTemplate
from baoflow.workflows.claim import build as claim_build
from baoflow.workflows.complaint import build as complaint_build
from baoflow.workflows.surrender import build as surrender_build

#: Every notice with built-in templates and the fields each receives, from where they are
#: declared: the deadlines' (engine.notices) and each workflow's NoticeSpecs.
NOTICE_FIELDS: dict[str, frozenset[str]] = {
    **TEMPLATE_FIELDS,
    **{
        name: spec.fields
        for build in (claim_build, surrender_build, complaint_build)
        for name, spec in build().hooks.notices.items()
    },
}

SNAPSHOTS = Path(__file__).parent / "snapshots" / "notices"
UPDATE = os.environ.get("BAOFLOW_UPDATE_SNAPSHOTS") == "1"

CASE = "LP-20260506-000001"

#: One fixed, realistic context per built-in notice (exactly the notice's fields).
CONTEXTS: dict[str, dict[str, Any]] = {
    "deadline_warning": {
        "case_number": CASE,
        "workflow": "claim",
        "rule": "hand_over",
        "title": "理赔材料移交保险公司",
        "article": "细则第四条(五) 收到理赔材料3个工作日内移交保险公司",
        "due_at": "2026-05-09 23:59",
        "late_seconds": 0.0,
        "level": 2,
        "share": 0.8,
    },
    "deadline_breach": {
        "case_number": CASE,
        "workflow": "claim",
        "rule": "major_report",
        "title": "重大案件24小时内呈报总部",
        "article": "细则第四条(二) 重大案件：接到报案或了解情况的24小时内向总部呈报",
        "due_at": "2026-05-07 09:10",
        "late_seconds": 0.412,
        "level": 1,
    },
    "deadline_escalation": {
        "case_number": CASE,
        "workflow": "claim",
        "rule": "hand_over",
        "title": "理赔材料移交保险公司",
        "article": "细则第四条(五) 收到理赔材料3个工作日内移交保险公司",
        "due_at": "2026-05-09 23:59",
        "late_seconds": 185.0,
        "level": 1,
        "to": "supervisor",
        "actions": ["notify", "raise_priority"],
    },
    "claim_accepted": {
        "case_number": CASE,
        "reporter_name": "王磊",
        "insured_name": "李娜",
        "policy_number": "P-LIFE-001",
        "incident_time": "2026-05-04 15:30",
        "reported_at": "2026-05-06 09:10",
    },
    "claim_not_accepted": {
        "case_number": "LP-20260506-000002",
        "reporter_name": "赵强",
        "insured_name": "赵强",
        "policy_number": "P-OLD-001",
        "reasons": [
            "出险日期不在保险期间内（保单已失效或尚未生效）",
            "本次事故不属于保险合同的保障范围",
        ],
        "decided_at": "2026-05-06 14:00",
    },
    "materials_missing": {
        "case_number": CASE,
        "applicant_name": "王磊",
        "insured_name": "李娜",
        "missing": ["保险单正本", "受益人（申请人）身份证件", "死亡证明", "事故证明"],
    },
    "materials_requested": {
        "case_number": CASE,
        "applicant_name": "王磊",
        "insured_name": "李娜",
        "items": ["病理报告"],
        "reason": "保险公司核定重大疾病需病理诊断",
    },
    "scene_survey_request": {
        "case_number": CASE,
        "insurer_name": "平安财险上海分公司",
        "insured_name": "张伟",
        "policy_number": "P-ACC-001",
        "product_name": "综合意外险",
        "incident_time": "2026-05-06 08:00",
        "incident_place": "上海市浦东新区世纪大道100号",
        "incident_course": "工地脚手架倒塌",
        "deaths": 1,
        "reported_at": "2026-05-06 09:00",
    },
    "survey_request": {
        "case_number": CASE,
        "org_unit": "SH",
        "insurer_name": "平安财险上海分公司",
        "insured_name": "张伟",
        "policy_number": "P-ACC-001",
        "incident_time": "2026-05-06 08:00",
        "incident_place": "上海市浦东新区世纪大道100号",
        "criteria": ["一次事故导致2人或2人以上死亡"],
        "reason": "核实事故经过及死亡人数，调取工地监控",
        "requested_at": "2026-05-06 10:00",
    },
    "scene_preservation": {
        "case_number": CASE,
        "reporter_name": "王磊",
        "incident_place": "上海市浦东新区世纪大道100号",
        "instruction": "请在确保安全的前提下保护事故现场，勿移动或清理，等候保险公司查勘人员到场。",
    },
    "major_case_report": {
        "case_number": CASE,
        "org_unit": "SH",
        "insured_name": "李娜",
        "policy_number": "P-LIFE-001",
        "incident_time": "2026-05-04 15:30",
        "incident_place": "上海市浦东新区世纪大道100号",
        "criteria": [
            "一次事故导致2人或2人以上死亡",
            "预计理赔金额或保险金额超过50万元且结果暂时无法确定",
        ],
        "summary": "被保险人驾车途中发生交通事故，车内2人当场死亡，交警已出具事故认定书。",
        "reported_at": "2026-05-06 09:10",
    },
    "surrender_documents": {
        "case_number": "TB-20260506-000001",
        "customer_name": "张伟",
        "policy_number": "P-ACC-001",
        "insurer": "平安人寿上海分公司",
        "documents": ["保险单正本", "投保人身份证件原件", "退保申请书", "投保人本人银行账户信息"],
    },
    "complaint_acknowledged": {
        "case_number": "TS-SH-20260420-000001",
        "complainant_name": "赵强",
        "accepted_at": "2026-04-20 10:00",
        "request": "理赔款迟迟未到账，要求尽快支付并说明原因",
        "due_at": "2026-05-06 24:00",
    },
    "complaint_extended": {
        "case_number": "TS-SH-20260420-000001",
        "complainant_name": "赵强",
        "reason": "涉及多家机构，需调取记录",
        "due_at": "2026-05-20 24:00",
    },
    "complaint_reply": {
        "case_number": "TS-SH-20260420-000001",
        "complainant_name": "赵强",
        "accepted_at": "2026-04-20 10:00",
        "reply": "经核实，理赔款已于2026年4月30日补付到账，对给您带来的不便深表歉意。",
    },
    "major_complaint_report": {
        "case_number": "TS-SH-20260420-000002",
        "org_unit": "SH",
        "accepted_at": "2026-04-20 10:00",
        "complainants": 25,
        "disaster": True,
        "request": "台风受灾客户集体要求加快理赔",
    },
}


@pytest.fixture(scope="module")
def builtin() -> TemplateSet:
    return TemplateSet(NOTICE_FIELDS)


def copy_builtin(notice: str, locale: str, into: Path) -> Path:
    """The built-in template of ``notice`` in ``locale``, copied into ``into``."""
    into.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(BUILTIN_DIR / f"{notice}.{locale}.txt.j2", into))


def refused(fields: Mapping[str, Any], folder: Path) -> str:
    """The message of the error building a set with ``folder`` as override raises."""
    with pytest.raises(NotificationConfigError) as caught:
        TemplateSet(fields, override_dirs=[folder])
    assert caught.value.what == "the notice templates"
    return str(caught.value)


# --- every built-in notice renders --------------------------------------------------
def test_each_fixed_context_gives_exactly_the_fields_of_its_notice() -> None:
    assert set(CONTEXTS) == set(NOTICE_FIELDS)
    for notice, context in CONTEXTS.items():
        assert set(context) == NOTICE_FIELDS[notice], notice


def test_the_set_knows_every_built_in_notice(builtin: TemplateSet) -> None:
    assert builtin.notices() == sorted(NOTICE_FIELDS)
    assert builtin.locales == ("zh-CN", "en")


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
@pytest.mark.parametrize("notice", sorted(NOTICE_FIELDS))
def test_every_built_in_notice_renders_a_one_line_subject_and_a_text_naming_the_case(
    builtin: TemplateSet, notice: str, locale: str
) -> None:
    context = CONTEXTS[notice]
    out = builtin.render(notice, context, locale=locale)
    assert out.subject and "\n" not in out.subject and out.subject == out.subject.strip()
    assert out.text and out.text == out.text.strip()
    assert context["case_number"] in out.text
    assert "\n\n\n" not in out.text, "no runs of blank lines"
    assert f'<html lang="{locale}">' in out.html


def test_chinese_is_the_default_locale(builtin: TemplateSet) -> None:
    out = builtin.render("claim_accepted", CONTEXTS["claim_accepted"])
    assert out.text.startswith("尊敬的王磊：")


@pytest.mark.parametrize("notice", sorted(NOTICE_FIELDS))
def test_the_chinese_text_of_each_notice_matches_its_snapshot(
    builtin: TemplateSet, notice: str
) -> None:
    out = builtin.render(notice, CONTEXTS[notice], locale="zh-CN")
    got = f"{out.subject}\n\n{out.text}\n"
    path = SNAPSHOTS / f"{notice}.zh-CN.txt"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(got, encoding="utf-8")
        return
    assert path.exists(), f"no snapshot {path}: run with BAOFLOW_UPDATE_SNAPSHOTS=1"
    assert got == path.read_text(encoding="utf-8")


def test_the_missing_materials_notice_lists_every_item_at_once(builtin: TemplateSet) -> None:
    context = CONTEXTS["materials_missing"]
    text = builtin.render("materials_missing", context).text
    assert "一次性告知" in text and "4项" in text
    for n, item in enumerate(context["missing"], start=1):
        assert f"{n}. {item}" in text


def test_the_written_refusal_gives_every_reason_and_returns_the_originals(
    builtin: TemplateSet,
) -> None:
    context = CONTEXTS["claim_not_accepted"]
    text = builtin.render("claim_not_accepted", context).text
    for reason in context["reasons"]:
        assert reason in text
    assert "原件将退还" in text and "复印件" in text


def test_a_major_case_report_without_an_org_unit_shows_a_dash(builtin: TemplateSet) -> None:
    out = builtin.render("major_case_report", {**CONTEXTS["major_case_report"], "org_unit": None})
    assert "呈报机构：—" in out.text and "None" not in out.text
    assert "None" not in out.subject


def test_a_claim_notice_without_policy_details_shows_dashes_not_blanks(
    builtin: TemplateSet,
) -> None:
    context = {**CONTEXTS["claim_accepted"], "insured_name": "", "policy_number": ""}
    text = builtin.render("claim_accepted", context).text
    assert "被保险人：—\n保单号：—\n" in text


def test_a_warning_shows_the_share_of_the_period_as_a_percentage(builtin: TemplateSet) -> None:
    out = builtin.render("deadline_warning", {**CONTEXTS["deadline_warning"], "share": 0.5})
    assert "50%" in out.text and "第2次预警" in out.text


def test_a_notice_that_went_out_late_says_so_and_a_punctual_one_does_not(
    builtin: TemplateSet,
) -> None:
    punctual = builtin.render("deadline_breach", CONTEXTS["deadline_breach"]).text
    assert "晚发" not in punctual
    late = {**CONTEXTS["deadline_breach"], "late_seconds": 7300.0}
    assert "晚发约2小时" in builtin.render("deadline_breach", late).text


def test_an_escalation_names_the_role_and_actions_in_chinese(builtin: TemplateSet) -> None:
    text = builtin.render("deadline_escalation", CONTEXTS["deadline_escalation"]).text
    assert "升级至主管" in text and "本级措施：通知、提升优先级\n" in text
    other = {**CONTEXTS["deadline_escalation"], "to": "regional_office", "actions": ["notify"]}
    assert "升级至regional_office" in builtin.render("deadline_escalation", other).text


# --- HTML ----------------------------------------------------------------------------
def test_html_is_escaped_and_the_text_is_not(builtin: TemplateSet) -> None:
    context = {**CONTEXTS["claim_accepted"], "reporter_name": "<script>alert(1)</script>&"}
    out = builtin.render("claim_accepted", context)
    assert "<script>alert(1)</script>&" in out.text
    assert "<script>" not in out.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&amp;" in out.html


def test_html_keeps_the_line_breaks_of_the_text(builtin: TemplateSet) -> None:
    out = builtin.render("claim_accepted", CONTEXTS["claim_accepted"])
    assert out.html.count("<br>") == out.text.count("\n")
    assert f"<title>{out.subject}</title>" in out.html


# --- rendering errors ----------------------------------------------------------------
def test_a_context_missing_a_value_raises_undefined_error(builtin: TemplateSet) -> None:
    context = dict(CONTEXTS["claim_accepted"])
    del context["policy_number"]
    with pytest.raises(jinja2.UndefinedError, match="policy_number"):
        builtin.render("claim_accepted", context)


def test_an_unknown_notice_or_locale_is_a_key_error_naming_what_there_is(
    builtin: TemplateSet,
) -> None:
    with pytest.raises(UnknownTemplate, match="no notice 'nope'; the notices are: claim_"):
        builtin.render("nope", {})
    with pytest.raises(KeyError, match="has no locale 'fr'; the locales are: zh-CN, en"):
        builtin.render("claim_accepted", CONTEXTS["claim_accepted"], locale="fr")


# --- an app's own templates ----------------------------------------------------------
def test_an_app_folder_replaces_a_built_in_template(tmp_path: Path) -> None:
    (tmp_path / "claim_accepted.zh-CN.txt.j2").write_text(
        "{% block subject %}已受理 {{ case_number }}{% endblock %}\n"
        "{% block body %}{{ reporter_name }}您好，案件{{ case_number }}已登记。{% endblock %}\n",
        encoding="utf-8",
    )
    ts = TemplateSet(NOTICE_FIELDS, override_dirs=[tmp_path])
    out = ts.render("claim_accepted", CONTEXTS["claim_accepted"])
    assert out.subject == f"已受理 {CASE}"
    assert out.text == f"王磊您好，案件{CASE}已登记。"
    # the other locale and the other notices still come from the built-in folder
    assert ts.render("claim_accepted", CONTEXTS["claim_accepted"], locale="en").text.startswith(
        "Dear 王磊,"
    )


def test_an_app_can_replace_the_html_layout(tmp_path: Path) -> None:
    (tmp_path / "_email.html.j2").write_text(
        '<div lang="{{ locale }}"><h1>{{ subject }}</h1>{{ body }}</div>', encoding="utf-8"
    )
    ts = TemplateSet(NOTICE_FIELDS, override_dirs=[tmp_path])
    out = ts.render("claim_accepted", {**CONTEXTS["claim_accepted"], "reporter_name": "<b>"})
    assert out.html.startswith('<div lang="zh-CN"><h1>报案受理通知')
    assert "&lt;b&gt;" in out.html


def test_an_app_adds_a_notice_of_its_own(tmp_path: Path) -> None:
    for locale in ("zh-CN", "en"):
        (tmp_path / f"visit_booked.{locale}.txt.j2").write_text(
            "{% block subject %}{{ case_number }}{% endblock %}"
            "{% block body %}{{ visit_at }}{% endblock %}",
            encoding="utf-8",
        )
    fields = {**NOTICE_FIELDS, "visit_booked": {"case_number", "visit_at"}}
    ts = TemplateSet(fields, override_dirs=[tmp_path])
    out = ts.render("visit_booked", {"case_number": CASE, "visit_at": "2026-05-08 10:00"})
    assert (out.subject, out.text) == (CASE, "2026-05-08 10:00")


# --- refused at load -----------------------------------------------------------------
def test_a_template_using_a_variable_its_notice_does_not_provide_is_refused(
    tmp_path: Path,
) -> None:
    path = copy_builtin("deadline_warning", "zh-CN", tmp_path)
    path.write_text(
        path.read_text(encoding="utf-8").replace("{{ due_at }}", "{{ due_at }}（{{ handler }}）"),
        encoding="utf-8",
    )
    message = refused(NOTICE_FIELDS, tmp_path)
    assert (
        "deadline_warning.zh-CN.txt.j2 uses 'handler', which the notice deadline_warning "
        "does not provide (it provides: article, case_number, due_at, late_seconds, level, "
        "rule, share, title, workflow)"
    ) in message


def test_a_template_with_a_syntax_error_is_refused_naming_the_file_and_line(
    tmp_path: Path,
) -> None:
    (tmp_path / "claim_accepted.zh-CN.txt.j2").write_text(
        "{% block subject %}受理{% endblock %}\n{% block body %}\n{% if reporter_name %}\n"
        "尊敬的{{ reporter_name }}\n{% endblock %}\n",
        encoding="utf-8",
    )
    message = refused(NOTICE_FIELDS, tmp_path)
    assert "claim_accepted.zh-CN.txt.j2 does not parse" in message
    assert str(tmp_path / "claim_accepted.zh-CN.txt.j2") in message
    assert "line 5" in message


def test_a_notice_without_a_chinese_template_is_refused(tmp_path: Path) -> None:
    (tmp_path / "visit_booked.en.txt.j2").write_text(
        "{% block subject %}Visit{% endblock %}{% block body %}Booked{% endblock %}",
        encoding="utf-8",
    )
    message = refused({"visit_booked": {"case_number"}}, tmp_path)
    assert "visit_booked.zh-CN.txt.j2 is missing" in message
    assert f"looked in: {tmp_path}, {BUILTIN_DIR}" in message
    assert "visit_booked.en.txt.j2" not in message


def test_a_notice_without_an_english_template_is_refused_too(tmp_path: Path) -> None:
    (tmp_path / "visit_booked.zh-CN.txt.j2").write_text(
        "{% block subject %}预约{% endblock %}{% block body %}已预约{% endblock %}",
        encoding="utf-8",
    )
    message = refused({"visit_booked": {"case_number"}}, tmp_path)
    assert "visit_booked.en.txt.j2 is missing" in message


def test_chinese_is_required_even_when_the_locales_leave_it_out(tmp_path: Path) -> None:
    (tmp_path / "visit_booked.en.txt.j2").write_text(
        "{% block subject %}Visit{% endblock %}{% block body %}Booked{% endblock %}",
        encoding="utf-8",
    )
    with pytest.raises(NotificationConfigError, match=r"visit_booked\.zh-CN\.txt\.j2 is missing"):
        TemplateSet({"visit_booked": set()}, override_dirs=[tmp_path], locales=["en"])


def test_a_template_without_its_blocks_is_refused(tmp_path: Path) -> None:
    (tmp_path / "claim_accepted.zh-CN.txt.j2").write_text(
        "尊敬的{{ reporter_name }}：案件{{ case_number }}已受理。", encoding="utf-8"
    )
    message = refused(NOTICE_FIELDS, tmp_path)
    assert "claim_accepted.zh-CN.txt.j2 has no block 'subject'" in message
    assert "claim_accepted.zh-CN.txt.j2 has no block 'body'" in message


def test_a_definition_outside_the_blocks_is_refused_since_no_block_would_see_it(
    tmp_path: Path,
) -> None:
    (tmp_path / "claim_accepted.zh-CN.txt.j2").write_text(
        '{% set greeting = "您好" %}\n'
        "{% block subject %}受理{% endblock %}\n{% block body %}{{ greeting }}{% endblock %}\n",
        encoding="utf-8",
    )
    message = refused(NOTICE_FIELDS, tmp_path)
    assert "claim_accepted.zh-CN.txt.j2 line 1: defines something outside the blocks" in message


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    (tmp_path / "claim_accepted.zh-CN.txt.j2").write_text(
        "{% block subject %}{{ phone }}{% endblock %}{% block body %}{% endblock %}",
        encoding="utf-8",
    )
    (tmp_path / "scene_preservation.en.txt.j2").write_text("{% block subject %}", encoding="utf-8")
    with pytest.raises(NotificationConfigError) as caught:
        TemplateSet(NOTICE_FIELDS, override_dirs=[tmp_path, tmp_path / "nowhere"])
    problems = caught.value.problems
    assert len(problems) == 3, problems
    assert any("does not exist" in p and "nowhere" in p for p in problems)
    assert any("uses 'phone'" in p for p in problems)
    assert any("scene_preservation.en.txt.j2 does not parse" in p for p in problems)


def test_a_layout_using_a_variable_it_does_not_receive_is_refused(tmp_path: Path) -> None:
    (tmp_path / "_email.html.j2").write_text("<p>{{ case_number }}</p>", encoding="utf-8")
    message = refused(NOTICE_FIELDS, tmp_path)
    assert "_email.html.j2 uses 'case_number', which the layout does not receive" in message
