"""``python -m baoflow.api > docs/openapi.json``: print the API's OpenAPI document.

The document does not depend on a database's content; it is made on a throwaway one.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from baoflow.engine import open_engine

from .app import create_app


def document() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        eng = open_engine(f"sqlite:///{Path(folder) / 'openapi.db'}")
        try:
            return create_app(eng).openapi()
        finally:
            eng.close()


def text() -> str:
    return json.dumps(document(), ensure_ascii=False, indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    sys.stdout.write(text())
