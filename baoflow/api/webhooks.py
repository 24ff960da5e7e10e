"""The insurers' signed webhooks (issue #12): ``POST /webhooks/insurers/{insurer}``.

An insurer tells the desk that it has the materials, that it needs more, what it
decided and that it paid. Each message is signed the way Stripe signs its events:

    Baoflow-Signature: t=1778029200,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd

``t`` is the sending time in Unix seconds; ``v1`` is the lower-case hex
HMAC-SHA256, keyed with the insurer's secret, of the bytes ``t`` + ``"."`` + the raw
request body (exactly as sent: the body is not re-serialised before checking). Several
``v1=`` entries may be given (while a secret is rotated); one matching is enough. The
comparison is constant-time. A timestamp further than the replay window (5 minutes)
from the engine's clock, in either direction, is refused, so a captured request cannot
be replayed later.

The body is a JSON object::

    {"message_id": "PA-MSG-0001", "kind": "decision",
     "case_number": "LP-20260506-000001", "reference": "PA-2026-0001",
     "payload": {"outcome": "approved", "amount": "8000.00", "decided_at": "..."}}

``message_id`` and ``kind`` are required, and one of ``case_number`` (ours) or
``reference`` (the insurer's, as the desk recorded it at hand-over). The answer is the
engine's result (``InboundResult``): 200 when the event fired, 202 when the message was
stored for a person to resolve; a resend gets the first answer again. Errors are RFC
9457 problem details (``application/problem+json``): 401 for a missing or bad signature
or a timestamp outside the window, 404 for an insurer not configured, 400 for a body
that is not such an object, 409 for a message id reused with other content (or a case
that changed under the message: send it again), 413 for a body over 1 MiB.

Secrets come from the environment, named in a TOML file (:func:`load_insurer_secrets`)::

    [insurers.pingan]
    secret_env = "BAOFLOW_INSURER_PINGAN_SECRET"
"""

from __future__ import annotations

import hashlib
import hmac
import os
import tomllib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from baoflow.api import problems as api_problems
from baoflow.engine import (
    ConflictError,
    Engine,
    InsurerMessage,
    InvalidData,
    MessageIdReused,
    Problem,
    limits,
)

