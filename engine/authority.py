"""Who may fire what: the workflow's permission table (核决权限, issue #6).

A definition may carry ``[[permissions]]`` rows — roles, the events they may fire, on
their own org unit's cases or any, under a condition such as an amount limit. An actor
may fire an event when any row allows it; the system (intake, timers, escalations) is
not bound by the table (its own events are guarded by the workflow). A workflow with no
table lets every actor fire every event.

The same table says who may *see* a case (``may_see``, ``scope``): a row that lets
the actor's roles act on any org unit's cases lets them read every case of that
workflow; otherwise they see the cases of their own org unit only — so a branch's
reader never learns that another branch's case exists (the HTTP API answers 404).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .definitions import Permission, WorkflowDefinition
from .types import Actor, Case, CaseScope


def refusal(
    definition: WorkflowDefinition,
    actor: Actor,
    case: Case,
    event: str,
    data: Mapping[str, Any],
) -> tuple[str, list[str]] | None:
    """None if ``actor`` may fire ``event`` on ``case`` with ``data``; else why not, and
    who could (each row that lists the event, as people read it)."""
    if not definition.permissions or actor.is_system:
        return None
    rows = [p for p in definition.permissions if event in p.events]
    who_can = [describe(p) for p in rows]
    if not rows:
        return f"no role may fire {event!r} in {definition.name}", who_can
    facts: Mapping[str, Any] | None = None
    reasons = []
    for row in rows:
        held = [r for r in row.roles if actor.has_role(r)]
        if not held:
            continue
        if row.own_org_unit and not _same_unit(actor, case):
            reasons.append(
                f"as {'/'.join(held)} only on cases of their own org unit "
                f"({actor.org_unit or 'none'}); this case is {case.org_unit or 'of no unit'}"
            )
            continue
        if row.when is not None:
            facts = facts if facts is not None else {**case.data, **data}
            if not definition.hooks.conditions[row.when](facts):
                reasons.append(f"as {'/'.join(held)} only {row.title or row.when}")
                continue
        return None
    roles = ", ".join(actor.roles) or "no roles"
    why = "; ".join(reasons) if reasons else f"their roles ({roles}) are not among those who can"
    return why, who_can


def describe(row: Permission) -> str:
    """``supervisor, branch_manager (own org unit; up to 5,000 yuan)``."""
    limits = []
    if row.own_org_unit:
        limits.append("own org unit")
    if row.when is not None:
        limits.append(row.title or row.when)
    return ", ".join(row.roles) + (f" ({'; '.join(limits)})" if limits else "")


def _same_unit(actor: Actor, case: Case) -> bool:
    return actor.org_unit is not None and actor.org_unit == case.org_unit


def sees_every_case(definition: WorkflowDefinition, actor: Actor) -> bool:
    """Whether ``actor`` may read every case of the workflow, whatever its org unit:
    the system, anyone when the workflow has no permission table, and the roles of a
    row that is not limited to its own org unit."""
    if actor.is_system or not definition.permissions:
        return True
    return any(
        not row.own_org_unit and any(actor.has_role(r) for r in row.roles)
        for row in definition.permissions
    )


def may_see(definition: WorkflowDefinition, actor: Actor, case: Case) -> bool:
    """Whether ``actor`` may read ``case`` (see the module's docstring)."""
    return sees_every_case(definition, actor) or _same_unit(actor, case)


def scope(definitions: Iterable[WorkflowDefinition], actor: Actor) -> CaseScope:
    """The cases ``actor`` may see, as a search filter."""
    return CaseScope(
        every_case_of=frozenset(d.name for d in definitions if sees_every_case(d, actor)),
        org_unit=actor.org_unit,
    )
