"""The channels that leave the process: e-mail over SMTP, a signed webhook, an SMS gateway.

Each class satisfies :class:`notifications.message.Channel`: ``send(message)`` returns
once the other side accepted the message, or raises :class:`DeliveryFailed`, retryable
unless retrying cannot help (``permanent=True``: the address is malformed, the recipient
does not exist, the receiver rejects the request as such). Every channel passes the
message's idempotency key on, so a receiver can drop the duplicate of a retried delivery:
the SMTP ``Message-ID`` is derived from it (and sent as ``X-Baoflow-Key``), the webhook
sends it as ``Idempotency-Key``, the SMS gateway gets it in a field of its choosing.

A failure's ``reason`` says what happened and where (``host:port``); it never contains
the message's text, the webhook's secret or the SMTP password.

:func:`build_channels` builds the channels from configuration (one entry per channel,
keyed by the channel's name) and reports every problem in it at once, at load.
"""

from __future__ import annotations

import difflib
import hashlib
import hmac
import json
import math
import smtplib
import ssl
import string
import time
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime
from email.errors import HeaderParseError
from email.headerregistry import Address as MailAddress
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, parseaddr
from typing import Any, Final

import httpx
from baoflow.notifications.message import Channel, DeliveryFailed, Message, NotificationConfigError

__all__ = [
    "SMS_PLACEHOLDERS",
    "SmsGatewayChannel",
    "SmtpChannel",
    "WebhookChannel",
    "build_channels",
    "message_id",
    "sign",
    "verify_signature",
]

#: HTTP statuses that say "not now" rather than "not this request": retried.
_RETRYABLE_4XX: Final = frozenset({408, 425, 429})

#: Hosts on which a password may travel without STARTTLS.
_LOOPBACK: Final = frozenset({"localhost", "127.0.0.1", "::1"})


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_timeout(timeout: object, problems: list[str]) -> None:
    if not _is_number(timeout) or not (0 < float(timeout) < math.inf):  # type: ignore[arg-type]
        problems.append(f"timeout must be a number of seconds greater than 0, not {timeout!r}")


