"""Each case's handler (经办人): a superior assigns one with the ``assign`` event (a
complaint's handler must have no conflict of interest, 第十七条), the ``handler`` search
key keeps their id in an indexed column, and the desk's deadline list filters by it —
for the supervisor who asks "who has to act" (issue #13)."""

from __future__ import annotations

from typing import Any

import pytest
from baoflow.engine import Actor, Engine, GuardRefused, InvalidData, NotPermitted

from tests.conftest import HANDLER, SUPERVISOR
from tests.test_bad_input import stored
from tests.test_complaint import register
from tests.test_timers import to_materials_complete

WANG = {"handler_id": "h01", "handler_name": "王芳"}
LIU = {"handler_id": "h03", "handler_name": "刘洋"}
BJ_SUPERVISOR = Actor("s02", "赵敏", roles=("supervisor",), org_unit="BJ")


def handlers_of(eng: Engine, **filters: Any) -> list[tuple[str, str | None]]:
    return [(d.case_number, d.handler) for d in eng.running_deadlines(**filters)]


def test_an_assigned_case_is_listed_under_its_handler(eng: Engine) -> None:
    first, second, nobodys = register(eng), register(eng), register(eng)
    eng.fire(first.id, "assign", SUPERVISOR, WANG)
    eng.fire(second.id, "assign", SUPERVISOR, LIU)
    assert handlers_of(eng, handler="h01") == [(first.number, "h01")]
    assert handlers_of(eng, handler="h03") == [(second.number, "h03")]
    assert (nobodys.number, None) in handlers_of(eng)
    assert handlers_of(eng, handler="nobody") == []


def test_reassigning_moves_the_case_to_the_new_handler(eng: Engine) -> None:
    case = register(eng)
    eng.fire(case.id, "assign", SUPERVISOR, WANG)
    eng.fire(case.id, "reassign", SUPERVISOR, LIU)
    assert handlers_of(eng, handler="h01") == []
    assert handlers_of(eng, handler="h03") == [(case.number, "h03")]
    assert eng.get_case(case.id).data["assignment"] == LIU


def test_a_complaint_may_not_be_reassigned_to_the_staff_it_is_about(eng: Engine) -> None:
    case = register(eng)  # about h02
    eng.fire(case.id, "assign", SUPERVISOR, WANG)
    before = stored(eng, case.id)
    with pytest.raises(GuardRefused) as refused:
        eng.fire(case.id, "reassign", SUPERVISOR, {"handler_id": "h02", "handler_name": "刘洋"})
    assert "h02 is the subject of this complaint" in refused.value.reasons[0]
    assert stored(eng, case.id) == before
    assert handlers_of(eng, handler="h02") == []


def test_a_claim_gets_a_handler_in_any_open_state_and_keeps_its_state(eng: Engine) -> None:
    case = to_materials_complete(eng)
    assigned = eng.fire(case.id, "assign", SUPERVISOR, WANG)
    assert assigned.state == case.state == "materials_complete"
    assert [n for n, _ in handlers_of(eng, handler="h01")] == [case.number]
    assert [n for n, _ in handlers_of(eng, handler="h01", workflow="claim")] == [case.number]
    assert handlers_of(eng, handler="h01", workflow="complaint") == []


def test_only_a_superior_assigns_and_the_refusal_says_who_may(eng: Engine) -> None:
    case = register(eng)
    before = stored(eng, case.id)
    with pytest.raises(NotPermitted) as refused:
        eng.fire(case.id, "assign", HANDLER, WANG)
    assert any("supervisor" in who for who in refused.value.who_can)
    assert stored(eng, case.id) == before


@pytest.mark.parametrize(
    "data, field",
    [
        ({"handler_id": "h" * 65, "handler_name": "王芳"}, "handler_id"),
        ({"handler_id": "  ", "handler_name": "王芳"}, "handler_id"),
        ({"handler_id": "h01"}, "handler_name"),
        ({**WANG, "handler": "h01"}, "handler"),  # a typo of a field is refused too
    ],
)
def test_a_bad_assignment_names_its_field_and_changes_nothing(
    eng: Engine, data: dict[str, Any], field: str
) -> None:
    case = register(eng)
    before = stored(eng, case.id)
    with pytest.raises(InvalidData) as refused:
        eng.fire(case.id, "assign", SUPERVISOR, data)
    assert any(p.location.endswith(field) for p in refused.value.problems), refused.value.problems
    assert stored(eng, case.id) == before


def test_the_handler_filter_stays_within_what_the_viewer_may_see(eng: Engine) -> None:
    case = register(eng)
    eng.fire(case.id, "assign", SUPERVISOR, WANG)
    assert handlers_of(eng, handler="h01", visible_to=SUPERVISOR) == [(case.number, "h01")]
    assert handlers_of(eng, handler="h01", visible_to=BJ_SUPERVISOR) == []


def test_the_migration_gives_assigned_complaints_their_handler(db_url: str) -> None:
    # Before revision 0015 only the complaint stored an assignment; upgrading reads it
    # out of each complaint's data, and leaves every other case without a handler.
    from datetime import UTC, datetime

    import sqlalchemy as sa
    from baoflow.engine.store import Store
    from baoflow.engine.store.tables import cases

    store = Store(db_url)
    try:
        store.upgrade("0014")
        at = datetime(2026, 5, 6, 1, 0, tzinfo=UTC)
        row = dict(workflow_version=1, state="investigating", version=2)
        made = [
            ("TS-1", "complaint", {"assignment": WANG}),
            ("TS-2", "complaint", {}),
            ("LP-1", "claim", {"assignment": LIU}),
        ]
        with store.write() as tx:
            tx.conn.execute(
                cases.insert(),
                [
                    {
                        **row,
                        "number": n,
                        "workflow": w,
                        "data": d,
                        "created_at": at,
                        "updated_at": at,
                    }
                    for n, w, d in made
                ],
            )
        store.upgrade()
        with store.read() as tx:
            found = dict(tx.conn.execute(sa.select(cases.c.number, cases.c.handler)).all())
        assert found == {"TS-1": "h01", "TS-2": None, "LP-1": None}
    finally:
        store.dispose()
