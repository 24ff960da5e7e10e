"""A retried request with the same idempotency key returns the first result."""

from __future__ import annotations

import hashlib
import json
from types import SimpleNamespace
from typing import Any

import pytest
from baoflow.engine import Engine, IdempotencyKeyReused
from baoflow.engine.idempotency import Request, fingerprint, prior, prior_after_race

from tests.conftest import AGENT, HANDLER, report


def test_a_retried_open_returns_the_first_case_and_creates_nothing(eng: Engine) -> None:
    first = eng.open_case("claim", report(), AGENT, idempotency_key="desk-1/call-77")
    again = eng.open_case("claim", report(), AGENT, idempotency_key="desk-1/call-77")
    assert again == first
    assert len(eng.find_cases()) == 1
    assert len(eng.history(first.case.id)) == 2  # open + register, once


def test_an_open_key_reused_for_an_event_is_refused(eng: Engine) -> None:
    case = eng.open_case("claim", report(), AGENT).case
    eng.fire(case.id, "verify", HANDLER, idempotency_key="k-1")
    with pytest.raises(IdempotencyKeyReused, match="use a new key"):
        eng.open_case("claim", report(), AGENT, idempotency_key="k-1")
    assert len(eng.find_cases()) == 1


def _reordered(value: Any) -> Any:
    """The same data with every mapping's keys in reverse order."""
    if isinstance(value, dict):
        return {k: _reordered(value[k]) for k in reversed(list(value))}
    return value


def test_a_retry_that_sends_the_same_data_in_another_key_order_is_the_same_request(
    eng: Engine,
) -> None:
    """JSON objects have no order: a client library may send the fields of a retry in
    another one (issue #15 item 8: the fingerprint's key sorting survived a mutation)."""
    data = report()
    first = eng.open_case("claim", data, AGENT, idempotency_key="desk-1/call-78")
    assert list(_reordered(data)) != list(data)
    again = eng.open_case("claim", _reordered(data), AGENT, idempotency_key="desk-1/call-78")
    assert again == first
    assert len(eng.find_cases()) == 1


def test_the_fingerprint_is_the_sha256_of_the_event_and_data_as_sorted_compact_json() -> None:
    """An independent computation of what idempotency.fingerprint documents."""
    data = {"b": {"y": 2, "x": "理赔"}, "a": [3, {"d": 1, "c": None}]}
    canonical = json.dumps(
        ["verify", data], sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    assert fingerprint("verify", data) == hashlib.sha256(canonical.encode()).hexdigest()
    assert fingerprint("verify", _reordered(data)) == fingerprint("verify", data)


def test_a_key_is_one_request_on_one_case_whichever_was_first(eng: Engine) -> None:
    """The same event with the same data on another case is another request; so is
    another event on the same case — in either order of the cases, or of the events."""
    older = eng.open_case("claim", report(), AGENT).case
    newer = eng.open_case(
        "claim", report(incident={"time": "2026-05-05T10:00:00+08:00"}), AGENT
    ).case
    eng.fire(older.id, "verify", HANDLER, idempotency_key="k-older")
    eng.fire(newer.id, "verify", HANDLER, idempotency_key="k-newer")
    with pytest.raises(IdempotencyKeyReused):
        eng.fire(newer.id, "verify", HANDLER, idempotency_key="k-older")
    with pytest.raises(IdempotencyKeyReused):
        eng.fire(older.id, "verify", HANDLER, idempotency_key="k-newer")
    assert older.id < newer.id
    for then in ("apply", "withdraw"):  # one sorts before "verify", one after
        with pytest.raises(IdempotencyKeyReused):
            eng.fire(older.id, then, HANDLER, {}, idempotency_key="k-older")
    assert [h.event for h in eng.history(newer.id)][-1] == "verify"


def test_after_a_unique_key_race_the_winner_s_result_is_the_answer(eng: Engine) -> None:
    """What a request that lost the race to insert its key answers: the first result if
    the winner was the same request; else the error it met."""
    case = eng.open_case("claim", report(), AGENT).case
    first = eng.fire(case.id, "verify", HANDLER, idempotency_key="k-race")
    lost = RuntimeError("duplicate key")
    same = Request("k-race", case.id, "verify", "'verify'", {})
    assert prior_after_race(eng.store, same, lost)["version"] == first.version
    for other in (
        Request("k-other", case.id, "verify", "'verify'", {}),
        Request(None, case.id, "verify", "'verify'", {}),
    ):
        with pytest.raises(RuntimeError, match="duplicate key"):
            prior_after_race(eng.store, other, lost)


def test_a_retry_is_recognised_whatever_the_size_of_its_case_id() -> None:
    """The stored request and the retry compare by value: two equal ids read apart are
    the same case (a mutant comparing them by identity passed while every test's case
    ids were small integers, which Python keeps once)."""
    stored = SimpleNamespace(
        case_id=int("9000000001"),
        event="verify",
        fingerprint=fingerprint("verify", {}),
        result={"ok": True},
    )
    tx = SimpleNamespace(idempotent_result=lambda key: stored)
    retry = Request("k-big", int("9000000001"), "verify", "'verify'", {})
    assert prior(tx, retry) == {"ok": True}  # type: ignore[arg-type]