SIGNATURE_HEADER = "Baoflow-Signature"
#: The largest body taken (a message is a few hundred bytes).
MAX_BODY = 1 << 20


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The ``Baoflow-Signature`` header value an insurer sends for ``body`` at ``timestamp``
    (what a sender implements; the tests sign with it)."""
    return f"t={timestamp},v1={_mac(secret, timestamp, body)}"


def _mac(secret: bytes, timestamp: int | str, body: bytes) -> str:
    return hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message_id: str = Field(min_length=1, max_length=limits.MESSAGE_ID.chars)
    kind: str = Field(min_length=1, max_length=limits.MESSAGE_KIND.chars)
    case_number: str | None = Field(default=None, max_length=limits.CASE_NUMBER.chars)
    reference: str | None = Field(default=None, max_length=limits.REFERENCE.chars)
    payload: dict[str, Any] = Field(default_factory=dict)


def problem(status: int, slug: str, title: str, detail: str, **extra: Any) -> Response:
    """An RFC 9457 problem details response, the same shape as the rest of the API's
    (``baoflow.api.problems``): ``type`` is ``urn:baoflow:problem:<slug>``."""
    error = "".join(part.capitalize() for part in slug.split("-"))
    return api_problems.problem(status, error, detail, title=title, **extra)


def verify(
    secret: bytes, header: str | None, body: bytes, now: datetime, window: timedelta
) -> str | None:
    """None if ``header`` signs ``body`` with ``secret`` within ``window`` of ``now``;
    otherwise what is wrong, for the 401 problem."""
    if not header:
        return f"the {SIGNATURE_HEADER} header is missing: sign the request (t=...,v1=...)"
    stamp: str | None = None
    macs: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            stamp = value
        elif key == "v1":
            macs.append(value)
    if stamp is None or not stamp.isdigit() or not macs:
        return f"the {SIGNATURE_HEADER} header must read t=<unix seconds>,v1=<hex HMAC-SHA256>"
    sent = datetime.fromtimestamp(int(stamp), tz=UTC)
    if abs(now - sent) > window:
        return (
            f"the signature's timestamp {sent.isoformat()} is more than "
            f"{int(window.total_seconds())} s from now: a replayed or delayed request"
        )
    expected = _mac(secret, stamp, body)
    # Every entry is compared, each in constant time.
    matched = [hmac.compare_digest(expected, m) for m in macs]
    return None if any(matched) else "the signature does not match the body and the timestamp"


def insurer_webhooks(
    engine: Engine,
    secrets: Mapping[str, bytes],
    *,
    window: timedelta = timedelta(minutes=5),
) -> APIRouter:
    """The router of ``POST /webhooks/insurers/{insurer}``: each configured insurer's
    signed messages go to ``engine.receive_insurer_message``."""
    for name, secret in secrets.items():
        if not secret:
            raise ValueError(f"the webhook secret of insurer {name!r} is empty")
    known = dict(secrets)
    router = APIRouter()

    @router.post(
        "/webhooks/insurers/{insurer}",
        summary="An insurer's signed message (receipt, materials request, decision, payment)",
        responses={
            200: {"description": "the event fired"},
            202: {"description": "stored for a person to resolve"},
            400: {"description": "malformed body"},
            401: {"description": "bad or missing signature, or a stale timestamp"},
            404: {"description": "insurer not configured"},
            409: {"description": "message id reused with other content"},
        },
    )
    async def receive(insurer: str, request: Request) -> Response:
        secret = known.get(insurer)
        if secret is None:
            return problem(
                404,
                "unknown-insurer",
                "Unknown insurer",
                f"no insurer {insurer!r} is configured to send webhooks here",
            )
        body = await request.body()
        if len(body) > MAX_BODY:
            return problem(413, "too-large", "Body too large", f"at most {MAX_BODY} bytes")
        wrong = verify(
            secret, request.headers.get(SIGNATURE_HEADER), body, engine.clock.now(), window
        )
        if wrong is not None:
            return problem(401, "bad-signature", "Signature refused", wrong)
        try:
            parsed = _Body.model_validate(orjson.loads(body))
        except orjson.JSONDecodeError as exc:
            return problem(400, "malformed", "Malformed message", f"the body is not JSON: {exc}")
        except ValidationError as exc:
            problems = [
                {"location": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
                for e in exc.errors()
            ]
            return problem(
                400,
                "malformed",
                "Malformed message",
                "the body is not a message object (message_id, kind, case_number or "
                "reference, payload)",
                problems=problems,
            )
        message = InsurerMessage(
            insurer=insurer,
            message_id=parsed.message_id,
            kind=parsed.kind,
            case_number=parsed.case_number,
            reference=parsed.reference,
            payload=parsed.payload,
        )
        try:
            result = await run_in_threadpool(engine.receive_insurer_message, message)
        except InvalidData as exc:
            return problem(
                400,
                "malformed",
                "Malformed message",
                str(exc),
                problems=[{"location": p.location, "message": p.message} for p in exc.problems],
            )
        except MessageIdReused as exc:
            return problem(409, "message-id-reused", "Message id reused", str(exc))
        except ConflictError as exc:
            return problem(409, "conflict", "Case changed meanwhile: send again", str(exc))
        return JSONResponse(result.to_json(), status_code=200 if result.applied else 202)

    return router


def load_insurer_secrets(
    path: str | Path, environ: Mapping[str, str] | None = None
) -> dict[str, bytes]:
    """Each insurer's webhook secret, read from the environment variable the TOML file
    at ``path`` names (``[insurers.<name>] secret_env = "..."``); a secret written in
    the file itself is refused.

    Raises:
        InvalidData: every problem of the file at once (a missing variable included).
    """
    env = os.environ if environ is None else environ
    where = f"the insurers config {path}"
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InvalidData(where, [Problem("", f"cannot be read: {exc}")]) from exc
    problems: list[Problem] = []
    unknown = sorted(set(raw) - {"insurers"})
    if unknown:
        problems.append(Problem(unknown[0], "unknown table; the file has [insurers.<name>] only"))
    insurers = raw.get("insurers")
    if not isinstance(insurers, dict) or not insurers:
        problems.append(Problem("insurers", "add an [insurers.<name>] table for each insurer"))
        raise InvalidData(where, problems)
    secrets: dict[str, bytes] = {}
    for name, table in insurers.items():
        at = f"insurers.{name}"
        if not isinstance(table, dict):
            problems.append(Problem(at, "must be a table with secret_env"))
            continue
        if "secret" in table:
            problems.append(
                Problem(
                    f"{at}.secret",
                    "a secret is never written in the file: put it in an environment "
                    "variable and name that with secret_env",
                )
            )
        extra = sorted(set(table) - {"secret_env", "secret"})
        if extra:
            problems.append(Problem(f"{at}.{extra[0]}", "unknown key; the key is secret_env"))
        variable = table.get("secret_env")
        if not isinstance(variable, str) or not variable:
            problems.append(Problem(f"{at}.secret_env", "name the environment variable"))
            continue
        value = env.get(variable)
        if not value:
            problems.append(
                Problem(f"{at}.secret_env", f"the environment variable {variable} is not set")
            )
            continue
        secrets[name] = value.encode()
    if problems:
        raise InvalidData(where, problems)
    return secrets


__all__ = [
    "SIGNATURE_HEADER",
    "insurer_webhooks",
    "load_insurer_secrets",
    "problem",
    "sign",
    "verify",
]
