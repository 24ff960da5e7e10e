"""A database that is down, or a connection that drops, is a StorageUnavailable that says
what to do — never a raw driver error — on every face: the facade, the timer worker, the
deliverer, the HTTP API (503 with Retry-After) and the dashboard (a 503 page). A fire()
whose commit outcome is unknown is safe to retry with its idempotency key: it lands once.
Issue #15 item 1 (the storage half), on SQLite and PostgreSQL.

PostgreSQL "down" is a port where nothing listens: the engine reaches the server through
a TCP relay (:class:`Relay`) that the tests stop, or cut at a chosen moment; the shared
server on 5432 is never stopped. A connection dropped by the server is
``pg_terminate_backend``. SQLite "down" is a file that cannot be opened: its directory
moved away (a connection still open on it would go on writing to the moved file, so the
engine's connections are closed first, as a restart or a new thread would have them).
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import socket
import sqlite3
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from baoflow.engine import (
    ConflictError,
    Engine,
    FakeClock,
    SqlPolicyDirectory,
    StorageError,
    StorageUnavailable,
    open_engine,
)
from baoflow.engine.scheduler import Worker
from baoflow.engine.store.faults import Site
from fastapi.testclient import TestClient

from baoflow.api import create_app
from baoflow.dashboard import create_dashboard
from tests.conftest import AGENT, HANDLER, POLICIES, _pg_schema, report
from tests.test_dashboard import PASSWORD, logged_in
from tests.test_delivery import deliverer
from tests.test_timers import to_materials_complete

# --- the outages ------------------------------------------------------------------------


def free_port() -> int:
    """A free port below the ephemeral range: while a relay is stopped, no outgoing
    connection can be given its port, so it can always listen there again (a port the
    system handed out, bound to 0, once went to another connection meanwhile:
    EADDRINUSE on the restart)."""
    low = _ephemeral_low()
    for port in random.sample(range(max(1024, low - 12000), low), 200):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below the ephemeral range")


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


#: PostgreSQL's answer to a COMMIT (CommandComplete "COMMIT"): the server committed.
_COMMITTED = b"C\x00\x00\x00\x0bCOMMIT\x00"


@dataclass(frozen=True)
class _Cut:
    """When a relay cuts a connection: once ``marker`` was sent on it, and then at
    ``at`` — ``sent`` (that very chunk, not passed on), ``commit sent`` (the client's
    COMMIT, not passed on) or ``commit answered`` (the server's answer to it, not passed
    on); ``then_down``: the relay stops too (the server went down)."""

    marker: bytes
    at: str
    then_down: bool


class Relay:
    """A TCP relay in front of PostgreSQL: what the engine connects to. ``stop()`` cuts
    every connection and leaves nothing listening on its port (the server is down);
    ``start()`` listens there again (it is back); ``cut_when_sent()`` and
    ``cut_at_commit()`` drop one connection at a chosen moment."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self._cut: _Cut | None = None  # until it has cut
        self.cuts = 0

    def start(self) -> None:
        assert self._listener is None, "the relay is listening already"
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()

    def stop(self) -> None:
        self._stop_listening()
        self._close_open()

    def _stop_listening(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
        if listener is not None:
            _close(listener)  # shut down first: a close alone leaves accept() accepting

    def _close_open(self) -> None:
        with self._lock:
            doomed, self._open = self._open, []
        for s in doomed:
            _close(s)

    def cut_when_sent(self, marker: str, *, then_down: bool = False) -> None:
        """Once: the connection that sends ``marker`` is cut before it reaches the server."""
        self._cut = _Cut(marker.encode(), "sent", then_down)

    def cut_at_commit(self, marker: str, *, answered: bool, then_down: bool = False) -> None:
        """Once: the connection that sent ``marker`` is cut at its COMMIT — after the
        server answered it (committed; the answer lost on the way) or before the
        COMMIT reaches the server (nothing committed). Either way the client cannot
        know which."""
        self._cut = _Cut(
            marker.encode(), "commit answered" if answered else "commit sent", then_down
        )

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # stopped
            server = socket.create_connection(self.target)
            with self._lock:
                stopped = self._listener is not listener
                if not stopped:
                    self._open += [client, server]
            if stopped:  # while this one was being connected: it is cut too
                _close(client)
                _close(server)
                return
            marked = threading.Event()
            args = (client, server, marked)
            threading.Thread(target=self._pump, args=(*args, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(*args, False), daemon=True).start()

    def _pump(
        self, client: socket.socket, server: socket.socket, marked: threading.Event, up: bool
    ) -> None:
        source, sink = (client, server) if up else (server, client)
        try:
            while chunk := source.recv(65536):
                cut = self._cuts(chunk, marked, up)
                if cut is not None:
                    if cut.then_down:  # nothing listens before the client sees the cut
                        self._stop_listening()
                    self.cuts += 1  # first: a test that saw the cut reads it
                    if cut.then_down:
                        self._close_open()
                    else:
                        _close(client)
                        _close(server)
                    return
                sink.sendall(chunk)
        except OSError:
            pass
        _close(sink)

    def _cuts(self, chunk: bytes, marked: threading.Event, up: bool) -> _Cut | None:
        """The cut to make instead of passing ``chunk`` on (``up``: from the client to
        the server), if any."""
        cut = self._cut
        if cut is None:
            return None
        if up and cut.marker in chunk:
            if cut.at == "sent":
                self._cut = None
                return cut
            marked.set()  # before it is passed on: its answer cannot come first
        if not marked.is_set():
            return None
        if cut.at == "commit answered":
            hit = not up and _COMMITTED in chunk
        else:
            hit = up and b"COMMIT" in chunk
        if not hit:
            return None
        self._cut = None
        return cut


def _close(s: socket.socket) -> None:
    with contextlib.suppress(OSError):  # closed already, by the other direction
        s.shutdown(socket.SHUT_RDWR)
    s.close()


def _pg_target() -> tuple[str, int]:
    url = sa.engine.make_url(os.environ.get("BAOFLOW_TEST_PG_URL", ""))
    return url.host or "127.0.0.1", url.port or 5432


def _through(url: str, port: int) -> str:
    """``url`` with its host and port replaced by the relay's."""
    parsed = sa.engine.make_url(url)
    return parsed.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)


class Outage:
    """An engine that worked (one claim opened) and whose database then went away."""

    def __init__(
        self,
        engine: Engine,
        number: str,
        begin: Callable[[], None],
        end: Callable[[], None],
        address: str,
    ) -> None:
        self.engine = engine
        self.number = number
        #: the claim as it was before the database went away
        self.before = engine.get_case(number)
        self._begin = begin
        self._end = end
        self.address = address
        self.down = False

    def begin(self) -> None:
        self._begin()
        self.down = True

    def end(self) -> None:
        if self.down:
            self._end()
            self.down = False


def _opened(url: str, clock: FakeClock) -> tuple[Engine, str]:
    eng = open_engine(url, clock=clock)
    assert isinstance(eng.policies, SqlPolicyDirectory)
    eng.policies.add(POLICIES)
    return eng, eng.open_case("claim", report(), AGENT).case.number


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def outage(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Iterator[Outage]:
    """The database of a working engine goes away when the test says ``begin()``."""
    if request.param == "sqlite":
        folder, moved = tmp_path / "desk", tmp_path / "desk-moved"
        folder.mkdir()
        eng, number = _opened(f"sqlite:///{folder / 'baoflow.db'}", clock)

        def away() -> None:
            eng.close()  # every operation now needs a new connection
            folder.rename(moved)

        found = Outage(eng, number, away, lambda: moved.rename(folder), str(folder / "baoflow.db"))
        yield found
        found.end()
        eng.close()
        return
    schema = _pg_schema()
    url = next(schema)
    relay = Relay(_pg_target())
    relay.start()
    eng, number = _opened(_through(url, relay.port), clock)
    found = Outage(eng, number, relay.stop, relay.start, f"127.0.0.1:{relay.port}")
    try:
        yield found
    finally:
        found.end()
        eng.close()
        relay.stop()
        schema.close()


#: Each operation of the facade the issue names, on the outage's claim.
OPERATIONS: dict[str, Callable[[Engine, str], object]] = {
    "open_case": lambda eng, _: eng.open_case("claim", report(incident=_other_day()), AGENT),
    "fire": lambda eng, number: eng.fire(number, "verify", HANDLER, idempotency_key="call-1"),
    "get_case": lambda eng, number: eng.get_case(number),
    "find_cases": lambda eng, _: eng.find_cases(workflow="claim"),
    "run_due_timers": lambda eng, _: eng.run_due_timers(),
}


def _other_day() -> dict[str, str]:
    return {"time": f"{date(2026, 5, 3).isoformat()}T10:00:00+08:00"}


# --- the facade ---------------------------------------------------------------------------
@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_every_operation_on_a_database_that_is_down_raises_storage_unavailable_and_applies_nothing(
    outage: Outage, operation: str
) -> None:
    eng = outage.engine
    outage.begin()
    with pytest.raises(StorageUnavailable) as raised:
        OPERATIONS[operation](eng, outage.number)
    down = raised.value
    assert (down.reason, down.applied, down.address) == ("unreachable", False, outage.address)
    assert "Nothing was applied" in str(down)
    if eng.backend == "postgresql":
        assert f"reachable at {outage.address}?" in str(down)
    else:
        assert f"Is the SQLite file {outage.address} there" in str(down)
    outage.end()
    # Back: nothing of the attempt was stored, and the engine works again.
    assert eng.find_cases(workflow="claim") == [outage.before]
    assert eng.fire(outage.number, "verify", HANDLER).state == "verified"


@pytest.mark.postgres
def test_opening_an_engine_on_a_port_where_nothing_listens_says_which_and_hides_the_password() -> (
    None
):
    port = free_port()
    with pytest.raises(StorageUnavailable) as raised:
        open_engine(f"postgresql://desk:s3cret@127.0.0.1:{port}/baoflow")
    down = raised.value
    assert (down.reason, down.address) == ("unreachable", f"127.0.0.1:{port}")
    assert down.url == f"postgresql+psycopg://desk:***@127.0.0.1:{port}/baoflow"
    assert "s3cret" not in str(down)
    assert str(down).startswith(f"cannot connect to the database at {down.url} (")
    assert f"Is the PostgreSQL server running, and reachable at 127.0.0.1:{port}?" in str(down)


def test_opening_an_engine_on_a_file_under_a_missing_directory_says_which(tmp_path: Path) -> None:
    path = tmp_path / "removed" / "baoflow.db"
    with pytest.raises(StorageUnavailable) as raised:
        open_engine(f"sqlite:///{path}")
    assert (raised.value.reason, raised.value.address) == ("unreachable", str(path))
    assert f"the SQLite database {path} cannot be opened" in str(raised.value)


def test_a_directory_where_the_file_should_be_is_storage_unavailable(tmp_path: Path) -> None:
    (tmp_path / "baoflow.db").mkdir()
    with pytest.raises(StorageUnavailable, match="cannot be opened"):
        open_engine(f"sqlite:///{tmp_path / 'baoflow.db'}")


# --- SQLite: read-only, busy --------------------------------------------------------------
def _immutable(path: Path) -> Callable[[], None] | None:
    """Make ``path`` read-only even for root (the tests run as root, for whom chmod does
    not bite): ``chattr +i``. The undo, or None where the file system has no such flag."""
    if os.geteuid() != 0:
        path.chmod(0o444)
        return lambda: path.chmod(0o644)
    done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False)
    if done.returncode != 0:
        return None
    return lambda: subprocess.run(["chattr", "-i", str(path)], check=True)


@pytest.mark.parametrize("how", ["mode=ro", "immutable file"])
def test_a_read_only_sqlite_file_reads_but_a_write_says_it_is_read_only(
    tmp_path: Path, clock: FakeClock, how: str
) -> None:
    path = tmp_path / "baoflow.db"
    eng, number = _opened(f"sqlite:///{path}", clock)
    before = eng.get_case(number)
    eng.close()
    undo: Callable[[], None] | None = None
    url = f"sqlite:///{path}"
    if how == "mode=ro":
        url = f"sqlite:///file:{path}?mode=ro&uri=true"
    else:
        undo = _immutable(path)
        if undo is None:
            pytest.skip("chattr +i is not supported on this file system (run as root)")
    try:
        ro = open_engine(url, clock=clock, migrate=False)
        assert ro.get_case(number) == before
        with pytest.raises(StorageError) as raised:
            ro.fire(number, "verify", HANDLER)
        assert not isinstance(raised.value, StorageUnavailable)  # a retry would not help
        shown = f"file:{path}" if how == "mode=ro" else str(path)
        assert f"the SQLite database {shown} is read-only (" in str(raised.value)
        assert ro.get_case(number) == before
        ro.close()
    finally:
        if undo is not None:
            undo()


def test_a_sqlite_database_locked_past_the_busy_timeout_is_unavailable_busy(
    tmp_path: Path,
) -> None:
    """Decided: a writer that holds the database past the busy timeout (30 s for the
    engine) makes it unavailable, not broken — a retry later succeeds. Shown on the
    error SQLite raises then (with no timeout here, so that it comes at once)."""
    path = tmp_path / "baoflow.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")
    waiter = sqlite3.connect(path, timeout=0, isolation_level=None)
    with pytest.raises(sqlite3.OperationalError) as locked:
        waiter.execute("BEGIN IMMEDIATE")
    holder.rollback()
    fault = Site.of(sa.engine.make_url(f"sqlite:///{path}")).fault(locked.value)
    assert isinstance(fault, StorageUnavailable)
    assert (fault.reason, fault.applied) == ("busy", False)
    assert fault.retry_after == timedelta(seconds=1)
    assert "locked by another writer for longer than the busy timeout" in str(fault)


