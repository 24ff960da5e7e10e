"""Property-based (issue #15 item 1): whatever text, numbers and nesting reach the command
line — control characters, non-BMP characters, lone surrogates (bytes that are not
UTF-8), huge texts and numbers, deep nesting — ``fire --data``, ``cases show`` and
``cases list --insured/--policy`` end with exit status 0, or with 2 and one line on
standard error: never a traceback, and nothing stored on an error. On SQLite and
PostgreSQL (``module_db_url``).

What the command line can receive decides the alphabet: an argument cannot hold NUL,
and its lone surrogates are those Python makes of bytes that are not UTF-8
(U+DC80..U+DCFF); JSON text in ``--data`` can hold any character, escaped.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from baoflow.engine import Engine, open_engine
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, example, given, settings
from hypothesis import event as label
from hypothesis import strategies as st

from baoflow.cli import main
from tests.conftest import AGENT, POLICIES, report

#: The texts that have broken command lines and terminals, among random characters.
NASTY = [
    "\x1b[2J",
    "\x00",
    "\x07",
    "\r",
    "\x9b31m",
    "\u202e",
    "\u2066",
    "[/]",
    "[bold red]",
    ":warning:",
    "²",
    "٣",
    "𝟘",
    "😀",
    "张三",
    "\\",
    '"',
    "%s",
    "' OR '1'='1",
    "\ufeff",
]
UNDECODABLE = st.characters(min_codepoint=0xDC80, max_codepoint=0xDCFF)


def texts(*, argv: bool) -> st.SearchStrategy[str]:
    """Random text: pieces of NASTY and any character, and now and then a huge run; on
    the command line now and then with bytes that are not UTF-8 in it."""
    if argv:  # no NUL; lone surrogates only as undecodable bytes arrive, below
        char = st.characters(exclude_characters="\x00")
        nasty = st.sampled_from([n for n in NASTY if "\x00" not in n])
    else:  # JSON escapes reach every code point, NUL and any lone surrogate too
        char = st.characters(exclude_categories=())
        nasty = st.sampled_from(NASTY)
    text = st.lists(st.one_of(nasty, char), max_size=12).map("".join)
    huge = st.builds(
        lambda piece, n: (piece * n)[:n],
        st.sampled_from(["a", "张", "😀", "\x1b[2J", "9"]),
        st.integers(2_001, 120_000),
    )
    if not argv:
        return st.one_of(text, text, text, huge)
    # One text in about ten ends with a byte that is not UTF-8.
    tail = st.sampled_from([""] * 9 + ["<byte>"]).flatmap(
        lambda t: UNDECODABLE if t else st.just("")
    )
    return st.builds(lambda t, b: t + b, st.one_of(text, text, text, huge), tail)


ARGV_TEXT = texts(argv=True)
JSON_TEXT = texts(argv=False)
NUMBERS = st.one_of(
    st.integers(),  # unbounded: past 64 bits too
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(),  # NaN and the infinities included
    st.decimals(allow_nan=False).map(str),
)
LEAVES = st.one_of(st.none(), st.booleans(), NUMBERS, JSON_TEXT)
VALUES = st.recursive(
    LEAVES,
    lambda kids: st.one_of(
        st.lists(kids, max_size=3), st.dictionaries(JSON_TEXT, kids, max_size=3)
    ),
    max_leaves=12,
)
#: update_facts's own fields with random values, so validation and the action see them.
#: Facts that often pass: a note of a few words, perhaps a count and an amount.
FACTS = st.fixed_dictionaries(
    {"note": st.one_of(JSON_TEXT, st.text(min_size=1, max_size=30).filter(str.strip))},
    optional={"deaths": st.integers(min_value=0), "expected_amount": NUMBERS},
)
ODD_FACTS = st.fixed_dictionaries(
    {"note": JSON_TEXT},
    optional={
        "deaths": st.one_of(NUMBERS, VALUES),
        "expected_amount": st.one_of(NUMBERS, VALUES),
        "dispute": VALUES,
        "outcome_undetermined": VALUES,
        "extra": VALUES,
    },
)
DEEP = st.builds(
    lambda n, opener, closer: opener * n + closer * n,
    st.integers(10, 60_000),
    st.sampled_from(["[", '{"a":']),
    st.sampled_from(["]", "}"]),
)
DATA_TEXT = st.one_of(
    FACTS.map(lambda d: json.dumps(d, allow_nan=True)),
    FACTS.map(lambda d: json.dumps(d, allow_nan=True)),
    ODD_FACTS.map(lambda d: json.dumps(d, allow_nan=True)),
    VALUES.map(lambda v: json.dumps(v, allow_nan=True)),
    DEEP,
    ARGV_TEXT,  # not JSON at all, mostly
    ARGV_TEXT.map(lambda t: "@" + t),  # a file that does not exist, or a strange name
)


@dataclass(frozen=True)
class Desk:
    url: str
    number: str
    case_id: int
    engine: Engine  # reads what is stored between the commands


@pytest.fixture(scope="module")
def desk(module_db_url: str) -> Iterator[Desk]:
    eng = open_engine(module_db_url)
    eng.policies.add(POLICIES)  # type: ignore[attr-defined]
    case = eng.open_case("claim", report(), AGENT).case
    yield Desk(module_db_url, case.number, case.id, eng)
    eng.close()


def stored(desk: Desk) -> tuple[Any, ...]:
    """What the database holds, as far as the facade shows it."""
    cases = tuple((c.id, c.number, c.state, c.version) for c in desk.engine.find_cases())
    case = desk.engine.get_case(desk.case_id)
    return cases, json.dumps(case.data, sort_keys=True), len(desk.engine.history(desk.case_id))


def run(args: list[str]) -> Result:
    result = CliRunner().invoke(main, args, env={"COLUMNS": "200"})
    # The contract: success, or one line saying what is wrong. Anything else is a
    # traceback (exit status 1, result.exception the exception itself).
    assert result.exit_code in (0, 2), (result.exit_code, result.exception, result.output[-800:])
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    if result.exit_code == 2:
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-800:]
        assert result.stdout == ""
    # What kind of outcome, for --hypothesis-show-statistics: that both are reached.
    label(" ".join(result.stderr.split()[1:3]) if result.exit_code else "success")
    return result


PROPERTY = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)


@PROPERTY
@given(data=DATA_TEXT)
# What issue #15 measured, and what the engine does not refuse itself yet, every run:
@example(data="@missing.json")
@example(data='{"note": "a\\u0000b"}')  # PostgreSQL: a raw UntranslatableCharacter
@example(data='{"note": "ok", "deaths": 99999999999999999999999}')  # past 64 bits
@example(data='{"note": "\\ud800"}')  # a lone surrogate, escaped in JSON
@example(data='{"note": "\\u001b[2J\\u202e"}')
@example(data="[" * 100_000)
@example(data='{"note": "ok"}')  # succeeds
def test_fire_with_any_data_succeeds_or_says_in_one_line_why_and_stores_nothing(
    desk: Desk, data: str
) -> None:
    # On PostgreSQL, a NUL in the data (json "\u0000", which jsonb refuses) and on both
    # an integer past 64 bits (the store's JSON encoder refuses it) reach the engine as
    # a raw driver or encoder error today: the engine's own limits are another part of
    # issue #15. Whatever the engine raises, the command line must keep its contract.
    before = stored(desk)
    result = run(
        [
            "fire",
            desk.number,
            "update_facts",
            "--actor",
            "h01",
            "--role",
            "handler",
            "--org",
            "SH",
            "--url",
            desk.url,
            "--data",
            data,
        ]
    )
    after = stored(desk)
    if result.exit_code == 2:
        assert after == before
    else:
        assert after[0] != before[0] and after[2] == before[2] + 1  # one step, recorded


@PROPERTY
@given(
    ref=st.one_of(
        ARGV_TEXT,
        st.integers().map(str),
        st.sampled_from(["0", "-1", "1", "9223372036854775808", "9" * 25, "1e3", " 1", "0x1"]),
        st.just("<number>"),
        st.just("<id>"),
    )
)
@example(ref="²")
@example(ref="9999999999999999999999999")
@example(ref="9" * 5_000)  # int() refuses more than 4,300 digits
@example(ref="LP-\udcff")
@example(ref="<number>")
def test_cases_show_of_any_reference_shows_the_case_or_says_in_one_line_why(
    desk: Desk, ref: str
) -> None:
    ref = {"<number>": desk.number, "<id>": str(desk.case_id)}.get(ref, ref)
    before = stored(desk)
    result = run(["cases", "show", ref, "--url", desk.url])
    if ref in (desk.number, str(desk.case_id)):
        assert result.exit_code == 0 and desk.number in result.stdout
    assert stored(desk) == before


@PROPERTY
@given(insured=st.none() | ARGV_TEXT, policy=st.none() | ARGV_TEXT)
@example(insured="\x1b[2J", policy="\udcff")
@example(insured="张" * 100_000, policy=None)
def test_cases_list_filtered_by_any_text_lists_or_says_in_one_line_why(
    desk: Desk, insured: str | None, policy: str | None
) -> None:
    before = stored(desk)
    args = ["cases", "list", "--url", desk.url]
    args += ["--insured", insured] if insured is not None else []
    args += ["--policy", policy] if policy is not None else []
    run(args)
    assert stored(desk) == before
