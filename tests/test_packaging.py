"""What `pip install .` puts into site-packages: one package, ``baoflow``, with its data.

The folders the user asked for (engine/, workflows/, notifications/, diagrams/) are
installed as subpackages of ``baoflow``: ``diagrams``, ``workflows`` and
``notifications`` are other projects' names on PyPI (docs/architecture.md).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of the work tree's files as git sees them: built from a copy, so no
    stale build/ of an earlier build can slip into it."""
    out = tmp_path_factory.mktemp("wheel")
    tree = tmp_path_factory.mktemp("tree")
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    for name in listed:
        if (ROOT / name).is_file():
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, tree / name)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(out),
            str(tree),
        ],
        check=True,
        capture_output=True,
    )
    (found,) = out.glob("baoflow-*.whl")
    return found


def test_the_wheel_holds_one_top_level_package_and_its_metadata(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/", 1)[0] for n in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"baoflow"}
    for needed in (
        "baoflow/__init__.py",
        "baoflow/cli.py",
        "baoflow/engine/__init__.py",
        "baoflow/engine/store/migrations/env.py",
        "baoflow/engine/store/migrations/script.py.mako",
        "baoflow/engine/store/migrations/versions/0010_calendar_arrangements.py",
        "baoflow/workflows/claim.toml",
        "baoflow/workflows/claim_materials.toml",
        "baoflow/notifications/templates/claim_accepted.zh-CN.txt.j2",
        "baoflow/diagrams/py.typed",
        "baoflow/engine/py.typed",
    ):
        assert needed in names, needed
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "baoflow = baoflow.cli:main" in text
    assert "claim = baoflow.workflows.claim:build" in text


def test_a_fresh_venv_gets_only_baoflow_in_site_packages(wheel: Path, tmp_path: Path) -> None:
    env = tmp_path / "venv"
    venv.create(env, with_pip=True)
    (site,) = (env / "lib").glob("python3*/site-packages")
    before = {p.name for p in site.iterdir()}
    subprocess.run(
        [str(env / "bin" / "pip"), "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
    )
    added = {p.name for p in site.iterdir()} - before
    assert added == {"baoflow", "baoflow-0.1.0.dist-info"}, added