def _one_line(text: str, limit: int = 200) -> str:
    """A server's answer, safe to put in a reason: one line, bounded."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


# --------------------------------------------------------------------------- SMTP


def message_id(key: str) -> str:
    """The ``Message-ID`` of the e-mail for idempotency key ``key``: the same for every
    attempt, so a receiver (or a mail archive) can drop a retried duplicate."""
    return f"<{hashlib.sha256(key.encode('utf-8')).hexdigest()[:32]}@baoflow>"


class SmtpChannel:
    """E-mail through an SMTP server (a relay, or the provider's submission port).

    Each message goes as ``multipart/alternative`` (the text, then the HTML), UTF-8,
    base64, with the subject and display names RFC 2047 encoded, to
    ``message.address.to`` (with ``message.address.name`` as display name).
    ``Message-ID`` is :func:`message_id` of the message's key; ``X-Baoflow-Key`` carries
    the key itself and ``Auto-Submitted: auto-generated`` keeps auto-replies away.

    One connection per message (notices are few; a connection left open would be
    dropped by the server between them anyway).

    Failures: connection refused or timed out, TLS or login failures, the server
    disconnecting and every 4xx answer are retryable; a 5xx refusal of the recipient or
    of the message itself, a malformed recipient address and a non-ASCII address the
    server cannot take (no SMTPUTF8) are permanent. A 5xx refusal of the *sender* is
    retryable: it is this channel's configuration, not the message, that is wrong.

    Args:
        host, port: the SMTP server.
        sender: the ``From`` address, optionally with a display name
            (``"保险服务 <noreply@example.com>"``); its address is the envelope sender.
        name: the channel's name (what addresses name in ``Address.channel``).
        starttls: upgrade the connection with STARTTLS (certificate verified) before
            anything else.
        username, password: log in with these (both or neither). Only with
            ``starttls``, unless the server is on loopback: no password in clear.
        timeout: seconds for connecting and for each answer of the server.
        local_hostname: the name to greet the server with (EHLO); by default the
            host's FQDN, which may take a DNS lookup on every message.

    Raises:
        NotificationConfigError: the configuration is unusable (every problem listed).
    """

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        *,
        name: str = "email",
        starttls: bool = False,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
        local_hostname: str | None = None,
    ) -> None:
        problems: list[str] = []
        if not isinstance(host, str) or not host.strip():
            problems.append("host must be the SMTP server's name or address, not empty")
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            problems.append(f"port must be between 1 and 65535, not {port!r}")
        envelope_from = ""
        if not isinstance(sender, str) or not sender.strip():
            problems.append("sender must be an e-mail address, e.g. noreply@example.com")
        else:
            envelope_from = parseaddr(sender)[1]
            if "@" not in envelope_from or _mail_address(envelope_from) is None:
                problems.append(
                    f"sender {sender!r} is not an e-mail address "
                    "(write noreply@example.com or 保险服务 <noreply@example.com>)"
                )
        if (username is None) != (password is None):
            problems.append("username and password go together: give both or neither")
        if (
            username is not None
            and not starttls
            and isinstance(host, str)
            and host.strip()
            and host.strip().lower() not in _LOOPBACK
        ):
            problems.append(
                "username/password without starttls would send the password in clear; "
                "set starttls: true"
            )
        _check_timeout(timeout, problems)
        if problems:
            raise NotificationConfigError(f"smtp channel {name!r}", problems)
        self.name = name
        self.host = host.strip()
        self.port = port
        self.sender = sender
        self.starttls = starttls
        self.username = username
        self._password = password
        self.timeout = float(timeout)
        self.local_hostname = local_hostname
        self._envelope_from = envelope_from

    def __repr__(self) -> str:
        return f"SmtpChannel(name={self.name!r}, host={self.host!r}, port={self.port})"

    @property
    def _where(self) -> str:
        return f"{self.host}:{self.port}"

    def compose(self, message: Message) -> EmailMessage:
        """The e-mail for ``message``, as :meth:`send` sends it.

        Raises:
            DeliveryFailed: permanent, ``message.address.to`` is not an e-mail address.
        """
        to = message.address.to.strip()
        recipient = _mail_address(to, display_name=_header_text(message.address.name))
        if recipient is None:
            raise DeliveryFailed(
                f"e-mail channel {self.name!r}: the recipient address is malformed "
                "(not sent; fix the address in the directory)",
                permanent=True,
            )
        mail = EmailMessage(policy=SMTP_POLICY)
        mail["Subject"] = _header_text(message.subject)
        mail["From"] = self.sender
        mail["To"] = recipient
        mail["Date"] = format_datetime(datetime.now(UTC))
        mail["Message-ID"] = message_id(message.key)
        mail["X-Baoflow-Key"] = _header_text(message.key)
        mail["Auto-Submitted"] = "auto-generated"
        mail.set_content(message.text, charset="utf-8", cte="base64")
        mail.add_alternative(message.html, subtype="html", charset="utf-8", cte="base64")
        return mail

    def send(self, message: Message) -> None:
        """Send ``message`` by e-mail; return when the server has accepted it.

        Raises:
            DeliveryFailed: why not, retryable unless ``permanent`` (see the class).
        """
        mail = self.compose(message)
        to = message.address.to.strip()
        stage = "connecting to"
        smtp = smtplib.SMTP(local_hostname=self.local_hostname, timeout=self.timeout)
        try:
            smtp.connect(self.host, self.port)
            if self.starttls:
                stage = "STARTTLS with"
                smtp.starttls(context=ssl.create_default_context())
            if self.username is not None and self._password is not None:
                stage = "logging in to"
                smtp.login(self.username, self._password)
            stage = "sending through"
            smtp.send_message(mail, from_addr=self._envelope_from, to_addrs=[to])
        except smtplib.SMTPRecipientsRefused as exc:
            code, answer = next(iter(exc.recipients.values()), (-1, b""))
            raise self._refused("the recipient was refused", code, answer) from None
        except smtplib.SMTPDataError as exc:
            raise self._refused("the message was refused", exc.smtp_code, exc.smtp_error) from None
        except smtplib.SMTPSenderRefused as exc:
            failure = self._refused("the sender was refused", exc.smtp_code, exc.smtp_error)
            raise DeliveryFailed(failure.reason + "; check the sender") from None
        except smtplib.SMTPResponseException as exc:
            said = _one_line(_decode(exc.smtp_error))
            raise DeliveryFailed(
                f"e-mail channel {self.name!r}: {stage} {self._where} failed: "
                f"{exc.smtp_code} {said}"
            ) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise DeliveryFailed(
                f"e-mail channel {self.name!r}: {stage} {self._where} failed: {exc}",
                # In sending, this is a non-ASCII address and no SMTPUTF8: it stays so.
                permanent=stage == "sending through",
            ) from None
        except (TimeoutError, smtplib.SMTPServerDisconnected) as exc:
            what = "timed out" if isinstance(exc, TimeoutError) else _one_line(str(exc))
            raise DeliveryFailed(
                f"e-mail channel {self.name!r}: {stage} {self._where}: {what} "
                f"(timeout {self.timeout:g} s)"
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryFailed(
                f"e-mail channel {self.name!r}: {stage} {self._where} failed: "
                f"{type(exc).__name__}: {_one_line(str(exc))}"
            ) from None
        finally:
            _close_quietly(smtp)

    def _refused(self, what: str, code: int, answer: bytes | str) -> DeliveryFailed:
        permanent = 500 <= code < 600
        then = "not retried" if permanent else "will retry"
        return DeliveryFailed(
            f"e-mail channel {self.name!r}: {self._where} answered {code} "
            f"{_one_line(_decode(answer))}: {what} ({then})",
            permanent=permanent,
        )


def _mail_address(addr_spec: str, display_name: str = "") -> MailAddress | None:
    """``addr_spec`` parsed, or ``None`` if it is not one plain e-mail address."""
    if not addr_spec or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in addr_spec):
        return None
    try:
        address = MailAddress(display_name=display_name, addr_spec=addr_spec)
    except (ValueError, IndexError, HeaderParseError):
        return None
    return address if address.domain and address.username else None


def _header_text(text: str) -> str:
    """``text`` on one line: a header cannot hold a line break."""
    return " ".join(text.split())


def _decode(answer: bytes | str) -> str:
    return answer.decode("utf-8", "replace") if isinstance(answer, bytes) else answer


def _close_quietly(smtp: smtplib.SMTP) -> None:
    """Say QUIT if still connected and close; the message's fate is already known."""
    try:
        if smtp.sock is not None:
            smtp.quit()
    except (OSError, smtplib.SMTPException):
        pass
    finally:
        smtp.close()


# --------------------------------------------------------------------------- HTTP


def _check_url(url: object, problems: list[str]) -> httpx.URL | None:
    if not isinstance(url, str) or not url.strip():
        problems.append("url must be an http:// or https:// URL, not empty")
        return None
    try:
        parsed = httpx.URL(url.strip())
    except (httpx.InvalidURL, ValueError, TypeError):
        problems.append("url is not a valid URL")
        return None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        problems.append("url must be an http:// or https:// URL with a host")
        return None
    return parsed


def _where(url: httpx.URL) -> str:
    """``scheme://host:port`` of ``url``: no path or query, which may hold a token."""
    port = url.port or (443 if url.scheme == "https" else 80)
    host = f"[{url.host}]" if ":" in url.host else url.host
    return f"{url.scheme}://{host}:{port}"


def _http_send(
    channel: str,
    method: str,
    url: httpx.URL,
    *,
    client: httpx.Client | None,
    timeout: float,
    ok: Callable[[int], bool],
    **request: Any,
) -> None:
    """Send one request; return if ``ok(status)``, else raise :class:`DeliveryFailed`."""
    where = f"{method} {_where(url)}"
    try:
        if client is not None:
            response = client.request(method, url, timeout=timeout, **request)
        else:
            with httpx.Client(timeout=timeout) as own:
                response = own.request(method, url, **request)
    except httpx.TimeoutException as exc:
        raise DeliveryFailed(
            f"{channel}: {where} timed out ({type(exc).__name__}, timeout {timeout:g} s)"
        ) from None
    except httpx.HTTPError as exc:
        raise DeliveryFailed(
            f"{channel}: {where} failed: {type(exc).__name__}: {_one_line(str(exc))}"
        ) from None
    status = response.status_code
    if ok(status):
        return
    retryable = status >= 500 or status in _RETRYABLE_4XX
    detail = f"HTTP {status} {response.reason_phrase}".rstrip()
    retry_after = response.headers.get("Retry-After")
    if retry_after:
        detail += f" (Retry-After: {_one_line(retry_after, 40)})"
    then = "will retry" if retryable else "not retried"
    raise DeliveryFailed(f"{channel}: {where} answered {detail} ({then})", permanent=not retryable)


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """The ``X-Baoflow-Signature`` value for ``body`` sent at ``timestamp``:
    ``sha256=`` and the hex HMAC-SHA256, keyed with ``secret``, of
    ``f"{timestamp}.".encode() + body``."""
    signed = f"{timestamp}.".encode() + body
    return "sha256=" + hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def verify_signature(
    secret: str,
    timestamp: int | str,
    body: bytes,
    header: str,
    *,
    max_age: float | None = None,
    now: float | None = None,
) -> bool:
    """Whether ``header`` (the ``X-Baoflow-Signature`` received) signs ``body`` (the raw
    request body, as received) with ``timestamp`` (``X-Baoflow-Timestamp``).

    Compares in constant time. With ``max_age`` (seconds), also refuses a timestamp
    further than that from ``now`` (default: the current time), so a captured request
    cannot be replayed later; the ``Idempotency-Key`` drops a replay within that window.
    """
    if max_age is not None:
        try:
            sent = int(timestamp)
        except ValueError:
            return False
        if abs((time.time() if now is None else now) - sent) > max_age:
            return False
    expected = sign(secret, timestamp, body).encode("ascii")
    return hmac.compare_digest(expected, header.strip().encode("utf-8"))


class WebhookChannel:
    """A signed JSON POST to one URL (e.g. head office's case system).

    The body is ``{"key", "template", "case_number", "to", "subject", "text",
    "locale"}`` (``to`` and ``locale`` from the message's address), UTF-8 JSON. Headers:
    ``Idempotency-Key`` (the message's key: the receiver drops a retried duplicate),
    ``X-Baoflow-Timestamp`` (Unix seconds) and ``X-Baoflow-Signature`` (:func:`sign`;
    the receiver checks it with :func:`verify_signature` on the raw body).

    A 2xx answer is success; 5xx, 408, 425, 429, connection failures and timeouts are
    retryable; any other answer (3xx: redirects are not followed; 4xx) is permanent.

    Args:
        url: where to POST (``http://`` or ``https://``).
        secret: the shared HMAC key.
        name: the channel's name.
        timeout: seconds for connecting and for each read.
        client: an ``httpx.Client`` to send with (connection pooling, proxies, custom
            TLS), which the caller closes; by default a client per message.

    Raises:
        NotificationConfigError: the URL or the secret is missing or unusable.
    """

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        name: str = "webhook",
        timeout: float = 10.0,
        client: httpx.Client | None = None,
    ) -> None:
        problems: list[str] = []
        parsed = _check_url(url, problems)
        if not isinstance(secret, str) or not secret:
            problems.append("secret must be the shared signing key, not empty")
        _check_timeout(timeout, problems)
        if problems or parsed is None:
            raise NotificationConfigError(f"webhook channel {name!r}", problems)
        self.name = name
        self.url = parsed
        self._secret = secret
        self.timeout = float(timeout)
        self._client = client

    def __repr__(self) -> str:
        return f"WebhookChannel(name={self.name!r}, url={_where(self.url)!r})"

    def body(self, message: Message) -> bytes:
        """The JSON body POSTed for ``message``."""
        payload = {
            "key": message.key,
            "template": message.template,
            "case_number": message.case_number,
            "to": message.address.to,
            "subject": message.subject,
            "text": message.text,
            "locale": message.address.locale,
        }
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    def send(self, message: Message) -> None:
        """POST ``message``; return when the receiver answered 2xx.

        Raises:
            DeliveryFailed: why not, retryable unless ``permanent`` (see the class).
        """
        body = self.body(message)
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": _header_text(message.key),
            "X-Baoflow-Timestamp": timestamp,
            "X-Baoflow-Signature": sign(self._secret, timestamp, body),
        }
        if not headers["Idempotency-Key"].isascii():
            raise DeliveryFailed(
                f"webhook channel {self.name!r}: the message key is not ASCII "
                "and cannot go in a header",
                permanent=True,
            )
        _http_send(
            f"webhook channel {self.name!r}",
            "POST",
            self.url,
            client=self._client,
            timeout=self.timeout,
            ok=lambda status: 200 <= status < 300,
            content=body,
            headers=headers,
        )


