"""PostgreSQL stopped and started again under two timer workers (issue #15 item 7): the
workers say once that the database is unavailable, keep ticking, say when it is back,
and in the end every timer has fired exactly once.

The cluster is the test's own: made with ``initdb`` in a temporary folder, on a free
port of its own and a socket folder of its own, and always stopped at the end — never
the shared server of ``BAOFLOW_TEST_PG_URL``. PostgreSQL refuses to run as root, so as
root the cluster runs as the ``postgres`` OS user.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import multiprocessing as mp
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from baoflow.engine import ChineseOfficialCalendar, open_engine
from baoflow.engine.clock import monotonic
from baoflow.engine.scheduler import Worker
from baoflow.engine.store import normalise_url

from tests.test_scale_out import LATER, _assert_each_clone_warned_exactly_once, _clone_claims
from tests.test_storage_unavailable import free_port  # below the ephemeral range: restartable

pytestmark = pytest.mark.postgres

CTX = mp.get_context("spawn")  # a fresh interpreter each, as separate workers would be
N_TIMERS = 3000
BATCH = 10
RESTARTS = 2
DOWN = "checking again on every tick"  # what a worker logs when the database is down
BACK = "the database is back"


class RunningClock:
    """Real time, started at ``start``: leases run out as they would in production."""

    def __init__(self, start: datetime) -> None:
        self.start = start
        self.began = monotonic()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=monotonic() - self.began)


def _worker(url: str, name: str, log_path: str) -> None:
    """A timer worker as ``baoflow worker`` runs one, logging to ``log_path``, until
    SIGTERM."""
    logging.basicConfig(
        filename=log_path, level=logging.INFO, format="%(levelname)s %(name)s %(message)s"
    )
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # a line per tick
    eng = open_engine(
        url, clock=RunningClock(LATER), calendar=ChineseOfficialCalendar(), migrate=False
    )
    worker = Worker(eng, tick=0.2, batch=BATCH, lease=timedelta(seconds=3), name=name, digest=None)
    worker.run_forever()
    eng.close()


# --- the cluster ------------------------------------------------------------------------
def _bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_major)
    if not found:
        pytest.skip("no PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb)")
    return Path(found[-1]).parent


def _major(path: str) -> int:
    version = Path(path).parent.parent.name
    return int(version) if version.isdigit() else 0


def _as_owner() -> tuple[list[str], int | None]:
    """The command prefix that runs the cluster's programs, and the uid to own its folder
    (None: the current user)."""
    if os.geteuid() != 0:
        return [], None
    try:
        uid = pwd.getpwnam("postgres").pw_uid
    except KeyError:
        pytest.skip("running as root, and there is no 'postgres' user to run initdb as")
    runuser = shutil.which("runuser")
    if runuser is None:
        pytest.skip("running as root, and there is no runuser to run initdb as 'postgres'")
    return [runuser, "-u", "postgres", "--"], uid


class Cluster:
    """A throwaway PostgreSQL cluster on its own port."""

    def __init__(self, bindir: Path, root: Path, prefix: list[str]) -> None:
        self.bindir = bindir
        self.data = root / "data"
        self.socket = root / "socket"
        self.log = root / "server.log"
        self.prefix = prefix
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, program: str, *args: str) -> None:
        done = subprocess.run(
            [*self.prefix, str(self.bindir / program), *args],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, f"{program} {' '.join(args)}:\n{done.stdout}{done.stderr}"

    def create(self) -> None:
        self._run(
            "initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
            "--locale=C", "--no-sync",
        )  # fmt: skip

    def start(self) -> None:
        options = f"-p {self.port} -k {self.socket} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    bindir = _bin()
    prefix, uid = _as_owner()
    # Not tmp_path: pytest's folder is root's alone (0700), which the postgres user
    # cannot enter.
    root = Path(tempfile.mkdtemp(prefix="baoflow-pg-"))
    try:
        (root / "socket").mkdir()
        if uid is not None:
            for path in (root, root / "socket"):
                os.chown(path, uid, -1)
        made = Cluster(bindir, root, prefix)
        made.create()
        made.start()
        try:
            yield made
        finally:
            with contextlib.suppress(AssertionError):  # stopped already (a failed start)
                made.stop("immediate")
    finally:
        shutil.rmtree(root, ignore_errors=True)


# --- the test -----------------------------------------------------------------------------
def _fired(sql: sa.Engine) -> int | None:
    """How many timers have fired, or None while the database is down."""
    try:
        with sql.connect() as conn:
            q = sa.text("SELECT count(*) FROM timers WHERE status = 'fired'")
            return int(conn.execute(q).scalar_one())
    except sa.exc.OperationalError:
        return None


def _until(what: str, check: Callable[[], bool], timeout: float, logs: dict[str, Path]) -> None:
    deadline = monotonic() + timeout
    while not check():
        if monotonic() > deadline:
            tails = {name: _tail(log) for name, log in logs.items()}
            raise AssertionError(f"gave up waiting ({timeout:.0f}s) until {what}: {tails}")
        time.sleep(0.05)


def _tail(log: Path, lines: int = 15) -> str:
    if not log.exists():
        return "(no log)"
    return "\n".join(log.read_text(encoding="utf-8").splitlines()[-lines:])


def _said(log: Path, text: str) -> int:
    return log.read_text(encoding="utf-8").count(text) if log.exists() else 0


@pytest.mark.timeout(240)
def test_two_workers_survive_postgresql_restarts_and_fire_each_timer_once(
    cluster: Cluster, tmp_path: Path
) -> None:
    sql = sa.create_engine(normalise_url(cluster.url), poolclass=sa.pool.NullPool)
    started = time.perf_counter()
    source_id, version = _clone_claims(cluster.url, sql, N_TIMERS)  # migrates it first
    logs = {name: tmp_path / f"{name}.log" for name in ("w1", "w2")}
    workers = {
        name: CTX.Process(target=_worker, args=(cluster.url, name, str(log)), daemon=True)
        for name, log in logs.items()
    }
    left_at_stop: list[int] = []
    try:
        for proc in workers.values():
            proc.start()
        for restart in range(1, RESTARTS + 1):
            goal = restart * N_TIMERS // (RESTARTS + 1)
            _until(f"{goal} timers fired", lambda goal=goal: (_fired(sql) or 0) >= goal, 120, logs)
            cluster.stop("fast")
            _until(
                "both workers said the database is down",
                lambda n=restart: all(_said(log, DOWN) >= n for log in logs.values()),
                30,
                logs,
            )
            cluster.start()
            # nothing fires while it is down: what is left now was left at the stop, at
            # least
            left_at_stop.append(N_TIMERS - (_fired(sql) or N_TIMERS))
        _until("every timer fired", lambda: _fired(sql) == N_TIMERS, 120, logs)
        for name, proc in workers.items():
            assert proc.is_alive(), f"{name} died: {logs[name].read_text(encoding='utf-8')}"
            os.kill(proc.pid, signal.SIGTERM)  # a graceful stop, as `baoflow worker` has
        for proc in workers.values():
            proc.join(60)
            assert proc.exitcode == 0, proc.exitcode
    finally:
        for proc in workers.values():
            if proc.is_alive():
                proc.kill()
                proc.join(10)
    seconds = time.perf_counter() - started

    told = {name: _said(log, DOWN) for name, log in logs.items()}
    back = {name: _said(log, BACK) for name, log in logs.items()}
    errors = {name: _said(log, "ERROR") for name, log in logs.items()}
    print(
        f"\n{N_TIMERS} timers, {RESTARTS} restarts with {left_at_stop} still to fire; "
        f"'database down' said {told}, 'back' {back}; {seconds:.1f}s"
    )
    assert all(left > 0 for left in left_at_stop)  # each stop came mid-drain
    assert told == back == {"w1": RESTARTS, "w2": RESTARTS}  # once per outage, each
    assert errors == {"w1": 0, "w2": 0}, {n: log.read_text() for n, log in logs.items()}
    _assert_each_clone_warned_exactly_once(sql, source_id, version)
    sql.dispose()
