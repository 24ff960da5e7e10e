"""Errors as RFC 9457 problem details (``application/problem+json``).

Every :class:`baoflow.engine.BaoflowError` keeps its message (``detail``) and its typed
fields (``case_number``, ``reasons``, ``who_can``, ``problems``, ...), so a client acts on
the fields and shows the message. The status says what kind of error it is:

=====  =============================================================================
401    no token, an unknown or a revoked one (``ApiTokenRejected``)
403    not permitted (``who_can`` says who could), or a token that may not act for the
       person ``X-Act-For`` names
404    unknown case, workflow, event or token — and a case the caller may not see
409    the case changed since it was read (``ConflictError``), or the event is not
       one of its state's now (``EventNotAllowed``)
422    invalid data (every problem), a guard's refusal (its reasons), an idempotency
       key used before for another request, a malformed request
503    the database cannot be used; ``StorageUnavailable`` (down, or the connection
       lost) with ``Retry-After`` and ``outcome``: ``not applied``, or ``unknown``
       when it was lost while committing (resend with the same Idempotency-Key)
=====  =============================================================================
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from baoflow.engine import (
    ApiTokenRejected,
    BaoflowError,
    CalendarDataInvalid,
    CalendarDisagrees,
    CalendarYearUnknown,
    CaseNotFound,
    ConflictError,
    DefinitionError,
    EventNotAllowed,
    GuardRefused,
    IdempotencyKeyReused,
    InvalidData,
    NotPermitted,
    Problem,
    StorageError,
    StorageUnavailable,
    UnknownApiToken,
    UnknownEvent,
    UnknownWorkflow,
)

log = logging.getLogger("baoflow.api")

MEDIA_TYPE = "application/problem+json"

#: The status of each error; a subclass takes its nearest listed base.
STATUS: dict[type[BaoflowError], int] = {
    ApiTokenRejected: 401,
    NotPermitted: 403,
    CaseNotFound: 404,
    UnknownWorkflow: 404,
    UnknownEvent: 404,
    UnknownApiToken: 404,
    ConflictError: 409,
    EventNotAllowed: 409,
    InvalidData: 422,
    GuardRefused: 422,
    # The IETF idempotency-key draft answers a key reused with another payload 422.
    IdempotencyKeyReused: 422,
    CalendarDataInvalid: 422,
    CalendarDisagrees: 422,
    CalendarYearUnknown: 422,
    DefinitionError: 500,
    StorageError: 503,
}


class ProblemItem(BaseModel):
    location: str
    message: str


class ProblemDetails(BaseModel):
    """An error, as RFC 9457 problem details with baoflow's typed fields beside."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(description="urn:baoflow:problem:<error>, e.g. ...:case-not-found")
    title: str
    status: int
    detail: str = Field(description="The error's message: what is wrong, what to do.")
    instance: str | None = None
    error: str = Field(description="The engine's error class, e.g. GuardRefused.")
    # the typed fields of the errors (each present when the error has it)
    case_number: str | None = None
    ref: int | str | None = None
    event: str | None = None
    state: str | None = None
    allowed: list[str] | None = None
    reasons: list[str] | None = None
    actor: str | None = None
    why: str | None = None
    who_can: list[str] | None = None
    what: str | None = None
    problems: list[ProblemItem] | None = None
    expected_version: int | None = None
    actual_version: int | None = None
    workflow: str | None = None
    name: str | None = None
    version: int | None = None
    known: list[str] | None = None
    key: str | None = None
    reason: str | None = None
    act_for: list[str] | None = None
    outcome: str | None = Field(
        default=None,
        description="StorageUnavailable: 'not applied', or 'unknown' (the connection was "
        "lost while committing: resend with the same Idempotency-Key, which lands once).",
    )


def _kebab(name: str) -> str:
    return "".join(f"-{c.lower()}" if c.isupper() else c for c in name).lstrip("-")


