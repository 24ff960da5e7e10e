"""The only place SQL lives: connections, transactions, queries, migrations.

``fire_transaction()`` gives a ``Tx`` (``hot.HotTx``): a case operation's statements,
written once for both databases, on a DBAPI connection of its own (``hot.py``).
``write()`` / ``read()`` give a ``StoreTx`` (``core.CoreTx``): the same statements on a
SQLAlchemy connection, and the cold queries in SQLAlchemy Core. The engine sees only the
interfaces (``tx.py``). No ORM: DESIGN.md §6 measured it at a fifth of Core.

A database that is down, or a connection lost, leaves every transaction of either kind
as ``StorageUnavailable`` (``faults.py`` decides, at these boundaries only).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from ..errors import BackupRefused, StorageError
from ..policies import Policy
from .core import CoreTx
from .faults import Site
from .hot import HotPath, connections, dialect, json_dumps, sqlite_setup
from .tx import (
    AccountTx,
    BackupTx,
    CalendarTx,
    DeskTx,
    InboundTx,
    OutboxTx,
    PolicyTx,
    ReportTx,
    StoreTx,
    TimerTx,
    Tx,
)

__all__ = [
    "AccountTx",
    "BackupTx",
    "CalendarTx",
    "CoreTx",
    "DeskTx",
    "InboundTx",
    "IntegrityViolation",
    "OutboxTx",
    "PolicyTx",
    "ReportTx",
    "Store",
    "StoreTx",
    "TimerTx",
    "Tx",
    "normalise_url",
]

_MIGRATIONS = Path(__file__).parent / "migrations"


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

    def __init__(self, url: str, *, echo: bool = False, create: bool = True) -> None:
        """``create=False``: a SQLite file that does not exist is a :class:`StorageError`,
        not a new, empty database."""
        self.url = normalise_url(url)
        try:
            parsed = sa.engine.make_url(self.url)
        except sa.exc.ArgumentError as exc:
            raise StorageError(
                f"{url!r} is not a database URL: give sqlite:///FILE or "
                "postgresql://USER@HOST/DATABASE"
            ) from exc
        if not create:
            _require_sqlite_file(parsed, url)
        self.dialect_name = parsed.get_backend_name()
        #: where the database is, as its errors say it (the password hidden)
        self.site = Site.of(parsed)
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
        if self.dialect_name == "sqlite":
            _sqlite_setup(self.engine)
        # The hot path connects as SQLAlchemy would (the same arguments, psycopg's
        # adapters with the store's JSON encoding), on connections of its own.
        d = dialect(self.dialect_name)
        args, connect_args = self.engine.dialect.create_connect_args(parsed)
        path = str(args[0]) if args else parsed.database or ""  # SQLite: file:...?mode=ro too
        self._hot: HotPath | None = HotPath(
            d, connections(d, connect_args, path), json_dumps, self.site
        )

    @property
    def display_url(self) -> str:
        """The URL, its password hidden."""
        return self.site.url

    # --- transactions -------------------------------------------------------------
    @contextmanager
    def write(self) -> Iterator[StoreTx]:
        """One transaction for one operation: all of it commits, or none of it.

        On SQLite the transaction starts with ``BEGIN IMMEDIATE`` so writers queue on
        the busy timeout instead of failing on a stale snapshot. Inside :meth:`pinned`
        the transaction runs on the pinned connection.

        Raises:
            StorageUnavailable: the database cannot be reached, or the connection was
                lost (``applied`` None: while committing).
        """
        conn = getattr(self._pinned, "conn", None)
        committing = False
        try:
            if conn is not None:
                with conn.begin():
                    yield CoreTx(conn)
                    committing = True
                return
            with self._write_connection() as conn:
                yield CoreTx(conn)
                committing = True
        except Exception as exc:
            self._raise_fault(exc, committing=committing)
            raise

    @contextmanager
    def pinned(self) -> Iterator[None]:
        """Run this thread's :meth:`write` transactions on one connection until the block
        ends: a loop of many short transactions (draining timers) then checks out and
        pings a connection once, not once per transaction."""
        if getattr(self._pinned, "conn", None) is not None:
            yield  # already pinned: the outer block owns the connection
            return
        try:
            with self.engine.connect().execution_options(baoflow_write=True) as conn:
                self._pinned.conn = conn
                try:
                    yield
                finally:
                    self._pinned.conn = None
        except Exception as exc:
            self._raise_fault(exc)
            raise

    @contextmanager
    def read(self) -> Iterator[StoreTx]:
        try:
            with self.engine.connect() as conn, conn.begin():
                yield CoreTx(conn)
        except Exception as exc:
            self._raise_fault(exc)
            raise

    @contextmanager
    def snapshot(self) -> Iterator[StoreTx]:
        """A read transaction that sees the database as it was at its first read, however
        long it lasts and whatever is committed meanwhile (what an export reads): on
        PostgreSQL at REPEATABLE READ; a SQLite read transaction in WAL mode does so."""
        try:
            conn = self.engine.connect()
            if self.dialect_name == "postgresql":
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn, conn.begin():
                yield CoreTx(conn)
        except Exception as exc:
            self._raise_fault(exc)
            raise

    def backup(self, to: Path) -> tuple[int, str]:
        """Copy a SQLite database to the new file ``to`` with SQLite's online backup
        (``sqlite3.Connection.backup``): one read transaction, so the copy is the
        database as of one commit while writers go on (WAL lets them). The copy's size
        in bytes and what ``PRAGMA integrity_check`` says of it.

        Raises:
            BackupRefused: a PostgreSQL database (``pg_dump`` backs it up), ``to``
                exists (the database itself too), or its folder does not.
        """
        if self.dialect_name != "sqlite":
            raise BackupRefused(
                "postgresql",
                f"`db backup` copies SQLite files; {self.display_url.replace('+psycopg', '', 1)} is "
                "PostgreSQL: back "
                "it up with `pg_dump -Fc --file baoflow.dump URL` and restore it with "
                "`pg_restore --clean --if-exists --no-owner -d URL baoflow.dump` "
                "(docs/backups.md)",
            )
        if to.exists():
            raise BackupRefused(
                "exists",
                f"{str(to.absolute())!r} exists already: a backup never overwrites a file; "
                "give a new file name, or remove that one first",
            )
        if not to.absolute().parent.is_dir():
            raise BackupRefused(
                "folder", f"there is no folder {str(to.absolute().parent)!r} to write the backup in"
            )
        try:
            raw = self.engine.raw_connection()
            try:
                source: sqlite3.Connection = raw.driver_connection  # type: ignore[assignment]
                copy = sqlite3.connect(to)
                try:
                    source.backup(copy)  # all pages in one step: one read transaction
                    integrity = "; ".join(r[0] for r in copy.execute("PRAGMA integrity_check"))
                finally:
                    copy.close()
            finally:
                raw.close()
        except Exception as exc:
            to.unlink(missing_ok=True)
            self._raise_fault(exc)
            raise
        return to.stat().st_size, integrity

    def fire_transaction(self) -> AbstractContextManager[Tx]:
        """The transaction ``open_case()`` and ``fire()`` run in: the hot path's (``_hot``
        None — benchmarks and the contract test set it so — gives a Core one)."""
        return self._hot.transaction() if self._hot is not None else self.write()

    @property
    def locks_timer_batches(self) -> bool:
        """Whether due timers can be taken under row locks (``FOR UPDATE SKIP LOCKED``)
        in the transaction that fires them (``TimerTx.take_due_timer_batch``): on
        PostgreSQL. On SQLite a writer holds the database: timers are leased first."""
        return self.dialect_name == "postgresql"

    def policy(self, number: str) -> Policy | None:
        """The policy with this number, or None."""
        if self._hot is not None:
            return self._hot.policy(number)
        with self.read() as tx:
            return tx.policy(number)

    def _raise_fault(self, exc: Exception, *, committing: bool = False) -> None:
        """Raise the StorageError ``exc`` stands for (``faults.py``), if it stands for one."""
        fault = self.site.fault(exc, committing=committing)
        if fault is not None:
            raise fault from exc

    @contextmanager
    def _write_connection(self) -> Iterator[Connection]:
        with self.engine.connect().execution_options(baoflow_write=True) as conn, conn.begin():
            yield conn

    def dispose(self) -> None:
        if self._hot is not None:
            self._hot.close()
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

        try:
            with self._write_connection() as conn:
                command.upgrade(self._alembic_config(conn), revision)
        except Exception as exc:
            self._raise_fault(exc)
            raise

    def current_revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        try:
            with self.engine.connect() as conn:
                return MigrationContext.configure(conn).get_current_revision()
        except Exception as exc:
            self._raise_fault(exc)
            raise

    def head_revision(self) -> str | None:
        from alembic.script import ScriptDirectory

        try:
            with self.engine.connect() as conn:
                return ScriptDirectory.from_config(self._alembic_config(conn)).get_current_head()
        except Exception as exc:
            self._raise_fault(exc)
            raise

    def require_current_schema(self) -> None:
        current, head = self.current_revision(), self.head_revision()
        if current != head:
            raise StorageError(
                f"the database at {self.display_url} is at "
                f"schema revision {current or '(empty)'}, the code needs {head}; run "
                "`baoflow db upgrade --url URL` (or open_engine(..., migrate=True))."
            )


def _require_sqlite_file(parsed: sa.engine.URL, url: str) -> None:
    """Refuse a SQLite URL whose file does not exist (other databases pass)."""
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return  # a server's database, or in-memory SQLite (which Store refuses)
    name = parsed.database
    if parsed.query.get("uri") == "true" and name.startswith("file:"):
        name = name.removeprefix("file:")
    if not Path(name).exists():
        raise StorageError(
            f"the database file {str(Path(name).absolute())!r} does not exist: check the "
            f"path, or create it with `baoflow db upgrade --url {url}`"
        )


def _psycopg_integrity_error() -> type[Exception]:
    try:
        import psycopg
    except ImportError:  # SQLite only: the PostgreSQL driver is an extra
        return sqlite3.IntegrityError
    return psycopg.IntegrityError


#: What a unique-key race raises, on either transaction kind and either database.
IntegrityViolation = (IntegrityError, sqlite3.IntegrityError, _psycopg_integrity_error())


def _sqlite_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # SQLAlchemy's "begin" event below decides how transactions start.
        sqlite_setup(dbapi_conn)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("baoflow_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
