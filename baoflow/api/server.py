"""``baoflow serve``: the API under uvicorn, with the timer worker in the same process.

On SQLite one process serves everything: the API, the worker that fires due timers,
and (given a notification configuration) the deliverer of the outbox. On PostgreSQL
the API may run alone (``worker=False``) while ``baoflow worker`` processes drain the
timers apart. SIGTERM (or Ctrl-C) stops uvicorn gracefully — requests under way are
finished — and then the worker, which finishes its batch and releases its leases.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import uvicorn

from baoflow.engine import Engine

from .app import create_app

log = logging.getLogger("baoflow.serve")


class _Server(uvicorn.Server):
    """uvicorn's server, except that a SIGTERM ends :func:`serve` normally (uvicorn
    raises the signal again once it has stopped, which would kill the process before
    the worker releases its leases)."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        before = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in before.items():
                signal.signal(sig, handler)


def serve(
    engine: Engine,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    worker: bool = True,
    deliverer: Any = None,
    tick: float = 0.5,
    access_log: bool = False,
    insurers: Mapping[str, bytes] | None = None,
    metrics: bool = True,
    dashboard: bool = True,
    trust_header: str | None = None,
) -> None:
    """Serve ``engine``'s API until SIGTERM or SIGINT; run the timer worker (and the
    ``deliverer``) beside it unless ``worker`` is false; with ``dashboard``, the
    supervisors' dashboard at ``/`` (``trust_header``: docs/dashboard.md)."""
    from baoflow.dashboard import create_dashboard
    from baoflow.engine.scheduler import Worker

    pages = create_dashboard(engine, trust_header=trust_header) if dashboard else None
    app = create_app(engine, insurers=insurers, metrics=metrics, dashboard=pages)
    timers = Worker(engine, tick=tick, deliverer=deliverer) if worker else None
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        access_log=access_log,
        log_config=None,  # the root logger's setup, as `baoflow worker` uses
        timeout_graceful_shutdown=30,
        server_header=False,  # no "server: uvicorn": nothing to tell a scanner
    )
    server = _Server(config)
    if timers is not None:
        timers.start()
    try:
        log.info(
            "serving %s on http://%s:%d (%s)%s",
            engine.database,
            host,
            port,
            "with the timer worker" if timers else "API only: run `baoflow worker` apart",
            f"; the dashboard at http://{host}:{port}/" if dashboard else "",
        )
        server.run()  # uvicorn handles SIGTERM/SIGINT: stops taking requests, drains
    finally:
        if timers is not None:
            timers.stop()
        log.info("stopped")
