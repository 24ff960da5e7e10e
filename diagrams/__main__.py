"""``python -m baoflow.diagrams [FOLDER]``: write the static diagram of every installed
workflow, as ``NAME.mmd``, ``NAME.dot`` and ``NAME.svg``, into FOLDER (default: this
package's folder, ``diagrams/`` of the checkout). ``tests/test_diagrams.py`` fails when
the committed ones are stale, and names this command."""

from __future__ import annotations

import sys
from pathlib import Path

from baoflow.engine import discover_workflows

from . import static

SUFFIXES = {"mermaid": "mmd", "dot": "dot", "svg": "svg"}


def write_all(folder: Path) -> list[Path]:
    written = []
    for definition in discover_workflows():
        for fmt, suffix in SUFFIXES.items():
            drawn = static(definition, fmt)
            target = folder / f"{definition.name}.{suffix}"
            target.write_bytes(drawn.encode() if isinstance(drawn, str) else drawn)
            written.append(target)
    return written


if __name__ == "__main__":
    where = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent
    for path in write_all(where):
        print(path)
