"""A retried request with the same idempotency key returns the first result."""

from __future__ import annotations

import pytest
from baoflow.engine import Engine, IdempotencyKeyReused

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
