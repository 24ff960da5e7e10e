"""The materials checklist is data a desk can read and change (细则第四条(四)2 收集理赔资料;
DOMAIN.md §1.8): workflows/claim_materials.toml lists each material with its title, the
conditions that make it required and its article; a pathology report is asked for a
cancer or critical-illness claim; a desk gives its own file through ClaimSettings; a
file with a typo, an unknown material or condition, or a material left out is refused
at load with every problem and its location. The checklist's existing answers for the
existing facts are pinned in tests/test_claim_materials.py."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from baoflow.engine import DefinitionError, Engine, InvalidData, open_engine
from baoflow.workflows.checklist import checklist_from_mapping
from baoflow.workflows.claim import (
    CHECKLIST,
    CHECKLIST_CONDITIONS,
    ClaimSettings,
    Material,
    build,
    load_claim_checklist,
    required_materials,
)

from tests.conftest import AGENT, HANDLER, ID_LI, POLICIES, report

BASICS = ["policy_original", "premium_receipt", "id_insured", "claim_form"]
MEDICAL = ["medical_records", "test_results", "outpatient_receipts"]
SELF_LI = {"applicant_name": "李娜", "applicant_id_number": ID_LI, "relationship": "self"}


def shipped() -> dict[str, Any]:
    with CHECKLIST.open("rb") as fh:
        return tomllib.load(fh)


def illness(category: str | None, **more: Any) -> dict[str, Any]:
    incident: dict[str, Any] = {"cause": "illness", "injury": "serious", "hospital": "华山医院"}
    if category is not None:
        incident["diagnosis_category"] = category
    return {"incident": {**incident, **more}}


def refused(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(DefinitionError) as err:
        checklist_from_mapping(
            raw,
            materials=[m.value for m in Material],
            conditions=CHECKLIST_CONDITIONS,
            source="desk.toml",
        )
    assert err.value.source == "desk.toml"
    return [str(p) for p in err.value.problems]


# --- the shipped file ---------------------------------------------------------------------------
def test_the_shipped_checklist_lists_every_material_once_with_its_title_and_article() -> None:
    checklist = load_claim_checklist()
    assert [r.material for r in checklist.rules] == [
        *BASICS,
        "id_beneficiary",
        "accident_proof",
        "death_certificate",
        "disability_proof",
        "burn_proof",
        *MEDICAL,
        "inpatient_receipts",
        "pathology_report",
        "repair_invoices",
    ]
    assert {r.material for r in checklist.rules} == {m.value for m in Material}
    for rule in checklist.rules:
        assert rule.title and rule.article.startswith("细则第四条(四)2 收集理赔资料"), rule
    assert checklist.rule("pathology_report").title == "病理报告"


def test_the_shipped_checklist_is_package_data() -> None:
    pyproject = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["baoflow.workflows"]
    assert any(CHECKLIST.match(p) for p in patterns)


# --- the pathology report (医疗证明: 病理报告) -----------------------------------------------------
@pytest.mark.parametrize("category", ["cancer", "critical_illness"])
def test_a_cancer_or_critical_illness_claim_asks_for_the_pathology_report(category: str) -> None:
    required = [m.value for m in required_materials(illness(category))]
    assert required == [*BASICS, *MEDICAL, "pathology_report"]


@pytest.mark.parametrize("category", [None, "other"])
def test_an_ordinary_illness_asks_for_no_pathology_report(category: str | None) -> None:
    assert "pathology_report" not in [m.value for m in required_materials(illness(category))]


def test_the_pathology_report_comes_after_the_inpatient_receipts_as_in_the_rules() -> None:
    required = [m.value for m in required_materials(illness("cancer", hospitalised=True))]
    assert required[-2:] == ["inpatient_receipts", "pathology_report"]


def test_the_diagnosis_category_is_taken_at_intake_and_drives_the_application(
    eng: Engine,
) -> None:
    data = report(incident={"cause": "illness", "diagnosis_category": "cancer"})
    case = eng.open_case("claim", data, AGENT).case
    assert case.data["incident"]["diagnosis_category"] == "cancer"
    eng.fire(case.id, "verify", HANDLER)
    case = eng.fire(case.id, "apply", HANDLER, SELF_LI)
    assert case.data["materials"]["required"] == [*BASICS, *MEDICAL, "pathology_report"]


def test_a_diagnosis_made_after_the_report_is_added_with_the_new_facts(eng: Engine) -> None:
    case = eng.open_case("claim", report(incident={"cause": "illness"}), AGENT).case
    case = eng.fire(
        case.id,
        "update_facts",
        HANDLER,
        {"diagnosis_category": "critical_illness", "note": "医院确诊急性心肌梗死"},
    )
    assert case.data["incident"]["diagnosis_category"] == "critical_illness"
    eng.fire(case.id, "verify", HANDLER)
    case = eng.fire(case.id, "apply", HANDLER, SELF_LI)
    assert "pathology_report" in case.data["materials"]["required"]


def test_an_unknown_diagnosis_category_is_invalid(eng: Engine) -> None:
    with pytest.raises(InvalidData) as err:
        eng.open_case("claim", report(incident={"diagnosis_category": "flu"}), AGENT)
    assert err.value.problems[0].location == "incident.diagnosis_category"


# --- a desk's own checklist -----------------------------------------------------------------------
def desk_file(tmp_path: Path, edit: dict[str, list[str]]) -> Path:
    """The shipped file with some materials' ``when`` replaced."""
    text = CHECKLIST.read_text(encoding="utf-8")
    out, current = [], None
    for line in text.splitlines():
        if line.startswith("[materials."):
            current = line[len("[materials.") : -1]
        if line.startswith("when = ") and current in edit:
            line = "when = [" + ", ".join(f'"{c}"' for c in edit[current]) + "]"
        out.append(line)
    path = tmp_path / "desk_materials.toml"
    path.write_text("\n".join(out), encoding="utf-8")
    return path


