"""``baoflow export``, ``import`` and ``db backup`` (docs/backups.md): a few lines each
over the Engine, what they print as the page shows it, every refusal one line and exit
status 2 with nothing written."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from baoflow.engine import SHANGHAI, ChineseOfficialCalendar, FakeClock, open_engine
from click.testing import CliRunner, Result

from baoflow.cli import main
from tests.conftest import AGENT, HANDLER, POLICIES, report

DOC = Path(__file__).parent.parent / "docs" / "backups.md"


def invoke(*args: str, **kwargs: Any) -> Result:
    return CliRunner().invoke(main, list(args), env={"COLUMNS": "200"}, **kwargs)


def failed(result: Result) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output)
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: ") and "Traceback" not in result.output
    return line


#: What may differ between a line the page shows and the line printed.
ROWS = r"\((?:\d+ \w+, )*\d+ \w+ rows\)"  # "(9 history, 3 outbox rows)"
HOLES = re.compile(
    rf"(?P<rows>{ROWS})|(?P<where>sqlite:///\S+|[\w./-]+\.(?:db|jsonl))|(?P<number>\d[\d,]*)"
)
SHAPES = {"rows": ROWS, "where": r"\S+", "number": r"\d[\d,]*"}


def as_the_page_shows(printed: str, prefix: str) -> None:
    """``printed`` is the line docs/backups.md shows after a command, but for its
    numbers, files and URLs."""
    shown = [
        line.removeprefix("# ")
        for line in DOC.read_text(encoding="utf-8").splitlines()
        if line.startswith(f"# {prefix}")
    ]
    assert len(shown) == 1, f"docs/backups.md shows no one line starting {prefix!r}"
    pattern, at = "", 0
    for hole in HOLES.finditer(shown[0]):
        pattern += re.escape(shown[0][at : hole.start()]) + SHAPES[str(hole.lastgroup)]
        at = hole.end()
    pattern += re.escape(shown[0][at:])
    assert re.fullmatch(pattern, printed.strip()), (printed, shown[0])


@pytest.fixture
def desk(tmp_path: Path) -> str:
    """A SQLite database with two claims, one verified."""
    url = f"sqlite:///{tmp_path / 'desk.db'}"
    clock = FakeClock(datetime(2026, 5, 6, 9, 0, tzinfo=SHANGHAI))
    eng = open_engine(url, clock=clock, calendar=ChineseOfficialCalendar())
    eng.policies.add(POLICIES)  # type: ignore[attr-defined]
    first = eng.open_case("claim", report(), AGENT, idempotency_key="k1").case
    eng.fire(first.id, "verify", HANDLER)
    eng.open_case("claim", report(incident={"time": "2026-05-05T08:00:00+08:00"}), AGENT)
    eng.close()
    return url


def empty(tmp_path: Path, name: str = "empty.db") -> str:
    url = f"sqlite:///{tmp_path / name}"
    assert invoke("db", "upgrade", "--url", url).exit_code == 0
    return url


def test_export_to_a_file_then_import_prints_how_many_cases_and_rows(
    desk: str, tmp_path: Path
) -> None:
    file = tmp_path / "cases.jsonl"
    exported = invoke("export", "--url", desk, "--to", str(file))
    assert exported.exit_code == 0, exported.output
    assert exported.stdout == f"exported 2 case(s) to {file}\n"
    as_the_page_shows(exported.stdout, "exported")
    assert not (tmp_path / "cases.jsonl.partial").exists()
    target = empty(tmp_path)
    imported = invoke("import", str(file), "--url", target)
    assert imported.exit_code == 0, imported.output
    assert imported.stdout == (
        f"imported 2 case(s) from {file} (5 history, 1 idempotency_keys, 2 outbox rows)\n"
    )
    as_the_page_shows(imported.stdout, "imported")
    again = invoke("export", "--url", target)
    assert again.stdout.splitlines()[1:] == file.read_text(encoding="utf-8").splitlines()[1:]


def test_export_writes_to_standard_output_and_counts_on_standard_error(desk: str) -> None:
    result = invoke("export", "--url", desk, "--case", "LP-20260506-000002", "--case", "1")
    assert result.exit_code == 0, result.output
    header, *cases = (json.loads(line) for line in result.stdout.splitlines())
    assert header["format"] == "baoflow-cases"
    assert [c["case"]["number"] for c in cases] == ["LP-20260506-000001", "LP-20260506-000002"]
    assert result.stderr == "exported 2 case(s)\n"


def test_import_reads_standard_input(desk: str, tmp_path: Path) -> None:
    lines = invoke("export", "--url", desk).stdout
    result = invoke("import", "-", "--url", empty(tmp_path), input=lines)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("imported 2 case(s) from <stdin>")


def test_an_export_of_a_case_there_is_not_is_refused_and_writes_no_file(
    desk: str, tmp_path: Path
) -> None:
    file = tmp_path / "out.jsonl"
    line = failed(
        invoke("export", "--url", desk, "--case", "LP-20260506-000009", "--to", str(file))
    )
    assert line.startswith("error: CaseNotFound: no case 'LP-20260506-000009'")
    assert not file.exists() and not (tmp_path / "out.jsonl.partial").exists()


def test_an_import_of_cases_that_exist_is_one_line_and_imports_nothing(
    desk: str, tmp_path: Path
) -> None:
    file = tmp_path / "cases.jsonl"
    invoke("export", "--url", desk, "--to", str(file))
    line = failed(invoke("import", str(file), "--url", desk))
    assert line == (
        "error: ImportRefused: 2 case(s) of the file are in this database already: "
        "LP-20260506-000001, LP-20260506-000002; nothing was imported. Import only the "
        "others (export them with `baoflow export --case N` for each), or import into an "
        "empty database"
    )


def test_an_import_of_a_malformed_line_names_it(desk: str, tmp_path: Path) -> None:
    lines = invoke("export", "--url", desk).stdout.splitlines()
    lines[2] = lines[2].replace('"seq":1', '"seq":"one"', 1)
    file = tmp_path / "bad.jsonl"
    file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    target = empty(tmp_path)
    line = failed(invoke("import", str(file), "--url", target))
    assert line == "error: ImportRefused: line 3: history[0].seq is 'one': it is not an integer"
    listed = invoke("cases", "list", "--url", target)
    assert "none of 0 case(s)" in listed.stdout


def test_an_import_of_bytes_that_are_not_utf8_says_which_line(tmp_path: Path, desk: str) -> None:
    lines = invoke("export", "--url", desk).stdout.encode().splitlines()
    file = tmp_path / "latin.jsonl"
    file.write_bytes(b"\n".join([*lines[:2], b'{"case": "\xe9"}']) + b"\n")
    line = failed(invoke("import", str(file), "--url", empty(tmp_path)))
    assert line.startswith(f"error: line 3 of {file} is not UTF-8 text")


def test_db_backup_copies_the_file_and_says_so(desk: str, tmp_path: Path) -> None:
    copy = tmp_path / "backups" / "desk-2026-05-06.db"
    copy.parent.mkdir()
    result = invoke("db", "backup", str(copy), "--url", desk)
    assert result.exit_code == 0, result.output
    as_the_page_shows(result.stdout, "backed up")
    assert result.stdout.endswith(f"({copy.stat().st_size:,} bytes, integrity ok)\n")
    listed = invoke("cases", "list", "--url", f"sqlite:///{copy}")
    assert "LP-20260506-000001" in listed.stdout and "LP-20260506-000002" in listed.stdout
    line = failed(invoke("db", "backup", str(copy), "--url", desk))
    assert "exists already: a backup never overwrites a file" in line


@pytest.mark.postgres
def test_db_backup_of_postgresql_says_to_use_pg_dump(pg_only_url: str, tmp_path: Path) -> None:
    open_engine(pg_only_url).close()
    line = failed(invoke("db", "backup", str(tmp_path / "copy.db"), "--url", pg_only_url))
    assert line.startswith("error: BackupRefused: `db backup` copies SQLite files;")
    assert "pg_dump -Fc --file baoflow.dump URL" in line and "docs/backups.md" in line
    assert not (tmp_path / "copy.db").exists()