# --- what is not the database being down ---------------------------------------------------
def test_errors_of_the_statement_or_of_a_race_are_left_as_they_are(tmp_path: Path) -> None:
    """A unique-key race (the engine relies on IntegrityError), a serialization failure,
    a pipeline aborted by an earlier error, a cancelled statement, a bad statement: none
    is the database being unavailable."""
    sqlite_site = Site.of(sa.engine.make_url(f"sqlite:///{tmp_path / 'x.db'}"))
    conn = sqlite3.connect(tmp_path / "x.db")
    conn.execute("CREATE TABLE t (x UNIQUE)")
    conn.execute("INSERT INTO t VALUES (1)")
    for statement in ("INSERT INTO t VALUES (1)", "SELECT * FROM no_such_table"):
        with pytest.raises(sqlite3.Error) as raised:
            conn.execute(statement)
        assert sqlite_site.fault(raised.value) is None, statement
    pg_site = Site.of(sa.engine.make_url("postgresql+psycopg://u@db.example:6432/x"))
    for error in (
        psycopg.errors.UniqueViolation("duplicate key"),
        psycopg.errors.SerializationFailure("could not serialize access"),
        psycopg.errors.PipelineAborted("pipeline aborted"),
        psycopg.errors.QueryCanceled("canceling statement due to statement timeout"),
        psycopg.errors.DivisionByZero("division by zero"),  # the pipeline's version check
    ):
        assert pg_site.fault(error) is None, error
    assert pg_site.fault(ValueError("a bug")) is None
    conflict = ConflictError("LP-20260506-000001", 1, 2)
    assert pg_site.fault(conflict) is None and sqlite_site.fault(conflict) is None
    # ... while a server that ends the connection is:
    gone = pg_site.fault(psycopg.errors.AdminShutdown("terminating connection"))
    assert isinstance(gone, StorageUnavailable) and gone.address == "db.example:6432"
    assert gone.reason == "lost"


