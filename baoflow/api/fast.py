"""The fast lane of the API's hottest route, ``POST /v1/cases/{case}/events``.

A fire through FastAPI spends about three times the engine's own work in the framework
(dependency solving, parameter validation: docs/benchmarks.md). This ASGI middleware
answers the well-formed requests of that one route itself — a bearer token, a JSON body
that is a valid ``FireRequest``, headers within the route's limits — by calling the same
functions the route calls (``Engine.authenticate``, :func:`baoflow.api.app.fire_on`,
:func:`baoflow.api.problems.from_error`), so the answers are the route's, byte for byte.
Anything else (a missing or odd header, a body that does not validate, another method,
a query string) goes on to FastAPI unchanged, with its body, and gets FastAPI's answer.

On SQLite the fire runs on the event loop (SQLite takes one writer at a time, and a hop
to a thread costs more than the fire); on PostgreSQL in a worker thread, so requests
overlap their round trips.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from baoflow.engine import Actor, BaoflowError, Engine

from . import problems
from .models import ACT_FOR_MAX, CASE_REF_MAX, IDEMPOTENCY_KEY_MAX, FireRequest

#: The route it stands in for (the template is what the metrics label it with).
TEMPLATE = "/v1/cases/{case}/events"
_PATH = re.compile(rf"^/v1/cases/([^/]{{1,{CASE_REF_MAX}}})/events$")
#: A body larger than this goes the long way (FastAPI applies its own limit).
_BODY_MAX = 1 << 20

#: The headers of an error's answer the fast lane passes on (as FastAPI's answer has them).
_PASSED_ON = ("www-authenticate", "retry-after")

FireOn = Callable[[Engine, str, FireRequest, Actor, "str | None"], bytes]


class FastFire:
    """ASGI middleware: the fast lane in front of ``app`` for ``engine``'s fire route."""

    def __init__(self, app: ASGIApp, engine: Engine, fire_on: FireOn) -> None:
        self.app = app
        self.engine = engine
        self.fire_on = fire_on
        self.inline = engine.backend == "sqlite"
        self._route = SimpleNamespace(path=TEMPLATE)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["query_string"]:
            await self.app(scope, receive, send)
            return
        match = _PATH.match(scope["path"])
        headers = _headers(scope) if match else None
        if match is None or headers is None:
            await self.app(scope, receive, send)
            return
        body, chunks = await _read(receive)
        request = None if body is None else _parsed(body)
        if request is None:
            await self.app(scope, _replay(chunks, receive), send)
            return
        secret, act_for, key = headers
        case = match.group(1)
        try:
            if self.inline:
                out = self._fire(secret, act_for, key, case, request)
            else:
                out = await run_in_threadpool(self._fire, secret, act_for, key, case, request)
            status, raw, extra = 200, out, {}
        except Exception as exc:
            error = (
                problems.from_error(exc, scope["path"])
                if isinstance(exc, BaoflowError)
                else problems.unexpected("POST", scope["path"])
            )
            status, raw = error.status_code, bytes(error.body)
            extra = {k: v for k, v in error.headers.items() if k.lower() in _PASSED_ON}
            media = problems.MEDIA_TYPE
        else:
            media = "application/json"
        scope["route"] = self._route  # as FastAPI would set it, for the metrics
        await _answer(send, status, raw, media, extra)

    def _fire(
        self, secret: str, act_for: str | None, key: str | None, case: str, request: FireRequest
    ) -> bytes:
        who = self.engine.authenticate(secret, act_for)
        return self.fire_on(self.engine, case, request, who, key)


def _headers(scope: Scope) -> tuple[str, str | None, str | None] | None:
    """The bearer secret, X-Act-For and Idempotency-Key, or None when any is not of the
    plain shape the route takes (then FastAPI answers)."""
    secret = act_for = key = None
    json = False
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            if scheme.lower() != "bearer" or not credentials or " " in credentials:
                return None
            secret = credentials
        elif name == b"x-act-for":
            act_for = value.decode("latin-1")
            if not act_for or len(act_for) > ACT_FOR_MAX:
                return None
        elif name == b"idempotency-key":
            key = value.decode("latin-1")
            if not key or len(key) > IDEMPOTENCY_KEY_MAX:
                return None
        elif name == b"content-type":
            json = value.split(b";")[0].strip().lower() == b"application/json"
    if secret is None or not json:
        return None
    return secret, act_for, key


async def _read(receive: Receive) -> tuple[bytes | None, list[Message]]:
    """The whole body (None past the limit), and the messages it came in."""
    chunks: list[Message] = []
    size = 0
    while True:
        message = await receive()
        chunks.append(message)
        if message["type"] != "http.request":
            return None, chunks
        size += len(message.get("body", b""))
        if size > _BODY_MAX:
            return None, chunks
        if not message.get("more_body", False):
            return b"".join(m.get("body", b"") for m in chunks), chunks


def _parsed(body: bytes) -> FireRequest | None:
    try:
        return FireRequest.model_validate_json(body)
    except ValueError:  # pydantic's ValidationError is one
        return None


def _replay(chunks: list[Message], receive: Receive) -> Receive:
    """A receive that gives the messages already read, then the rest."""
    pending = list(chunks)

    async def again() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return again


async def _answer(send: Send, status: int, raw: bytes, media: str, extra: dict[str, Any]) -> None:
    headers = [
        (b"content-type", media.encode()),
        (b"content-length", str(len(raw)).encode()),
        *((k.encode(), str(v).encode()) for k, v in extra.items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": raw})
