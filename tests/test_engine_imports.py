"""Inside the engine, imports run one way (DESIGN.md §2): the data types of a definition
sit below the checks of it, and the loader sits above both."""

from __future__ import annotations

import ast
from pathlib import Path

ENGINE = Path(__file__).parent.parent / "engine"


def engine_imports(module: str) -> set[str]:
    """The engine modules ``module`` imports anywhere in its file (inside functions and
    ``TYPE_CHECKING`` blocks too: a cycle hidden in a function is still a cycle)."""
    tree = ast.parse((ENGINE / f"{module}.py").read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("baoflow.engine."):
            found.add((node.module or "").split(".")[2])
    return found


def test_definitions_are_data_types_that_import_neither_the_checks_nor_the_loader() -> None:
    assert engine_imports("definitions").isdisjoint({"validation", "loading"})


def test_validation_checks_definitions_without_knowing_how_they_are_loaded() -> None:
    assert "definitions" in engine_imports("validation")
    assert "loading" not in engine_imports("validation")


def test_the_loader_is_the_one_module_that_joins_the_types_and_the_checks() -> None:
    assert {"definitions", "validation"} <= engine_imports("loading")