def _plain(value: Any) -> Any:
    if isinstance(value, Problem):
        return {"location": value.location, "message": value.message}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def status_of(exc: BaoflowError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


def problem(
    status: int,
    error: str,
    detail: str,
    *,
    title: str | None = None,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **fields: Any,
) -> Response:
    body = ProblemDetails(
        type=f"urn:baoflow:problem:{_kebab(error)}",
        title=title or _title(status),
        status=status,
        detail=detail,
        instance=instance,
        error=error,
        **fields,
    )
    return Response(
        body.model_dump_json(exclude_none=True),
        status_code=status,
        media_type=MEDIA_TYPE,
        headers=headers,
    )


_TITLES = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Not permitted",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    422: "Unprocessable content",
    500: "Internal error",
    503: "Service unavailable",
}


def _title(status: int) -> str:
    return _TITLES.get(status, "Error")


_FIELDS = set(ProblemDetails.model_fields) - {"type", "title", "status", "detail", "instance"}


def from_error(exc: BaoflowError, instance: str | None = None) -> Response:
    status = status_of(exc)
    if isinstance(exc, ApiTokenRejected) and exc.reason == "act_for":
        status = 403
    fields = {k: _plain(v) for k, v in vars(exc).items() if k in _FIELDS}
    if isinstance(exc, CaseNotFound):
        fields["ref"] = exc.ref if isinstance(exc.ref, int | str) else str(exc.ref)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    detail = str(exc)
    if isinstance(exc, StorageUnavailable):
        detail, headers = _unavailable(exc)
        fields["outcome"] = "unknown" if exc.applied is None else "not applied"
    return problem(status, type(exc).__name__, detail, instance=instance, headers=headers, **fields)


def _unavailable(exc: StorageUnavailable) -> tuple[str, dict[str, str]]:
    """What a client is told of a database that is down: when to try again, and whether
    it may have been applied — not where the database is (the server's log says that)."""
    log.warning("database unavailable: %s", exc)
    seconds = max(1, math.ceil(exc.retry_after.total_seconds()))
    if exc.applied is None:
        detail = (
            "the connection to the database was lost while committing: whether this "
            "request was applied is not known. Resend it with the same Idempotency-Key: it "
            "is then applied once, or its first answer is returned."
        )
    else:
        detail = (
            f"the database is unavailable just now ({exc.reason}); nothing was done. Try "
            f"again in {seconds} s."
        )
    return detail, {"Retry-After": str(seconds)}


def install(app: FastAPI) -> None:
    """Answer every error of ``app`` as problem details: the engine's, a malformed
    request's, an unknown route's, and — logged — anything unexpected."""

    @app.exception_handler(BaoflowError)
    async def _baoflow(request: Request, exc: BaoflowError) -> Response:
        return from_error(exc, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        items = [
            {"location": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")}
            for e in exc.errors()
        ]
        detail = "the request is not valid; nothing was done. Correct these and try again:\n" + (
            "\n".join(f"  - {i['location']}: {i['message']}" for i in items)
        )
        return problem(
            422,
            "InvalidRequest",
            detail,
            instance=request.url.path,
            what="the request",
            problems=items,
        )

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else _title(exc.status_code)
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no such resource {request.url.path!r}: /openapi.json lists them"
        elif exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}"
        return problem(
            exc.status_code,
            "HttpError",
            detail,
            instance=request.url.path,
            headers=dict(exc.headers or {}),
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        return unexpected(request.method, request.url.path)


def unexpected(method: str, path: str) -> Response:
    """An error nobody foresaw (called inside its ``except``): logged with its traceback,
    answered 500 without its details."""
    log.exception("unexpected error on %s %s", method, path)
    return problem(
        500,
        "InternalError",
        "an unexpected error; nothing may have been done. It is logged on the server.",
        instance=path,
    )


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The error responses of a route for its OpenAPI entry."""
    what = {
        401: "No token, or an unknown or revoked one",
        403: "Not permitted (who_can says who could), or not allowed to act for X-Act-For",
        404: "No such case, workflow or event (or a case the caller may not see)",
        409: "The case changed (expected_version), or the event is not allowed now",
        422: "Invalid data, a guard's refusal, a reused idempotency key, a malformed request",
    }
    return {
        s: {
            "model": ProblemDetails,
            "description": what[s],
            "content": {MEDIA_TYPE: {}},
        }
        for s in statuses
    }


def statuses_of(*errors: type[BaoflowError]) -> Sequence[int]:
    return sorted({STATUS[e] for e in errors})
