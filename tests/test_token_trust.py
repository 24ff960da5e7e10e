"""A process trusts a token it looked up for 2 seconds (engine/tokens.py): requests are
checked without a query, a revocation through this engine is refused at once, and one
through another process within those 2 seconds."""

from __future__ import annotations

from datetime import datetime

import pytest
from baoflow.engine import ApiTokenRejected, Engine, FakeClock, UnknownApiToken, open_engine
from baoflow.engine import tokens as token_module
from baoflow.engine.tokens import Trusted

from tests.conftest import HANDLER


class Ticks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def a_token(at: datetime) -> token_module.ApiToken:
    return token_module.ApiToken(
        id=7,
        app="app",
        prefix="bf_xxxxxxx",
        actor=HANDLER,
        act_for=(),
        created_at=at,
        last_used_at=None,
        revoked_at=None,
    )


def test_a_looked_up_token_is_trusted_for_two_seconds_and_no_longer() -> None:
    ticks = Ticks()
    trusted = Trusted(clock=ticks)
    token = a_token(datetime(2026, 5, 6))
    trusted.put("d1", token)
    ticks.now += token_module.TRUSTED_FOR
    assert trusted.get("d1") == token
    ticks.now += 0.001
    assert trusted.get("d1") is None


def test_a_forgotten_token_is_looked_up_again() -> None:
    trusted = Trusted(clock=Ticks())
    trusted.put("d1", a_token(datetime(2026, 5, 6)))
    trusted.forget(7)
    assert trusted.get("d1") is None


def test_the_trust_holds_a_bounded_number_of_tokens() -> None:
    trusted = Trusted(clock=Ticks())
    for i in range(token_module.TRUSTED_MAX + 5):
        trusted.put(f"d{i}", a_token(datetime(2026, 5, 6)))
    assert trusted.get("d0") is None and trusted.get(f"d{token_module.TRUSTED_MAX + 4}")


def test_a_revocation_here_is_refused_at_once(eng: Engine) -> None:
    made = eng.create_api_token("app", actor=HANDLER)
    assert eng.authenticate(made.secret) == HANDLER
    eng.revoke_api_token(made.token.id)
    with pytest.raises(ApiTokenRejected) as refused:
        eng.authenticate(made.secret)
    assert refused.value.reason == "revoked"


def test_a_second_revocation_keeps_the_first_ones_time(eng: Engine, clock: FakeClock) -> None:
    made = eng.create_api_token("app", actor=HANDLER)
    first = eng.revoke_api_token(made.token.id).revoked_at
    clock.advance(minutes=5)
    assert first is not None and eng.revoke_api_token(made.token.id).revoked_at == first


@pytest.mark.parametrize("token_id", [999, 2**63, 10**30])
def test_revoking_a_token_there_is_not_is_refused_and_changes_nothing(
    eng: Engine, token_id: int
) -> None:
    made = eng.create_api_token("app", actor=HANDLER)
    with pytest.raises(UnknownApiToken):
        eng.revoke_api_token(token_id)
    assert [t.revoked_at for t in eng.api_tokens()] == [None]
    assert eng.authenticate(made.secret) == HANDLER


def test_a_revocation_by_another_process_is_refused_once_the_trust_runs_out(
    eng: Engine, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = eng.create_api_token("app", actor=HANDLER)
    assert eng.authenticate(made.secret) == HANDLER
    other = open_engine(db_url, migrate=False)
    try:
        other.revoke_api_token(made.token.id)
    finally:
        other.close()
    monkeypatch.setattr(token_module, "TRUSTED_FOR", 0.0)  # the 2 s have passed
    with pytest.raises(ApiTokenRejected) as refused:
        eng.authenticate(made.secret)
    assert refused.value.reason == "revoked"
