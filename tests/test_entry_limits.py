"""Limits on what is entered (issue #15, items 1 and 3): every text someone gives has a
length and a set of characters it may hold, declared once in engine/limits.py. The
limit is taken and one more is refused — with an InvalidData naming the field and the
limit, and nothing stored — the same on SQLite (which does not enforce a VARCHAR's
length) and PostgreSQL (which raised a raw DataError). The columns, the docs' table and
the module agree. Random text, numbers and nesting through open_case, fire, find_cases
and an insurer's message give a BaoflowError or success, never anything else, and an
error stores nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from baoflow.engine import (
    SHANGHAI,
    Actor,
    BaoflowError,
    CaseNotFound,
    Engine,
    FakeClock,
    Hooks,
    InsurerMessage,
    InvalidData,
    LogInRefused,
    UnknownEvent,
    accounts,
    limits,
    load_workflow,
    open_engine,
)
from baoflow.engine.store import tables
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict

from tests.conftest import AGENT, HANDLER, POLICIES, report

ROOT = Path(__file__).parent.parent


# --- a workflow that keeps whatever it is given ---------------------------------------------
class Memo(BaseModel):
    """Takes any fields: what reaches the store is what the caller gave, so the engine's
    own limits (not a schema's) are what refuse it."""

    model_config = ConfigDict(extra="allow")


def merge(ctx: Any) -> None:
    ctx.new_data.update(ctx.data)


MEMO: dict[str, Any] = {
    "workflow": {
        "name": "memo",
        "version": 1,
        "case_number_prefix": "MM",
        "initial": "open",
        "open_schema": "memo",
        "index": {
            "policy_number": "policy",
            "insured_name": "insured",
            "id_number": "id",
            "handler": "handler",
            "phone": "phone",
        },
    },
    "states": {"open": {}, "done": {"final": True}},
    "transitions": [
        {"event": "note", "source": "open", "target": ".", "schema": "memo", "actions": ["merge"]},
        {"event": "finish", "source": "open", "target": "done"},
    ],
}


def with_memo(eng: Engine) -> Engine:
    eng.register(load_workflow(MEMO, Hooks(schemas={"memo": Memo}, actions={"merge": merge})))
    return eng


@pytest.fixture
def memo(eng: Engine) -> Engine:
    return with_memo(eng)


def everything(eng: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, as the database holds it."""
    with eng.store.engine.connect() as conn:
        return {
            t.name: sorted((tuple(r) for r in conn.execute(sa.select(t))), key=repr)
            for t in tables.metadata.sorted_tables
        }


def refused(eng: Engine, call: Callable[[], object]) -> InvalidData:
    """The InvalidData ``call`` raises, having checked that nothing was stored."""
    before = everything(eng)
    with pytest.raises(InvalidData) as err:
        call()
    assert everything(eng) == before
    return err.value


def problem_at(err: InvalidData, location: str) -> str:
    found = [p.message for p in err.problems if p.location == location]
    assert found, f"no problem at {location!r}: {err.problems}"
    return found[0]


# --- the module, the columns and the docs agree ------------------------------------------------
def test_each_limit_is_the_length_of_the_columns_that_keep_it() -> None:
    for limit in limits.TEXTS:
        assert limit.stored, f"{limit.field}: say where it is kept"
        for where in limit.stored:
            table, column = where.split(".")
            kind = tables.metadata.tables[table].c[column].type
            if isinstance(kind, sa.String):
                assert kind.length == limit.chars, f"{where} is {kind.length}, not {limit.chars}"
            else:  # kept inside a JSON document, which has no length of its own
                assert isinstance(kind, sa.JSON), f"{where} is neither text nor JSON"


def test_the_built_in_search_keys_each_have_their_columns_limit() -> None:
    from baoflow.engine.definitions import SEARCH_KEYS

    assert set(limits.SEARCH_KEYS) == set(SEARCH_KEYS)
    for key, limit in limits.SEARCH_KEYS.items():
        assert f"cases.{key}" in limit.stored


def test_the_docs_table_is_the_modules() -> None:
    text = (ROOT / "docs" / "embedding.md").read_text(encoding="utf-8")
    start = text.index("| What | At most |")
    table = text[start : text.index("\n\n", start)]
    assert table == limits.markdown()
    for limit in limits.TEXTS:  # and the table names every declared field
        assert f"| {limit.field} | {limit.chars:,} characters |" in table


# --- the limits at their boundaries ------------------------------------------------------------------
def unmatched(**policy: Any) -> dict[str, Any]:
    """A claim report whose policy is not in the directory (it opens a case all the same)."""
    return report(policy={"number": None, "insured_name": "无名氏", **policy})


def test_an_idempotency_key_of_200_characters_is_kept_and_201_refused(eng: Engine) -> None:
    first = eng.open_case("claim", report(), AGENT, idempotency_key="k" * 200)
    assert eng.open_case("claim", report(), AGENT, idempotency_key="k" * 200) == first
    err = refused(eng, lambda: eng.open_case("claim", report(), AGENT, idempotency_key="k" * 201))
    assert problem_at(err, "idempotency_key") == (
        "is 201 characters; an idempotency key holds at most 200"
    )
    err = refused(
        eng, lambda: eng.fire(first.case.id, "verify", HANDLER, idempotency_key="f" * 201)
    )
    assert "at most 200" in problem_at(err, "idempotency_key")
    assert eng.fire(first.case.id, "verify", HANDLER, idempotency_key="f" * 200).version == 3


def test_an_insured_name_of_128_characters_is_kept_and_129_refused(eng: Engine) -> None:
    opened = eng.open_case("claim", unmatched(insured_name="名" * 128), AGENT).case
    assert [c.id for c in eng.find_cases(insured_name="名" * 128)] == [opened.id]
    err = refused(eng, lambda: eng.open_case("claim", unmatched(insured_name="名" * 129), AGENT))
    assert problem_at(err, "policy.insured_name") == (
        "is 129 characters; the search key 'insured_name' holds at most 128"
    )


def test_a_policy_number_of_64_characters_is_kept_and_65_refused(eng: Engine) -> None:
    opened = eng.open_case("claim", unmatched(number="P" * 64), AGENT).case
    assert [c.id for c in eng.find_cases(policy_number="P" * 64)] == [opened.id]
    err = refused(eng, lambda: eng.open_case("claim", unmatched(number="P" * 65), AGENT))
    assert "at most 64" in problem_at(err, "policy.number")


@pytest.mark.parametrize(
    ("field", "limit", "make"),
    [
        ("id", limits.ACTOR_ID, lambda v: Actor(v, "李静", ("service_agent",))),
        ("name", limits.ACTOR_NAME, lambda v: Actor("a01", v, ("service_agent",))),
        ("org_unit", limits.ORG_UNIT, lambda v: Actor("a01", "李静", ("service_agent",), v)),
        ("roles[1]", limits.ROLE, lambda v: Actor("a01", "李静", ("service_agent", v))),
    ],
)
def test_an_actor_is_kept_at_its_limits_and_refused_past_them(
    eng: Engine, field: str, limit: limits.Limit, make: Callable[[str], Actor]
) -> None:
    at_limit = make("a" * limit.chars)
    opened = eng.open_case("claim", report(), at_limit).case
    assert eng.history(opened.id)[0].actor == at_limit
    err = refused(eng, lambda: eng.open_case("claim", report(), make("a" * (limit.chars + 1))))
    assert f"holds at most {limit.chars}" in problem_at(err, f"actor.{field}")
    err = refused(eng, lambda: eng.fire(opened.id, "verify", make("a" * (limit.chars + 1))))
    assert f"holds at most {limit.chars}" in problem_at(err, f"actor.{field}")


def test_a_megabyte_actor_name_never_reaches_the_history(eng: Engine) -> None:
    case = eng.open_case("claim", report(), AGENT).case
    err = refused(eng, lambda: eng.fire(case.id, "verify", Actor("h01", "名" * 1_000_000)))
    assert problem_at(err, "actor.name") == (
        "is 1000000 characters; an actor's name holds at most 200"
    )


def test_an_actor_has_at_most_32_roles(eng: Engine) -> None:
    roles = tuple(f"r{i}" for i in range(limits.ROLES_MAX))
    assert eng.open_case("claim", report(), Actor("a01", "李静", roles)).created
    err = refused(
        eng, lambda: eng.open_case("claim", report(), Actor("a01", "李静", (*roles, "x")))
    )
    assert "at most 32" in problem_at(err, "actor.roles")


def test_an_event_name_past_64_characters_is_refused_before_it_is_looked_up(eng: Engine) -> None:
    case = eng.open_case("claim", report(), AGENT).case
    with pytest.raises(UnknownEvent):  # 64: a name, just not one of the claim's
        eng.fire(case.id, "e" * 64, HANDLER)
    err = refused(eng, lambda: eng.fire(case.id, "e" * 65, HANDLER))
    assert "at most 64" in problem_at(err, "event")


def test_text_in_data_is_kept_to_10000_characters(memo: Engine) -> None:
    case = memo.open_case("memo", {"text": "字" * limits.DATA_TEXT.chars}, AGENT).case
    assert memo.get_case(case.id).data["text"] == "字" * limits.DATA_TEXT.chars
    err = refused(memo, lambda: memo.fire(case.id, "note", HANDLER, {"text": "x" * 10_001}))
    assert problem_at(err, "text") == "is 10001 characters; text in data holds at most 10000"


def test_a_key_in_data_is_kept_to_128_characters(memo: Engine) -> None:
    assert memo.open_case("memo", {"k" * 128: 1}, AGENT).created
    err = refused(memo, lambda: memo.open_case("memo", {"nested": {"k" * 129: 1}}, AGENT))
    assert "at most 128" in problem_at(err, "nested." + "k" * 40)


def nest(levels: int) -> Any:
    """Data ``levels`` deep: the top mapping, then lists inside each other."""
    value: Any = "leaf"
    for _ in range(levels - 1):
        value = [value]
    return {"deep": value}


def test_data_nests_16_levels_and_not_17(memo: Engine) -> None:
    case = memo.open_case("memo", nest(limits.DATA_DEPTH), AGENT).case
    assert memo.get_case(case.id).data == nest(limits.DATA_DEPTH)
    err = refused(memo, lambda: memo.fire(case.id, "note", HANDLER, nest(limits.DATA_DEPTH + 1)))
    [problem] = err.problems
    assert problem.location == "deep" + ".0" * (limits.DATA_DEPTH - 1)
    assert "deeper than 16 levels" in problem.message


def test_integers_in_data_are_those_every_json_reader_reads_exactly(memo: Engine) -> None:
    big = limits.INTEGER_MAX
    case = memo.open_case("memo", {"n": big, "m": -big}, AGENT).case
    assert memo.get_case(case.id).data == {"n": big, "m": -big}
    for n in (big + 1, -big - 1, 2**64, 10**30):
        err = refused(memo, lambda n=n: memo.fire(case.id, "note", HANDLER, {"n": n}))
        assert "at most 9007199254740991" in problem_at(err, "n")


def test_a_numbers_text_the_schema_makes_too_large_is_refused(eng: Engine) -> None:
    """The claim's schema turns the text "9" * 30 into a number: the limit holds for what
    the schema made of the data, not only for what was given."""
    bad = report(incident={"injury": "death", "deaths": "9" * 30})
    err = refused(eng, lambda: eng.open_case("claim", bad, AGENT))
    assert "at most 9007199254740991" in problem_at(err, "incident.deaths")


def test_a_float_in_data_is_finite(memo: Engine) -> None:
    assert memo.open_case("memo", {"x": 1.5e308}, AGENT).created
    for number in (float("nan"), float("inf"), float("-inf")):
        err = refused(memo, lambda n=number: memo.open_case("memo", {"x": [n]}, AGENT))
        assert "must be finite" in problem_at(err, "x.0")


def exactly(size: int) -> dict[str, Any]:
    """Data that is ``size`` bytes as compact JSON (measured by orjson, not by baoflow)."""
    piece = "x" * 9_000
    items = [piece] * ((size - 20) // (len(piece) + 3))  # each with its quotes and comma
    pad = size - len(orjson.dumps({"items": items, "pad": ""}))
    data = {"items": items, "pad": "y" * pad}
    assert len(orjson.dumps(data)) == size
    return data


def test_one_requests_data_is_at_most_a_mebibyte_as_compact_json(memo: Engine) -> None:
    assert memo.open_case("memo", exactly(limits.DATA_BYTES), AGENT).created
    err = refused(memo, lambda: memo.open_case("memo", exactly(limits.DATA_BYTES + 1), AGENT))
    assert f"at most {limits.DATA_BYTES}" in problem_at(err, "")


# --- characters ------------------------------------------------------------------------------------
def test_free_text_keeps_tabs_and_line_breaks(memo: Engine) -> None:
    text = "第一行\r\n第二行\t（续）"
    case = memo.open_case("memo", {"note": text}, AGENT).case
    assert memo.get_case(case.id).data["note"] == text


def test_nul_control_characters_and_lone_surrogates_are_refused_in_free_text(
    memo: Engine,
) -> None:
    case = memo.open_case("memo", {}, AGENT).case
    for char, said in [
        ("\x00", "holds a NUL character (U+0000) at position 2: no text may"),
        ("\x1b", "holds the control character U+001B at position 2"),  # ESC
        ("\x7f", "holds the control character U+007F at position 2"),  # DEL
        ("\x85", "holds the control character U+0085 at position 2"),  # C1: NEL
        ("\ud800", "holds a lone surrogate (U+D800) at position 2"),
    ]:
        err = refused(memo, lambda c=char: memo.fire(case.id, "note", HANDLER, {"note": f"ab{c}c"}))
        assert problem_at(err, "note").startswith(said)


@pytest.mark.parametrize("char", ["\t", "\n", "\x1b", "\x00"])
def test_names_numbers_and_keys_take_no_control_character_at_all(eng: Engine, char: str) -> None:
    err = refused(eng, lambda: eng.open_case("claim", unmatched(insured_name=f"李{char}娜"), AGENT))
    said = problem_at(err, "policy.insured_name")
    assert f"U+{ord(char):04X}" in said
    if char in "\t\n":  # free text may hold these; a name may not
        assert said.endswith("the search key 'insured_name' takes no control character")
    err = refused(eng, lambda: eng.open_case("claim", report(), Actor("a01", f"李{char}静")))
    assert problem_at(err, "actor.name")
    err = refused(eng, lambda: eng.open_case("claim", report(), AGENT, idempotency_key=f"k{char}"))
    assert problem_at(err, "idempotency_key")


def test_a_refused_key_is_shown_escaped_in_the_error(memo: Engine) -> None:
    err = refused(memo, lambda: memo.open_case("memo", {"a\x1b[2J": 1}, AGENT))
    assert err.problems[0].location == "a\\u001b[2J"
    assert "\x1b" not in str(err)


# --- searching and case references -------------------------------------------------------------------
def test_a_filter_longer_than_its_column_finds_nothing(eng: Engine) -> None:
    eng.open_case("claim", unmatched(number="P" * 64), AGENT)
    assert eng.find_cases(policy_number="P" * 65) == []
    assert eng.count_cases(policy_number="P" * 65) == 0
    assert eng.find_cases(number="L" * 41) == []
    assert eng.find_cases(insured_name="名" * 10_000, keys={"handler": "h" * 65}) == []


@pytest.mark.parametrize(
    "filters",
    [
        {"policy_number": "P\x00"},
        {"number": "LP\x00"},
        {"insured_name": "李\x1b娜"},
        {"keys": {"handler": "h\x00"}},
        {"state": ["reported", "x\x00"]},
    ],
    ids=["policy_number", "number", "insured_name", "key", "state"],
)
def test_a_filter_with_a_control_character_is_refused_naming_it(
    eng: Engine, filters: dict[str, Any]
) -> None:
    with pytest.raises(InvalidData) as err:
        eng.find_cases(**filters)
    [problem] = err.value.problems
    name = next(iter(filters))
    assert problem.location.startswith(name if name != "keys" else "keys.handler")


def test_a_viewer_with_a_nul_in_their_org_unit_is_refused(eng: Engine) -> None:
    with pytest.raises(InvalidData) as err:
        eng.find_cases(visible_to=Actor("h01", "王芳", ("handler",), "SH\x00"))
    assert err.value.problems[0].location == "visible_to.org_unit"


@pytest.mark.parametrize("limit", [0, 2**63])
def test_a_page_past_what_a_bigint_holds_is_refused(eng: Engine, limit: int) -> None:
    with pytest.raises(InvalidData):
        eng.find_cases(limit=limit)
    with pytest.raises(InvalidData):
        eng.find_cases(offset=2**63)


@pytest.mark.parametrize("ref", ["L" * 41, "LP-2026\x00", "LP\x1b[2J"])
def test_a_case_number_no_case_can_have_is_not_found(eng: Engine, ref: str) -> None:
    with pytest.raises(CaseNotFound):
        eng.get_case(ref)
    with pytest.raises(CaseNotFound):
        eng.fire(ref, "verify", HANDLER)


def test_a_case_id_is_found_whatever_its_leading_zeros_and_one_past_a_bigint_is_not(
    eng: Engine,
) -> None:
    case = eng.open_case("claim", report(), AGENT).case
    assert eng.get_case("0" * 30 + str(case.id)) == case
    for ref in ("9" * 20, "9" * 5_000, 2**63, -1):  # int() would refuse 5,000 digits
        with pytest.raises(CaseNotFound):
            eng.get_case(ref)


#: Entries beyond the case's own, each with a value no database keeps as it is, and
#: the field the error must name.
OTHER_ENTRIES: list[tuple[str, Callable[[Engine], object], str]] = [
    ("deadlines by unit", lambda e: e.running_deadlines(org_unit="SH\x00"), "org_unit"),
    ("deadlines by handler", lambda e: e.running_deadlines(handler="h\x00"), "handler"),
    ("deadlines by rule", lambda e: e.running_deadlines(rule="r\x00"), "rule"),
    ("breaches", lambda e: e.breaches(org_unit="SH\x00"), "org_unit"),
    ("SLA report", lambda e: e.sla_report(org_unit="\ud800"), "org_unit"),
    ("state counts", lambda e: e.state_counts("claim", org_unit="SH\x00"), "org_unit"),
    ("inbox", lambda e: e.inbox("u\x00"), "user"),
    ("mark read", lambda e: e.mark_read("u\x00"), "user"),
    ("user id", lambda e: e.add_user("u\x00", "王芳", "password123"), "id"),
    ("user name", lambda e: e.add_user("u01", "名" * 201, "password123"), "name"),
    ("user unit", lambda e: e.add_user("u01", "王芳", "password1", org_unit="SH\x1b"), "org_unit"),
    ("token app", lambda e: e.create_api_token("a" * 101, actor=AGENT), "app"),
    ("token actor", lambda e: e.create_api_token("app", actor=Actor("a\x00", "n")), "actor.id"),
]


def test_the_desks_other_entries_refuse_what_no_database_keeps(eng: Engine) -> None:
    for what, call, location in OTHER_ENTRIES:
        err = refused(eng, lambda call=call: call(eng))
        assert [p.location for p in err.problems] == [location], what


def test_a_log_in_with_a_control_character_is_a_wrong_one_and_counts_as_one(eng: Engine) -> None:
    eng.add_user("u01", "王芳", "password123")
    for _ in range(accounts.LIMIT):
        with pytest.raises(LogInRefused) as err:
            eng.log_in("u01\x00", "password123", client="10.0.0.1\x1b")
    assert err.value.reason == "throttled"  # the fifth wrong one, from that client
    with pytest.raises(LogInRefused) as err:  # that client is held back, as any guesser
        eng.log_in("u01", "password123", client="10.0.0.1\x1b")
    assert err.value.reason == "throttled"
    assert eng.log_in("u01", "password123", client="10.0.0.2").id == "u01"


# --- an insurer's message -------------------------------------------------------------------------------
def message(**fields: Any) -> InsurerMessage:
    values: dict[str, Any] = {"insurer": "pingan", "message_id": "m-1", "kind": "receipt"}
    return InsurerMessage(**{**values, "reference": "R-1", "payload": {}, **fields})


def test_an_insurer_message_id_of_200_characters_is_kept_and_201_refused(eng: Engine) -> None:
    assert eng.receive_insurer_message(message(message_id="m" * 200)).status == "unresolved"
    err = refused(eng, lambda: eng.receive_insurer_message(message(message_id="m" * 201)))
    assert "at most 200" in problem_at(err, "message_id")


@pytest.mark.parametrize("char", ["\x1b", "\x00", "\x9b"])
def test_an_insurer_message_with_a_control_character_is_refused_not_stripped(
    eng: Engine, char: str
) -> None:
    """Kept as sent or not at all: the insurer is told, and can send it again."""
    err = refused(eng, lambda: eng.receive_insurer_message(message(payload={"note": f"[2J{char}"})))
    assert "at position 3" in problem_at(err, "payload.note")
    err = refused(eng, lambda: eng.receive_insurer_message(message(reference=f"R{char}1")))
    assert problem_at(err, "reference")
    assert eng.inbound_messages() == []


def test_a_person_resolving_a_message_is_named_within_200_characters(eng: Engine) -> None:
    stored = eng.receive_insurer_message(message())
    err = refused(eng, lambda: eng.dismiss_inbound(stored.id, "重复", by="u" * 201))
    assert "at most 200" in problem_at(err, "by")
    err = refused(eng, lambda: eng.dismiss_inbound(stored.id, "重复\x00", by="u01"))
    assert "NUL" in problem_at(err, "reason")
    assert eng.dismiss_inbound(stored.id, "重复\n（见邮件）", by="u" * 200).status == "dismissed"


# --- random input: a BaoflowError or success, and nothing stored on an error ------------------------------
@pytest.fixture(scope="module")
def shared(module_db_url: str) -> Iterator[Engine]:
    eng = open_engine(module_db_url, clock=FakeClock(datetime(2026, 5, 6, 9, 0, tzinfo=SHANGHAI)))
    eng.policies.add(POLICIES)  # type: ignore[attr-defined]
    with_memo(eng)
    yield eng
    eng.close()


#: Characters that matter here, beside whatever hypothesis draws (surrogates included);
#: NUL, which PostgreSQL refuses in any text, the most often.
TRICKY = "\x00\x00\x00\x1b\x7f\x85\x9b\t\n\r\ud800\udfff𝄞名 "
CHARS = st.one_of(st.characters(exclude_categories=()), st.sampled_from(TRICKY))
SHORT = st.text(CHARS, max_size=12)
TEXT = st.one_of(
    SHORT,
    st.builds(lambda a, c, b: a + c + b, SHORT, st.sampled_from(TRICKY), SHORT),
    st.builds(
        lambda c, n: c * n,
        st.sampled_from("a名𝄞\x00\x1b"),
        st.sampled_from([31, 32, 33, 40, 41, 64, 65, 128, 129, 200, 201, 10_000, 10_001]),
    ),
)
NUMBER = st.one_of(
    st.integers(),
    st.sampled_from([limits.INTEGER_MAX, limits.INTEGER_MAX + 1, -(2**63), 2**64, 10**40]),
    st.floats(allow_nan=True, allow_infinity=True),
)
LEAF = st.one_of(TEXT, NUMBER, st.booleans(), st.none())
DATA = st.recursive(
    LEAF,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(SHORT, inner, max_size=3),
    max_leaves=12,
)
DEEP = st.integers(min_value=14, max_value=18).map(nest)
PAYLOAD = st.one_of(
    st.dictionaries(st.sampled_from(["policy", "insured", "id", "handler", "phone", "note"]), LEAF),
    st.dictionaries(SHORT, DATA, max_size=4),
    DEEP,
)
ACTOR = st.one_of(  # two in three draws a valid actor, so the data is reached
    st.just(AGENT),
    st.just(HANDLER),
    st.builds(
        Actor,
        TEXT,
        TEXT,
        st.lists(TEXT, max_size=3).map(tuple),
        st.one_of(st.none(), TEXT),
    ),
)
KEY = st.one_of(st.none(), TEXT)
PROPERTY = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def attempt(eng: Engine, call: Callable[[], object]) -> bool:
    """Run ``call``: True if it succeeded; on a BaoflowError, nothing stored changed.
    Any other exception fails the test as it is raised."""
    before = everything(eng)
    try:
        call()
    except BaoflowError:
        assert everything(eng) == before
        return False
    return True


@PROPERTY
@given(data=PAYLOAD, actor=ACTOR, key=KEY)
def test_random_openings_are_a_baoflow_error_or_a_case(
    shared: Engine, data: dict[str, Any], actor: Actor, key: str | None
) -> None:
    attempt(shared, lambda: shared.open_case("memo", data, actor, idempotency_key=key))


@PROPERTY
@given(place=TEXT, name=TEXT, number=st.one_of(st.none(), TEXT), deaths=NUMBER)
def test_random_claim_reports_are_a_baoflow_error_or_a_case(
    shared: Engine, place: str, name: str, number: str | None, deaths: Any
) -> None:
    data = report(
        policy={"number": number, "insured_name": name},
        incident={"place": place, "deaths": deaths, "injury": "death"},
    )
    attempt(shared, lambda: shared.open_case("claim", data, AGENT))


@PROPERTY
@given(
    event=st.one_of(st.just("note"), st.just("note"), TEXT),
    data=PAYLOAD,
    actor=ACTOR,
    key=KEY,
    version=st.one_of(st.none(), st.integers()),
)
def test_random_events_are_a_baoflow_error_or_a_new_version(
    shared: Engine,
    event: str,
    data: dict[str, Any],
    actor: Actor,
    key: str | None,
    version: int | None,
) -> None:
    case = shared.open_case("memo", {}, AGENT).case

    def fire() -> object:
        return shared.fire(
            case.id, event, actor, data, idempotency_key=key, expected_version=version
        )

    if attempt(shared, fire):
        assert shared.get_case(case.id).version == 2


def search(eng: Engine, filters: dict[str, Any], viewer: Actor | None) -> None:
    attempt(eng, lambda: eng.find_cases(**filters, visible_to=viewer))
    counted = {k: v for k, v in filters.items() if k not in ("limit", "offset", "after")}
    attempt(eng, lambda: eng.count_cases(**counted, visible_to=viewer))


@PROPERTY
@given(
    filters=st.fixed_dictionaries(
        {},
        optional={
            "number": TEXT,
            "policy_number": TEXT,
            "insured_name": TEXT,
            "id_number": TEXT,
            "keys": st.dictionaries(st.sampled_from(["phone", "handler", "insured_name"]), TEXT),
        },
    ),
    viewer=st.sampled_from([None, AGENT]),
)
def test_random_search_text_is_a_baoflow_error_or_a_list(
    shared: Engine, filters: dict[str, Any], viewer: Actor | None
) -> None:
    search(shared, filters, viewer)


@PROPERTY
@given(
    filters=st.fixed_dictionaries(
        {},
        optional={
            "state": st.one_of(st.just("open"), TEXT, st.lists(TEXT, max_size=2)),
            "limit": st.one_of(st.just(10), st.integers()),
            "offset": st.one_of(st.just(0), st.integers()),
            "after": st.one_of(st.none(), st.integers()),
            "newest_first": st.booleans(),
        },
    ),
    viewer=st.one_of(st.none(), ACTOR),
)
def test_random_pages_states_and_viewers_are_a_baoflow_error_or_a_list(
    shared: Engine, filters: dict[str, Any], viewer: Actor | None
) -> None:
    search(shared, {k: v for k, v in filters.items() if k != "newest_first"}, viewer)
    attempt(shared, lambda: shared.find_cases(**filters, visible_to=viewer))


@PROPERTY
@given(
    ref=st.one_of(
        st.integers(),
        TEXT,
        st.text("0123456789", max_size=30),
        st.builds(lambda n: "9" * n, st.sampled_from([19, 20, 4_300, 4_301, 10_000])),
    )
)
def test_random_case_references_are_a_case_or_not_found(shared: Engine, ref: int | str) -> None:
    for read in (shared.get_case, shared.history, shared.deadlines, shared.available_events):
        attempt(shared, lambda read=read: read(ref))  # type: ignore[operator]
    attempt(shared, lambda: shared.fire(ref, "note", HANDLER, {"seen": True}))


@PROPERTY
@given(
    message_id=TEXT,
    kind=st.one_of(st.just("receipt"), TEXT),
    number=st.one_of(st.none(), TEXT),
    reference=st.one_of(st.none(), TEXT),
    payload=PAYLOAD,
)
def test_random_insurer_messages_are_a_baoflow_error_or_an_answer(
    shared: Engine,
    message_id: str,
    kind: str,
    number: str | None,
    reference: str | None,
    payload: dict[str, Any],
) -> None:
    sent = InsurerMessage("pingan", message_id, kind, number, reference, payload)
    attempt(shared, lambda: shared.receive_insurer_message(sent))