# --- PostgreSQL: connections the server drops ----------------------------------------------
def _terminate(url: str, application: str) -> int:
    """End every server process of ``application``; how many there were."""
    admin = sa.create_engine(sa.engine.make_url(url).set(query={}))
    try:
        with admin.connect() as conn:
            pids = conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                    "WHERE application_name = :app"
                ),
                {"app": application},
            ).all()
    finally:
        admin.dispose()
    return len(pids)


@pytest.fixture
def pg_named(clock: FakeClock) -> Iterator[tuple[str, str]]:
    """A PostgreSQL schema's URL whose connections carry an application name of their own."""
    schema = _pg_schema()
    url = next(schema)
    application = f"bf-{uuid.uuid4().hex[:8]}"
    try:
        yield f"{url}&application_name={application}", application
    finally:
        schema.close()


@pytest.mark.postgres
def test_connections_the_server_dropped_between_operations_are_replaced(
    pg_named: tuple[str, str], clock: FakeClock
) -> None:
    """A server restart between two operations leaves the engine's idle connections dead:
    the next operations begin again on new ones, as before (nothing had been done)."""
    url, application = pg_named
    eng, number = _opened(url, clock)
    try:
        before = eng.get_case(number)
        eng.run_due_timers()
        assert _terminate(url, application) >= 2  # the hot path's and SQLAlchemy's
        assert eng.fire(number, "verify", HANDLER).version == before.version + 1
        assert eng.get_case(number).state == "verified"
        eng.run_due_timers()
    finally:
        eng.close()


