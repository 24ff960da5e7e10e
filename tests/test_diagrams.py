"""State diagrams (issue #12 item 1): the graph model of every bundled workflow, its
Mermaid and DOT text (snapshots in tests/snapshots/diagrams/; rerun with
BAOFLOW_UPDATE_SNAPSHOTS=1 after a deliberate change, and read the diff), live counts
from a real desk, a case's path, SVG drawn on a layout made once, and the committed
diagrams in diagrams/."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from baoflow.diagrams import (
    DiagramRequestInvalid,
    Diagrams,
    build_graph,
    case_path,
    render,
    render_dot,
    render_mermaid,
    static,
    wasm_layout,
)
from baoflow.diagrams.__main__ import SUFFIXES
from baoflow.engine import (
    SHANGHAI,
    Engine,
    FakeClock,
    StateCount,
    UnknownWorkflow,
    discover_workflows,
)

from tests.conftest import AGENT, HANDLER, SUPERVISOR, report
from tests.test_complaint import REGISTRATION
from tests.test_endorsement import REQUEST as ENDORSEMENT
from tests.test_surrender import REQUEST as SURRENDER
from tests.test_timers import to_materials_complete

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOTS = Path(__file__).parent / "snapshots" / "diagrams"
UPDATE = os.environ.get("BAOFLOW_UPDATE_SNAPSHOTS") == "1"
WORKFLOWS = {d.name: d for d in discover_workflows()}
REGENERATE = ".venv/bin/python -m baoflow.diagrams"
SVG = "{http://www.w3.org/2000/svg}"


def bj(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)  # type: ignore[misc]


def snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / name
    if UPDATE:
        SNAPSHOTS.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{name} changed (see {path})"


# --- the graph model ----------------------------------------------------------------------
def test_the_claim_graph_marks_initial_final_and_pause_states_and_their_deadlines() -> None:
    g = build_graph(WORKFLOWS["claim"])
    assert g.node("received").initial and not g.node("reported").initial
    assert {n.name for n in g.nodes if n.final} == {"closed", "rejected", "withdrawn"}
    assert [n.name for n in g.nodes if n.pause] == ["awaiting_materials"]
    (hand_over,) = [r for r in g.node("materials_complete").rules if r.name == "hand_over"]
    assert (hand_over.period, hand_over.starts, hand_over.paused_by) == (
        "3 working_days",
        True,
        None,
    )
    assert hand_over.article.startswith("细则第四条(五)")
    paused = {r.name: r.paused_by for r in g.node("awaiting_materials").rules}
    assert paused["insurer_decision"] == "awaiting_materials"
    assert not any(r.name == "hand_over" for r in g.node("handed_over").rules)  # stopped


def test_a_transition_carries_its_guards_and_the_roles_of_the_permission_table() -> None:
    g = build_graph(WORKFLOWS["claim"])
    verify = g.edge("verify", "reported")
    assert verify is not None and verify.id == "tr-verify-reported-verified"
    assert verify.guards == ("review_passes",)
    assert verify.roles == ("handler", "supervisor", "branch_manager")
    register = g.edge("register", "received")
    assert register is not None and register.roles == ()  # no row: the system only
    approve = build_graph(WORKFLOWS["complaint"]).edge("approve", "proposed")
    assert approve is not None
    assert approve.permits == (
        "supervisor (own org unit; up to 5,000 yuan, no regulator or media)",
        "branch_manager (own org unit; up to 50,000 yuan, no regulator or media)",
        "headquarters",
    )


def test_an_event_of_every_open_state_is_drawn_once_from_any_open_state() -> None:
    g = build_graph(WORKFLOWS["claim"])
    withdraw = [w for w in g.wildcards if w.event == "withdraw"]
    assert [(w.id, w.target, len(w.members)) for w in withdraw] == [
        ("tr-withdraw-any_open-withdrawn", "withdrawn", 10)
    ]
    assert all(e.wildcard for e in g.edges if e.event == "withdraw")
    assert "tr-withdraw-reported-withdrawn" not in {e.id for e in g.drawn_edges}
    stays = {w.event for w in g.wildcards if w.target is None}
    assert "update_facts" in stays and "report_to_headquarters" in stays
    # two open states: two arrows read better than a pseudo-state
    assert build_graph(WORKFLOWS["surrender"]).wildcards == ()


def test_the_same_definition_always_gives_the_same_ids_and_text() -> None:
    for definition in WORKFLOWS.values():
        first, again = build_graph(definition), build_graph(definition)
        assert first == again
        assert [n.id for n in first.nodes] == [f"state-{s.name}" for s in definition.states]
        assert len({e.id for e in first.edges}) == len(first.edges)
        assert render_dot(first) == render_dot(again)
        assert render_mermaid(first) == render_mermaid(again)


# --- a desk with cases in several states, one warned and one breached ----------------------
def desk(eng: Engine, clock: FakeClock) -> dict[str, Any]:
    """Wed 2026-05-06 09:00: claim A's materials complete (hand_over due the end of
    Sat 05-09), B registered, C withdrawn after review; a surrender referred, an
    endorsement received, a complaint proposed. Fri 05-08 05:00: D's materials
    complete. Sun 05-10 15:00: A is breached at level 1, D warned (50%)."""
    a = to_materials_complete(eng)
    b = eng.open_case("claim", report(), AGENT).case
    c = eng.open_case("claim", report(incident={"time": "2026-05-05T18:00:00+08:00"}), AGENT).case
    eng.fire(c.id, "verify", HANDLER)
    eng.fire(c.id, "withdraw", AGENT, {"reason": "客户撤案"})
    s = eng.open_case("surrender", SURRENDER, AGENT).case
    s = eng.fire(s.id, "refer", HANDLER, {"insurer": "中国人寿上海分公司"})
    e = eng.open_case("endorsement", ENDORSEMENT, AGENT).case
    e = eng.fire(
        e.id,
        "receive_application",
        HANDLER,
        {"form_number": "PG-F-0001", "signed_by_policyholder": True},
    )
    k = eng.open_case("complaint", REGISTRATION, AGENT).case
    eng.fire(k.id, "assign", SUPERVISOR, {"handler_id": "h01", "handler_name": "王芳"})
    k = eng.fire(k.id, "propose", HANDLER, {"text": "补付理赔款并致歉", "compensation": "3000"})
    clock.set(bj(2026, 5, 8, 5, 0))
    eng.run_due_timers()
    d = to_materials_complete(eng)
    clock.set(bj(2026, 5, 10, 15, 0))
    eng.run_due_timers()
    return {"a": a, "b": b, "c": c, "d": d, "surrender": s, "endorsement": e, "complaint": k}


def test_state_counts_come_per_state_with_the_warned_and_the_breached_by_level(
    eng: Engine, clock: FakeClock
) -> None:
    desk(eng, clock)
    counts = {c.state: c for c in eng.state_counts("claim")}
    assert list(counts) == [s.name for s in WORKFLOWS["claim"].states]
    assert counts["materials_complete"] == StateCount(
        "claim", "materials_complete", cases=2, warned=1, breached=1, levels={1: 1}
    )
    assert counts["materials_complete"].top_level == 1
    assert (counts["reported"].cases, counts["reported"].warned) == (1, 0)
    assert counts["withdrawn"].cases == 1 and counts["verified"].cases == 0
    assert sum(c.cases for c in counts.values()) == eng.count_cases(workflow="claim")
    assert {k[1]: n for k, n in eng.count_by_state("claim").items()} == {
        s: c.cases for s, c in counts.items() if c.cases
    }


def test_state_counts_of_one_org_unit_leave_the_others_out(eng: Engine, clock: FakeClock) -> None:
    desk(eng, clock)
    assert sum(c.cases for c in eng.state_counts("claim", org_unit="SH")) == 4
    beijing = eng.state_counts("claim", org_unit="BJ")
    assert [(c.cases, c.warned, c.breached) for c in beijing] == [(0, 0, 0)] * len(beijing)
    with pytest.raises(UnknownWorkflow, match="claim, complaint, endorsement, surrender"):
        eng.state_counts("claims")


def test_live_and_path_diagrams_of_every_workflow_match_their_snapshots(
    eng: Engine, clock: FakeClock
) -> None:
    cases = desk(eng, clock)
    path_of = {
        "claim": cases["a"],
        "surrender": cases["surrender"],
        "endorsement": cases["endorsement"],
        "complaint": cases["complaint"],
    }
    for name in WORKFLOWS:
        for fmt, suffix in (("mermaid", "mmd"), ("dot", "dot")):
            snapshot(f"{name}.live.{suffix}", str(render(eng, name, fmt, live=True)))
            drawn = render(eng, name, fmt, case=path_of[name].number)
            snapshot(f"{name}.path.{suffix}", str(drawn))
    live = render(eng, "claim", "mermaid", live=True)
    assert "2 cases · 1 warned · 1 breached (L1)" in live
    assert "class state_materials_complete level_1" in live


def test_a_case_path_numbers_its_transitions_in_order_with_when_and_by_whom(
    eng: Engine, clock: FakeClock
) -> None:
    cases = desk(eng, clock)
    g = build_graph(WORKFLOWS["claim"])
    a = eng.get_case(cases["a"].id)
    path = case_path(g, a, eng.history(a.id))
    assert [(s.number, s.event, s.target) for s in path.steps] == [
        (1, "open", "received"),
        (2, "register", "reported"),
        (3, "verify", "verified"),
        (4, "apply", "applied"),
        (5, "receive_materials", "applied"),
        (6, "complete_materials", "materials_complete"),
    ]  # the deadline's warnings, breach and escalation are not transitions
    assert path.current == "materials_complete"
    assert (path.steps[2].at_text, path.steps[2].by) == ("2026-05-06 09:00", "王芳 (h01)")
    c = eng.get_case(cases["c"].id)
    withdrawn = case_path(g, c, eng.history(c.id)).steps[-1]
    assert (withdrawn.source, withdrawn.edge) == ("verified", "tr-withdraw-any_open-withdrawn")
    dot = render(eng, "claim", "dot", case=c.number)
    # open, register, verify, withdraw: the fourth step, on the "any open state" edge
    assert (
        '"(any open state)" -> "withdrawn" [id="tr-withdraw-any_open-withdrawn" label="4: withdraw'
        in dot
    )
    assert "4. 2026-05-06 09:00 李静 (a01): withdraw, verified → withdrawn" in dot


# --- SVG ------------------------------------------------------------------------------------
class CountingLayout:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, dot: str) -> bytes:
        self.calls += 1
        return wasm_layout(dot)


def groups(svg: bytes) -> dict[str, ET.Element]:
    root = ET.fromstring(svg)
    return {g.get("id", ""): g for g in root.iter(f"{SVG}g")}


def test_the_svg_carries_the_ids_of_every_state_and_edge_drawn() -> None:
    for definition in WORKFLOWS.values():
        g = build_graph(definition)
        found = groups(Diagrams().svg(g))
        for element in [*g.nodes, *g.drawn_edges, *g.wildcards]:
            assert element.id in found, (definition.name, element.id)


def test_a_second_live_view_is_drawn_on_the_cached_layout_without_laying_it_out(
    eng: Engine, clock: FakeClock
) -> None:
    layout = CountingLayout()
    diagrams = Diagrams(layout)
    before = render(eng, "claim", "svg", live=True, diagrams=diagrams)
    cases = desk(eng, clock)
    after = render(eng, "claim", "svg", live=True, diagrams=diagrams)
    path = render(eng, "claim", "svg", case=cases["a"].number, diagrams=diagrams)
    assert layout.calls == 1
    node = groups(after)["state-materials_complete"]
    assert node.get("class") == "node state occupied breached level-1"
    texts = [t.text for t in node.iter(f"{SVG}text")]
    assert texts[-1] == "2 cases · 1 warned · 1 breached (L1)"
    assert "0 cases" in [
        t.text for t in groups(before)["state-materials_complete"].iter(f"{SVG}text")
    ]
    assert "visited" in (groups(path)["tr-verify-reported-verified"].get("class") or "")
    assert "current" in (groups(path)["state-materials_complete"].get("class") or "")
    legend = [t.text for t in groups(path)["path-legend"].iter(f"{SVG}text")]
    assert legend[0] == cases["a"].number and legend[3].startswith("3. 2026-05-06 09:00 王芳")


def test_another_workflow_version_is_laid_out_once_on_its_own() -> None:
    layout = CountingLayout()
    diagrams = Diagrams(layout)
    for definition in WORKFLOWS.values():
        diagrams.svg(build_graph(definition))
        diagrams.svg(build_graph(definition))
    assert layout.calls == len(WORKFLOWS)


# --- bad requests ---------------------------------------------------------------------------
def test_a_case_of_another_workflow_or_an_unknown_format_is_refused_saying_what_to_do(
    eng: Engine, clock: FakeClock
) -> None:
    cases = desk(eng, clock)
    with pytest.raises(DiagramRequestInvalid, match="is a surrender case, not a claim"):
        render(eng, "claim", "dot", case=cases["surrender"].number)
    with pytest.raises(DiagramRequestInvalid, match="use one of mermaid, dot, svg"):
        render(eng, "claim", "png")


# --- the committed diagrams -------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_the_committed_diagrams_are_those_the_definitions_draw(name: str) -> None:
    for fmt, suffix in SUFFIXES.items():
        committed = ROOT / "diagrams" / f"{name}.{suffix}"
        drawn = static(WORKFLOWS[name], fmt)
        data = drawn.encode() if isinstance(drawn, str) else drawn
        assert committed.exists() and committed.read_bytes() == data, (
            f"diagrams/{name}.{suffix} is stale: regenerate them with `{REGENERATE}`"
        )
