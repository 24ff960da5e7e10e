"""Every command turns every error into one line on standard error and exit status 2,
with ``--debug`` for the traceback (issue #15 item 1); and a SQLite file that does not
exist is an error, not a new empty database, for every command but ``db upgrade`` and
``demo`` (item 2). What issue #15 measured printing a traceback is each checked here,
with nothing stored after it."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from baoflow.engine import BaoflowError, Engine, open_engine
from click.testing import CliRunner, Result

from baoflow.cli import main
from tests.conftest import AGENT, POLICIES, report


def one_error_line(result: Result) -> str:
    """The error line of a command that failed as every command must fail."""
    assert result.exit_code == 2, (result.exit_code, result.exception, result.output)
    assert "Traceback" not in result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: ")
    return line


def invoke(*args: str, **kwargs: Any) -> Result:
    return CliRunner().invoke(main, list(args), env={"COLUMNS": "100"}, **kwargs)


@pytest.fixture(scope="module")
def desk(module_db_url: str) -> Iterator[tuple[str, Engine, Any]]:
    """A reported claim on SQLite and PostgreSQL, and an engine to look at it with; each
    test leaves it as it was (each checks so)."""
    eng = open_engine(module_db_url)
    eng.policies.add(POLICIES)  # type: ignore[attr-defined]
    case = eng.open_case("claim", report(), AGENT).case
    yield module_db_url, eng, case
    eng.close()


def withdraw(url: str, number: str, data: str) -> Result:
    return invoke(
        "fire", number, "withdraw", "--actor", "h01", "--role", "handler", "--org", "SH",
        "--url", url, "--data", data,
    )  # fmt: skip


def test_data_from_a_file_that_does_not_exist_is_a_usage_error(
    desk: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, eng, case = desk
    monkeypatch.chdir(tmp_path)
    line = one_error_line(withdraw(url, case.number, "@missing.json"))
    assert "there is no file 'missing.json'" in line and "--data" in line
    assert eng.get_case(case.id).version == case.version


def test_data_from_a_file_that_is_not_utf8_names_the_byte(desk: Any, tmp_path: Path) -> None:
    url, eng, case = desk
    latin1 = tmp_path / "latin1.json"
    latin1.write_bytes('{"reason": "café"}'.encode("latin-1"))
    line = one_error_line(withdraw(url, case.number, f"@{latin1}"))
    assert "is not UTF-8 text (byte 0xe9 at offset 15): save it as UTF-8" in line
    assert eng.get_case(case.id).version == case.version


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ('{"reason": NaN}', "NaN is not a JSON number"),
        ('{"reason": ' + "9" * 5_000 + "}", "Exceeds the limit"),
        ("[" * 100_000, "nested too deeply"),
        ("{oops", "not valid JSON"),
    ],
)
def test_data_that_is_not_json_is_a_usage_error(desk: Any, data: str, says: str) -> None:
    url, eng, case = desk
    line = one_error_line(withdraw(url, case.number, data))
    assert says in line
    assert eng.get_case(case.id).version == case.version


@pytest.mark.parametrize("ref", ["²", "9223372036854775808", "٣"])
def test_a_reference_that_looks_like_an_id_but_is_none_is_not_found(desk: Any, ref: str) -> None:
    url, *_ = desk
    line = one_error_line(invoke("cases", "show", ref, "--url", url))
    assert line.startswith(f"error: CaseNotFound: no case '{ref}'")


@pytest.mark.parametrize(
    "ref",
    [
        "9999999999999999999999999",
        "9" * 5_000,
        "LP-" + "0" * 40,
        "LP 1",
        "LP-\u202e1",
        "",
        "LP-\udcff",
    ],
)
def test_a_reference_that_cannot_name_a_case_is_a_usage_error(desk: Any, ref: str) -> None:
    url, *_ = desk
    for args in (["cases", "show", ref], ["fire", ref, "withdraw", "--actor", "h01"]):
        line = one_error_line(invoke(*args, "--url", url))
        assert "case id" in line or "not UTF-8" in line  # the second: bytes not UTF-8


def test_a_guard_refusal_lists_its_reasons_on_the_one_line(desk: Any) -> None:
    url, eng, case = desk
    result = invoke(
        "fire", case.number, "reject", "--actor", "h01", "--role", "handler", "--org", "SH",
        "--url", url, "--data", '{"reasons": ["not_covered"], "notice": "不属保障范围"}',
    )  # fmt: skip
    line = one_error_line(result)
    assert f"'reject' on case {case.number} was refused" in line or "can't fire" in line
    assert eng.get_case(case.id).version == case.version


def test_invalid_data_names_every_problem_on_the_one_line(desk: Any) -> None:
    url, eng, case = desk
    line = one_error_line(withdraw(url, case.number, '{"reason": "", "extra": 1}'))
    assert "InvalidData" in line and "reason" in line and "extra" in line
    assert eng.get_case(case.id).version == case.version


def test_usage_errors_are_one_line_with_where_to_read_the_usage(tmp_path: Path) -> None:
    line = one_error_line(invoke("fire", "1", "withdraw"))
    assert line == "error: Missing option '--actor' (see `main fire --help`)"
    assert "No such command 'nosuch'" in one_error_line(invoke("nosuch"))
    assert "No such option '--bogus'" in one_error_line(invoke("--bogus", "cases", "list"))
    assert "Usage:" in invoke("--help").stdout  # help is not an error


def _boom(*_args: Any, **_kwargs: Any) -> Any:
    raise RuntimeError("the disk said no\nsecond line with [SQL: SELECT ...]")


def test_an_unexpected_error_is_named_in_one_line_that_points_to_debug(
    desk: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, *_ = desk
    monkeypatch.setattr(Engine, "find_cases", _boom)
    line = one_error_line(invoke("cases", "list", "--url", url))
    assert line.startswith("error: RuntimeError: the disk said no — not an error baoflow")
    assert "--debug" in line and "SQL" not in line


@pytest.mark.parametrize("how", ["--debug", "BAOFLOW_DEBUG=1"])
def test_debug_prints_the_traceback_then_the_line(
    desk: Any, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    url, *_ = desk
    monkeypatch.setattr(Engine, "find_cases", _boom)
    if how == "--debug":
        result = invoke("--debug", "cases", "list", "--url", url)
    else:
        result = CliRunner().invoke(
            main, ["cases", "list", "--url", url], env={"BAOFLOW_DEBUG": "1"}
        )
    assert result.exit_code == 2
    assert result.stderr.startswith("Traceback (most recent call last):")
    assert "in _boom" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("error: RuntimeError: the disk said no")


def test_what_an_error_says_reaches_the_terminal_escaped(
    desk: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, *_ = desk

    def hostile(*_args: Any, **_kwargs: Any) -> Any:
        raise BaoflowError("no case '\x1b[2J\u202e' [bold]here[/]")

    monkeypatch.setattr(Engine, "find_cases", hostile)
    line = one_error_line(invoke("cases", "list", "--url", url))
    assert line == "error: BaoflowError: no case '\\x1b[2J\\u202e' [bold]here[/]"


# --- a database file it may not write ---------------------------------------------------
def test_fire_on_a_database_file_it_may_not_write_says_so_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'desk.db'}"
    eng = open_engine(url)
    eng.policies.add(POLICIES)  # type: ignore[attr-defined]
    case = eng.open_case("claim", report(), AGENT).case
    eng.close()
    (tmp_path / "desk.db").chmod(0o444)
    if os.geteuid() == 0:
        # Root may write any file; SQLite then opens it read-only as it opens a file its
        # user may not write, for the engine's connections and the hot path's alike.
        connect = sqlite3.connect

        def read_only(database: str, *args: Any, **kwargs: Any) -> sqlite3.Connection:
            kwargs.pop("uri", None)
            made: sqlite3.Connection = connect(
                f"file:{database}?mode=ro", *args, uri=True, **kwargs
            )
            return made

        monkeypatch.setattr(sqlite3, "connect", read_only)
        monkeypatch.setattr(sqlite3.dbapi2, "connect", read_only)
    line = one_error_line(withdraw(url, case.number, '{"reason": "客户撤回"}'))
    # The store says so (engine/store/faults.py): a StorageError, not a traceback.
    assert line.startswith("error: StorageError: the SQLite database ")
    assert "read-only" in line and line.endswith("or give a URL without mode=ro.")
    monkeypatch.undo()
    (tmp_path / "desk.db").chmod(0o644)
    eng = open_engine(url)
    assert eng.get_case(case.id).version == case.version
    eng.close()


# --- read commands never create ---------------------------------------------------------
#: Every command with --url, and what else it needs to get as far as opening the database.
ARGS: dict[str, list[str]] = {
    "db rebuild-keys": [],
    "db backup": ["copy.db"],
    "export": [],
    "import": ["<csv>"],
    "cases list": [],
    "cases show": ["1"],
    "fire": ["1", "withdraw", "--actor", "h01"],
    "worker": [],
    "deadlines list": [],
    "deadlines recompute": [],
    "breaches": [],
    "workflows list": [],
    "workflows show": ["claim"],
    "calendar import": ["2027.toml"],
    "calendar show": ["2026"],
    "calendar status": [],
    "sla report": [],
    "policies import": ["<csv>"],
    "outbox list": [],
    "outbox retry": ["1"],
    "outbox deliver": ["--notifications", "notifications.toml"],
    "notify preview": ["claim_accepted", "--case", "1"],
    "inbox": ["h01"],
    "inbound list": [],
    "inbound resolve": ["1", "--dismiss", "spam", "--by", "s01"],
    "tokens add": ["desk-app"],
    "tokens list": [],
    "tokens revoke": ["1"],
    "users add": ["s01", "--name", "陈刚", "--password-stdin"],
    "users list": [],
    "users disable": ["s01"],
    "serve": [],
    "diagram": ["claim"],
    "audit verify": [],
    "audit seal": [],
    "audit anchors": [],
}


def commands_with_a_url(group: click.Group, prefix: str = "") -> set[str]:
    found: set[str] = set()
    for name, command in group.commands.items():
        path = f"{prefix}{name}"
        if isinstance(command, click.Group):
            found |= commands_with_a_url(command, f"{path} ")
        elif any(p.name == "url" for p in command.params):
            found.add(path)
    return found


def test_every_command_with_a_url_is_checked_below() -> None:
    assert commands_with_a_url(main) == set(ARGS) | {"db upgrade"}


@pytest.mark.parametrize("command", sorted(ARGS))
def test_a_sqlite_file_that_does_not_exist_is_an_error_and_is_not_made(
    command: str, tmp_path: Path
) -> None:
    missing = tmp_path / "nope.db"
    csv = tmp_path / "p.csv"
    csv.write_text("number\n", encoding="utf-8")
    args = [str(csv) if a == "<csv>" else a for a in ARGS[command]]
    result = invoke(*command.split(), *args, "--url", f"sqlite:///{missing}", input="pw\n")
    line = one_error_line(result)
    assert line == (
        f"error: StorageError: the database file '{missing}' does not exist: check the path, "
        f"or create it with `baoflow db upgrade --url sqlite:///{missing}`"
    )
    assert not missing.exists()


def test_db_upgrade_makes_the_file_the_others_then_read(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    assert invoke("db", "upgrade", "--url", url).exit_code == 0
    listed = invoke("cases", "list", "--url", url)
    assert listed.exit_code == 0 and "none of 0 case(s)" in listed.stdout


def test_the_library_still_makes_a_new_file_unless_told_not_to(tmp_path: Path) -> None:
    open_engine(f"sqlite:///{tmp_path / 'made.db'}").close()
    assert (tmp_path / "made.db").exists()
    with pytest.raises(BaoflowError, match="does not exist"):
        open_engine(f"sqlite:///{tmp_path / 'not.db'}", create=False)
    assert not (tmp_path / "not.db").exists()


def test_a_url_that_is_no_database_url_says_what_one_looks_like() -> None:
    for command in (["cases", "list"], ["db", "upgrade"]):
        line = one_error_line(invoke(*command, "--url", "nonsense"))
        assert line == (
            "error: StorageError: 'nonsense' is not a database URL: give sqlite:///FILE or "
            "postgresql://USER@HOST/DATABASE"
        )


def test_a_database_that_cannot_be_reached_is_one_line_without_the_password() -> None:
    # Port 1 on loopback: nothing listens, the connection is refused at once.
    line = one_error_line(
        invoke("cases", "list", "--url", "postgresql://desk:s3cret@127.0.0.1:1/x")
    )
    assert line.startswith("error: StorageUnavailable: cannot connect to the database at ")
    assert "desk:***@127.0.0.1:1/x" in line and "reachable at 127.0.0.1:1?" in line
    assert "s3cret" not in line


def test_an_error_quoting_a_huge_input_is_still_a_line_to_read(desk: Any) -> None:
    url, *_ = desk
    # An unknown workflow's name is quoted back (an over-long filter now finds nothing).
    line = one_error_line(invoke("workflows", "show", "x" * 100_000, "--url", url))
    assert line.startswith("error: UnknownWorkflow:") and line.endswith("…")
    assert len(line) <= len("error: ") + 4_001
