"""The only place SQL lives: connections, transactions, queries, migrations.

``Store.write()`` / ``read()`` give a ``CoreTx`` (SQLAlchemy Core, every backend);
``fire_transaction()`` gives the plain-sqlite3 hot path on SQLite (``sqlite_fast``)
and Core elsewhere. No ORM: DESIGN.md §6 measured it at a fifth of Core.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from ..errors import StorageError
from ..policies import Policy
from .core import CoreTx, policy_from_row
from .sqlite_fast import SqliteFastPath
from .tx import Tx

__all__ = ["CoreTx", "IntegrityViolation", "Store", "Tx", "normalise_url"]

_MIGRATIONS = Path(__file__).parent / "migrations"


def json_dumps(value: Any) -> str:
    """The one JSON encoding of the store (both paths): UTF-8 text, Chinese unescaped.

    orjson, because encoding the case data was the largest Python cost of a
    transition (~11 µs with the standard library, ~1 µs with orjson).
    """
    return orjson.dumps(value, default=_json_default).decode()


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def normalise_url(url: str) -> str:
    """Make plain ``postgresql://`` URLs use psycopg 3, the driver we install."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _missing_driver(dialect: str, exc: ImportError) -> str:
    """What to do about a database driver that cannot be imported."""
    if dialect != "postgresql":
        return f"the database driver for {dialect} cannot be imported ({exc}); install it"
    if isinstance(exc, ModuleNotFoundError) and (exc.name or "").split(".")[0] == "psycopg":
        return (
            "the PostgreSQL driver is not installed; install it with "
            "pip install 'baoflow[postgres]'"
        )
    # Installed but broken (e.g. no libpq for its pure-Python build): say what failed.
    return (
        f"the PostgreSQL driver cannot be imported ({exc}); reinstall it with "
        "pip install --force-reinstall 'baoflow[postgres]'"
    )


class Store:
    """Connections, the transaction boundary and every query the engine runs."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = normalise_url(url)
        parsed = sa.engine.make_url(self.url)
        self.dialect_name = parsed.get_backend_name()
        if self.dialect_name == "sqlite" and parsed.database in (None, "", ":memory:"):
            raise StorageError(
                f"{url!r} is an in-memory SQLite database, which each of the engine's "
                "connections would see empty; give a file, e.g. sqlite:///baoflow.db "
                "(in tests, a file under tmp_path)"
            )
        kwargs: dict[str, Any] = {
            "echo": echo,
            "json_serializer": json_dumps,
            "json_deserializer": orjson.loads,
        }
        if self.dialect_name == "sqlite":
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
        else:
            kwargs["pool_pre_ping"] = True
        try:
            self.engine: Engine = sa.create_engine(self.url, **kwargs)
        except ImportError as exc:  # the dialect imports its DBAPI driver here
            raise StorageError(_missing_driver(self.dialect_name, exc)) from exc
        self._pinned = threading.local()
        self._fast: SqliteFastPath | None = None
        if self.dialect_name == "sqlite":
            _sqlite_setup(self.engine)
            self._fast = SqliteFastPath(parsed.database or "", json_dumps)

    # --- transactions -------------------------------------------------------------
    @contextmanager
    def write(self) -> Iterator[CoreTx]:
        """One transaction for one operation: all of it commits, or none of it.

        On SQLite the transaction starts with ``BEGIN IMMEDIATE`` so writers queue on
        the busy timeout instead of failing on a stale snapshot. Inside :meth:`pinned`
        the transaction runs on the pinned connection.
        """
        conn = getattr(self._pinned, "conn", None)
        if conn is not None:
            with conn.begin():
                yield CoreTx(conn)
            return
        with self._write_connection() as conn:
            yield CoreTx(conn)

    @contextmanager
    def pinned(self) -> Iterator[None]:
        """Run this thread's :meth:`write` transactions on one connection until the block
        ends: a loop of many short transactions (draining timers) then checks out and
        pings a connection once, not once per transaction."""
        if getattr(self._pinned, "conn", None) is not None:
            yield  # already pinned: the outer block owns the connection
            return
        with self.engine.connect().execution_options(baoflow_write=True) as conn:
            self._pinned.conn = conn
            try:
                yield
            finally:
                self._pinned.conn = None

    @contextmanager
    def read(self) -> Iterator[CoreTx]:
        with self.engine.connect() as conn, conn.begin():
            yield CoreTx(conn)

    def fire_transaction(self) -> AbstractContextManager[Tx]:
        """The transaction ``fire()`` runs in: on SQLite the raw hot path, else Core."""
        return self._fast.transaction() if self._fast is not None else self.write()

    def policy(self, number: str) -> Policy | None:
        """The policy with this number, or None."""
        if self._fast is not None:
            return self._fast.policy(number)
        with self.read() as tx:
            row = tx.policy(number)
        return None if row is None else policy_from_row(row._mapping)

    @contextmanager
    def _write_connection(self) -> Iterator[Connection]:
        with self.engine.connect().execution_options(baoflow_write=True) as conn, conn.begin():
            yield conn

    def dispose(self) -> None:
        if self._fast is not None:
            self._fast.close()
        self.engine.dispose()

    # --- migrations ---------------------------------------------------------------
    def _alembic_config(self, conn: Connection) -> Any:
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(_MIGRATIONS))
        cfg.attributes["connection"] = conn
        return cfg

    def upgrade(self, revision: str = "head") -> None:
        """Bring the schema up to ``revision`` (``baoflow db upgrade``)."""
        from alembic import command

        with self._write_connection() as conn:
            command.upgrade(self._alembic_config(conn), revision)

    def current_revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def head_revision(self) -> str | None:
        from alembic.script import ScriptDirectory

        with self.engine.connect() as conn:
            return ScriptDirectory.from_config(self._alembic_config(conn)).get_current_head()

    def require_current_schema(self) -> None:
        current, head = self.current_revision(), self.head_revision()
        if current != head:
            raise StorageError(
                f"the database at {self.engine.url.render_as_string(hide_password=True)} is at "
                f"schema revision {current or '(empty)'}, the code needs {head}; run "
                "`baoflow db upgrade --url URL` (or open_engine(..., migrate=True))."
            )


#: What a unique-key race raises, on either path.
IntegrityViolation = (IntegrityError, sqlite3.IntegrityError)


def _sqlite_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event decide how transactions start (pysqlite's
        # own implicit BEGIN would defeat BEGIN IMMEDIATE).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("baoflow_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
