"""The dashboard's accounts: argon2-hashed passwords, disabling, and the limit on
guessing — five wrong passwords for a user id, or from a client, refuse the next
attempts for a while, in every process (the attempts are rows)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from baoflow.engine import Actor, Engine, FakeClock, InvalidData, LogInRefused, UnknownUser
from click.testing import CliRunner

from baoflow.cli import main
from tests.conftest import HANDLER, upgraded


def _refused(eng: Engine, user: str, password: str, client: str = "10.0.0.1") -> LogInRefused:
    with pytest.raises(LogInRefused) as refused:
        eng.log_in(user, password, client=client)
    return refused.value


def test_a_right_password_logs_in_as_the_users_actor(eng: Engine) -> None:
    eng.add_user("h01", "王芳", "correct horse", roles=("handler",), org_unit="SH-PD")
    assert eng.log_in("h01", "correct horse") == Actor("h01", "王芳", ("handler",), "SH-PD")


def test_the_password_is_stored_only_as_an_argon2_hash(eng: Engine) -> None:
    eng.add_user("h01", "王芳", "correct horse")
    with eng.store.read() as tx:
        stored = tx.user("h01").password_hash
    assert stored.startswith("$argon2id$") and "correct horse" not in stored


def test_a_wrong_password_and_an_unknown_user_read_the_same(eng: Engine) -> None:
    eng.add_user("h01", "王芳", "correct horse")
    wrong = _refused(eng, "h01", "wrong horse")
    unknown = _refused(eng, "nobody", "correct horse")
    assert (wrong.reason, str(wrong)) == (unknown.reason, str(unknown))
    assert wrong.reason == "wrong"


def test_a_disabled_account_cannot_log_in(eng: Engine) -> None:
    eng.add_user("h01", "王芳", "correct horse")
    assert eng.disable_user("h01").disabled_at is not None
    assert _refused(eng, "h01", "correct horse").reason == "disabled"
    assert not eng.user("h01").active


def test_disabling_twice_keeps_the_first_time(eng: Engine, clock: FakeClock) -> None:
    eng.add_user("h01", "王芳", "correct horse")
    first = eng.disable_user("h01").disabled_at
    clock.advance(minutes=5)
    assert first is not None and eng.disable_user("h01").disabled_at == first


def test_five_wrong_passwords_refuse_even_the_right_one_for_five_minutes(
    eng: Engine, clock: FakeClock
) -> None:
    eng.add_user("h01", "王芳", "correct horse")
    reasons = [_refused(eng, "h01", f"guess {i}").reason for i in range(5)]
    assert reasons == ["wrong"] * 4 + ["throttled"]
    refused = _refused(eng, "h01", "correct horse")
    assert refused.reason == "throttled" and "try again in 5 minutes" in str(refused)
    assert refused.retry_after == timedelta(minutes=5)
    clock.advance(timedelta(minutes=5))
    assert eng.log_in("h01", "correct horse").id == "h01"
    # the right password forgot the wrong ones: one more wrong one is only wrong
    assert _refused(eng, "h01", "guess 6").reason == "wrong"


def test_after_the_pause_each_wrong_password_pauses_again(eng: Engine, clock: FakeClock) -> None:
    eng.add_user("h01", "王芳", "correct horse")
    for i in range(5):
        _refused(eng, "h01", f"guess {i}")
    clock.advance(timedelta(minutes=5))
    assert _refused(eng, "h01", "guess 5").reason == "throttled"
    clock.advance(timedelta(minutes=4))
    assert _refused(eng, "h01", "correct horse").reason == "throttled"


def test_one_client_guessing_many_users_is_refused_too(eng: Engine) -> None:
    eng.add_user("h01", "王芳", "correct horse")
    for i in range(5):
        _refused(eng, f"user{i}", "guess", client="10.9.9.9")
    assert _refused(eng, "h01", "correct horse", client="10.9.9.9").reason == "throttled"
    assert eng.log_in("h01", "correct horse", client="10.0.0.2").id == "h01"


def test_the_count_is_shared_by_every_engine_on_the_database(
    eng: Engine, db_url: str, clock: FakeClock
) -> None:
    from baoflow.engine import open_engine

    eng.add_user("h01", "王芳", "correct horse")
    other = open_engine(db_url, clock=clock)
    try:
        for i in range(3):
            _refused(eng, "h01", f"guess {i}")
        for i in range(2):
            _refused(other, "h01", f"other guess {i}")
        assert _refused(eng, "h01", "correct horse").reason == "throttled"
    finally:
        other.close()


def test_bad_accounts_are_refused_with_every_problem(eng: Engine) -> None:
    with pytest.raises(InvalidData) as bad:
        eng.add_user(" ", "", "short", roles=("system",))
    assert [p.location for p in bad.value.problems] == ["id", "name", "password", "roles[0]"]
    eng.add_user("h01", "王芳", "correct horse")
    with pytest.raises(InvalidData, match="already a user 'h01'"):
        eng.add_user("h01", "李雷", "another one")
    with pytest.raises(UnknownUser):
        eng.disable_user("nobody")


def test_the_cli_reads_the_password_from_stdin_never_an_argument(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = upgraded(f"sqlite:///{tmp_path / 'u.db'}")
    runner = CliRunner()
    made = runner.invoke(
        main,
        [
            "users",
            "add",
            "h01",
            "--name",
            "王芳",
            "--role",
            "handler",
            "--org",
            "SH",
            "--password-stdin",
            "--url",
            url,
        ],
        input="correct horse\n",
    )
    assert made.exit_code == 0, made.output
    listed = runner.invoke(main, ["users", "list", "--url", url])
    assert "h01" in listed.output and "handler" in listed.output
    prompted = runner.invoke(
        main,
        ["users", "add", "h02", "--name", "李雷", "--url", url],
        input="battery staple\nbattery staple\n",
    )
    assert prompted.exit_code == 0, prompted.output
    assert "battery staple" not in prompted.output
    disabled = runner.invoke(main, ["users", "disable", "h01", "--url", url])
    assert "disabled" in disabled.output


def test_case_flow_counts_cases_opened_and_closed_in_the_span(
    eng: Engine, clock: FakeClock
) -> None:
    from tests.test_timers import to_materials_complete

    start = clock.now()
    to_materials_complete(eng)
    flow = eng.case_flow("claim", since=start)
    assert (flow.opened, flow.closed) == (1, 0)
    assert eng.case_flow("claim", since=clock.advance(timedelta(days=1))).opened == 0
    outsider = Actor("x", "外人", ("handler",), "NOWHERE")
    assert eng.case_flow("claim", since=start, visible_to=outsider).opened == 0
    case = eng.find_cases(workflow="claim")[0]
    eng.fire(case.id, "withdraw", HANDLER, {"reason": "客户撤回报案"})
    flow = eng.case_flow("claim", since=start)
    assert (flow.opened, flow.closed) == (1, 1)
    assert eng.case_flow("claim", since=start, visible_to=outsider).closed == 0
    assert eng.case_flow("claim", since=start, until=start + timedelta(hours=1)).closed == 0