@pytest.mark.postgres
@pytest.mark.parametrize("kind", ["fire_transaction", "write"])
def test_a_connection_dropped_within_a_transaction_is_storage_unavailable_nothing_applied(
    pg_named: tuple[str, str], clock: FakeClock, kind: str
) -> None:
    url, application = pg_named
    eng, number = _opened(url, clock)
    store = eng.store
    try:
        transaction = store.fire_transaction if kind == "fire_transaction" else store.write
        with pytest.raises(StorageUnavailable) as raised, transaction() as tx:
            case = tx.load_case(number)  # something done on the connection: no new one
            _terminate(url, application)
            tx.update_case(
                case_id=case.id,
                expected_version=1,
                state="verified",
                data=case.data,
                now=clock.now(),
                keys=None,
            )
            tx.load_case(case.id)
        assert (raised.value.reason, raised.value.applied) == ("lost", False)
        assert "was lost" in str(raised.value) and "Nothing was applied" in str(raised.value)
        assert eng.get_case(number) == case
    finally:
        eng.close()


@pytest.mark.postgres
@pytest.mark.parametrize("answered", [True, False], ids=["committed", "never-committed"])
def test_a_fire_whose_commit_outcome_is_unknown_is_retried_with_its_key_and_lands_once(
    clock: FakeClock, answered: bool
) -> None:
    """The connection drops at COMMIT: after the server committed (its answer lost), or
    before the COMMIT reached it. The caller cannot tell which — the error says so — and
    retrying with the same idempotency key lands the event exactly once either way."""
    schema = _pg_schema()
    relay = Relay(_pg_target())
    relay.start()
    eng, number = _opened(_through(next(schema), relay.port), clock)
    try:
        before = eng.get_case(number)
        relay.cut_at_commit("desk-7/call-42", answered=answered)
        with pytest.raises(StorageUnavailable) as raised:
            eng.fire(number, "verify", HANDLER, idempotency_key="desk-7/call-42")
        assert relay.cuts == 1
        assert (raised.value.reason, raised.value.applied) == ("lost", None)
        assert "whether the operation was applied is not known" in str(raised.value)
        assert "retrying it with the same idempotency key is safe" in str(raised.value)
        # what really happened, which the caller could not know
        assert eng.get_case(number).version == before.version + (1 if answered else 0)

        again = eng.fire(number, "verify", HANDLER, idempotency_key="desk-7/call-42")
        assert (again.state, again.version) == ("verified", before.version + 1)
        events = [entry.event for entry in eng.history(number)]
        assert events.count("verify") == 1
        assert eng.fire(number, "verify", HANDLER, idempotency_key="desk-7/call-42") == again
    finally:
        eng.close()
        relay.stop()
        schema.close()


