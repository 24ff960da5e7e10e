"""The channels that leave the process, against real servers on loopback: an SMTP server
(aiosmtpd), an HTTP server for the webhook and the SMS gateway (issue #5)."""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from baoflow.notifications.channels import (
    SmsGatewayChannel,
    SmtpChannel,
    WebhookChannel,
    build_channels,
    message_id,
    sign,
    verify_signature,
)
from baoflow.notifications.message import (
    Address,
    Channel,
    DeliveryFailed,
    Message,
    NotificationConfigError,
)

TIMEOUT = 2.0
SECRET = "s3cret-签名"

SUBJECT = "理赔案件 CL-2024-000123 即将超时：请于 3 个工作日内补充材料"
TEXT = (
    "张伟先生，您好：\n您的理赔案件 CL-2024-000123 尚缺少医院诊断证明，请尽快补充。\n——保险服务中心"
)
HTML = "<p>张伟先生，您好：</p><p>您的理赔案件 <b>CL-2024-000123</b> 尚缺少医院诊断证明。</p>"


def make_message(
    channel: str = "email",
    to: str = "zhangwei@example.com",
    *,
    key: str = "notice-42:email:zhangwei",
    name: str = "张伟",
) -> Message:
    return Message(
        key=key,
        address=Address(channel=channel, to=to, name=name, locale="zh-CN", data_subject=True),
        template="deadline_warning",
        subject=SUBJECT,
        text=TEXT,
        html=HTML,
        case_number="CL-2024-000123",
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def failure(channel: Channel, message: Message) -> DeliveryFailed:
    with pytest.raises(DeliveryFailed) as caught:
        channel.send(message)
    return caught.value


def assert_no_content_in(reason: str) -> None:
    """A reason never carries the message: it ends up in logs and the dead letters."""
    for secret_text in (SUBJECT, TEXT, "诊断证明", SECRET):
        assert secret_text not in reason


# --------------------------------------------------------------------------- SMTP


class Collector:
    """An aiosmtpd handler keeping what it received; ``rcpt_reply`` refuses recipients."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.rcpt_reply: str | None = None
        self.data_reply: str | None = None

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if self.rcpt_reply is not None:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.data_reply is not None:
            return self.data_reply
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def mails(self) -> list[EmailMessage]:
        out = []
        for envelope in self.envelopes:
            assert isinstance(envelope.content, bytes)
            parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
            assert isinstance(parsed, EmailMessage)
            out.append(parsed)
        return out


@dataclass
class SmtpServer:
    controller: Controller
    handler: Collector
    port: int
    running: bool = True

    def stop(self) -> None:
        if self.running:
            self.running = False
            self.controller.stop()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    handler = Collector()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    server = SmtpServer(controller, handler, port)
    try:
        yield server
    finally:
        server.stop()


def smtp_channel(port: int, **kwargs: Any) -> SmtpChannel:
    return SmtpChannel(
        "127.0.0.1",
        port,
        "保险服务中心 <noreply@baoflow.example>",
        timeout=TIMEOUT,
        local_hostname="baoflow.test",
        **kwargs,
    )


def test_email_arrives_with_chinese_subject_and_both_parts(smtp_server: SmtpServer) -> None:
    channel = smtp_channel(smtp_server.port)
    channel.send(make_message())

    (envelope,) = smtp_server.handler.envelopes
    assert envelope.mail_from == "noreply@baoflow.example"
    assert envelope.rcpt_tos == ["zhangwei@example.com"]
    (mail,) = smtp_server.handler.mails()
    assert mail["Subject"] == SUBJECT
    assert mail["To"].addresses[0].display_name == "张伟"
    assert mail["To"].addresses[0].addr_spec == "zhangwei@example.com"
    assert mail["From"].addresses[0].display_name == "保险服务中心"
    assert mail.get_content_type() == "multipart/alternative"
    plain = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert plain is not None and html is not None
    assert plain.get_content().replace("\r\n", "\n").rstrip("\n") == TEXT
    assert html.get_content().replace("\r\n", "\n").rstrip("\n") == HTML
    assert plain.get_content_charset() == "utf-8"
    assert mail["Message-ID"] == message_id("notice-42:email:zhangwei")
    assert mail["X-Baoflow-Key"] == "notice-42:email:zhangwei"
    assert mail["Auto-Submitted"] == "auto-generated"
    # Nothing 8-bit on the wire: any relay takes it.
    assert isinstance(envelope.original_content, bytes)
    assert envelope.original_content.isascii()


def test_the_message_id_is_derived_from_the_key(smtp_server: SmtpServer) -> None:
    channel = smtp_channel(smtp_server.port)
    channel.send(make_message(key="k-1"))
    channel.send(make_message(key="k-1"))  # a retry
    channel.send(make_message(key="k-2"))

    ids = [mail["Message-ID"] for mail in smtp_server.handler.mails()]
    assert ids[0] == ids[1] == message_id("k-1")
    assert ids[2] == message_id("k-2") != ids[0]
    assert ids[0].startswith("<") and ids[0].endswith("@baoflow>")
    assert len(ids[0]) == len("<@baoflow>") + 32


def test_a_subject_with_a_line_break_goes_on_one_line(smtp_server: SmtpServer) -> None:
    message = make_message()
    message = Message(**{**message.__dict__, "subject": "第一行\n第二行"})
    smtp_channel(smtp_server.port).send(message)
    (mail,) = smtp_server.handler.mails()
    assert mail["Subject"] == "第一行 第二行"


def test_a_stopped_smtp_server_is_a_retryable_failure_naming_host_and_port(
    smtp_server: SmtpServer,
) -> None:
    channel = smtp_channel(smtp_server.port)
    smtp_server.stop()
    failed = failure(channel, make_message())
    assert not failed.permanent
    assert f"127.0.0.1:{smtp_server.port}" in failed.reason
    assert_no_content_in(failed.reason)


def test_an_smtp_server_that_does_not_answer_times_out_retryably() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)  # accepts connections in the backlog, never says 220
        port = silent.getsockname()[1]
        channel = smtp_channel(port)
        channel.timeout = 0.3
        started = time.monotonic()
        failed = failure(channel, make_message())
    assert time.monotonic() - started < TIMEOUT
    assert not failed.permanent
    assert "timed out" in failed.reason
    assert f"127.0.0.1:{port}" in failed.reason


def test_a_recipient_refused_with_5xx_is_permanent(smtp_server: SmtpServer) -> None:
    smtp_server.handler.rcpt_reply = "550 5.1.1 No such user here"
    failed = failure(smtp_channel(smtp_server.port), make_message())
    assert failed.permanent
    assert "550" in failed.reason
    assert f"127.0.0.1:{smtp_server.port}" in failed.reason
    assert_no_content_in(failed.reason)
    assert smtp_server.handler.envelopes == []


def test_a_recipient_refused_with_4xx_is_retried(smtp_server: SmtpServer) -> None:
    smtp_server.handler.rcpt_reply = "451 4.7.1 Greylisted, try again later"
    failed = failure(smtp_channel(smtp_server.port), make_message())
    assert not failed.permanent
    assert "451" in failed.reason


def test_a_message_refused_with_5xx_is_permanent_with_4xx_retried(smtp_server: SmtpServer) -> None:
    smtp_server.handler.data_reply = "554 5.7.1 Message rejected as spam"
    failed = failure(smtp_channel(smtp_server.port), make_message())
    assert failed.permanent
    assert "554" in failed.reason
    smtp_server.handler.data_reply = "452 4.3.1 Insufficient system storage"
    assert not failure(smtp_channel(smtp_server.port), make_message()).permanent


def test_starttls_the_server_does_not_offer_is_retryable(smtp_server: SmtpServer) -> None:
    failed = failure(smtp_channel(smtp_server.port, starttls=True), make_message())
    assert not failed.permanent
    assert "STARTTLS" in failed.reason
    assert smtp_server.handler.envelopes == []


@pytest.mark.parametrize("to", ["", "zhangwei", "zhang wei@example.com", "a@b\r\nBcc: x@y"])
def test_a_malformed_address_is_permanent_and_nothing_is_sent(
    smtp_server: SmtpServer, to: str
) -> None:
    failed = failure(smtp_channel(smtp_server.port), make_message(to=to))
    assert failed.permanent
    assert smtp_server.handler.envelopes == []


def test_smtp_configuration_problems_are_all_listed() -> None:
    with pytest.raises(NotificationConfigError) as caught:
        SmtpChannel("", 0, "not an address", username="u", timeout=0)
    problems = caught.value.problems
    assert len(problems) == 5, problems
    assert any("host" in p for p in problems)
    assert any("port" in p for p in problems)
    assert any("sender" in p for p in problems)
    assert any("username and password" in p for p in problems)
    assert any("timeout" in p for p in problems)


def test_a_password_is_not_sent_in_clear_to_a_remote_server() -> None:
    with pytest.raises(NotificationConfigError) as caught:
        SmtpChannel("smtp.example.com", 25, "noreply@example.com", username="u", password="pw")
    assert "starttls" in str(caught.value)
    assert "pw" not in str(caught.value)
    # With STARTTLS, or on loopback, it may.
    SmtpChannel("smtp.example.com", 587, "a@example.com", username="u", password="p", starttls=True)
    SmtpChannel("localhost", 25, "noreply@example.com", username="u", password="pw")


# --------------------------------------------------------------------------- HTTP


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HttpServer:
    """A real HTTP server on loopback that records requests and answers ``status``."""

    server: ThreadingHTTPServer
    received: list[Received] = field(default_factory=list)
    status: int = 200
    delay: float = 0.0
    release: threading.Event = field(default_factory=threading.Event)

    @property
    def port(self) -> int:
        port: int = self.server.server_address[1]
        return port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/baoflow?token=abc"


@pytest.fixture
def http_server() -> Iterator[HttpServer]:
    state: HttpServer

    class Handler(BaseHTTPRequestHandler):
        def handle_any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            state.received.append(
                Received(
                    self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body
                )
            )
            if state.delay:
                state.release.wait(state.delay)
            self.send_response(state.status)
            if state.status == 429:
                self.send_header("Retry-After", "30")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        do_GET = do_POST = do_PUT = handle_any

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state = HttpServer(server)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()
        thread.join()


def closed_port_url() -> str:
    return f"http://127.0.0.1:{free_port()}/hook"


# --------------------------------------------------------------------------- webhook


def test_webhook_posts_signed_json_with_the_idempotency_key(http_server: HttpServer) -> None:
    channel = WebhookChannel(http_server.url, SECRET, name="hq-hook", timeout=TIMEOUT)
    before = int(time.time())
    channel.send(make_message("hq-hook", "hq-claims"))

    (request,) = http_server.received
    assert request.method == "POST"
    assert request.path == "/hooks/baoflow?token=abc"
    assert json.loads(request.body) == {
        "key": "notice-42:email:zhangwei",
        "template": "deadline_warning",
        "case_number": "CL-2024-000123",
        "to": "hq-claims",
        "subject": SUBJECT,
        "text": TEXT,
        "locale": "zh-CN",
    }
    assert request.headers["content-type"] == "application/json"
    assert request.headers["idempotency-key"] == "notice-42:email:zhangwei"
    timestamp = request.headers["x-baoflow-timestamp"]
    assert before <= int(timestamp) <= int(time.time())
    signature = request.headers["x-baoflow-signature"]
    # docs/notifications.md: the HMAC-SHA256 of "{timestamp}.{body}" with the shared secret
    signed = f"{timestamp}.".encode() + request.body
    expected = hmac.new(SECRET.encode(), signed, hashlib.sha256).hexdigest()
    assert signature == f"sha256={expected}"
    assert verify_signature(SECRET, timestamp, request.body, signature)
    assert verify_signature(SECRET, int(timestamp), request.body, signature)
    assert verify_signature(SECRET, timestamp, request.body, signature, max_age=300)


def test_verify_signature_rejects_anything_tampered(http_server: HttpServer) -> None:
    WebhookChannel(http_server.url, SECRET, timeout=TIMEOUT).send(make_message("webhook", "hq"))
    (request,) = http_server.received
    timestamp = request.headers["x-baoflow-timestamp"]
    signature = request.headers["x-baoflow-signature"]
    tampered = request.body.replace("补充".encode(), "撤销".encode())
    assert tampered != request.body
    assert not verify_signature(SECRET, timestamp, tampered, signature)
    assert not verify_signature("another secret", timestamp, request.body, signature)
    assert not verify_signature(SECRET, str(int(timestamp) + 1), request.body, signature)
    assert not verify_signature(SECRET, timestamp, request.body, signature.removeprefix("sha256="))
    assert not verify_signature(SECRET, timestamp, request.body, "sha256=签名")
    assert not verify_signature(SECRET, timestamp, request.body, "")
    # Too old for the receiver's window: a replay.
    late = int(timestamp) + 3600
    assert not verify_signature(SECRET, timestamp, request.body, signature, max_age=300, now=late)
    assert not verify_signature(SECRET, "soon", b"{}", sign(SECRET, "soon", b"{}"), max_age=300)


@pytest.mark.parametrize("status", [500, 503, 429, 408])
def test_webhook_server_errors_and_throttling_are_retried(
    http_server: HttpServer, status: int
) -> None:
    http_server.status = status
    failed = failure(WebhookChannel(http_server.url, SECRET, timeout=TIMEOUT), make_message())
    assert not failed.permanent
    assert f"HTTP {status}" in failed.reason
    assert f"127.0.0.1:{http_server.port}" in failed.reason
    assert "token=abc" not in failed.reason
    assert_no_content_in(failed.reason)
    if status == 429:
        assert "Retry-After: 30" in failed.reason


@pytest.mark.parametrize("status", [400, 401, 404, 422, 301])
def test_webhook_client_errors_are_permanent(http_server: HttpServer, status: int) -> None:
    http_server.status = status
    failed = failure(WebhookChannel(http_server.url, SECRET, timeout=TIMEOUT), make_message())
    assert failed.permanent
    assert f"HTTP {status}" in failed.reason


def test_webhook_with_nothing_listening_is_retried() -> None:
    url = closed_port_url()
    failed = failure(WebhookChannel(url, SECRET, timeout=TIMEOUT), make_message())
    assert not failed.permanent
    assert urlsplit(url).netloc in failed.reason


def test_webhook_that_does_not_answer_in_time_is_retried(http_server: HttpServer) -> None:
    http_server.delay = 5.0
    started = time.monotonic()
    failed = failure(WebhookChannel(http_server.url, SECRET, timeout=0.3), make_message())
    assert time.monotonic() - started < TIMEOUT
    assert not failed.permanent
    assert "timed out" in failed.reason


def test_webhook_uses_the_client_given_and_leaves_it_open(http_server: HttpServer) -> None:
    with httpx.Client(headers={"User-Agent": "baoflow-test"}) as client:
        channel = WebhookChannel(http_server.url, SECRET, timeout=TIMEOUT, client=client)
        channel.send(make_message())
        channel.send(make_message())
        assert not client.is_closed
    assert [r.headers["user-agent"] for r in http_server.received] == ["baoflow-test"] * 2


def test_webhook_configuration_problems_are_all_listed() -> None:
    with pytest.raises(NotificationConfigError) as caught:
        WebhookChannel("", "", timeout=-1)
    assert len(caught.value.problems) == 3
    with pytest.raises(NotificationConfigError, match="http"):
        WebhookChannel("ftp://example.com/x", SECRET)


# --------------------------------------------------------------------------- SMS


def test_sms_default_shape_is_json_with_the_plain_text(http_server: HttpServer) -> None:
    channel = SmsGatewayChannel(http_server.url, timeout=TIMEOUT)
    channel.send(make_message("sms", "13800138000"))

    (request,) = http_server.received
    assert request.method == "POST"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.body) == {
        "phone": "13800138000",
        "content": TEXT,  # as it is: no 【subject】 in front
        "request_id": "notice-42:email:zhangwei",
    }


def test_sms_custom_shape_form_encoded_with_headers(http_server: HttpServer) -> None:
    channel = SmsGatewayChannel(
        http_server.url,
        name="aliyun-sms",
        body={
            "Mobile": "{to}",
            "Msg": "【平安保险】{subject}：{text}",
            "OutId": "{key}",
            "Raw": "{{literal}}",
        },
        headers={"Authorization": "Bearer tok", "X-Request-Id": "req-{key}"},
        as_json=False,
        ok_statuses=[200],
        timeout=TIMEOUT,
    )
    channel.send(make_message("aliyun-sms", "13800138000", key="k-7"))

    (request,) = http_server.received
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.headers["authorization"] == "Bearer tok"
    assert request.headers["x-request-id"] == "req-k-7"
    form = parse_qs(request.body.decode(), strict_parsing=True)
    assert form == {
        "Mobile": ["13800138000"],
        "Msg": [f"【平安保险】{SUBJECT}：{TEXT}"],
        "OutId": ["k-7"],
        "Raw": ["{literal}"],
    }


def test_sms_get_sends_the_fields_as_query_parameters(http_server: HttpServer) -> None:
    channel = SmsGatewayChannel(
        f"http://127.0.0.1:{http_server.port}/send?apikey=xyz",
        method="get",
        body={"to": "{to}", "text": "{text}"},
        timeout=TIMEOUT,
    )
    channel.send(make_message("sms", "13800138000"))
    (request,) = http_server.received
    assert request.method == "GET"
    query = parse_qs(urlsplit(request.path).query)
    assert query == {"apikey": ["xyz"], "to": ["13800138000"], "text": [TEXT]}


def test_sms_unknown_placeholders_are_refused_at_construction() -> None:
    with pytest.raises(NotificationConfigError) as caught:
        SmsGatewayChannel(
            "http://127.0.0.1:9/sms",
            body={"phone": "{phone}", "content": "{text!r}", "sig": "{to"},
            headers={"X-Id": "{id}", "Bad Header": "x", "X-Name": "保险"},
        )
    problems = caught.value.problems
    text = "\n".join(problems)
    assert "{phone}" in text
    assert "{id}" in text
    assert "conversion" in text
    assert "malformed" in text
    assert "'Bad Header'" in text
    assert "X-Name" in text
    assert len(problems) == 6, problems


def test_sms_other_configuration_problems() -> None:
    with pytest.raises(NotificationConfigError) as caught:
        SmsGatewayChannel("", method="DELETE", body={}, ok_statuses=[], timeout=0)
    assert len(caught.value.problems) == 5, caught.value.problems


@pytest.mark.parametrize(
    ("status", "permanent"), [(500, False), (503, False), (429, False), (403, True), (400, True)]
)
def test_sms_non_ok_statuses_fail(http_server: HttpServer, status: int, permanent: bool) -> None:
    http_server.status = status
    failed = failure(SmsGatewayChannel(http_server.url, timeout=TIMEOUT), make_message("sms", "1"))
    assert failed.permanent is permanent
    assert f"HTTP {status}" in failed.reason
    assert f"127.0.0.1:{http_server.port}" in failed.reason
    assert_no_content_in(failed.reason)


def test_sms_a_2xx_not_listed_as_ok_fails(http_server: HttpServer) -> None:
    http_server.status = 204
    channel = SmsGatewayChannel(http_server.url, ok_statuses=(200,), timeout=TIMEOUT)
    assert failure(channel, make_message("sms", "13800138000")).permanent


def test_sms_with_nothing_listening_is_retried() -> None:
    channel = SmsGatewayChannel(closed_port_url(), timeout=TIMEOUT)
    assert not failure(channel, make_message("sms", "13800138000")).permanent


def test_sms_without_a_number_or_with_a_header_that_cannot_carry_it_is_permanent(
    http_server: HttpServer,
) -> None:
    assert failure(SmsGatewayChannel(http_server.url), make_message("sms", " ")).permanent
    channel = SmsGatewayChannel(http_server.url, headers={"X-Subject": "{subject}"})
    assert failure(channel, make_message("sms", "13800138000")).permanent
    assert http_server.received == []


# --------------------------------------------------------------------------- config


class FakeInbox:
    name = "inbox"

    def send(self, message: Message) -> None:
        pass


def test_build_channels_builds_every_configured_channel(http_server: HttpServer) -> None:
    inbox = FakeInbox()
    channels = build_channels(
        {
            "email": {
                "type": "smtp",
                "host": "smtp.example.com",
                "port": 587,
                "sender": "noreply@example.com",
                "starttls": True,
                "username": "baoflow",
                "password": "pw",
                "timeout": 5,
            },
            "hq-hook": {"type": "webhook", "url": http_server.url, "secret": SECRET},
            "sms": {
                "type": "sms",
                "url": http_server.url,
                "body": {"mobile": "{to}", "msg": "{text}"},
                "ok_statuses": [200],
                "timeout": TIMEOUT,
            },
        },
        extra={"inbox": inbox},
    )
    assert set(channels) == {"email", "hq-hook", "sms", "inbox"}
    assert isinstance(channels["email"], SmtpChannel)
    assert isinstance(channels["hq-hook"], WebhookChannel)
    assert isinstance(channels["sms"], SmsGatewayChannel)
    assert channels["inbox"] is inbox
    assert {name: channel.name for name, channel in channels.items()} == {
        "email": "email",
        "hq-hook": "hq-hook",
        "sms": "sms",
        "inbox": "inbox",
    }
    channels["sms"].send(make_message("sms", "13800138000"))
    assert json.loads(http_server.received[0].body)["mobile"] == "13800138000"


def test_build_channels_lists_every_problem_with_its_channel() -> None:
    with pytest.raises(NotificationConfigError) as caught:
        build_channels(
            {
                "fax": {"type": "fax", "number": "021-1234"},
                "untyped": {"host": "x"},
                "email": {
                    "type": "smtp",
                    "hots": "smtp.example.com",
                    "port": "25",
                    "sender": "a@b",
                },
                "mail2": {
                    "type": "smtp",
                    "host": "smtp.example.com",
                    "port": 25,
                    "sender": "a@b",
                    "username": "u",
                    "password": 123456,
                },
                "hook": {"type": "webhook", "url": "https://hq.example.com/x", "secret": ""},
                "sms": {"type": "sms", "url": "https://sms.example.com", "body": {"p": "{phone}"}},
                "named": {
                    "type": "webhook",
                    "url": "https://x.example",
                    "secret": "s",
                    "name": "n",
                },
                "inbox": {"type": "webhook", "url": "https://x.example", "secret": "s"},
            },
            extra={"inbox": FakeInbox()},
        )
    problems = caught.value.problems
    expected = [
        "channels.fax: unknown type 'fax'; use smtp, webhook or sms",
        "channels.untyped: missing key 'type'",
        "channels.email: missing key 'host'",
        "channels.email: unknown key 'hots' for type 'smtp'; did you mean 'host'?",
        "channels.email: port must be a port number, not '25'",
        "channels.mail2: password must be a string, not ***",
        "channels.hook: secret must be",
        "channels.sms: body['p'] '{phone}' uses unknown placeholder {phone}",
        "channels.named: unknown key 'name'",
        "channels.inbox: configured, and also given built",
    ]
    for start in expected:
        assert any(p.startswith(start) for p in problems), (start, problems)
    assert len(problems) == len(expected), problems
    assert "123456" not in str(caught.value)
    assert caught.value.what == "channel configuration"


def test_build_channels_with_nothing_configured_is_just_the_extra() -> None:
    inbox = FakeInbox()
    assert build_channels({}) == {}
    assert build_channels({}, extra={"inbox": inbox}) == {"inbox": inbox}
