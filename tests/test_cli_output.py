"""Output that cannot attack its reader (issue #15 item 3, the command line): what is
stored is shown with every character a terminal would obey — C0 and C1 controls, DEL,
bidirectional overrides — written as an escape, and rich markup in data is shown as
typed, never interpreted. ``--json`` gives the same data back exactly.

The hostile text is written into the database directly, as data stored before entry
refused it (or by another program) would be: the display may not count on entry.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from baoflow import SHANGHAI, FakeClock, InsurerMessage, open_engine
from baoflow.cli import main
from tests.conftest import AGENT, POLICIES, report
from tests.test_inbound import DECIDED

#: Clears the screen, rings, starts a C1 colour sequence, reverses what follows, holds a
#: NUL, and carries markup (one closing tag too many) and an emoji code.
HOSTILE = "李\x1b[2J娜\x07\x9b31m\u202eevil\x00 [bold red]x[/][/] :warning:"
#: The same as a line of the terminal shows it.
SHOWN = "李\\x1b[2J娜\\x07\\x9b31m\\u202eevil\\x00 [bold red]x[/][/] :warning:"
#: What a terminal obeys: no character of these may reach standard output.
OBEYED = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def tamper(url: str, table: str, column: str, old: str, new: str) -> None:
    """Replace ``old`` by ``new`` in every row's JSON ``column``, as text."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for key, value in conn.execute(sa.text(f"SELECT id, {column} FROM {table}")).all():
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            changed = text.replace(_inside_json(old), _inside_json(new))
            conn.execute(
                sa.text(f"UPDATE {table} SET {column} = :v WHERE id = :k"), {"v": changed, "k": key}
            )
    engine.dispose()


def _inside_json(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)[1:-1]


@pytest.fixture
def desk(tmp_path: Path) -> tuple[str, str]:
    """A reported claim whose insured's, reporter's and agent's names now hold HOSTILE,
    in the case's data, in the notice of acceptance the outbox holds and in the history
    (the agent opened it)."""
    url = f"sqlite:///{tmp_path / 'desk.db'}"
    eng = open_engine(url)
    eng.policies.add(POLICIES)  # type: ignore[attr-defined]
    number = eng.open_case("claim", report(), AGENT).case.number
    eng.close()
    tamper(url, "cases", "data", "李娜", HOSTILE)
    tamper(url, "outbox", "context", "王磊", HOSTILE)
    tamper(url, "history", "actor", AGENT.name, HOSTILE)
    return url, number


def run(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    return result.stdout


def test_the_case_list_shows_an_insured_name_escaped_and_its_markup_as_typed(desk: Any) -> None:
    url, number = desk
    out = run("cases", "list", "--url", url)
    assert number in out and SHOWN in out
    assert not OBEYED.search(out)


def test_the_case_shows_its_data_escaped(desk: Any) -> None:
    url, number = desk
    out = run("cases", "show", number, "--url", url, "--role", "handler")
    # The data is printed as JSON, which writes C0 controls as \\u escapes itself; the
    # rest (C1, the bidi override) is escaped by the command line.
    assert _inside_json(HOSTILE)[:10] in out  # 李\u001b[2J娜
    assert "\\x9b31m\\u202eevil" in out and "[bold red]x[/][/] :warning:" in out
    assert not OBEYED.search(out)


@pytest.mark.parametrize("command", [["cases", "list"], ["cases", "show", "<number>"]])
def test_json_output_gives_the_data_back_exactly_and_nothing_a_terminal_obeys(
    desk: Any, command: list[str]
) -> None:
    url, number = desk
    out = run(*[number if w == "<number>" else w for w in command], "--url", url, "--json")
    assert not OBEYED.search(out)
    doc = json.loads(out)
    case = doc["cases"][0] if "cases" in doc else doc["case"]
    assert case["data"]["policy"]["insured_name"] == HOSTILE


def test_the_history_shows_who_acted_escaped(desk: Any) -> None:
    url, number = desk
    out = run("cases", "show", number, "--url", url)
    assert SHOWN in out.split("from → to")[1]  # in the history table
    assert not OBEYED.search(out)


@pytest.mark.parametrize("fmt", ["mermaid", "dot", "svg"])
def test_a_case_path_diagram_names_who_acted_escaped(desk: Any, fmt: str) -> None:
    url, number = desk
    out = run("diagram", "claim", "--case", number, "--format", fmt, "--url", url)
    assert "\\x1b[2J" in out and not OBEYED.search(out)


def test_a_notice_preview_shows_the_name_in_it_escaped(desk: Any) -> None:
    url, number = desk
    out = run("notify", "preview", "claim_accepted", "--case", number, "--url", url)
    assert "尊敬的" in out and SHOWN in out
    assert not OBEYED.search(out)


def test_an_insurers_reference_is_listed_escaped(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'desk.db'}"
    eng = open_engine(url, clock=FakeClock(datetime(2026, 5, 6, 9, 0, tzinfo=SHANGHAI)))
    eng.receive_insurer_message(
        InsurerMessage("pingan", "m1", "decision", payload=DECIDED, reference="PA-UNKNOWN")
    )
    eng.close()
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # as an insurer's message stored before entry refused it
        conn.execute(sa.text("UPDATE inbound_messages SET reference = :r"), {"r": HOSTILE})
    engine.dispose()
    out = run("inbound", "list", "--url", url)
    assert SHOWN in out and not OBEYED.search(out)
