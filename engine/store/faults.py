"""What a failure of the database itself becomes, decided once for both transaction kinds.

The store's transaction boundaries (``Store.write`` / ``read`` / ``pinned``, and
``hot.HotPath`` / ``HotTx`` / ``PipelineTx``) hand every exception that leaves them to
:meth:`Site.fault`; it answers with the baoflow error the exception stands for, or None
for one that is not about the database being usable — a unique-key race
(``IntegrityViolation``, which the engine relies on), a serialization failure, a
conflict, a bad statement — which then propagates as it is.

:class:`~baoflow.engine.StorageUnavailable` (a retry later may succeed):

- PostgreSQL: a connection attempt that fails (refused, timed out, the server starting
  up or shutting down); a connection lost during the operation — the driver found it
  broken, SQLAlchemy invalidated it, or the server said so (SQLSTATE class 08,
  ``57P01`` admin shutdown, ``57P02`` crash shutdown, ``57P03`` cannot connect now).
  Lost while committing, the outcome is unknown (``applied=None``).
- SQLite: a file that cannot be opened (``SQLITE_CANTOPEN``: its directory is gone, a
  directory stands in its place, permissions), a disk or file-system error
  (``SQLITE_IOERR``), and a database still locked by another writer when the busy
  timeout (30 s) ran out (``SQLITE_BUSY`` / ``SQLITE_LOCKED``): the writer is busy,
  not wrong, and a retry later succeeds, so that is unavailable too.

A plain :class:`~baoflow.engine.StorageError` (retrying does not help until someone acts):
a read-only SQLite file (``SQLITE_READONLY``) and a full disk (``SQLITE_FULL``).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.engine import URL

from ..errors import BaoflowError, StorageError, StorageUnavailable, first_line

#: SQLSTATEs of a connection the server ended or would not start (besides class 08).
_SERVER_GONE = frozenset(("57P01", "57P02", "57P03"))
#: SQLite's primary result codes (the low byte of an extended code).
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY, _SQLITE_IOERR = 5, 6, 8, 10
_SQLITE_FULL, _SQLITE_CANTOPEN = 13, 14


@dataclass(frozen=True)
class Site:
    """Where a store's database is, as its errors tell it."""

    dialect: str
    #: the URL with its password hidden
    url: str
    #: ``host:port`` on PostgreSQL, the file's path on SQLite
    address: str

    @classmethod
    def of(cls, url: URL) -> Site:
        dialect = url.get_backend_name()
        if dialect == "sqlite":
            address = url.database or ""
        elif url.host:
            address = f"{url.host}:{url.port or 5432}"
        else:  # libpq's default: the local Unix-domain socket
            address = f"the local socket (port {url.port or 5432})"
        return cls(dialect, url.render_as_string(hide_password=True), address)

    def fault(
        self, exc: BaseException, *, broken: bool = False, committing: bool = False
    ) -> StorageError | None:
        """The baoflow error ``exc`` stands for, or None when it is not about the
        database being usable. ``broken``: the DBAPI connection ``exc`` came from was
        found broken; ``committing``: ``exc`` came from the commit (a write's)."""
        if isinstance(exc, BaoflowError):
            return None  # a refusal, a conflict, or mapped already below this boundary
        orig: BaseException = exc
        if isinstance(exc, sa.exc.DBAPIError):
            broken = broken or exc.connection_invalidated
            orig = exc.orig if exc.orig is not None else exc
        if isinstance(orig, sqlite3.Error):
            return self._sqlite(orig)
        if self.dialect != "postgresql":
            return None
        reason = _pg_reason(orig, broken)
        if reason is None:
            return None
        # Lost while the server was committing: it may have committed or not.
        unknown = committing and reason == "lost"
        return StorageUnavailable(
            self.url,
            self.address,
            reason,
            first_line(orig),
            applied=None if unknown else False,
        )

    def _sqlite(self, exc: sqlite3.Error) -> StorageError | None:
        code = getattr(exc, "sqlite_errorcode", None)
        if code is None:
            return None
        primary = code & 0xFF
        cause = first_line(exc)
        if primary == _SQLITE_READONLY:
            return StorageError(
                f"the SQLite database {self.address} is read-only ({cause}): this process "
                "may read it but not write it, and nothing was written. Make the file and "
                "its directory writable by it (permissions; `lsattr` shows an immutable "
                "flag; a read-only mount), or give a URL without mode=ro."
            )
        if primary == _SQLITE_FULL:
            return StorageError(
                f"the disk of the SQLite database {self.address} is full ({cause}); nothing "
                "was written. Free some space and try again."
            )
        reason = {
            _SQLITE_CANTOPEN: "unreachable",
            _SQLITE_IOERR: "io",
            _SQLITE_BUSY: "busy",
            _SQLITE_LOCKED: "busy",
        }.get(primary)
        if reason is None:
            return None
        return StorageUnavailable(
            self.url,
            self.address,
            reason,
            cause,
            retry_after=timedelta(seconds=1 if reason == "busy" else 5),
        )


def _pg_reason(exc: BaseException, broken: bool) -> str | None:
    """``unreachable``, ``lost`` or None (not a connection's failure) for a psycopg error."""
    import psycopg  # a PostgreSQL store's: installed

    if not isinstance(exc, psycopg.Error):
        return None
    if isinstance(exc, psycopg.OperationalError) and exc.pgconn is not None:
        return "unreachable"  # psycopg sets pgconn on a failed connection attempt only
    sqlstate = exc.sqlstate or ""
    if broken or sqlstate.startswith("08") or sqlstate in _SERVER_GONE:
        return "lost"
    return None