# --- the worker, the deliverer ---------------------------------------------------------------
@pytest.mark.postgres
def test_a_database_that_goes_down_inside_a_timer_batch_ends_the_run_without_blaming_timers(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Not "a locked batch failed", nor each timer "failed; released for a retry" with a
    traceback against a dead server: the run ends with StorageUnavailable, and the timers
    are fired after the database is back."""
    schema = _pg_schema()
    relay = Relay(_pg_target())
    relay.start()
    eng, _ = _opened(_through(next(schema), relay.port), clock)
    try:
        to_materials_complete(eng)  # its deadlines run
        clock.advance(timedelta(days=40))  # ... and are all due
        relay.cut_when_sent("SKIP LOCKED", then_down=True)  # the batch's claim
        with (
            caplog.at_level(logging.INFO, logger="baoflow.engine"),
            pytest.raises(StorageUnavailable),
        ):
            eng.run_due_timers()
        assert relay.cuts == 1
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
        relay.start()
        assert eng.run_due_timers().fired > 0
        assert eng.run_due_timers().fired == 0  # each once
    finally:
        eng.close()
        relay.stop()
        schema.close()


def test_the_worker_logs_an_outage_once_without_a_traceback_and_goes_on_when_it_ends(
    outage: Outage, caplog: pytest.LogCaptureFixture
) -> None:
    worker = Worker(outage.engine, name="w-outage", digest=None)
    outage.begin()
    with caplog.at_level(logging.INFO, logger="baoflow.worker"):
        for _ in range(3):
            worker.drain()  # never raises: the desk goes on
        outage.end()
        worker.drain()
    said = [(r.levelname, r.getMessage(), r.exc_info) for r in caplog.records]
    warnings = [s for s in said if s[0] == "WARNING"]
    assert len(warnings) == 1, said
    _, message, exc_info = warnings[0]
    assert message.startswith("w-outage: checking again on every tick: ") and exc_info is None
    assert "StorageUnavailable" not in message and outage.address in message
    assert ("INFO", "w-outage: the database is back; timer checks go on", None) in said
    assert not [s for s in said if s[0] == "ERROR"]


def test_a_worker_stopped_while_the_database_is_down_stops_and_leaves_its_leases_to_run_out(
    outage: Outage, caplog: pytest.LogCaptureFixture
) -> None:
    worker = Worker(outage.engine, name="w-stop", digest=None)
    outage.begin()
    with caplog.at_level(logging.INFO, logger="baoflow.worker"):
        worker.stop()
        worker.log_digest()  # the daily digest, due meanwhile: logged, not raised
    said = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert said[0][0] == "WARNING" and said[0][1].startswith("w-stop: could not release")
    assert said[1:] == [
        ("INFO", "w-stop: stopped after firing 0 timer(s); released 0 lease(s)"),
        ("ERROR", "w-stop: could not compute the daily SLA digest"),
    ]


def test_the_deliverer_raises_storage_unavailable_when_the_database_is_down(
    outage: Outage,
) -> None:
    delivery = deliverer(outage.engine)
    delivery.deliver_due()
    outage.begin()
    with pytest.raises(StorageUnavailable):
        delivery.deliver_due()


# --- the HTTP API and the dashboard ------------------------------------------------------------
def test_an_api_request_while_the_database_is_down_is_a_503_with_retry_after(
    outage: Outage,
) -> None:
    eng = outage.engine
    secret = eng.create_api_token("tests", actor=HANDLER).secret
    auth = {"Authorization": f"Bearer {secret}"}
    client = TestClient(create_app(eng, metrics=False))
    assert client.get(f"/v1/cases/{outage.number}", headers=auth).status_code == 200
    outage.begin()
    for answer in (
        client.get(f"/v1/cases/{outage.number}", headers=auth),
        # the fire route's fast lane answers it (a well-formed request)
        client.post(f"/v1/cases/{outage.number}/events", headers=auth, json={"event": "verify"}),
    ):
        assert answer.status_code == 503, answer.text
        assert answer.headers["retry-after"] == "5"
        assert answer.headers["content-type"] == "application/problem+json"
        body = answer.json()
        assert (body["error"], body["reason"], body["outcome"]) == (
            "StorageUnavailable",
            "unreachable",
            "not applied",
        )
        assert body["detail"].startswith("the database is unavailable just now (unreachable)")
        assert outage.address not in answer.text  # where the database is: the server's log


@pytest.mark.postgres
@pytest.mark.parametrize("then", ["back at once", "down a while"])
def test_an_api_fire_whose_commit_outcome_is_unknown_says_so_and_its_resend_lands_once(
    clock: FakeClock, then: str
) -> None:
    """Also when the database stays down after the cut: the route's read after a refusal
    (so that another branch's case stays unseen) must not answer 'not applied' instead."""
    schema = _pg_schema()
    relay = Relay(_pg_target())
    relay.start()
    eng, number = _opened(_through(next(schema), relay.port), clock)
    try:
        secret = eng.create_api_token("tests", actor=HANDLER).secret
        headers = {"Authorization": f"Bearer {secret}", "Idempotency-Key": "desk-7/call-43"}
        client = TestClient(create_app(eng, metrics=False))
        relay.cut_at_commit("desk-7/call-43", answered=True, then_down=then == "down a while")
        path = f"/v1/cases/{number}/events"
        lost = client.post(path, headers=headers, json={"event": "verify"})
        assert lost.status_code == 503 and lost.headers["retry-after"] == "5", lost.text
        assert lost.json()["outcome"] == "unknown"
        assert "Resend it with the same Idempotency-Key" in lost.json()["detail"]
        if then == "down a while":
            relay.start()
        resent = client.post(path, headers=headers, json={"event": "verify"})
        assert resent.status_code == 200, resent.text
        assert resent.json()["state"] == "verified"
        assert [e.event for e in eng.history(number)].count("verify") == 1
    finally:
        eng.close()
        relay.stop()
        schema.close()


def test_a_dashboard_page_while_the_database_is_down_is_a_503_page(outage: Outage) -> None:
    eng = outage.engine
    eng.add_user("h01", "王芳", PASSWORD, roles=("handler",), org_unit="SH")
    app = create_app(eng, metrics=False, dashboard=create_dashboard(eng, secret="s3cret"))
    with TestClient(app, base_url="http://desk.test") as client:
        logged_in(client)
        outage.begin()
        page = client.get("/")
    assert page.status_code == 503
    assert page.headers["retry-after"] == "5"
    assert page.headers["content-type"].startswith("text/html")
    assert "数据库暂时无法访问" in page.text and "未做任何更改" in page.text
