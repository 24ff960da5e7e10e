"""The import contract of the layers (DESIGN.md §2, docs/architecture.md):

    faces (baoflow/: cli, demo; the HTTP API and dashboard to come)
      -> workflows, notifications, diagrams
        -> engine (its facade)
          -> engine.store

Each layer imports only the ones below it; the faces call the Engine facade, never
the store, so the CLI, the API and the dashboard can never disagree; and no two
engine modules import each other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
#: folder -> the package it installs as
PACKAGES = {
    "engine": "baoflow.engine",
    "workflows": "baoflow.workflows",
    "notifications": "baoflow.notifications",
    "diagrams": "baoflow.diagrams",
    "baoflow": "baoflow",
}
#: Every module and package in baoflow/ is a face (the CLI, the demo, the HTTP API, the
#: webhooks, the metrics, the dashboard), whatever is added there later.
FACES = tuple(
    sorted(
        f"baoflow.{p.stem}"
        for p in (ROOT / "baoflow").iterdir()
        if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").exists()
    )
)


def module_of(path: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    package = PACKAGES[parts[0]]
    rest = parts[1:]
    is_package = rest[-1:] == ["__init__"]
    if is_package:
        rest = rest[:-1]
    return ".".join([package, *rest]), is_package


def imports_of(path: Path, as_module: tuple[str, bool] | None = None) -> set[str]:
    """Every module ``path`` imports anywhere in its file (function bodies and
    ``TYPE_CHECKING`` blocks too), relative imports resolved."""
    name, is_package = as_module or module_of(path)
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
                if node.module is None:
                    found.update(f"{target}.{alias.name}" for alias in node.names)
                else:
                    found.add(target)
            else:
                found.add(node.module or "")
    return found


def sources(folder: str) -> list[Path]:
    return sorted(
        p for p in (ROOT / folder).rglob("*.py") if "migrations" not in p.relative_to(ROOT).parts
    )


ALL = [p for folder in PACKAGES for p in sources(folder)]


def under(module: str, *prefixes: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


@pytest.mark.parametrize("path", sources("engine"), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_engine_imports_no_layer_above_it(path: Path) -> None:
    above = [
        m
        for m in imports_of(path)
        if under(m, "baoflow.workflows", "baoflow.notifications", "baoflow.diagrams", *FACES)
        or m == "baoflow"
    ]
    assert above == [], f"{path.relative_to(ROOT)} imports {above}: the engine knows no layer above"


@pytest.mark.parametrize(
    "path",
    [p for folder in ("workflows", "notifications", "diagrams") for p in sources(folder)],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_the_middle_layers_import_no_face(path: Path) -> None:
    faces = [m for m in imports_of(path) if under(m, *FACES) or m == "baoflow"]
    assert faces == [], f"{path.relative_to(ROOT)} imports the faces: {faces}"


@pytest.mark.parametrize("path", sources("baoflow"), ids=lambda p: str(p.relative_to(ROOT)))
def test_a_face_calls_the_facade_and_never_the_store(path: Path) -> None:
    deep = [m for m in imports_of(path) if under(m, "baoflow.engine.store")]
    assert deep == [], f"{path.relative_to(ROOT)} imports {deep}: call Engine instead"


@pytest.mark.parametrize("path", sources("baoflow"), ids=lambda p: str(p.relative_to(ROOT)))
def test_a_face_never_reaches_through_the_engine_to_its_store(path: Path) -> None:
    """``eng.store`` is the engine's own: a face that needs something of it asks the
    facade (``Engine.backend``, ``Engine.database``, ``Engine.outbox``, ...)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    lines = sorted(
        n.lineno for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr == "store"
    )
    assert lines == [], f"{path.relative_to(ROOT)} reaches the store on lines {lines}"


@pytest.mark.parametrize("path", ALL, ids=lambda p: str(p.relative_to(ROOT)))
def test_nothing_imports_a_folder_by_its_bare_name(path: Path) -> None:
    """``import engine`` would load a second copy of the code beside baoflow.engine."""
    bare = [
        m
        for m in imports_of(path)
        if m.split(".")[0] in ("engine", "workflows", "notifications", "diagrams")
    ]
    assert bare == [], f"{path.relative_to(ROOT)} imports {bare}: use baoflow.{bare[0]}"


def test_no_two_engine_modules_import_each_other() -> None:
    graph = {module_of(p)[0]: imports_of(p) for p in sources("engine")}
    pairs = sorted(
        (a, b) for a, deps in graph.items() for b in deps if a < b and b in graph and a in graph[b]
    )
    assert pairs == [], f"modules that import each other: {pairs}"


def test_the_contract_sees_a_violation_when_there_is_one(tmp_path: Path) -> None:
    """The checker itself: an engine module importing a workflow or the faces, in any
    of the ways Python allows, is seen."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from ..workflows import claim\nfrom .store import Store\n"
        "def later():\n    import baoflow.cli\n    from baoflow import demo\n",
        encoding="utf-8",
    )
    found = imports_of(probe, ("baoflow.engine.probe", False))
    assert {"baoflow.workflows", "baoflow.engine.store", "baoflow.cli", "baoflow"} <= found


#: What only the store may know: its transaction classes, its connections, its dialects.
STORAGE_DETAILS = (
    "CoreTx",
    "HotTx",
    "PipelineTx",
    "HotStatements",
    "HotPath",
    "dialect_name",
    "Dialect",
)


#: The runtime's modules outside the store, and the deliverer: they work on the store's
#: interfaces (``Store``, the Protocols of engine/store/tx.py, the types of rows.py).
OUTSIDE_THE_STORE = [
    p for p in sources("engine") if "store" not in p.relative_to(ROOT).parts
] + sources("notifications")


@pytest.mark.parametrize("path", OUTSIDE_THE_STORE, ids=lambda p: str(p.relative_to(ROOT)))
def test_outside_the_store_no_module_imports_the_database(path: Path) -> None:
    """No SQLAlchemy, no driver, and none of the store's implementation modules: what a
    transaction returns is an engine type or a NamedTuple of ``rows.py``."""
    inner = ("baoflow.engine.store.core", "baoflow.engine.store.hot", "baoflow.engine.store.tables")
    deep = [m for m in imports_of(path) if under(m, "sqlalchemy", "sqlite3", "psycopg", *inner)]
    assert deep == [], f"{path.relative_to(ROOT)} imports {deep}: use the store's interfaces"


@pytest.mark.parametrize("path", OUTSIDE_THE_STORE, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_engine_outside_the_store_knows_no_backend(path: Path) -> None:
    """The runtime works on the store's Protocols (engine/store/tx.py): it never names a
    transaction class, a database dialect or a transaction's connection (``tx.conn``).
    ``Engine.backend`` — which database, for the faces — is the one reading of it."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    named = sorted(
        {
            n.id if isinstance(n, ast.Name) else n.attr
            for n in ast.walk(tree)
            if (isinstance(n, ast.Name) and n.id in STORAGE_DETAILS)
            or (isinstance(n, ast.Attribute) and n.attr in STORAGE_DETAILS)
            or (
                isinstance(n, ast.Attribute)
                and n.attr == "conn"
                and isinstance(n.value, ast.Name)
                and n.value.id == "tx"
            )
        }
    )
    if path.name == "runtime.py":  # the backend property
        named = [n for n in named if n != "dialect_name"]
    assert named == [], f"{path.relative_to(ROOT)} names {named}: use the store's Protocols"
