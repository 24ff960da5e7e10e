"""Property-based: random event sequences never leave the workflow's states, a refused
event changes nothing, and replaying the history gives the stored state."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from baoflow.engine import SHANGHAI, BaoflowError, Engine, FakeClock, open_engine
from hypothesis import HealthCheck, given, settings
from hypothesis import event as label
from hypothesis import strategies as st

from tests.conftest import AGENT, HANDLER, POLICIES, SUPERVISOR, report

# A few payloads per event, good and bad, so sequences reach every state and also
# exercise refusals (bad data, failed guards, events not allowed).
PAYLOADS: dict[str, list[Any]] = {
    "register": [{}],
    "no_policy": [{}],
    "hold_for_identity": [{}],
    "match_policy": [{"policy_number": "P-LIFE-001"}, {"policy_number": "P-NONE"}, {}],
    "confirm_not_ours": [{"note": "他司保单"}, {}],
    "confirm_identity": [{"id_number": "440304198001010041"}, {"id_number": "123"}],
    "verify": [{}, {"known_since": "2026-05-05"}],
    "reject": [
        {"reasons": ["not_covered"], "notice": "不属保障范围"},
        {"reasons": ["late_filing"], "notice": "超过时效"},
    ],
    "apply": [
        {
            "applicant_name": "李娜",
            "applicant_id_number": "440304198001010041",
            "relationship": "self",
        },
        {
            "applicant_name": "路人",
            "applicant_id_number": "110101199003074514",
            "relationship": "other",
        },
    ],
    "receive_materials": [
        {"items": ["policy_original", "premium_receipt", "id_insured", "claim_form"]},
        {"items": ["accident_proof", "medical_records", "test_results", "outpatient_receipts"]},
        {"items": []},
    ],
    "complete_materials": [{}],
    "hand_over": [{"insurer": "平安人寿"}],
    "close": [{"outcome": "paid", "amount": "100"}, {"outcome": "paid"}],
    "withdraw": [{"reason": "客户撤回"}, {"reason": ""}],
}
STEPS = st.lists(
    st.tuples(
        st.sampled_from(sorted(PAYLOADS)),
        st.integers(min_value=0, max_value=2),
        st.sampled_from([HANDLER, SUPERVISOR]),
    ),
    max_size=25,
)
REPORTS = st.sampled_from(
    [
        report(),  # registers
        report(policy={"number": None, "insured_name": "张伟"}, incident={"cause": "accident"}),
        report(policy={"number": "P-NOBODY", "insured_name": "无名氏"}),
    ]
)


@pytest.fixture(scope="module")
def shared_engine(module_db_url: str) -> Iterator[Engine]:
    clock = FakeClock(datetime(2026, 5, 6, 9, 0, tzinfo=SHANGHAI))
    eng = open_engine(module_db_url, clock=clock)
    eng.policies.add(POLICIES)  # type: ignore[attr-defined]
    yield eng
    eng.close()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=REPORTS, steps=STEPS)
def test_random_event_sequences_stay_in_the_workflow_and_history_replays(
    shared_engine: Engine, data: dict[str, Any], steps: list[tuple[str, int, Any]]
) -> None:
    eng = shared_engine
    eng.clock.advance(days=1)  # type: ignore[attr-defined]  # each example: a new incident day
    data = {**data, "incident": {**data["incident"], "time": eng.clock.now().isoformat()}}
    opened = eng.open_case("claim", data, AGENT)
    definition = eng.workflow("claim")
    case = opened.case
    for event, choice, actor in steps:
        payloads = PAYLOADS[event]
        before = eng.get_case(case.id)
        try:
            case = eng.fire(case.id, event, actor, payloads[choice % len(payloads)])
        except BaoflowError:
            after = eng.get_case(case.id)
            assert (after.state, after.version, after.data) == (
                before.state,
                before.version,
                before.data,
            )
            continue
        assert case.state in definition.state_names

    stored = eng.get_case(case.id)
    label(f"ended in {stored.state}")
    history = eng.history(case.id)
    state = None
    for seq, entry in enumerate(history, start=1):
        assert entry.seq == seq
        assert entry.from_state == state
        state = entry.to_state
    assert state == stored.state
    assert len(history) == stored.version
