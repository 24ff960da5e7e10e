"""The floor the engine's benchmarks measure against: the write statements the engine
sent, recorded once, untimed, then replayed with plain ``sqlite3`` or ``psycopg`` and
nothing else (issue #14). Used by ``bench/claim_path.py`` and ``bench/compare.py``.

- :func:`record` runs a drive of engine calls once, keeping for each call every write
  it sent — on SQLAlchemy's connection and through the hot path's shared statements
  alike — with its parameters as bound.
- :class:`Sqlite` and :class:`Postgres` make a fresh database per variant per round
  (file copies of a template; ``CREATE DATABASE … TEMPLATE``), replay a recording in
  one transaction per call (``one_trip``: on PostgreSQL as one pipeline, one round trip
  per call), and dump the engine's tables so a round can check that the floor wrote
  the engine's rows, row for row.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from baoflow.engine import Engine
from baoflow.engine.store import hot as hot_path
from sqlalchemy import event as sa_event

#: What the recorder keeps: writes (WITH: PostgreSQL's version-checked update, sent as
#: one statement that fails when it matched no row).
WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "WITH")

#: One call's write statements: (sql, parameters, executemany?).
Statements = list[tuple[str, Any, bool]]
#: A drive's calls in order: (label, the call's writes).
Recording = list[tuple[str, Statements]]
#: A drive of engine calls: it calls ``on_call(label)`` before each call.
Drive = Callable[[Callable[[str], None]], Any]

#: The engine's tables a floor must end up equal to, each with its order.
TABLES = {
    "cases": "id",
    "history": "case_id, seq",
    "case_deadlines": "case_id, rule, armed_seq",
    "timers": "id",
    "outbox": "id",
    "case_keys": "case_id, key",
}


def _is_write(sql: str) -> bool:
    return sql.lstrip()[:7].upper().startswith(WRITES)


def record(eng: Engine, drive: Drive) -> Recording:
    """Run ``drive`` once on ``eng``, untimed, keeping every write statement of every
    call (the caller opens and closes the engine)."""
    calls: Recording = []

    def writes() -> Statements:
        return calls[-1][1]

    def core(_c: Any, _cur: Any, sql: str, params: Any, _ctx: Any, many: bool) -> None:
        if _is_write(sql):
            writes().append((sql, params, many))

    # Every shared statement, on either transaction kind, goes out through _send.
    original = hot_path.HotStatements._send

    def send(self: Any, cur: Any, sql: str, params: Any, *, many: bool = False) -> Any:
        params = list(params) if many else params
        if _is_write(sql):
            writes().append((self._d.sql(sql), params, many))
        return original(self, cur, sql, params, many=many)

    sa_event.listen(eng.store.engine, "before_cursor_execute", core)
    hot_path.HotStatements._send = send  # type: ignore[method-assign]
    try:
        drive(lambda label: calls.append((label, [])))
    finally:
        hot_path.HotStatements._send = original  # type: ignore[method-assign]
        sa_event.remove(eng.store.engine, "before_cursor_execute", core)
    return calls


class Sqlite:
    """Databases as files copied from a template."""

    name = "sqlite"

    def __init__(self, work: Path) -> None:
        self.work = work

    def url(self, name: str) -> str:
        return f"sqlite:///{self.work / name}.db"

    def template(self, setup: Callable[[str], None]) -> None:
        """Make the template: ``setup(url)`` migrates it and adds what every run needs."""
        setup(self.url("template"))
        with sqlite3.connect(self.work / "template.db") as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def fresh(self, name: str) -> str:
        shutil.copy(self.work / "template.db", self.work / f"{name}.db")
        return self.url(name)

    def blank(self, name: str) -> str:
        """An empty database, for code that makes its own schema."""
        return self.url(name)

    def drop(self, name: str) -> None:
        for suffix in (".db", ".db-wal", ".db-shm"):
            (self.work / f"{name}{suffix}").unlink(missing_ok=True)

    def close(self) -> None:
        """Nothing to drop: the files go with their directory."""

    def replay(self, name: str, calls: Recording, *, one_trip: bool) -> dict[str, float]:
        """The floor: each call's writes in one transaction, nothing else."""
        conn = sqlite3.connect(self.work / f"{name}.db", isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        cur = conn.cursor()
        spent: dict[str, float] = defaultdict(float)
        perf = time.perf_counter
        for label, statements in calls:
            t = perf()
            _replay_one(cur, statements, begin="BEGIN IMMEDIATE")
            spent[label] += perf() - t
        conn.close()
        return spent

    def dump(self, name: str) -> dict[str, list[Any]]:
        with sqlite3.connect(self.work / f"{name}.db") as conn:
            return {
                table: conn.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall()
                for table, order in TABLES.items()
            }


class Postgres:
    """Databases made with CREATE DATABASE … TEMPLATE on the server of ``url``, each
    named ``{prefix}_{pid}_{name}`` and dropped again (the server is shared)."""

    name = "postgresql"

    def __init__(self, url: str, prefix: str = "bench_claim") -> None:
        import psycopg
        from sqlalchemy.engine import make_url

        self.base = make_url(url)
        self.prefix = f"{prefix}_{os.getpid()}"
        self.admin = psycopg.connect(
            host=self.base.host or "127.0.0.1",
            port=self.base.port or 5432,
            user=self.base.username or "postgres",
            dbname=self.base.database or "postgres",
            autocommit=True,
        )
        self.made: list[str] = []

    def _db(self, name: str) -> str:
        return f"{self.prefix}_{name.replace('-', '_')}"

    def url(self, name: str) -> str:
        return self.base.set(database=self._db(name)).render_as_string(hide_password=False)

    def _connect(self, name: str) -> Any:
        import psycopg

        return psycopg.connect(self.url(name).replace("+psycopg", ""), autocommit=True)

    def template(self, setup: Callable[[str], None]) -> None:
        """Make the template: ``setup(url)`` migrates it and adds what every run needs."""
        self.admin.execute(f"CREATE DATABASE {self._db('template')}")
        self.made.append(self._db("template"))
        setup(self.url("template"))

    def fresh(self, name: str) -> str:
        db = self._db(name)
        self.admin.execute(f"CREATE DATABASE {db} TEMPLATE {self._db('template')}")
        self.made.append(db)
        return self.url(name)

    def blank(self, name: str) -> str:
        """An empty database, for code that makes its own schema."""
        db = self._db(name)
        self.admin.execute(f"CREATE DATABASE {db}")
        self.made.append(db)
        return self.url(name)

    def drop(self, name: str) -> None:
        db = self._db(name)
        self.admin.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        self.made.remove(db)

    def close(self) -> None:
        for db in list(self.made):
            self.admin.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        self.admin.close()

    def replay(self, name: str, calls: Recording, *, one_trip: bool) -> dict[str, float]:
        """The floor: each call's writes in one transaction, nothing else; ``one_trip``:
        sent as one pipeline (BEGIN, the writes, COMMIT: one round trip to the server)."""
        conn = self._connect(name)
        cur = conn.cursor()
        spent: dict[str, float] = defaultdict(float)
        perf = time.perf_counter
        for label, statements in calls:
            t = perf()
            if one_trip:
                with conn.pipeline():
                    _replay_one(cur, statements)
            else:
                _replay_one(cur, statements)
            spent[label] += perf() - t
        conn.close()
        return spent

    def dump(self, name: str) -> dict[str, list[Any]]:
        with self._connect(name) as conn:
            return {
                table: conn.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall()
                for table, order in TABLES.items()
            }


Backend = Sqlite | Postgres


def _replay_one(cur: Any, statements: Statements, begin: str = "BEGIN") -> None:
    cur.execute(begin)
    for sql, params, many in statements:
        if many:
            cur.executemany(sql, params)
        else:
            cur.execute(sql, params)
    cur.execute("COMMIT")
