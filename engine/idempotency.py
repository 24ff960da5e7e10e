"""Idempotency keys: one stored result per key, for one request only (DESIGN.md §3.1).

A retried request with the same key returns the first result; the same key on another
request (another case, event or data) is refused. The stored result is the case (or
the opening's result) as JSON, so a retry is answered without firing anything.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from .errors import IdempotencyKeyReused
from .store import Store, Tx
from .types import Case, OpenResult


class Request:
    """An operation as the idempotency record knows it."""

    __slots__ = ("case_id", "event", "fingerprint", "key", "what")

    def __init__(
        self, key: str | None, case_id: int | None, event: str, what: str, data: Mapping[str, Any]
    ) -> None:
        self.key = key
        self.case_id = case_id
        self.event = event
        self.what = what
        self.fingerprint = "" if key is None else fingerprint(event, data)


def fingerprint(event: str, data: Mapping[str, Any]) -> str:
    """The request's identity: the event and its data, with keys in sorted order (a
    retry that sends the same data in another order is the same request)."""
    canonical = orjson.dumps([event, data], option=orjson.OPT_SORT_KEYS, default=str)
    return hashlib.sha256(canonical).hexdigest()


def prior(tx: Tx, request: Request) -> Any:
    """The first result of this request, or None; another request's key is refused.

    Raises:
        IdempotencyKeyReused: the key was first used for a different request.
    """
    if request.key is None:
        return None
    found = tx.idempotent_result(request.key)
    if found is None:
        return None
    same_case = request.case_id is None or found.case_id == request.case_id
    if not same_case or found.event != request.event or found.fingerprint != request.fingerprint:
        raise IdempotencyKeyReused(
            request.key,
            f"{found.event!r} on case id {found.case_id}",
            f"{request.what} with this data",
        )
    return found.result


def prior_after_race(store: Store, request: Request, error: Exception) -> Any:
    """After a unique-key violation: a concurrent request with our key committed first."""
    if request.key is not None:
        with store.read() as tx:
            first = prior(tx, request)
        if first is not None:
            return first
    raise error


def remember(tx: Tx, request: Request, case_id: int, result: Any, now: datetime) -> None:
    assert request.key is not None
    tx.remember_result(
        key=request.key,
        case_id=case_id,
        event=request.event,
        fingerprint=request.fingerprint,
        result=result,
        now=now,
    )


# --- the stored results ---------------------------------------------------------------
def open_result_json(result: OpenResult) -> dict[str, Any]:
    return {"case": case_json(result.case), "created": result.created, "notes": list(result.notes)}


def open_result_from_json(raw: Mapping[str, Any]) -> OpenResult:
    return OpenResult(
        case_from_json(raw["case"]), created=raw["created"], notes=tuple(raw["notes"])
    )


def case_json(case: Case) -> dict[str, Any]:
    return {
        "id": case.id,
        "number": case.number,
        "workflow": case.workflow,
        "workflow_version": case.workflow_version,
        "state": case.state,
        "data": case.data,
        "version": case.version,
        "created_at": case.created_at.isoformat(),
        "updated_at": case.updated_at.isoformat(),
        "org_unit": case.org_unit,
    }


def case_from_json(raw: Mapping[str, Any]) -> Case:
    return Case(
        id=raw["id"],
        number=raw["number"],
        workflow=raw["workflow"],
        workflow_version=raw["workflow_version"],
        state=raw["state"],
        data=raw["data"],
        version=raw["version"],
        created_at=datetime.fromisoformat(raw["created_at"]),
        updated_at=datetime.fromisoformat(raw["updated_at"]),
        org_unit=raw.get("org_unit"),
    )
