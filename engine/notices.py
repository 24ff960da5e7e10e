"""Notices: what the engine has to tell whom, written to the outbox (DESIGN.md §3.7).

The engine decides *that* someone must be told and *what about*; it writes one outbox
row per (notice, recipient) in the same transaction as the change that caused it, so a
rollback tells nobody and a commit loses nothing. Rendering the text (Jinja2 templates,
``notifications/``), resolving a role to addresses and channels, and delivering with
retries are the delivery side (issue #5); an outbox row carries everything they need:
the template's name, the recipient, and the template's context, frozen at commit.

Idempotency: each row has a unique ``key`` naming its cause (for a timer: the timer's
id) and its recipient, so the same cause can never write the same notice twice, and a
channel that honours idempotency keys never sends a retried delivery twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from .store.rows import OutboxRow

#: What every deadline notice's template receives.
_DEADLINE = frozenset(
    {"case_number", "workflow", "rule", "title", "article", "due_at", "late_seconds", "level"}
)

#: The context each deadline notice's template receives (notifications checks its
#: templates against these at load: a template that uses anything else is a load error).
TEMPLATE_FIELDS: Mapping[str, frozenset[str]] = {
    "deadline_warning": _DEADLINE | {"share"},
    "deadline_breach": _DEADLINE,
    "deadline_escalation": _DEADLINE | {"to", "actions"},
}


class Notice(NamedTuple):
    """Tell ``to`` (a role such as ``handler`` or ``supervisor``) about something, with
    the template ``template`` and its ``context``."""

    template: str
    to: str
    context: Mapping[str, Any]


def outbox_rows(
    notices: tuple[Notice, ...],
    *,
    cause: str,
    case_id: int,
    seq: int,
    org_unit: str | None,
) -> list[OutboxRow]:
    """The outbox rows of ``notices`` caused by ``cause`` (e.g. ``timer:42``), one per
    notice and recipient; ``Tx.insert_outbox`` adds their delivery state (pending,
    due at once)."""
    return [
        {
            "key": f"{cause}:{n.template}:{n.to}",
            "case_id": case_id,
            "seq": seq,
            "template": n.template,
            "recipient": n.to,
            "org_unit": org_unit,
            "context": n.context,
        }
        for n in notices
    ]