# --------------------------------------------------------------------------- SMS

#: What the SMS gateway's body and header templates may use.
SMS_PLACEHOLDERS: Final = ("to", "text", "key", "subject")

_SMS_DEFAULT_BODY: Final[Mapping[str, str]] = {
    "phone": "{to}",
    "content": "{text}",
    "request_id": "{key}",
}

_SMS_METHODS: Final = ("POST", "PUT", "GET")


def _template_problems(where: str, template: object) -> list[str]:
    """What is wrong with one ``str.format``-style template of the SMS configuration."""
    if not isinstance(template, str):
        return [f"{where} must be a string, not {template!r}"]
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        return [f"{where} {template!r} is malformed ({exc}); write {{{{ and }}}} for braces"]
    problems = []
    for _literal, field, spec, conversion in parts:
        if field is None:
            continue
        if field not in SMS_PLACEHOLDERS:
            problems.append(
                f"{where} {template!r} uses unknown placeholder {{{field}}}; "
                f"use {', '.join('{' + p + '}' for p in SMS_PLACEHOLDERS)}"
            )
        elif spec or conversion:
            problems.append(
                f"{where} {template!r}: write {{{field}}} without a format or !conversion"
            )
    return problems


def _render(template: str, values: Mapping[str, str]) -> str:
    """``template`` with its (already validated) placeholders replaced."""
    out = []
    for literal, field, _spec, _conversion in string.Formatter().parse(template):
        out.append(literal)
        if field is not None:
            out.append(values[field])
    return "".join(out)


