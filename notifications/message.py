"""What delivery hands a channel: one rendered message to one address.

The outbox holds notices (a template, a recipient, the template's context frozen at
commit: ``engine.notices``). Delivery resolves a recipient to addresses, renders the
template for each (masked unless the address is the data subject) and gives each
channel a :class:`Message`. A channel sends it or raises :class:`DeliveryFailed`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from baoflow.engine.errors import BaoflowError


@dataclass(frozen=True)
class Address:
    """Where one message goes.

    Attributes:
        channel: the channel's name: ``email``, ``webhook``, ``inbox``, ``sms``, or one
            an app configures.
        to: what that channel needs: an e-mail address, a phone number, a user id, a
            webhook name.
        name: who it is, for the salutation and the logs.
        locale: the language to render in (``zh-CN`` first, ``en``).
        data_subject: whether this is the person the data is about (who alone gets
            identity and phone numbers unmasked).
    """

    channel: str
    to: str
    name: str = ""
    locale: str = "zh-CN"
    data_subject: bool = False


@dataclass(frozen=True)
class Message:
    """One rendered notice for one address.

    Attributes:
        key: the idempotency key, the same for every attempt at this message; a channel
            that can, passes it on (a webhook header, the SMTP Message-ID, the SMS
            gateway's request id, the inbox's unique key) so a retry is not shown twice.
        address: where it goes.
        template: the notice's template name (e.g. ``deadline_warning``).
        subject: the rendered subject line.
        text: the rendered plain-text body.
        html: the body as HTML (autoescaped), for channels that show HTML.
        case_number: the case it is about, if any.
    """

    key: str
    address: Address
    template: str
    subject: str
    text: str
    html: str
    case_number: str | None = None


class Channel(Protocol):
    """A way of sending messages. ``send`` returns when the message is accepted by the
    other side, or raises :class:`DeliveryFailed` saying why (it will be retried)."""

    name: str

    def send(self, message: Message) -> None: ...


class NotificationError(BaoflowError):
    """Base of the notification errors."""


class DeliveryFailed(NotificationError):
    """A channel could not deliver a message now; the outbox retries it with backoff.

    ``permanent=True`` when retrying cannot help (e.g. the address is malformed): the
    message goes to dead letter at once."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        self.reason = reason
        self.permanent = permanent
        super().__init__(reason)


class NotificationConfigError(NotificationError):
    """Templates, channels or the directory are not usable; every problem is listed.

    Raised at load (``baoflow`` refuses to start with it), never at delivery time."""

    def __init__(self, what: str, problems: list[str]) -> None:
        self.what = what
        self.problems = tuple(problems)
        listed = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"{what} has {len(problems)} problem(s); fix them and start again:\n{listed}"
        )
