"""The five-step claim written without baoflow, as bench/compare.py times it (issue #14):
what a competent developer would write with ``transitions`` and SQLAlchemy 2's ORM, and
with SpiffWorkflow 3.2. Both read the steps and the deadline rules from the same
definition the engine runs (``bench/five_step.toml``), so all three write one case row,
a history row per call and one deadline row per state, with the same due times.

``OrmApp``    SQLAlchemy 2 ORM models for the case, its history and its deadlines; a
              session per call (one commit); the case loaded with ``Session.get``, a
              ``transitions.Machine`` built for it (the case object is the model, without
              auto transitions) whose states' ``on_exit``/``on_enter`` callbacks stop the
              running deadline (selected, its status set) and arm the next one, and
              whose ``after_state_change`` appends the history row; the version check
              is the mapper's ``version_id_col`` (``… WHERE id = ? AND version = ?``,
              ``StaleDataError`` on a lost race). On SQLite the connection runs in WAL
              with ``synchronous=NORMAL``, as the engine's does.
``SpiffApp``  SpiffWorkflow 3.2: the steps as a BPMN process of user tasks; the process
              serialised to JSON in the case row at every step and deserialised at the
              next, as an app must between two HTTP requests; the ready task of the
              event run and the engine steps done; the row updated with a version check,
              the history row and the deadlines written by the app's own SQL — plain
              ``sqlite3``, the cheapest storage such an app can have (SQLite only).
"""

from __future__ import annotations

import json
import sqlite3
import tomllib
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

from baoflow.engine import Actor, Clock
from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
    create_engine,
    event,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from transitions import EventData, Machine, State

DEFINITION = Path(__file__).with_name("five_step.toml")


@dataclass(frozen=True)
class Flow:
    """The five-step claim as the hand-written versions need it."""

    initial: str
    #: (event, source, target) in the order a case goes
    steps: tuple[tuple[str, str, str], ...]
    #: state -> (rule, period): the deadline armed on entering the state
    deadlines: dict[str, tuple[str, timedelta]]

    @property
    def events(self) -> list[str]:
        return [e for e, _, _ in self.steps]


def load_flow(path: Path = DEFINITION) -> Flow:
    spec = tomllib.loads(path.read_text(encoding="utf-8"))
    deadlines = {}
    for rule in spec["deadlines"]:
        amount, unit = rule["period"].split()
        if unit != "hours":  # working days would need the calendar here too
            raise ValueError(f"{path}: {rule['name']}: only hour periods are compared")
        for state in rule["starts_on"]:
            deadlines[state] = (rule["name"], timedelta(hours=int(amount)))
    steps = tuple((t["event"], t["source"], t["target"]) for t in spec["transitions"])
    return Flow(spec["workflow"]["initial"], steps, deadlines)


def _actor_json(actor: Actor) -> dict[str, Any]:
    return {"id": actor.id, "name": actor.name, "roles": list(actor.roles)}


# -- transitions + SQLAlchemy ORM ------------------------------------------------------


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSON,
        datetime: DateTime(timezone=True),
    }


class OrmCase(Base):
    __tablename__ = "claims"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    state: Mapped[str] = mapped_column(String(32), index=True)
    data: Mapped[dict[str, Any]]
    version: Mapped[int] = mapped_column()
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # the version check: SQLAlchemy adds "AND version = ?" to the UPDATE and bumps it
    __mapper_args__: Any = {"version_id_col": version}  # noqa: RUF012 (read by the mapper)

    # The Machine's callbacks: ``fire`` passes the session, the time and the actor.
    def stop_deadline(self, ev: EventData) -> None:
        now = ev.kwargs["now"]
        running = (
            ev.kwargs["session"]
            .scalars(select(OrmDeadline).filter_by(case_id=self.id, status="running"))
            .one_or_none()
        )
        if running is not None:
            due = running.due_at
            if due.tzinfo is None:  # SQLite gives back the time as stored, without its zone
                due = due.replace(tzinfo=now.tzinfo)
            running.status = "met" if now <= due else "breached"
            running.stopped_at = now

    def arm_deadline(self, ev: EventData) -> None:
        arm(ev.kwargs["session"], self, ev.kwargs["flow"], ev.kwargs["now"])

    def record_history(self, ev: EventData) -> None:
        assert ev.transition is not None
        ev.kwargs["session"].add(
            OrmHistory(
                case_id=self.id,
                seq=self.version + 1,
                at=ev.kwargs["now"],
                actor=_actor_json(ev.kwargs["actor"]),
                event=ev.event.name,
                from_state=ev.transition.source,
                to_state=ev.transition.dest,
            )
        )


