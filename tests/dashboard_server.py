"""A dashboard served for real, in this process: uvicorn in a thread on a free port,
over an engine on a FakeClock and a SQLite file (the browser tests and the benchmark)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from baoflow.engine import Engine

from baoflow.api.app import create_app
from baoflow.dashboard import create_dashboard


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(engine: Engine, *, refresh: float = 0.5, **options: object) -> Iterator[str]:
    """The base URL of the API with the dashboard over ``engine``, until the block ends."""
    port = free_port()
    app = create_app(
        engine,
        metrics=False,
        dashboard=create_dashboard(engine, secret="test secret", refresh=refresh, **options),  # type: ignore[arg-type]
    )
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the dashboard's server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
