"""The examples in the README and docs run as written."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from baoflow.engine import StorageError, open_engine

ROOT = Path(__file__).parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.S)


@pytest.mark.parametrize("path", [p for p in DOCS if python_blocks(p)], ids=lambda p: p.name)
def test_the_python_examples_in_the_docs_run(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # examples write their SQLite files here
    shutil.copytree(ROOT / "docs" / "examples", tmp_path / "docs" / "examples")  # and read these
    namespace: dict[str, object] = {"__name__": "__doc_example__"}  # blocks build on each other
    for block in python_blocks(path):
        exec(compile(block, f"{path.name}:example", "exec"), namespace)


def test_in_memory_sqlite_is_refused_with_a_way_out() -> None:
    with pytest.raises(StorageError, match="give a file"):
        open_engine("sqlite:///:memory:")