class OrmHistory(Base):
    __tablename__ = "claim_history"
    __table_args__ = (UniqueConstraint("case_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("claims.id"))
    seq: Mapped[int]
    at: Mapped[datetime]
    actor: Mapped[dict[str, Any]]
    event: Mapped[str] = mapped_column(String(64))
    from_state: Mapped[str | None] = mapped_column(String(32))
    to_state: Mapped[str] = mapped_column(String(32))


class OrmDeadline(Base):
    __tablename__ = "claim_deadlines"
    # the running deadlines, for the worker that looks for breaches and for stopping one
    __table_args__ = (
        Index("ix_claim_deadlines_running", "case_id", "status"),
        Index("ix_claim_deadlines_due", "due_at", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("claims.id"))
    rule: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime]
    due_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16))
    stopped_at: Mapped[datetime | None]


def arm(session: Session, case: OrmCase, flow: Flow, now: datetime) -> None:
    """The deadline of the state ``case`` is entering, if it has one."""
    if case.state in flow.deadlines:
        rule, period = flow.deadlines[case.state]
        session.add(
            OrmDeadline(
                case_id=case.id,
                rule=rule,
                state=case.state,
                started_at=now,
                due_at=now + period,
                status="running",
            )
        )


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def orm_url(url: str) -> str:
    """psycopg 3 for ``postgresql://`` (SQLAlchemy's default would be psycopg2)."""
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


class OrmApp:
    """The five-step claim with ``transitions`` and the SQLAlchemy ORM."""

    def __init__(self, url: str, clock: Clock, actor: Actor, flow: Flow) -> None:
        self.engine = create_engine(orm_url(url))
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        Base.metadata.create_all(self.engine)
        self.sessions = sessionmaker(self.engine)
        self.clock, self.actor, self.flow = clock, actor, flow
        self.states = [
            State(s, on_enter=["arm_deadline"], on_exit=["stop_deadline"])
            for s in dict.fromkeys([flow.initial] + [t for _, _, t in flow.steps])
        ]
        self.transitions = [{"trigger": e, "source": s, "dest": t} for e, s, t in flow.steps]

    def open(self, i: int, data: dict[str, Any]) -> int:
        now = self.clock.now()
        with self.sessions.begin() as session:
            case = OrmCase(
                number=f"FS-{now:%Y%m%d}-{i + 1:06d}",
                state=self.flow.initial,
                data=data,
                created_at=now,
                updated_at=now,
            )
            session.add(case)
            session.flush()  # the id, for the history and the deadline
            session.add(
                OrmHistory(
                    case_id=case.id,
                    seq=1,
                    at=now,
                    actor=_actor_json(self.actor),
                    event="open",
                    from_state=None,
                    to_state=case.state,
                )
            )
            arm(session, case, self.flow, now)
            return case.id

    def fire(self, case_id: int, event_name: str) -> None:
        now = self.clock.now()
        with self.sessions.begin() as session:
            case = session.get_one(OrmCase, case_id)
            Machine(
                model=case,
                states=self.states,
                transitions=self.transitions,
                initial=case.state,
                auto_transitions=False,
                send_event=True,
                after_state_change="record_history",
            )
            case.trigger(  # type: ignore[attr-defined]  # the Machine added it
                event_name, session=session, now=now, actor=self.actor, flow=self.flow
            )
            case.updated_at = now

    def close(self) -> None:
        self.engine.dispose()


# -- SpiffWorkflow ---------------------------------------------------------------------

SPIFF_SCHEMA = """
CREATE TABLE claims (
    id INTEGER PRIMARY KEY, number TEXT UNIQUE NOT NULL, state TEXT NOT NULL,
    data TEXT NOT NULL, process TEXT NOT NULL, version INTEGER NOT NULL,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE INDEX ix_claims_state ON claims (state);
CREATE TABLE claim_history (
    id INTEGER PRIMARY KEY, case_id INTEGER NOT NULL REFERENCES claims (id),
    seq INTEGER NOT NULL, at TEXT NOT NULL, actor TEXT NOT NULL, event TEXT NOT NULL,
    from_state TEXT, to_state TEXT NOT NULL, UNIQUE (case_id, seq));
CREATE TABLE claim_deadlines (
    id INTEGER PRIMARY KEY, case_id INTEGER NOT NULL REFERENCES claims (id),
    rule TEXT NOT NULL, state TEXT NOT NULL, started_at TEXT NOT NULL,
    due_at TEXT NOT NULL, status TEXT NOT NULL, stopped_at TEXT);
CREATE INDEX ix_claim_deadlines_running ON claim_deadlines (case_id, status);
CREATE INDEX ix_claim_deadlines_due ON claim_deadlines (due_at, status);
"""


