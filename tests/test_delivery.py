"""The outbox is delivered after commit, and nothing is lost: a rollback tells nobody, a
channel that is down is retried until it is back, after N failures the message waits in
dead letter with its error, a crash between sending and marking sends at most one
duplicate, a recipient with no address is a dead letter naming the cause; numbers are
masked for everyone but the data subject (issue #5). On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from baoflow.engine import SHANGHAI, Engine, FakeClock, GuardRefused
from baoflow.engine.transition import Stepper
from baoflow.notifications.config import deliverer_from_config
from baoflow.notifications.delivery import Deliverer
from baoflow.notifications.message import DeliveryFailed, Message, NotificationConfigError
from click.testing import CliRunner

from baoflow.cli import main
from tests.conftest import HANDLER, SUPERVISOR, report
from tests.test_channels import Collector, free_port

PEOPLE: list[dict[str, Any]] = [
    {"id": "h01", "name": "王芳", "roles": ["handler"], "org_unit": "SH", "inbox": "h01"},
    {"id": "s01", "name": "陈刚", "roles": ["supervisor"], "org_unit": "SH", "inbox": "s01"},
    {"id": "hq1", "name": "总部理赔部", "roles": ["headquarters"], "rec": "hq@baoflow.example"},
]
PARTIES = {
    "reporter": {
        "name": "reporter.name",
        "rec": "reporter.email",
        "relationship": "reporter.relationship",
    }
}


class Recorder:
    """A channel that keeps what it was given; ``down`` makes it fail like a dead server."""

    def __init__(self, name: str = "rec") -> None:
        self.name = name
        self.sent: list[Message] = []
        self.down: str | None = None

    def send(self, message: Message) -> None:
        if self.down:
            raise DeliveryFailed(self.down)
        self.sent.append(message)


def deliverer(eng: Engine, *channels: Any, **settings: Any) -> Deliverer:
    raw: dict[str, Any] = {
        "channels": {"inbox": {"type": "inbox"}},
        "people": PEOPLE,
        "parties": PARTIES,
        "backoff_seconds": 30,
        **settings,
    }
    given = {c.name: c for c in channels} or {"rec": Recorder()}
    return deliverer_from_config(eng, raw, channels=given)


def rows(eng: Engine, **filters: Any) -> list[Any]:
    with eng.store.read() as tx:
        return tx.list_outbox(**filters)


def reported(eng: Engine, email: str | None = "zhang.wei@example.com", **overrides: Any) -> Any:
    """A claim reported by the insured themself (the data subject), with an e-mail."""
    reporter = {"name": "张伟", "phone": "13800000001", "relationship": "本人", "address": "上海市"}
    if email:
        reporter["email"] = email
    incident = {"time": eng.clock.now().isoformat(), "cause": "accident"}
    data = report(
        policy={"number": "P-ACC-001", "insured_name": "张伟"},
        incident={**incident, **overrides.pop("incident", {})},
        reporter=reporter,
        **overrides,
    )
    from tests.conftest import AGENT

    return eng.open_case("claim", data, AGENT).case


def test_a_report_tells_its_reporter_who_receives_it_as_the_data_subject(
    eng: Engine,
) -> None:
    rec = Recorder()
    case = reported(eng, email=None)
    (notice,) = rows(eng, case_id=case.id)
    assert (notice.template, notice.recipient, notice.channel) == (
        "claim_accepted",
        "reporter",
        None,
    )
    run = deliverer(eng, rec).deliver_due()
    assert (run.resolved, run.delivered, run.dead) == (0, 0, 1)  # no e-mail on the case
    (dead,) = rows(eng, status="dead")
    assert "the case has no address for its reporter" in dead.last_error
    assert "reporter.email" in dead.last_error
    assert rec.sent == []


def test_delivered_once_to_each_address_with_the_reporter_unmasked(
    eng: Engine, clock: FakeClock
) -> None:
    rec = Recorder()
    case = reported(eng)
    d = deliverer(eng, rec)
    assert d.deliver_due().delivered == 1
    assert d.deliver_due().delivered == 0  # nothing twice
    (message,) = rec.sent
    assert message.address.to == "zhang.wei@example.com" and message.address.data_subject
    assert message.subject.startswith("报案受理通知") and case.number in message.subject
    assert message.case_number == case.number
    parent, child = rows(eng, case_id=case.id)
    assert (parent.status, child.status, child.parent_id) == ("expanded", "delivered", parent.id)
    assert message.key == child.key


def test_a_transition_that_rolls_back_tells_nobody(eng: Engine) -> None:
    rec = Recorder()
    case = reported(eng)
    before = len(rows(eng))
    with pytest.raises(GuardRefused):  # the review passes: a refusal is not substantiated
        eng.fire(
            case.id,
            "reject",
            HANDLER,
            {"reasons": ["not_covered"], "notice": "不属保障范围"},
        )
    assert len(rows(eng)) == before
    assert [r.template for r in rows(eng)] == ["claim_accepted"]
    deliverer(eng, rec).deliver_due()
    assert all(m.template != "claim_not_accepted" for m in rec.sent)


def test_a_notice_written_before_the_transaction_failed_is_rolled_back_with_it(
    eng: Engine, monkeypatch: Any
) -> None:
    """The outbox row is inserted, then the transaction fails: it goes with the rest."""
    case = reported(eng, incident={"injury": "death", "deaths": 2})
    real = Stepper.notify

    def write_then_fail(self: Stepper, *args: Any, **kwargs: Any) -> None:
        real(self, *args, **kwargs)
        raise RuntimeError("the database went away after the outbox insert")

    monkeypatch.setattr(Stepper, "notify", write_then_fail)
    with pytest.raises(RuntimeError):
        eng.fire(case.id, "report_to_headquarters", SUPERVISOR, {"summary": "2人死亡"})
    monkeypatch.undo()
    assert [r.template for r in rows(eng)] == [
        "claim_accepted",
        "scene_preservation",
        "scene_survey_request",
    ]  # what the registration wrote; nothing of the failed report
    assert eng.get_case(case.id).version == case.version


def test_headquarters_gets_the_major_case_report_with_numbers_masked(
    eng: Engine, clock: FakeClock
) -> None:
    rec = Recorder()
    case = reported(eng, incident={"injury": "death", "deaths": 2})
    eng.fire(
        case.id,
        "report_to_headquarters",
        SUPERVISOR,
        {"summary": "被保险人张伟（身份证 110101199003074514，电话 13800000001）等2人死亡"},
    )
    deliverer(eng, rec).deliver_due()
    (to_hq,) = [m for m in rec.sent if m.template == "major_case_report"]
    assert to_hq.address.to == "hq@baoflow.example" and not to_hq.address.data_subject
    assert "1101**********4514" in to_hq.text and "138****0001" in to_hq.text
    assert "110101199003074514" not in to_hq.text + to_hq.html
    assert "13800000001" not in to_hq.text + to_hq.html


def test_a_channel_that_is_down_is_retried_with_backoff_until_it_is_back(
    eng: Engine, clock: FakeClock
) -> None:
    """A real SMTP server on loopback, stopped and started again."""
    from baoflow.notifications.channels import SmtpChannel

    handler = Collector()
    port = free_port()
    email = SmtpChannel("127.0.0.1", port, "service@baoflow.example", name="rec", timeout=2)
    case = reported(eng)
    d = deliverer(eng, email)

    first = d.deliver_due()  # nothing listens on the port yet
    assert (first.delivered, first.retried) == (0, 1)
    (waiting,) = rows(eng, status="pending")
    assert waiting.attempts == 1 and f"127.0.0.1:{port}" in waiting.last_error
    assert waiting.next_attempt_at == clock.now() + timedelta(seconds=30)
    assert d.deliver_due().retried == 0  # not due again before its backoff

    clock.advance(seconds=30)
    assert d.deliver_due().retried == 1
    (waiting,) = rows(eng, status="pending")
    assert waiting.next_attempt_at == clock.now() + timedelta(seconds=60)  # doubled

    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        clock.advance(seconds=60)
        assert d.deliver_due().delivered == 1
    finally:
        controller.stop()
    (mail,) = handler.mails()
    assert mail["To"].addresses[0].addr_spec == "zhang.wei@example.com"
    assert str(mail["Subject"]).startswith("报案受理通知")
    (done,) = [r for r in rows(eng, case_id=case.id) if r.channel]
    assert (done.status, done.attempts) == ("delivered", 3)


def test_after_the_last_attempt_the_message_waits_in_dead_letter_and_can_be_retried(
    eng: Engine, clock: FakeClock
) -> None:
    rec = Recorder()
    rec.down = "127.0.0.1:2525: connection refused"
    reported(eng)
    d = deliverer(eng, rec, max_attempts=3)
    for _ in range(3):
        d.deliver_due()
        clock.advance(hours=1)
    (dead,) = rows(eng, status="dead")
    assert dead.attempts == 3
    assert dead.last_error == "127.0.0.1:2525: connection refused (after 3 attempts)"
    assert d.deliver_due().delivered == 0  # dead letter is not retried by itself

    result = CliRunner().invoke(main, ["outbox", "retry", "--url", eng.store.url, "--all-dead"])
    assert result.exit_code == 0 and "1 message(s) back to pending" in result.output
    rec.down = None
    clock.set(datetime.now(SHANGHAI) + timedelta(seconds=1))  # the CLI runs on real time
    assert d.deliver_due().delivered == 1


def test_a_crash_between_sending_and_marking_sends_at_most_one_duplicate(
    eng: Engine, clock: FakeClock, monkeypatch: Any
) -> None:
    rec = Recorder()
    reported(eng)
    crashed = deliverer(eng, rec)

    def crash(*_a: Any, **_k: Any) -> bool:
        raise SystemExit("the worker died after the channel accepted the message")

    from baoflow.engine.store import CoreTx

    real_finish = CoreTx.finish_outbox
    monkeypatch.setattr(CoreTx, "finish_outbox", crash)
    with pytest.raises(SystemExit):
        crashed.deliver_due()
    monkeypatch.setattr(CoreTx, "finish_outbox", real_finish)
    assert len(rec.sent) == 1

    survivor = deliverer(eng, rec)
    assert survivor.deliver_due().delivered == 0  # still leased to the dead worker
    clock.advance(seconds=31)  # the lease (30 s) ran out
    assert survivor.deliver_due().delivered == 1
    clock.advance(days=1)
    assert survivor.deliver_due().delivered == 0
    assert len(rec.sent) == 2  # one duplicate, never a loss
    assert rec.sent[0].key == rec.sent[1].key  # the same idempotency key both times


def test_the_inbox_shows_a_retried_message_once(eng: Engine, clock: FakeClock) -> None:
    from baoflow.notifications.delivery import InboxChannel
    from baoflow.notifications.message import Address

    inbox = InboxChannel(eng.store, clock)
    message = Message(
        "k-1", Address("inbox", "h01"), "deadline_warning", "预警", "正文", "<p>正文</p>"
    )
    inbox.send(message)
    inbox.send(message)
    with eng.store.read() as tx:
        (entry,) = tx.inbox("h01")
    assert (entry.subject, entry.body) == ("预警", "正文")


def test_a_deadline_warning_lands_in_the_handlers_inbox(eng: Engine, clock: FakeClock) -> None:
    from tests.test_timers import bj, to_materials_complete

    case = to_materials_complete(eng)
    clock.set(bj(2026, 5, 8, 4, 30))
    eng.run_due_timers()
    deliverer(eng).deliver_due()
    result = CliRunner().invoke(
        main, ["inbox", "--url", eng.store.url, "h01"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    assert case.number in result.output and "预警" in result.output


def test_a_notice_for_a_role_nobody_holds_in_the_org_unit_is_a_dead_letter(
    eng: Engine, clock: FakeClock
) -> None:
    from tests.test_timers import bj, to_materials_complete

    to_materials_complete(eng)  # opened by an agent of SH
    clock.set(bj(2026, 5, 10, 0, 0))  # breach + level 1: the supervisor
    eng.run_due_timers()
    people = [p for p in PEOPLE if "supervisor" not in p["roles"]]
    people.append(
        {"id": "s09", "name": "李雷", "roles": ["supervisor"], "org_unit": "BJ", "inbox": "s09"}
    )
    deliverer(eng, people=people).deliver_due()
    (dead,) = [r for r in rows(eng, status="dead") if r.recipient == "supervisor"]
    assert dead.last_error.startswith("no 'supervisor' in org unit 'SH' (there are in BJ)")


def test_the_configuration_is_refused_whole_at_load(eng: Engine, tmp_path: Path) -> None:
    bad = tmp_path / "templates"
    bad.mkdir()
    (bad / "deadline_warning.zh-CN.txt.j2").write_text(
        "{% block subject %}{{ colour }}{% endblock %}{% block body %}x{% endblock %}",
        encoding="utf-8",
    )
    with pytest.raises(NotificationConfigError) as exc:
        deliverer_from_config(
            eng,
            {
                "templates": str(bad),
                "channels": {"fax": {"type": "fax"}, "inbox": {"type": "inbox"}},
                "people": [{"id": "x1", "roles": ["handler"], "pigeon": "coop 3"}],
                "colour": "red",
            },
        )
    text = str(exc.value)
    assert "colour: unknown setting" in text
    assert "channels.fax: unknown type 'fax'" in text
    assert "people[0].pigeon: no channel named 'pigeon' is configured" in text
    assert "deadline_warning.zh-CN.txt.j2 uses 'colour'" in text


def test_cli_lists_the_outbox_and_previews_a_notice(eng: Engine) -> None:
    case = reported(eng)
    env = {"COLUMNS": "250"}
    listed = CliRunner().invoke(main, ["outbox", "list", "--url", eng.store.url], env=env)
    assert listed.exit_code == 0 and "claim_accepted" in listed.output
    shown = CliRunner().invoke(
        main,
        ["notify", "preview", "claim_accepted", "--case", case.number, "--url", eng.store.url],
        env=env,
    )
    assert shown.exit_code == 0, shown.output
    assert "尊敬的张伟" in shown.output and case.number in shown.output
    missing = CliRunner().invoke(
        main,
        ["notify", "preview", "claim_not_accepted", "--case", case.number, "--url", eng.store.url],
    )
    assert missing.exit_code != 0 and "has no 'claim_not_accepted' notice" in missing.output


def test_the_worker_delivers_on_its_ticks_and_gives_back_its_leases(eng: Engine) -> None:
    from baoflow.engine.scheduler import Worker

    from tests.test_worker import wait_for

    rec = Recorder()
    reported(eng)
    worker = Worker(eng, tick=0.05, name="w-deliver", digest=None, deliverer=deliverer(eng, rec))
    worker.start()
    try:
        assert wait_for(lambda: len(rec.sent) == 1, timeout=10)
    finally:
        worker.stop()
    assert [m.template for m in rec.sent] == ["claim_accepted"]
    assert all(r.claimed_by is None for r in rows(eng))


def test_two_deliverers_on_postgresql_send_each_message_once(
    pg_only_url: str, clock: FakeClock
) -> None:
    """Two deliverers in two threads drain one outbox: SKIP LOCKED and the lease keep
    each notice resolved once and each message sent once."""
    import threading
    import time

    from baoflow.engine import ChineseOfficialCalendar, open_engine

    from tests.conftest import POLICIES

    eng = open_engine(pg_only_url, clock=clock, calendar=ChineseOfficialCalendar())
    try:
        eng.policies.add(POLICIES)  # type: ignore[attr-defined]
        for i in range(40):
            reported(eng, email=f"reporter{i}@example.com")
            clock.advance(days=1)  # another day: not a duplicate report

        class Slow(Recorder):
            def send(self, message: Message) -> None:
                time.sleep(0.01)  # long enough for the two to overlap
                super().send(message)

        recorders = [Slow(), Slow()]
        workers = [deliverer(eng, r) for r in recorders]
        threads = [threading.Thread(target=w.deliver_due, kwargs={"batch": 5}) for w in workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        sent = [m.key for r in recorders for m in r.sent]
        assert len(sent) == 40 and len(set(sent)) == 40
        assert all(r.sent for r in recorders), "one deliverer did everything: no overlap"
        assert {r.status for r in rows(eng) if r.channel} == {"delivered"}
    finally:
        eng.close()


def test_a_notice_whose_context_does_not_render_is_a_dead_letter_naming_why(
    eng: Engine, clock: FakeClock
) -> None:
    """E.g. a row written by an older version of a workflow, before a field was added."""
    rec = Recorder()
    case = reported(eng)
    with eng.store.write() as tx:
        tx.insert_outbox(
            [
                {
                    "key": "legacy:1",
                    "case_id": case.id,
                    "seq": 1,
                    "template": "claim_accepted",
                    "recipient": "reporter",
                    "org_unit": None,
                    "context": {"case_number": case.number},  # the rest is missing
                }
            ],
            clock.now(),
        )
    deliverer(eng, rec).deliver_due()
    (dead,) = rows(eng, status="dead")
    assert dead.last_error.startswith("the template 'claim_accepted' does not render")
    assert "reporter_name" in dead.last_error or "undefined" in dead.last_error
    assert [m.template for m in rec.sent] == ["claim_accepted"]  # the good one went out
