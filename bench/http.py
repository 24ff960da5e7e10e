"""Benchmark of ``fire()`` over HTTP against the library's ``fire()``, in one run.

Run from the project root::

    .venv/bin/python -m bench.http                      # 5 rounds of 2,000 fires each
    .venv/bin/python -m bench.http --rounds 3 --ops 1000 --profile

Both sides fire the same event — ``receive_materials`` on claims in ``applied`` (a
self-loop with a schema, an action and history; bench/fire.py's ``fire``) — on copies
of one SQLite database: the library in this process, the API in one ``baoflow serve
--no-worker`` process (uvicorn, one worker) through one keep-alive ``httpx.Client``,
one request at a time. Rounds alternate the two, and each round's ratio HTTP/library
is reported (target: >= 50%). ``--profile`` then runs the server under cProfile.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.fire import HANDLER, RECEIVE, Cloner, checkpoint_and_close, make_templates, new_engine

TARGET = 0.50


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server(db: Path, port: int, profile: Path | None) -> subprocess.Popen[bytes]:
    cmd = [sys.executable]
    if profile is not None:
        cmd += ["-m", "cProfile", "-o", str(profile)]
    cmd += [
        "-m",
        "baoflow.cli",
        "serve",
        "--url",
        f"sqlite:///{db}",
        "--port",
        str(port),
        "--no-worker",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=1)
            return proc
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError("the server did not start")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ops", type=int, default=2000)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-http-"))
    template = work / "template.db"
    eng = new_engine(template)
    _reported, applied = make_templates(eng, reported=False)
    ids = Cloner(eng).clone(applied, 200)
    secret = eng.create_api_token("bench", actor=HANDLER).secret
    checkpoint_and_close(eng)
    lib_db, http_db = work / "lib.db", work / "http.db"
    shutil.copy(template, lib_db)
    shutil.copy(template, http_db)

    lib = new_engine(lib_db, migrate=False)
    port = _free_port()
    server = _server(http_db, port, None)
    client = httpx.Client(
        base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {secret}"}
    )
    body = {"event": "receive_materials", "data": RECEIVE}
    paths = [f"/v1/cases/{i}/events" for i in ids]
    rows = []
    try:
        for i in range(min(100, args.ops)):  # warm up both
            lib.fire(ids[i % len(ids)], "receive_materials", HANDLER, RECEIVE)
            assert client.post(paths[i % len(ids)], json=body).status_code == 200
        for r in range(args.rounds):
            t0 = time.perf_counter()
            for i in range(args.ops):
                lib.fire(ids[i % len(ids)], "receive_materials", HANDLER, RECEIVE)
            t_lib = time.perf_counter() - t0
            t0 = time.perf_counter()
            for i in range(args.ops):
                response = client.post(paths[i % len(ids)], json=body)
                if response.status_code != 200:
                    raise RuntimeError(response.text)
            t_http = time.perf_counter() - t0
            rows.append((r + 1, args.ops / t_lib, args.ops / t_http))
            print(
                f"round {r + 1}: library {args.ops / t_lib:,.0f}/s  http "
                f"{args.ops / t_http:,.0f}/s  ratio {t_lib / t_http:.1%}",
                flush=True,
            )
    finally:
        client.close()
        server.send_signal(signal.SIGTERM)
        server.wait(30)
        lib.close()
    ratio = statistics.median(h / lb for _r, lb, h in rows)
    lib_us = statistics.median(1e6 / lb for _r, lb, _h in rows)
    http_us = statistics.median(1e6 / h for _r, _lb, h in rows)
    print(
        f"median: library {lib_us:.0f} µs, http {http_us:.0f} µs per fire; "
        f"http/library {ratio:.1%} (target {TARGET:.0%})"
    )

    if args.profile:
        stats = work / "server.prof"
        port = _free_port()
        server = _server(http_db, port, stats)
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {secret}"}
        ) as c:
            for i in range(args.ops):
                c.post(paths[i % len(ids)], json=body)
        server.send_signal(signal.SIGINT)
        server.wait(30)
        import pstats

        p = pstats.Stats(str(stats))
        p.sort_stats("cumulative").print_stats(40)
    if os.environ.get("BENCH_KEEP") is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
