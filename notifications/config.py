"""Notifications configured as data (a TOML file), checked whole at load (issue #5).

::

    templates = "templates"     # optional: a folder of the app's own templates (overrides)
    max_attempts = 6            # then dead letter
    backoff_seconds = 30        # doubled after each failure
    max_backoff_seconds = 3600
    lease_seconds = 30          # a deliverer's hold on what it sends, renewed as it works

    [channels.inbox]
    type = "inbox"              # the in-app inbox, in the database
    [channels.email]
    type = "smtp"
    host = "smtp.example.com"
    port = 25
    sender = "service@example.com"
    [channels.hq]
    type = "webhook"
    url = "https://hq.example.com/baoflow"
    secret = "..."

    [[people]]                  # roles and org units -> addresses (notifications.directory)
    id = "s01"
    name = "陈刚"
    roles = ["supervisor"]
    org_unit = "SH"
    email = "chen.gang@example.com"
    inbox = "s01"

    [parties.reporter]          # a party of the case: paths into its data
    name = "reporter.name"
    sms = "reporter.phone"
    relationship = "reporter.relationship"

Every problem (an unknown channel type, a person on a channel that is not configured, a
template that uses a field its notice does not provide...) is reported at once, before
anything is sent.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .channels import build_channels
from .delivery import Deliverer, InboxChannel
from .directory import Directory
from .message import Channel, NotificationConfigError
from .templates import TemplateSet

if TYPE_CHECKING:
    from baoflow.engine import Engine

_TOP = {
    "templates",
    "max_attempts",
    "backoff_seconds",
    "max_backoff_seconds",
    "lease_seconds",
    "channels",
    "people",
    "parties",
    "organisations",
}


def load_deliverer(
    engine: Engine, path: str | Path, *, channels: Mapping[str, Channel] | None = None
) -> Deliverer:
    """The deliverer configured by the TOML file at ``path`` for ``engine``; ``channels``
    are an app's own channel objects, by name, besides the configured ones."""
    file = Path(path)
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotificationConfigError(
            f"the notification configuration {file}", ["no such file; see docs/notifications.md"]
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise NotificationConfigError(
            f"the notification configuration {file}", [f"not valid TOML: {exc}"]
        ) from None
    return deliverer_from_config(engine, raw, base=file.parent, channels=channels)


def deliverer_from_config(
    engine: Engine,
    raw: Mapping[str, Any],
    *,
    base: Path = Path("."),
    channels: Mapping[str, Channel] | None = None,
) -> Deliverer:
    """As :func:`load_deliverer`, from the parsed mapping (``base``: where relative
    paths start)."""
    problems = [
        f"{key}: unknown setting; use {', '.join(sorted(_TOP))}" for key in raw if key not in _TOP
    ]
    channel_config = dict(raw.get("channels") or {})
    inbox: dict[str, Channel] = dict(channels or {})
    for name, spec in list(channel_config.items()):
        if isinstance(spec, Mapping) and spec.get("type") == "inbox":
            extra = sorted(set(spec) - {"type"})
            if extra:
                problems.append(f"channels.{name}: unknown key(s) {', '.join(extra)} for an inbox")
            inbox[name] = InboxChannel(engine.store, engine.clock, name=name)
            del channel_config[name]
    built: dict[str, Channel] = {}
    try:
        built = build_channels(channel_config, extra=inbox)
    except NotificationConfigError as exc:
        problems.extend(exc.problems)
    try:
        directory = Directory.from_config(raw, set(channel_config) | set(inbox))
    except NotificationConfigError as exc:
        problems.extend(exc.problems)
        directory = Directory()
    overrides = [base / raw["templates"]] if raw.get("templates") else []
    try:
        templates = TemplateSet(engine.notice_fields(), override_dirs=overrides)
    except NotificationConfigError as exc:
        problems.extend(exc.problems)
    if problems:
        raise NotificationConfigError("the notification configuration", problems)
    return Deliverer(
        engine,
        templates,
        built,
        directory,
        max_attempts=int(raw.get("max_attempts", 6)),
        backoff=timedelta(seconds=float(raw.get("backoff_seconds", 30))),
        max_backoff=timedelta(seconds=float(raw.get("max_backoff_seconds", 3600))),
        lease=timedelta(seconds=float(raw.get("lease_seconds", 30))),
    )
