"""Benchmark of ``fire()`` over HTTP against the library's ``fire()``, in one run.

Run from the project root::

    .venv/bin/python -m bench.http                      # 5 rounds of 2,000 fires each
    .venv/bin/python -m bench.http --rounds 3 --ops 1000 --profile

Both sides fire the same event — ``receive_materials`` on claims in ``applied`` (a
self-loop with a schema, an action and history; bench/fire.py's ``fire``) — on copies
of one SQLite database: the library in this process, the API in one ``baoflow serve
--no-worker`` process (uvicorn, one worker), first through one keep-alive
``httpx.Client`` one request at a time, then under load (``--connections`` keep-alive
connections from a separate process, raw HTTP/1.1). The floor: the same load against
uvicorn answering a constant (what HTTP alone costs). Rounds alternate them, and each
round's ratios to the library are reported (target: >= 50% under load). ``--profile``
then runs the server under cProfile.
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
import orjson
from starlette.types import Receive, Scope, Send

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


_CONSTANT = b'{"ok":true}'


async def constant_app(scope: Scope, receive: Receive, send: Send) -> None:
    """The HTTP floor: an ASGI app that reads the request and answers a constant 200,
    served by the same uvicorn as the API (what HTTP alone costs per request)."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(_CONSTANT)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": _CONSTANT})


def _floor_server(port: int) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "uvicorn", "bench.http:constant_app", "--port", str(port)]
    cmd += ["--log-level", "warning", "--no-access-log"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return proc
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError("the floor server did not start")


def _request(path: str, secret: str, payload: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {secret}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


async def _connection(port: int, requests: list[bytes], done: list[int]) -> None:
    """One keep-alive connection sending ``requests`` one after another, each answer
    read whole (headers, then Content-Length bytes) and checked to be 200."""
    import asyncio

    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for raw in requests:
            writer.write(raw)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(head.decode(errors="replace"))
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            done[0] += 1
    finally:
        writer.close()


def load_child(port: int, secret: str, paths: list[str], ops: int, connections: int) -> None:
    """Fire ``ops`` events over ``connections`` concurrent keep-alive connections (each
    on its own cases), from this separate process: prints the fires per second."""
    import asyncio

    payload = orjson.dumps({"event": "receive_materials", "data": RECEIVE})
    per = [
        [
            _request(paths[(c + k * connections) % len(paths)], secret, payload)
            for k in range(ops // connections)
        ]
        for c in range(connections)
    ]
    done = [0]

    async def run() -> float:
        t0 = time.perf_counter()
        await asyncio.gather(*(_connection(port, reqs, done) for reqs in per))
        return time.perf_counter() - t0

    elapsed = asyncio.run(run())
    print(f"{done[0] / elapsed:.1f}")


def _throughput(port: int, secret: str, paths: list[str], ops: int, connections: int) -> float:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.http",
            "--load-child",
            str(port),
            "--secret",
            secret,
            "--ops",
            str(ops),
            "--connections",
            str(connections),
            "--paths",
            ",".join(paths),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return float(out.stdout.strip())


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ops", type=int, default=2000)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--connections", type=int, default=4, help="concurrent connections of the load (4)"
    )
    parser.add_argument("--load-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--secret", help=argparse.SUPPRESS)
    parser.add_argument("--paths", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load_child:
        load_child(args.load_child, args.secret, args.paths.split(","), args.ops, args.connections)
        return 0
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
    floors: list[float] = []
    floor_port = _free_port()
    floor_server = _floor_server(floor_port)
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
            loaded = _throughput(port, secret, paths, args.ops, args.connections)
            floor = _throughput(floor_port, secret, paths, args.ops, args.connections)
            rows.append((r + 1, args.ops / t_lib, args.ops / t_http, loaded))
            floors.append(floor)
            print(
                f"round {r + 1}: library {args.ops / t_lib:,.0f}/s  http one at a time "
                f"{args.ops / t_http:,.0f}/s ({t_lib / t_http:.1%})  http "
                f"{args.connections} connections {loaded:,.0f}/s "
                f"({loaded / (args.ops / t_lib):.1%})  http floor {floor:,.0f}/s",
                flush=True,
            )
    finally:
        client.close()
        server.send_signal(signal.SIGTERM)
        server.wait(30)
        floor_server.send_signal(signal.SIGTERM)
        floor_server.wait(30)
        lib.close()
    ratio = statistics.median(h / lb for _r, lb, h, _t in rows)
    loaded_ratio = statistics.median(t / lb for _r, lb, _h, t in rows)
    lib_us = statistics.median(1e6 / lb for _r, lb, _h, _t in rows)
    http_us = statistics.median(1e6 / h for _r, _lb, h, _t in rows)
    loaded = statistics.median(t for _r, _lb, _h, t in rows)
    print(
        f"median: library {lib_us:.0f} µs per fire; http one at a time {http_us:.0f} µs "
        f"({ratio:.1%}); http under load {loaded:,.0f}/s, {loaded_ratio:.1%} of the "
        f"library's fires/s (target {TARGET:.0%}); the HTTP floor (uvicorn answering a "
        f"constant) {statistics.median(floors):,.0f}/s"
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
