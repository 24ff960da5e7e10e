"""``baoflow serve`` as a subprocess, and the ``baoflow tokens`` commands."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from click.testing import CliRunner

from baoflow.cli import main
from tests.conftest import AGENT, POLICIES, report, upgraded


def _url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'serve.db'}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_tokens_add_list_and_revoke(tmp_path: Path) -> None:
    url = upgraded(_url(tmp_path))
    run = CliRunner().invoke
    added = run(
        main,
        [
            "tokens",
            "add",
            "desk-app",
            "--url",
            url,
            "--actor",
            "a01",
            "--name",
            "李静",
            "--role",
            "service_agent",
            "--org",
            "SH",
            "--act-for",
            "h01:王芳:handler:SH",
        ],
    )
    assert added.exit_code == 0, added.output
    secret = added.output.strip().splitlines()[-1]
    assert secret.startswith("bf_")
    assert "as a01 李静 (service_agent; SH)" in added.output
    assert "for h01 王芳 (handler; SH)" in added.output
    listed = run(main, ["tokens", "list", "--url", url], env={"COLUMNS": "200"})
    assert listed.exit_code == 0, listed.output
    assert "desk-app" in listed.output and f"{secret[:10]}…" in listed.output
    assert secret not in listed.output and "never" in listed.output
    revoked = run(main, ["tokens", "revoke", "1", "--url", url])
    assert revoked.exit_code == 0 and "token 1 (desk-app) revoked" in revoked.output
    assert "desk-app" not in run(main, ["tokens", "list", "--active", "--url", url]).output
    missing = run(main, ["tokens", "revoke", "9", "--url", url])
    assert missing.exit_code == 2 and "no API token 9" in missing.output
    nobody = run(main, ["tokens", "add", "x", "--url", url])
    assert nobody.exit_code == 2 and "acts as an actor or for named people" in nobody.output


def test_serve_answers_over_http_and_stops_on_sigterm(tmp_path: Path) -> None:
    url = _url(tmp_path)
    from baoflow.engine import open_engine

    eng = open_engine(url)
    eng.policies.add(POLICIES)  # type: ignore[attr-defined]
    secret = eng.create_api_token("tests", actor=AGENT).secret
    eng.close()
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "baoflow.cli", "serve", "--url", url, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                httpx.get(f"{base}/openapi.json", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        auth = {"Authorization": f"Bearer {secret}"}
        with httpx.Client(base_url=base, headers=auth) as client:
            opened = client.post("/v1/cases", json={"workflow": "claim", "data": report()})
            assert opened.status_code == 201, opened.text
            number = opened.json()["case"]["number"]
            got = client.get(f"/v1/cases/{number}")
            assert got.json()["number"] == number
            assert "server" not in got.headers  # the server's software is not announced
            assert (
                client.get("/v1/cases", headers={"Authorization": "Bearer nope"}).status_code == 401
            )
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "with the timer worker" in out and "stopped after firing" in out
