"""The only place SQL lives: connections, transactions, queries, migrations.

Hot-path statements are SQLAlchemy Core, built once, so ``fire()`` pays for no ORM
unit-of-work (DESIGN.md §6: Core is ~5x the ORM on SQLite).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from ..errors import CaseNotFound, StorageError
from ..types import Actor, Case, HistoryEntry
from . import tables as t

__all__ = ["Store", "normalise_url"]

_MIGRATIONS = Path(__file__).parent / "migrations"


def _json_dumps(value: Any) -> str:
    # Chinese text stays readable in the database and half the size.
    return json.dumps(value, ensure_ascii=False, default=_json_default)


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
        kwargs: dict[str, Any] = {"echo": echo, "json_serializer": _json_dumps}
        if self.dialect_name == "sqlite":
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
        else:
            kwargs["pool_pre_ping"] = True
        self.engine: Engine = sa.create_engine(self.url, **kwargs)
        if self.dialect_name == "sqlite":
            _sqlite_setup(self.engine)
        self._build_statements()

    # --- transactions -------------------------------------------------------------
    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One transaction for one operation: all of it commits, or none of it.

        On SQLite the transaction starts with ``BEGIN IMMEDIATE`` so writers queue on
        the busy timeout instead of failing on a stale snapshot.
        """
        with self.engine.connect().execution_options(baoflow_write=True) as conn, conn.begin():
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def dispose(self) -> None:
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

        with self.write() as conn:
            command.upgrade(self._alembic_config(conn), revision)

    def current_revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self.read() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def head_revision(self) -> str | None:
        from alembic.script import ScriptDirectory

        with self.read() as conn:
            return ScriptDirectory.from_config(self._alembic_config(conn)).get_current_head()

    def require_current_schema(self) -> None:
        current, head = self.current_revision(), self.head_revision()
        if current != head:
            raise StorageError(
                f"the database at {self.engine.url.render_as_string(hide_password=True)} is at "
                f"schema revision {current or '(empty)'}, the code needs {head}; run "
                "`baoflow db upgrade --url URL` (or open_engine(..., migrate=True))."
            )

    # --- statements ---------------------------------------------------------------
    def _build_statements(self) -> None:
        c = t.cases.c
        self._select_case_by_id = sa.select(t.cases).where(c.id == sa.bindparam("ref"))
        self._select_case_by_number = sa.select(t.cases).where(c.number == sa.bindparam("ref"))
        self._update_case = (
            t.cases.update()
            .where(c.id == sa.bindparam("b_id"), c.version == sa.bindparam("b_expected"))
            .values(
                state=sa.bindparam("b_state"),
                data=sa.bindparam("b_data", type_=t.JSONType),
                version=sa.bindparam("b_version"),
                updated_at=sa.bindparam("b_now", type_=t.UTCDateTime),
                policy_number=sa.bindparam("b_policy_number"),
                insured_name=sa.bindparam("b_insured_name"),
                id_number=sa.bindparam("b_id_number"),
            )
        )
        self._insert_history = t.history.insert()
        self._select_version = sa.select(c.version).where(c.id == sa.bindparam("ref"))

    # --- cases --------------------------------------------------------------------
    def load_case(self, conn: Connection, ref: int | str) -> Case:
        row = self._case_row(conn, ref)
        return _case(row)

    def _case_row(self, conn: Connection, ref: int | str) -> sa.Row[Any]:
        if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
            row = conn.execute(self._select_case_by_id, {"ref": int(ref)}).first()
        else:
            row = conn.execute(self._select_case_by_number, {"ref": ref}).first()
        if row is None:
            raise CaseNotFound(ref)
        return row

    def current_version(self, conn: Connection, case_id: int) -> int | None:
        return conn.execute(self._select_version, {"ref": case_id}).scalar()

    def insert_case(
        self,
        conn: Connection,
        *,
        number: str,
        workflow: str,
        workflow_version: int,
        state: str,
        data: Mapping[str, Any],
        now: datetime,
        keys: Mapping[str, str | None],
    ) -> int:
        result = conn.execute(
            t.cases.insert().returning(t.cases.c.id),
            {
                "number": number,
                "workflow": workflow,
                "workflow_version": workflow_version,
                "state": state,
                "data": data,
                "version": 1,
                "created_at": now,
                "updated_at": now,
                **keys,
            },
        )
        return int(result.scalar_one())

    def update_case(
        self,
        conn: Connection,
        *,
        case_id: int,
        expected_version: int,
        state: str,
        data: Mapping[str, Any],
        now: datetime,
        keys: Mapping[str, str | None],
    ) -> bool:
        """Write the new state if the row is still at ``expected_version``."""
        result = conn.execute(
            self._update_case,
            {
                "b_id": case_id,
                "b_expected": expected_version,
                "b_state": state,
                "b_data": data,
                "b_version": expected_version + 1,
                "b_now": now,
                "b_policy_number": keys.get("policy_number"),
                "b_insured_name": keys.get("insured_name"),
                "b_id_number": keys.get("id_number"),
            },
        )
        return result.rowcount == 1

    def append_history(
        self,
        conn: Connection,
        *,
        case_id: int,
        seq: int,
        at: datetime,
        actor: Actor,
        event: str,
        from_state: str | None,
        to_state: str,
        data: Mapping[str, Any],
        notes: Sequence[str],
    ) -> None:
        conn.execute(
            self._insert_history,
            {
                "case_id": case_id,
                "seq": seq,
                "at": at,
                "actor": actor.to_json(),
                "event": event,
                "from_state": from_state,
                "to_state": to_state,
                "data": data,
                "notes": list(notes),
            },
        )

    def history(self, conn: Connection, case_id: int) -> list[HistoryEntry]:
        h = t.history.c
        rows = conn.execute(sa.select(t.history).where(h.case_id == case_id).order_by(h.seq))
        return [
            HistoryEntry(
                seq=r.seq,
                at=r.at,
                actor=Actor.from_json(r.actor),
                event=r.event,
                from_state=r.from_state,
                to_state=r.to_state,
                data=r.data,
                notes=tuple(r.notes),
            )
            for r in rows
        ]

    def find_cases(
        self,
        conn: Connection,
        *,
        number: str | None = None,
        policy_number: str | None = None,
        insured_name: str | None = None,
        id_number: str | None = None,
        workflow: str | None = None,
        state: str | Sequence[str] | None = None,
        limit: int | None = 100,
        offset: int = 0,
    ) -> list[Case]:
        """Cases matching every filter given, oldest first; ``limit=None`` for all."""
        c = t.cases.c
        q = sa.select(t.cases)
        for column, value in (
            (c.number, number),
            (c.policy_number, policy_number),
            (c.insured_name, insured_name),
            (c.id_number, id_number),
            (c.workflow, workflow),
        ):
            if value is not None:
                q = q.where(column == value)
        if isinstance(state, str):
            q = q.where(c.state == state)
        elif state is not None:
            q = q.where(c.state.in_(list(state)))
        q = q.order_by(c.id).limit(limit).offset(offset)
        return [_case(r) for r in conn.execute(q)]

    def count_by_state(
        self, conn: Connection, workflow: str | None = None
    ) -> dict[tuple[str, str], int]:
        c = t.cases.c
        q = sa.select(c.workflow, c.state, sa.func.count()).group_by(c.workflow, c.state)
        if workflow is not None:
            q = q.where(c.workflow == workflow)
        return {(w, s): n for w, s, n in conn.execute(q)}

    def next_case_number(self, conn: Connection, prefix: str, day: str) -> int:
        """The next sequence number of ``prefix`` on ``day``, unique across writers."""
        cc = t.case_counters.c
        if self.dialect_name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            ins: Any = pg_insert(t.case_counters)
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            ins = sqlite_insert(t.case_counters)
        stmt = (
            ins.values(prefix=prefix, day=day, last=1)
            .on_conflict_do_update(
                index_elements=[cc.prefix, cc.day], set_={"last": t.case_counters.c.last + 1}
            )
            .returning(cc.last)
        )
        return int(conn.execute(stmt).scalar_one())

    # --- idempotency --------------------------------------------------------------
    def idempotent_result(self, conn: Connection, key: str) -> Any:
        """The stored request (case_id, event, fingerprint) and its result, if any."""
        k = t.idempotency_keys.c
        query = sa.select(k.case_id, k.event, k.fingerprint, k.result).where(k.key == key)
        return conn.execute(query).first()

    def remember_result(
        self,
        conn: Connection,
        *,
        key: str,
        case_id: int,
        event: str,
        fingerprint: str,
        result: Any,
        now: datetime,
    ) -> None:
        conn.execute(
            t.idempotency_keys.insert(),
            {
                "key": key,
                "case_id": case_id,
                "event": event,
                "fingerprint": fingerprint,
                "result": result,
                "created_at": now,
            },
        )

    # --- policies -----------------------------------------------------------------
    def upsert_policies(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> int:
        p = t.policies.c
        for row in rows:
            conn.execute(t.policies.delete().where(p.number == row["number"]))
        if rows:
            conn.execute(t.policies.insert(), list(rows))
        return len(rows)

    def policy(self, conn: Connection, number: str) -> sa.Row[Any] | None:
        return conn.execute(sa.select(t.policies).where(t.policies.c.number == number)).first()

    def policies_by_insured(
        self, conn: Connection, name: str, id_number: str | None
    ) -> list[sa.Row[Any]]:
        p = t.policies.c
        q = sa.select(t.policies).where(p.insured_name == name)
        if id_number is not None:
            q = q.where(p.insured_id_number == id_number)
        return list(conn.execute(q.order_by(p.number)))


IntegrityViolation = IntegrityError


def _case(row: sa.Row[Any]) -> Case:
    return Case(
        id=row.id,
        number=row.number,
        workflow=row.workflow,
        workflow_version=row.workflow_version,
        state=row.state,
        data=row.data,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


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