def test_a_desk_changes_the_checklist_through_its_own_file(db_url: str, tmp_path: Path) -> None:
    """This desk takes no premium receipt, and wants the pathology report of any illness
    treated in hospital."""
    path = desk_file(tmp_path, {"premium_receipt": [], "pathology_report": ["hospitalised"]})
    definition = build(ClaimSettings(checklist=path))
    eng = open_engine(db_url, workflows=[definition])
    try:
        eng.policies.add(POLICIES)  # type: ignore[attr-defined]
        data = report(incident={"cause": "illness", "hospitalised": True})
        case = eng.open_case("claim", data, AGENT).case
        eng.fire(case.id, "verify", HANDLER)
        case = eng.fire(case.id, "apply", HANDLER, SELF_LI)
        assert case.data["materials"]["required"] == [
            "policy_original",
            "id_insured",
            "claim_form",
            *MEDICAL,
            "inpatient_receipts",
            "pathology_report",
        ]
    finally:
        eng.close()


def test_the_default_checklist_is_the_shipped_file() -> None:
    assert required_materials(illness("cancer")) == required_materials(
        illness("cancer"), load_claim_checklist(CHECKLIST)
    )


# --- a bad file is refused at load, every problem at once ---------------------------------------
def test_a_misspelt_key_is_refused_naming_the_nearest_known_key() -> None:
    raw = shipped()
    raw["materials"]["death_certificate"]["tilte"] = raw["materials"]["death_certificate"].pop(
        "title"
    )
    problems = refused(raw)
    assert (
        "materials.death_certificate.tilte: unknown key 'tilte' (did you mean 'title'?); "
        "known: title, article, when"
    ) in problems
    assert any(p.startswith("materials.death_certificate.title: is required") for p in problems)


def test_a_misspelt_top_level_key_is_refused_too() -> None:
    raw = {**shipped(), "material": {}}
    assert refused(raw) == [
        "material: unknown key 'material' (did you mean 'materials'?); known: materials"
    ]


def test_an_unknown_material_is_refused_naming_the_nearest() -> None:
    raw = shipped()
    raw["materials"]["pathology_reports"] = raw["materials"]["pathology_report"]
    (problem,) = refused(raw)
    assert problem.startswith(
        "materials.pathology_reports: unknown material 'pathology_reports' "
        "(did you mean 'pathology_report'?)"
    )


def test_an_unknown_condition_is_refused_with_its_place_in_the_list() -> None:
    raw = shipped()
    raw["materials"]["pathology_report"]["when"] = ["diagnosis_cancer", "diagnosis_tumour"]
    (problem,) = refused(raw)
    assert problem.startswith(
        "materials.pathology_report.when[1]: unknown condition 'diagnosis_tumour'"
    )
    assert "did you mean" in problem


def test_a_material_left_out_is_refused_since_its_title_would_be_lost() -> None:
    raw = shipped()
    del raw["materials"]["burn_proof"]
    assert refused(raw) == [
        "materials.burn_proof: is not listed; list every material "
        "(with when = [] if it is never asked for)"
    ]


def test_a_rule_without_its_article_or_conditions_is_refused() -> None:
    raw = shipped()
    del raw["materials"]["accident_proof"]["article"]
    del raw["materials"]["accident_proof"]["when"]
    raw["materials"]["burn_proof"]["when"] = "burn"
    problems = refused(raw)
    assert "materials.accident_proof.article: is required: the article it comes from (text)" in (
        problems
    )
    assert any(p.startswith("materials.accident_proof.when: is required") for p in problems)
    assert "materials.burn_proof.when: must be a list of condition names" in problems


def test_every_problem_of_the_file_is_reported_at_once(tmp_path: Path) -> None:
    path = desk_file(tmp_path, {"death_certificate": ["dead"], "burn_proof": ["burns"]})
    text = path.read_text(encoding="utf-8").replace(
        "[materials.claim_form]", "[materials.clam_form]"
    )
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DefinitionError) as err:
        build(ClaimSettings(checklist=path))
    locations = [p.location for p in err.value.problems]
    assert locations == [
        "materials.clam_form",
        "materials.death_certificate.when[0]",
        "materials.burn_proof.when[0]",
        "materials.claim_form",
    ]
    assert str(path) in str(err.value)


def test_a_file_that_is_not_toml_or_not_there_is_refused(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[materials.policy_original\ntitle = ", encoding="utf-8")
    with pytest.raises(DefinitionError, match="not valid TOML"):
        build(ClaimSettings(checklist=broken))
    with pytest.raises(DefinitionError, match="the checklist file does not exist"):
        build(ClaimSettings(checklist=tmp_path / "nowhere.toml"))
