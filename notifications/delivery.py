"""Delivering the outbox after commit: resolve, render, send, retry, dead-letter (issue #5).

The engine writes notices to the outbox in the transaction of the change that caused
them (``engine.notices``), so a rollback tells nobody and a commit loses nothing.
:meth:`Deliverer.deliver_due` then, for what is due at the clock's now:

1. **resolves** each new notice (a role, or a party of the case) to its addresses in
   the :class:`~notifications.directory.Directory` — one outbox row per address, in one
   transaction; a recipient with no address goes to dead letter saying why;
2. **sends** each message: leased (``FOR UPDATE SKIP LOCKED`` on PostgreSQL) and
   committed before sending, rendered with its template (masked unless the address is
   the data subject), handed to its channel, then marked delivered — or, on failure,
   retried with exponential backoff, and after ``max_attempts`` (or a permanent
   failure) left in dead letter with the last error. Nothing is ever deleted.

A crash between a channel accepting a message and the mark that it was delivered
leaves the message leased; when the lease runs out (30 s by default: it is renewed
while the deliverer works, ``engine.leases``) it is sent again — at most one
duplicate per crash, never a loss — under the same idempotency key, which the webhook,
SMS and inbox channels pass on (and the e-mail channel as its Message-ID).

A database that is down ends :meth:`Deliverer.deliver_due` with the engine's
``StorageUnavailable`` (a channel's own failure never does): what was marked stays marked,
and what was leased is taken again when its lease runs out.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from baoflow.engine import faultpoints
from baoflow.engine.errors import StorageUnavailable
from baoflow.engine.leases import Renewal
from jinja2 import TemplateError

from .directory import Directory
from .masking import mask_text
from .message import Address, Channel, DeliveryFailed, Message, NotificationError
from .templates import Rendered, TemplateSet

if TYPE_CHECKING:
    from baoflow.engine import Clock, Engine
    from baoflow.engine.store import Store
    from baoflow.engine.store.rows import OutboxRecord

log = logging.getLogger("baoflow.notifications")


@dataclass(frozen=True)
class DeliveryRun:
    """What one :meth:`Deliverer.deliver_due` did."""

    resolved: int = 0  # notices resolved to addresses
    messages: int = 0  # messages (one per address) those made
    delivered: int = 0
    retried: int = 0  # failed, to be tried again later
    dead: int = 0  # notices or messages put in dead letter


class InboxChannel:
    """The in-app inbox: a message lands in the ``inbox`` table for its user (what the
    dashboard shows). Its key is unique, so a retried delivery lands once."""

    def __init__(self, store: Store, clock: Clock, *, name: str = "inbox") -> None:
        self.store = store
        self.clock = clock
        self.name = name

    def send(self, message: Message) -> None:
        with self.store.write() as tx:
            tx.insert_inbox(
                {
                    "user_id": message.address.to,
                    "key": message.key,
                    "case_number": message.case_number,
                    "template": message.template,
                    "subject": message.subject[:300],
                    "body": message.text,
                    "created_at": self.clock.now(),
                }
            )


class Deliverer:
    """Delivers the outbox of ``engine``'s database.

    Args:
        engine: the engine (its store and clock).
        templates: the notice templates, checked at load.
        channels: channel name -> channel.
        directory: who the recipients are.
        max_attempts: attempts before a message goes to dead letter.
        backoff: the wait after the first failure; doubled after each further one.
        max_backoff: the longest wait between attempts.
        lease: how long a claim holds messages before another deliverer may take them
            over; renewed every third of it while the batch is being sent
            (``engine.leases``), so that a deliverer killed mid-batch loses its messages
            to the others within one lease.
    """

    def __init__(
        self,
        engine: Engine,
        templates: TemplateSet,
        channels: Mapping[str, Channel],
        directory: Directory,
        *,
        max_attempts: int = 6,
        backoff: timedelta = timedelta(seconds=30),
        max_backoff: timedelta = timedelta(hours=1),
        lease: timedelta = timedelta(seconds=30),
        worker: str | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {max_attempts}")
        self.engine = engine
        self.templates = templates
        self.channels = dict(channels)
        self.directory = directory
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.lease = lease
        self.worker = worker or f"deliverer-{os.getpid()}-{id(self):x}"

    # --- the one call ------------------------------------------------------------------
    def deliver_due(self, *, batch: int = 50, limit: int | None = None) -> DeliveryRun:
        """Resolve the new notices, then send every message due now (at most ``limit``).

        Raises:
            StorageUnavailable: the database is down or the connection was lost.
        """
        resolved, messages, dead = self._resolve_all(batch)
        delivered = retried = 0
        sent = 0
        while limit is None or sent < limit:
            now = self.engine.clock.now()
            take = batch if limit is None else min(batch, limit - sent)
            with self.engine.store.write() as tx:
                claimed = tx.claim_outbox(now, self.worker, now + self.lease, take)
            if not claimed:
                break
            with Renewal(
                self._renew, [r.id for r in claimed], self.lease, self.engine.clock
            ) as held:
                for row in claimed:
                    sent += 1
                    outcome = self._send(row)
                    held.done(row.id)
                    if outcome == "delivered":
                        delivered += 1
                    elif outcome == "retry":
                        retried += 1
                    elif outcome == "dead":
                        dead += 1
        if resolved or delivered or retried or dead:
            log.info(
                "outbox: %d notices resolved to %d messages; %d delivered, %d to retry, %d dead",
                resolved,
                messages,
                delivered,
                retried,
                dead,
            )
        return DeliveryRun(resolved, messages, delivered, retried, dead)

    def _renew(self, ids: Sequence[int], until: datetime) -> int:
        """Keep the messages still to send leased to this deliverer (``engine.leases``)."""
        with self.engine.store.write() as tx:
            return tx.renew_outbox(ids, self.worker, until)

    # --- resolving notices to addresses ------------------------------------------------
    def _resolve_all(self, batch: int) -> tuple[int, int, int]:
        resolved = messages = dead = 0
        while True:
            now = self.engine.clock.now()
            with self.engine.store.write() as tx:
                notices = tx.outbox_to_expand(now, batch)
                if not notices:
                    break
                children: list[dict[str, Any]] = []
                for expand in notices:
                    n = expand.notice
                    org_unit = n.org_unit or expand.case_org_unit
                    addresses, why = self.directory.resolve(n.recipient, org_unit, expand.case_data)
                    if not addresses:
                        tx.set_outbox([n.id], status="dead", last_error=why, attempts=1)
                        log.warning(
                            "outbox %d (%s to %s, case %s): dead letter: %s",
                            n.id,
                            n.template,
                            n.recipient,
                            n.case_number,
                            mask_text(why or ""),
                        )
                        dead += 1
                        continue
                    for a in addresses:
                        children.append(_message_row(n, org_unit, a, now))
                    tx.set_outbox([n.id], status="expanded")
                    resolved += 1
                    messages += len(addresses)
                tx.insert_outbox_rows(children)
        return resolved, messages, dead

    # --- sending one message -------------------------------------------------------------
    def _send(self, row: OutboxRecord) -> str:
        """One leased message: "delivered", "retry", "dead" or "lost" (lease taken over)."""
        # A message has both (``_message_row``); ``claim_outbox`` leases only messages.
        assert row.channel is not None and row.address is not None
        address = Address(
            row.channel,
            row.address,
            row.address_name or "",
            row.locale or "zh-CN",
            bool(row.data_subject),
        )
        channel = self.channels.get(row.channel)
        if channel is None:
            known = ", ".join(sorted(self.channels)) or "(none)"
            return self._dead(row, f"no channel named {row.channel!r} is configured ({known})")
        try:
            rendered = self.render(row.template, row.context, address)
        except (TemplateError, NotificationError, KeyError) as exc:
            return self._dead(row, f"the template {row.template!r} does not render: {exc}")
        message = Message(
            key=row.key,
            address=address,
            template=row.template,
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            case_number=row.case_number,
        )
        try:
            channel.send(message)
        except DeliveryFailed as exc:
            return self._failed(row, exc.reason, permanent=exc.permanent)
        except StorageUnavailable:
            raise  # the inbox's database, not the message: it stays leased, is retaken
        except Exception as exc:  # a channel's bug must not stop delivery of the rest
            log.exception("outbox %d: channel %s raised", row.id, row.channel)
            return self._failed(row, f"{type(exc).__name__}: {exc}", permanent=False)
        faultpoints.point("delivery.sent")
        with self.engine.store.write() as tx:
            done = tx.finish_outbox(
                row.id,
                self.worker,
                status="delivered",
                delivered_at=self.engine.clock.now(),
                attempts=row.attempts + 1,
            )
        if not done:
            log.warning("outbox %d: delivered, but its lease had been taken over", row.id)
            return "lost"
        return "delivered"

    def render(self, template: str, context: Mapping[str, Any], address: Address) -> Rendered:
        """The message as ``address`` receives it: in its language, and masked unless it
        is the data subject's own."""
        if address.data_subject:
            return self.templates.render(template, context, locale=address.locale)
        r = self.templates.render(template, _masked(context), locale=address.locale)
        return Rendered(mask_text(r.subject), mask_text(r.text), mask_text(r.html))

    def _failed(self, row: OutboxRecord, reason: str, *, permanent: bool) -> str:
        attempts = row.attempts + 1
        if permanent or attempts >= self.max_attempts:
            why = reason if permanent else f"{reason} (after {attempts} attempts)"
            return self._dead(row, why, attempts)
        wait = min(self.backoff * (2 ** (attempts - 1)), self.max_backoff)
        with self.engine.store.write() as tx:
            tx.finish_outbox(
                row.id,
                self.worker,
                attempts=attempts,
                last_error=reason,
                next_attempt_at=self.engine.clock.now() + wait,
            )
        log.info(
            "outbox %d (%s via %s): attempt %d failed, retrying in %s: %s",
            row.id,
            row.template,
            row.channel,
            attempts,
            wait,
            mask_text(reason),
        )
        return "retry"

    def _dead(self, row: OutboxRecord, reason: str, attempts: int | None = None) -> str:
        with self.engine.store.write() as tx:
            tx.finish_outbox(
                row.id,
                self.worker,
                status="dead",
                attempts=row.attempts + 1 if attempts is None else attempts,
                last_error=reason,
            )
        log.warning(
            "outbox %d (%s via %s, case %s): dead letter: %s",
            row.id,
            row.template,
            row.channel,
            row.case_number,
            mask_text(reason),
        )
        return "dead"

    def release(self) -> int:
        """Give back this deliverer's leases (on a graceful stop)."""
        with self.engine.store.write() as tx:
            return tx.release_outbox(self.worker)


def _message_row(
    notice: OutboxRecord, org_unit: str | None, address: Address, now: datetime
) -> dict[str, Any]:
    return {
        "key": f"{notice.key}>{address.channel}:{address.to}"[:300],
        "case_id": notice.case_id,
        "seq": notice.seq,
        "template": notice.template,
        "recipient": notice.recipient,
        "org_unit": org_unit,
        "context": notice.context,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "parent_id": notice.id,
        "channel": address.channel,
        "address": address.to,
        "address_name": address.name,
        "locale": address.locale,
        "data_subject": address.data_subject,
    }


def _masked(value: Any) -> Any:
    """The context with identity and phone numbers masked in every string."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, Mapping):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value
