"""The complaint reply's deadline as the regulation counts it (DOMAIN.md §5.3, issue #6):
15 natural days from acceptance; extended to 30, then with approval to 60; restarted by
new facts; paused for mediation — on the real calendar. The engine half: deadline rules
with extensions and restarts, on a small workflow (the complaint workflow builds on it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from baoflow.engine import (
    SHANGHAI,
    DefinitionError,
    Engine,
    FakeClock,
    GuardRefused,
    Hooks,
    load_workflow,
)

from tests.conftest import HANDLER

REPLY: dict[str, Any] = {
    "workflow": {"name": "reply", "version": 1, "case_number_prefix": "RP", "initial": "accepted"},
    "states": {
        "accepted": {},
        "in_mediation": {},
        "replied": {"final": True},
        "withdrawn": {"final": True},
    },
    "transitions": [
        {"event": "extend", "source": "accepted", "target": "."},
        {"event": "extend_again", "source": ["accepted", "in_mediation"], "target": "."},
        {"event": "new_facts", "source": "accepted", "target": "."},
        {"event": "mediate", "source": "accepted", "target": "in_mediation"},
        {"event": "mediation_done", "source": "in_mediation", "target": "accepted"},
        {"event": "reply", "source": "accepted", "target": "replied"},
        {"event": "withdraw", "source": ["accepted", "in_mediation"], "target": "withdrawn"},
    ],
    "deadlines": [
        {
            "name": "reply",
            "title": "投诉答复",
            "period": "15 natural_days",
            "starts_on": ["accepted"],
            "stops_on": ["replied", "withdrawn"],
            "pauses": {"mediation": ["in_mediation"]},
            "restarts_on_events": ["new_facts"],
            "extensions": [
                {"event": "extend", "period": "30 natural_days"},
                {"event": "extend_again", "period": "60 natural_days"},
            ],
            "warnings": [0.8],
            "article": "银行业保险业消费投诉处理管理办法 第十八条",
            "escalations": [{"to": "supervisor", "actions": ["notify"]}],
        }
    ],
}


def bj(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)  # type: ignore[misc]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(bj(2026, 4, 20, 10, 0))


@pytest.fixture
def accepted(eng: Engine) -> Any:
    """A complaint accepted Mon 2026-04-20 10:00 (DOMAIN.md §5.5's worked example)."""
    eng.register(load_workflow(REPLY, Hooks()))
    return eng.open_case("reply", {}, HANDLER).case


def reply_rule(eng: Engine, case_id: int) -> list[Any]:
    return [d for d in eng.deadlines(case_id) if d.rule == "reply"]


def test_plain_15_days_end_after_labour_day(eng: Engine, accepted: Any) -> None:
    """Day 15 is 05-05, inside the Labour Day holiday: due end of Wed 05-06."""
    (d,) = reply_rule(eng, accepted.id)
    assert (d.status, d.due_at) == ("running", bj(2026, 5, 7))


def test_extended_once_to_30_days_from_acceptance(
    eng: Engine, clock: FakeClock, accepted: Any
) -> None:
    clock.set(bj(2026, 4, 28, 9, 0))
    eng.fire(accepted.id, "extend", HANDLER)
    (d,) = reply_rule(eng, accepted.id)
    assert d.due_at == bj(2026, 5, 21)  # day 30 is Wed 05-20
    clock.set(bj(2026, 5, 8))  # the old due time: nothing breaches
    eng.run_due_timers()
    assert eng.breaches() == []
    clock.set(bj(2026, 5, 21))
    eng.run_due_timers()
    assert [b.rule for b in eng.breaches()] == ["reply"]
    notes = [n for h in eng.history(accepted.id) for n in h.notes if "延长" in n]
    assert notes == ["期限「投诉答复」延长至 30 natural_days，新的期限 2026-05-20 24:00"]


def test_extended_twice_to_60_days_past_the_dragon_boat_festival(
    eng: Engine, clock: FakeClock, accepted: Any
) -> None:
    eng.fire(accepted.id, "extend", HANDLER)
    clock.set(bj(2026, 5, 15, 9, 0))
    eng.fire(accepted.id, "extend_again", HANDLER)
    (d,) = reply_rule(eng, accepted.id)
    assert d.due_at == bj(2026, 6, 23)  # day 60 is Fri 06-19, a holiday to 06-21


def test_extensions_come_in_order_and_once_each(eng: Engine, accepted: Any) -> None:
    with pytest.raises(GuardRefused) as first:
        eng.fire(accepted.id, "extend_again", HANDLER)
    assert first.value.reasons == ("「投诉答复」must first be extended to 30 natural_days",)
    eng.fire(accepted.id, "extend", HANDLER)
    with pytest.raises(GuardRefused) as again:
        eng.fire(accepted.id, "extend", HANDLER)
    assert again.value.reasons == (
        "「投诉答复」already runs on 30 natural_days: this extension is spent",
    )


def test_an_extension_asked_after_the_deadline_is_refused_and_changes_nothing(
    eng: Engine, clock: FakeClock, accepted: Any
) -> None:
    clock.set(bj(2026, 5, 7, 9, 0))  # past 05-07 00:00
    before = eng.get_case(accepted.id)
    with pytest.raises(GuardRefused) as exc:
        eng.fire(accepted.id, "extend", HANDLER)
    assert exc.value.reasons == (
        "「投诉答复」was due 2026-05-06 24:00: an extension must be made before the "
        "deadline passes",
    )
    assert eng.get_case(accepted.id).version == before.version
    (d,) = reply_rule(eng, accepted.id)
    assert d.due_at == bj(2026, 5, 7)
    assert [r.event for r in eng.refusals(accepted.id)] == ["extend"]


def test_new_facts_restart_the_period(eng: Engine, clock: FakeClock, accepted: Any) -> None:
    clock.set(bj(2026, 4, 25, 10, 0))
    eng.fire(accepted.id, "new_facts", HANDLER)
    old, new = reply_rule(eng, accepted.id)
    assert old.status == "restarted" and new.status == "running"
    assert new.due_at == bj(2026, 5, 12)  # day 15 is Sun 05-10: the next working day
    clock.set(bj(2026, 5, 9))  # the first instance's due time has passed: nothing of it fires
    assert eng.run_due_timers().fired == 1  # the new one's 80% warning only
    assert eng.breaches() == []


def test_mediation_time_does_not_count(eng: Engine, clock: FakeClock, accepted: Any) -> None:
    clock.set(bj(2026, 4, 22, 10, 0))
    eng.fire(accepted.id, "mediate", HANDLER)
    clock.set(bj(2026, 4, 27, 10, 0))  # five days of mediation
    eng.fire(accepted.id, "mediation_done", HANDLER)
    (d,) = reply_rule(eng, accepted.id)
    assert d.due_at == bj(2026, 5, 12)  # as if accepted 04-25 10:00
    assert d.paused_for.days == 5


def test_an_extension_while_paused_takes_effect_on_resuming(
    eng: Engine, clock: FakeClock, accepted: Any
) -> None:
    eng.fire(accepted.id, "extend", HANDLER)
    clock.set(bj(2026, 4, 22, 10, 0))
    eng.fire(accepted.id, "mediate", HANDLER)
    eng.fire(accepted.id, "extend_again", HANDLER)
    clock.set(bj(2026, 4, 27, 10, 0))
    eng.fire(accepted.id, "mediation_done", HANDLER)
    (d,) = reply_rule(eng, accepted.id)
    assert d.due_at == bj(2026, 6, 25)  # 60 days from 04-25 10:00: day 60 is Wed 06-24


@pytest.mark.parametrize(
    "extensions, location, message",
    [
        ([{"event": "fly", "period": "30 natural_days"}], "extensions[0].event", "unknown event"),
        (
            [{"event": "extend", "period": "10 natural_days"}],
            "extensions[0].period",
            "does not extend 15 natural_days",
        ),
        ([{"period": "30 natural_days"}], "extensions[0]", "needs event"),
    ],
)
def test_a_bad_extension_is_refused_at_load(
    extensions: list[Any], location: str, message: str
) -> None:
    spec: dict[str, Any] = {
        **REPLY,
        "deadlines": [{**REPLY["deadlines"][0], "extensions": extensions}],
    }
    with pytest.raises(DefinitionError) as exc:
        load_workflow(spec, Hooks())
    found = {p.location: p.message for p in exc.value.problems}
    assert message in found[f"deadlines[0].{location}"], found