class SmsGatewayChannel:
    """Text messages through an HTTP SMS gateway, whose request shape is configured.

    ``body`` maps the gateway's field names to templates that may use ``{to}`` (the
    phone number), ``{text}`` (``message.text``), ``{key}`` (the idempotency key: map
    it to the gateway's request / out-id field so a retry is not sent twice) and
    ``{subject}``; write ``{{`` and ``}}`` for literal braces. Header values may use
    the same placeholders (header names are literal). The fields go as JSON
    (``as_json``), form-encoded, or as query parameters with ``method="GET"``.

    The SMS text is ``message.text`` exactly: no subject is prepended. Chinese
    gateways reserve the leading ``【…】`` for the registered signature (签名) and
    refuse or mis-sign anything else there; a gateway that takes a subject gets it
    through ``{subject}``.

    A status in ``ok_statuses`` is success; 5xx, 408, 425, 429, connection failures
    and timeouts are retryable; any other status is permanent. (A gateway that
    answers 200 with an error code in its body is taken at its status.)

    Args:
        url: the gateway's endpoint.
        name: the channel's name.
        method: ``POST`` (default), ``PUT`` or ``GET``.
        body: gateway field → template (default
            ``{"phone": "{to}", "content": "{text}", "request_id": "{key}"}``).
        headers: header name → template, e.g. ``{"Authorization": "Bearer …",
            "X-Request-Id": "{key}"}``.
        as_json: send the fields as a JSON object (default) or form-encoded.
        ok_statuses: the statuses that mean "accepted".
        timeout: seconds for connecting and for each read.
        client: an ``httpx.Client`` to send with, which the caller closes; by default
            a client per message.

    Raises:
        NotificationConfigError: every problem of the configuration, e.g. an unknown
            placeholder.
    """

    def __init__(
        self,
        url: str,
        *,
        name: str = "sms",
        method: str = "POST",
        body: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        as_json: bool = True,
        ok_statuses: Collection[int] = (200, 201, 202),
        timeout: float = 10.0,
        client: httpx.Client | None = None,
    ) -> None:
        problems: list[str] = []
        parsed = _check_url(url, problems)
        verb = method.upper() if isinstance(method, str) else ""
        if verb not in _SMS_METHODS:
            problems.append(f"method must be POST, PUT or GET, not {method!r}")
        fields = dict(_SMS_DEFAULT_BODY if body is None else body)
        if not fields:
            problems.append("body must name at least one field, e.g. {'phone': '{to}', ...}")
        for field, template in fields.items():
            if not isinstance(field, str) or not field:
                problems.append(f"body field names must be non-empty strings, not {field!r}")
            problems += _template_problems(f"body[{field!r}]", template)
        header_templates = dict(headers or {})
        for header, template in header_templates.items():
            if not isinstance(header, str) or not _is_header_name(header):
                problems.append(f"header name {header!r} is not a valid HTTP header name")
            problems += _template_problems(f"headers[{header!r}]", template)
            if isinstance(template, str) and not _is_header_value(template):
                problems.append(
                    f"headers[{header!r}] must be printable ASCII (no line breaks, no Chinese)"
                )
        statuses = tuple(ok_statuses) if isinstance(ok_statuses, Collection) else ()
        if not statuses or not all(
            isinstance(s, int) and not isinstance(s, bool) and 100 <= s <= 599 for s in statuses
        ):
            problems.append(
                f"ok_statuses must be HTTP statuses (100-599), at least one, not {ok_statuses!r}"
            )
        _check_timeout(timeout, problems)
        if problems or parsed is None:
            raise NotificationConfigError(f"sms channel {name!r}", problems)
        self.name = name
        self.url = parsed
        self.method = verb
        self.body = fields
        self.headers = header_templates
        self.as_json = as_json
        self.ok_statuses = frozenset(statuses)
        self.timeout = float(timeout)
        self._client = client

    def __repr__(self) -> str:
        return f"SmsGatewayChannel(name={self.name!r}, url={_where(self.url)!r})"

    def send(self, message: Message) -> None:
        """Hand ``message`` to the gateway; return when it answered an ok status.

        Raises:
            DeliveryFailed: why not, retryable unless ``permanent`` (see the class).
        """
        channel = f"sms channel {self.name!r}"
        to = message.address.to.strip()
        if not to:
            raise DeliveryFailed(f"{channel}: no phone number (not sent)", permanent=True)
        values = {
            "to": to,
            "text": message.text,
            "key": message.key,
            "subject": message.subject,
        }
        fields = {field: _render(template, values) for field, template in self.body.items()}
        headers = {}
        for header, template in self.headers.items():
            value = _render(template, values)
            if not _is_header_value(value):
                raise DeliveryFailed(
                    f"{channel}: header {header} would not be printable ASCII "
                    "(a placeholder in it has line breaks or Chinese; not sent)",
                    permanent=True,
                )
            headers[header] = value
        url = self.url
        request: dict[str, Any] = {"headers": headers}
        if self.method == "GET":
            # Added to the URL's own query (httpx's params= would replace it).
            url = url.copy_merge_params(fields)
        elif self.as_json:
            request["content"] = json.dumps(fields, ensure_ascii=False).encode("utf-8")
            headers.setdefault("Content-Type", "application/json")
        else:
            request["data"] = fields
        _http_send(
            channel,
            self.method,
            url,
            client=self._client,
            timeout=self.timeout,
            ok=self.ok_statuses.__contains__,
            **request,
        )


