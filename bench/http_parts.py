"""Where a fire over HTTP spends its time, in-process (no sockets): the app called
through ASGI with and without its layers, beside the pieces of the fast lane's work.

Run from the project root::

    .venv/bin/python -m bench.http_parts

Prints microseconds per fire (best of 3 runs of 1,000), each against the library's own
``fire()`` on the same database. Figures in docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from baoflow.api import create_app
from baoflow.api.app import fire_on
from baoflow.api.fast import FastFire
from baoflow.api.models import CaseOut, FireRequest
from bench.fire import HANDLER, RECEIVE, Cloner, make_templates, new_engine
from bench.http import constant_app

N = 1000


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-http-parts-"))
    eng = new_engine(work / "parts.db")
    _reported, applied = make_templates(eng, reported=False)
    ids = Cloner(eng).clone(applied, 200)
    secret = eng.create_api_token("bench", actor=HANDLER).secret
    payload = orjson.dumps({"event": "receive_materials", "data": RECEIVE})
    headers = [
        (b"host", b"bench"),
        (b"authorization", f"Bearer {secret}".encode()),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]

    async def call(app: Any, path: str) -> None:
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(),
            "query_string": b"", "root_path": "", "headers": headers,
            "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
        }  # fmt: skip
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": payload, "more_body": False}
            await asyncio.sleep(3600)
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            pass

        await app(scope, receive, send)

    async def many(app: Any, n: int) -> None:
        for i in range(n):
            await call(app, f"/v1/cases/{ids[i % len(ids)]}/events")

    def through(app: Any) -> float:
        asyncio.run(many(app, 200))
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            asyncio.run(many(app, N))
            best = min(best, (time.perf_counter() - t0) / N * 1e6)
        return best

    def each(f: Callable[[], object]) -> float:
        return min(timeit.repeat(f, number=N, repeat=3)) / N * 1e6

    turn = [0]

    def library() -> None:
        turn[0] += 1
        eng.fire(ids[turn[0] % len(ids)], "receive_materials", HANDLER, RECEIVE)

    who = eng.authenticate(secret)
    request = FireRequest.model_validate_json(payload)
    fired = eng.fire(ids[0], request.event, who, request.data)
    rows = [
        ("library fire()", each(library)),
        ("the whole app (metrics timer, fast lane)", through(create_app(eng))),
        ("the app without metrics", through(create_app(eng, metrics=False))),
        ("the fast lane alone", through(FastFire(constant_app, eng, fire_on))),
        ("ASGI harness (a constant app)", through(constant_app)),
        ("token check (trusted)", each(lambda: eng.authenticate(secret))),
        ("body validation", each(lambda: FireRequest.model_validate_json(payload))),
        ("visibility check", each(lambda: eng.may_see(fired, who))),
        ("the answer's JSON (CaseOut.encode)", each(lambda: CaseOut.encode(fired))),
        ("the answer's JSON through pydantic", each(lambda: CaseOut.of(fired).model_dump_json())),
    ]
    for label, us in rows:
        print(f"{label:45} {us:7.1f} µs")
    eng.close()


if __name__ == "__main__":
    main()
