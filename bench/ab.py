"""Two revisions of baoflow side by side: one benchmark command run on each, alternating,
in one session — how "no regression" is measured on a machine whose speed moves by a
third from hour to hour.

Run from the project root (the venv's packages serve both trees)::

    .venv/bin/python -m bench.ab d414f07 137ba8b --pairs 7 -- bench.claim_path --claims 150 --rounds 2

Each revision is checked out (``git worktree``) into a temporary folder and made
importable as ``baoflow`` through a tree of links, as ``make lint`` does for mypy; then
``python -m MODULE ARGS`` runs in that folder — that revision's own benchmark module and
engine (a relative path among ARGS is taken from there) —
once per pair, the order of the two reversed every other pair. Each run's last
``whole path`` line (or its last line) is printed, labelled with its revision.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

FOLDERS = ("engine", "workflows", "notifications", "diagrams")


def link_tree(checkout: Path, into: Path) -> None:
    """``into/baoflow`` as the package the editable install would make of ``checkout``."""
    package = into / "baoflow"
    package.mkdir(parents=True)
    for item in (checkout / "baoflow").iterdir():
        (package / item.name).symlink_to(item)
    for folder in FOLDERS:
        (package / folder).symlink_to(checkout / folder)
    for folder in ("bench", "tests"):
        (into / folder).symlink_to(checkout / folder)


def run(links: Path, command: list[str]) -> str:
    env = {**os.environ, "PYTHONPATH": str(links)}
    out = subprocess.run(
        [sys.executable, "-m", *command],
        env=env,
        cwd=links,  # python -m puts the working folder first on the path
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    found = [line for line in out if "whole path" in line]
    return (found or out or [""])[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("first")
    parser.add_argument("second")
    parser.add_argument("--pairs", type=int, default=5)
    argv = sys.argv[1:]
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        parser.error("say what to run after --: MODULE [ARGS]")
    cut = argv.index("--")
    args, command = parser.parse_args(argv[:cut]), argv[cut + 1 :]
    revisions = [args.first, args.second]
    with tempfile.TemporaryDirectory() as tmp:
        trees = {}
        for i, revision in enumerate(revisions):
            checkout = Path(tmp) / f"tree{i}"
            subprocess.run(
                ["git", "worktree", "add", "-q", "--detach", str(checkout), revision], check=True
            )
            link_tree(checkout, Path(tmp) / f"links{i}")
            trees[revision] = (checkout, Path(tmp) / f"links{i}")
        try:
            for pair in range(args.pairs):
                for revision in revisions if pair % 2 == 0 else revisions[::-1]:
                    print(f"{revision}: {run(trees[revision][1], command)}", flush=True)
        finally:
            for checkout, _ in trees.values():
                subprocess.run(["git", "worktree", "remove", "--force", str(checkout)], check=True)


if __name__ == "__main__":
    main()