_TOKEN_CHARS: Final = frozenset("!#$%&'*+-.^_`|~" + string.ascii_letters + string.digits)


def _is_header_name(name: str) -> bool:
    return bool(name) and all(c in _TOKEN_CHARS for c in name)


def _is_header_value(value: str) -> bool:
    return value.isascii() and all(c == "\t" or 32 <= ord(c) < 127 for c in value)


# --------------------------------------------------------------------------- config


class _Option:
    """One configuration key of a channel type: its kinds of value, and whether it is
    required."""

    def __init__(
        self, description: str, check: Callable[[Any], bool], *, required: bool = False
    ) -> None:
        self.description = description
        self.check = check
        self.required = required


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _is_optional_str(value: Any) -> bool:
    return value is None or isinstance(value, str)


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_str_mapping(value: Any) -> bool:
    return isinstance(value, Mapping) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    )


def _is_int_list(value: Any) -> bool:
    return isinstance(value, list | tuple | set | frozenset) and all(_is_int(v) for v in value)


_TIMEOUT: Final = _Option("a number of seconds", _is_number)

_TYPES: Final[dict[str, tuple[Callable[..., Channel], dict[str, _Option]]]] = {
    "smtp": (
        SmtpChannel,
        {
            "host": _Option("a host name", _is_str, required=True),
            "port": _Option("a port number", _is_int, required=True),
            "sender": _Option("an e-mail address", _is_str, required=True),
            "starttls": _Option("true or false", _is_bool),
            "username": _Option("a string", _is_optional_str),
            "password": _Option("a string", _is_optional_str),
            "timeout": _TIMEOUT,
            "local_hostname": _Option("a host name", _is_optional_str),
        },
    ),
    "webhook": (
        WebhookChannel,
        {
            "url": _Option("a URL", _is_str, required=True),
            "secret": _Option("a string", _is_str, required=True),
            "timeout": _TIMEOUT,
        },
    ),
    "sms": (
        SmsGatewayChannel,
        {
            "url": _Option("a URL", _is_str, required=True),
            "method": _Option("POST, PUT or GET", _is_str),
            "body": _Option("a table of field = template strings", _is_str_mapping),
            "headers": _Option("a table of header = template strings", _is_str_mapping),
            "as_json": _Option("true or false", _is_bool),
            "ok_statuses": _Option("a list of HTTP statuses", _is_int_list),
            "timeout": _TIMEOUT,
        },
    ),
}