def bpmn(flow: Flow) -> str:
    """The steps as a BPMN process: start, one user task per event, end."""
    nodes, flows, prev = ['<bpmn:startEvent id="start"/>'], [], "start"
    for step in [*flow.events, "end"]:
        if step == "end":
            nodes.append('<bpmn:endEvent id="end"/>')
        else:
            nodes.append(f'<bpmn:userTask id="{step}" name="{step}"/>')
        flows.append(f'<bpmn:sequenceFlow id="to_{step}" sourceRef="{prev}" targetRef="{step}"/>')
        prev = step
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
        'id="five_step_defs" targetNamespace="https://baoflow.example/bench">'
        f'<bpmn:process id="five_step" isExecutable="true">{"".join(nodes + flows)}'
        "</bpmn:process></bpmn:definitions>"
    )


class SpiffApp:
    """The five-step claim as a SpiffWorkflow 3.2 process, reloaded at every step."""

    def __init__(self, path: Path, clock: Clock, actor: Actor, flow: Flow) -> None:
        # SpiffWorkflow ships no type information (pyproject.toml's mypy overrides);
        # installed for the benchmark only.
        from SpiffWorkflow.bpmn import BpmnWorkflow
        from SpiffWorkflow.bpmn.parser import BpmnParser
        from SpiffWorkflow.bpmn.serializer import (
            BpmnWorkflowSerializer,
        )
        from SpiffWorkflow.util.task import TaskState

        parser = BpmnParser()
        parser.add_bpmn_str(bpmn(flow).encode())
        self.spec = parser.get_spec("five_step")
        self.workflow_class, self.ready = BpmnWorkflow, TaskState.READY
        self.serializer = BpmnWorkflowSerializer()
        self.targets = {e: t for e, _, t in flow.steps}
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self.conn.executescript(SPIFF_SCHEMA)
        self.clock, self.actor, self.flow = clock, json.dumps(_actor_json(actor)), flow

    def _arm(self, case_id: int, state: str, now: datetime) -> None:
        if state in self.flow.deadlines:
            rule, period = self.flow.deadlines[state]
            self.conn.execute(
                "INSERT INTO claim_deadlines (case_id, rule, state, started_at, due_at, status)"
                " VALUES (?, ?, ?, ?, ?, 'running')",
                (case_id, rule, state, now.isoformat(), (now + period).isoformat()),
            )

    def open(self, i: int, data: dict[str, Any]) -> int:
        now = self.clock.now()
        process = self.workflow_class(self.spec)
        process.data.update(data)
        process.do_engine_steps()
        at, state = now.isoformat(), self.flow.initial
        self.conn.execute("BEGIN IMMEDIATE")
        cur = self.conn.execute(
            "INSERT INTO claims (number, state, data, process, version, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, 1, ?, ?)",
            (
                f"FS-{now:%Y%m%d}-{i + 1:06d}",
                state,
                json.dumps(data, ensure_ascii=False),
                self.serializer.serialize_json(process),
                at,
                at,
            ),
        )
        case_id = cur.lastrowid
        assert case_id is not None
        self.conn.execute(
            "INSERT INTO claim_history (case_id, seq, at, actor, event, from_state, to_state)"
            " VALUES (?, 1, ?, ?, 'open', NULL, ?)",
            (case_id, at, self.actor, state),
        )
        self._arm(case_id, state, now)
        self.conn.execute("COMMIT")
        return case_id

    def fire(self, case_id: int, event_name: str) -> None:
        now = self.clock.now()
        at = now.isoformat()
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            state, version, stored = self.conn.execute(
                "SELECT state, version, process FROM claims WHERE id = ?", (case_id,)
            ).fetchone()
            process = self.serializer.deserialize_json(stored)
            tasks = [
                t
                for t in process.get_tasks(state=self.ready, manual=True)
                if t.task_spec.name == event_name
            ]
            if not tasks:
                raise ValueError(f"can't {event_name} case {case_id} in {state}")
            tasks[0].run()
            process.do_engine_steps()
            target = self.targets[event_name]
            changed = self.conn.execute(
                "UPDATE claims SET state = ?, process = ?, version = version + 1,"
                " updated_at = ? WHERE id = ? AND version = ?",
                (target, self.serializer.serialize_json(process), at, case_id, version),
            ).rowcount
            if changed != 1:
                raise RuntimeError(f"case {case_id} changed since version {version}")
            self.conn.execute(
                "INSERT INTO claim_history (case_id, seq, at, actor, event, from_state,"
                " to_state) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (case_id, version + 1, at, self.actor, event_name, state, target),
            )
            self.conn.execute(
                "UPDATE claim_deadlines SET stopped_at = ?,"
                " status = CASE WHEN due_at >= ? THEN 'met' ELSE 'breached' END"
                " WHERE case_id = ? AND status = 'running'",
                (at, at, case_id),
            )
            self._arm(case_id, target, now)
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()
