"""A missing database driver names the extra to install (issue #11, item 4), instead of
a traceback from deep inside SQLAlchemy."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from baoflow.engine import StorageError, open_engine
from click.testing import CliRunner

from baoflow.cli import main

URL = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture
def no_psycopg(monkeypatch: pytest.MonkeyPatch) -> None:
    """psycopg as if it were not installed: importing it raises ModuleNotFoundError."""
    monkeypatch.setitem(sys.modules, "psycopg", None)


@pytest.mark.usefixtures("no_psycopg")
def test_opening_postgresql_without_its_driver_says_which_extra_to_install() -> None:
    with pytest.raises(StorageError) as exc:
        open_engine(URL)
    assert str(exc.value) == (
        "the PostgreSQL driver is not installed; install it with pip install 'baoflow[postgres]'"
    )
    assert isinstance(exc.value.__cause__, ModuleNotFoundError)


def test_a_driver_that_is_installed_but_broken_is_told_apart_from_a_missing_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # psycopg's pure-Python build without libpq fails on import like this.
    (tmp_path / "psycopg").mkdir()
    (tmp_path / "psycopg" / "__init__.py").write_text(
        "raise ImportError('no pq wrapper available')", encoding="utf-8"
    )
    for name in [n for n in sys.modules if n == "psycopg" or n.startswith("psycopg.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(StorageError) as exc:
        open_engine(URL)
    assert str(exc.value) == (
        "the PostgreSQL driver cannot be imported (no pq wrapper available); reinstall it "
        "with pip install --force-reinstall 'baoflow[postgres]'"
    )


@pytest.mark.usefixtures("no_psycopg")
def test_the_cli_without_the_driver_prints_one_error_not_a_traceback() -> None:
    result = CliRunner().invoke(main, ["cases", "list", "--url", URL])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert result.output.startswith(
        "error: StorageError: the PostgreSQL driver is not installed; install it with pip"
    )


@pytest.mark.usefixtures("no_psycopg")
def test_the_cli_without_the_driver_prints_the_extra_on_one_line() -> None:
    result = CliRunner().invoke(main, ["cases", "list", "--url", URL])
    assert result.exit_code == 2 and "Traceback" not in result.output
    (line,) = result.output.splitlines()
    assert "pip install 'baoflow[postgres]'" in line