def build_channels(
    config: Mapping[str, Mapping[str, Any]],
    *,
    extra: Mapping[str, Channel] | None = None,
) -> dict[str, Channel]:
    """The channels ``config`` describes, by name, plus the ``extra`` ones given built.

    ``config`` maps each channel's name to its settings: ``type`` (``smtp``,
    ``webhook`` or ``sms``) and the keyword arguments of :class:`SmtpChannel`,
    :class:`WebhookChannel` or :class:`SmsGatewayChannel` (not ``name``: it is the key;
    not ``client``)::

        {"email": {"type": "smtp", "host": "smtp.example.com", "port": 587,
                   "sender": "noreply@example.com", "starttls": True, ...},
         "hq-hook": {"type": "webhook", "url": "https://…", "secret": "…"},
         "sms": {"type": "sms", "url": "https://…", "body": {...}}}

    Raises:
        NotificationConfigError: listing every problem, each with its channel
            (``channels.fax: unknown type 'fax'; use smtp, webhook or sms``).
    """
    problems: list[str] = []
    channels: dict[str, Channel] = {}
    if not isinstance(config, Mapping):
        raise NotificationConfigError(
            "channel configuration", ["channels must be a table of channel name = settings"]
        )
    for name, settings in config.items():
        where = f"channels.{name}"
        if not isinstance(name, str) or not name.strip():
            problems.append(f"channels: a channel name must be a non-empty string, not {name!r}")
            continue
        if not isinstance(settings, Mapping):
            problems.append(f"{where}: must be a table of settings, not {settings!r}")
            continue
        kind = settings.get("type")
        if kind is None:
            problems.append(f"{where}: missing key 'type'; use smtp, webhook or sms")
            continue
        if kind not in _TYPES:
            problems.append(f"{where}: unknown type {kind!r}; use smtp, webhook or sms")
            continue
        factory, options = _TYPES[kind]
        found = _settings_problems(where, kind, settings, options)
        if not found:
            kwargs = {k: v for k, v in settings.items() if k != "type"}
            if "ok_statuses" in kwargs:
                kwargs["ok_statuses"] = tuple(kwargs["ok_statuses"])
            try:
                channels[name] = factory(name=name, **kwargs)
            except NotificationConfigError as exc:
                found = [f"{where}: {p}" for p in exc.problems]
        problems += found
    for name, channel in (extra or {}).items():
        if name in config:
            problems.append(f"channels.{name}: configured, and also given built (extra); keep one")
        else:
            channels[name] = channel
    if problems:
        raise NotificationConfigError("channel configuration", problems)
    return channels


def _settings_problems(
    where: str, kind: str, settings: Mapping[str, Any], options: Mapping[str, _Option]
) -> list[str]:
    problems = []
    for key, option in options.items():
        if option.required and key not in settings:
            problems.append(f"{where}: missing key {key!r} ({option.description})")
    for key, value in settings.items():
        if key == "type":
            continue
        known = options.get(key) if isinstance(key, str) else None
        if known is None:
            hint = ""
            if key == "name":
                hint = "; the channel's name is its key"
            else:
                close = difflib.get_close_matches(str(key), list(options), n=1)
                if close:
                    hint = f"; did you mean {close[0]!r}?"
            problems.append(
                f"{where}: unknown key {key!r} for type {kind!r}{hint} "
                f"(known: type, {', '.join(options)})"
            )
        elif not known.check(value):
            shown = "***" if key in ("password", "secret") else repr(value)
            problems.append(f"{where}: {key} must be {known.description}, not {shown}")
    return problems
