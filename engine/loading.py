"""Loading a workflow definition: TOML or a mapping in, a validated definition out.

The one module that knows both the data types (definitions.py) and the checks
(validation.py), so neither of them imports the other.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from datetime import time
from pathlib import Path
from typing import Any

from .deadlines import Period, Unit
from .definitions import (
    ANY_STATE,
    ESCALATION_ACTIONS,
    ROLES,
    SAME_STATE,
    SEARCH_KEYS,
    DeadlineRule,
    Escalation,
    Extension,
    Hooks,
    Permission,
    State,
    Transition,
    TransitionNotice,
    WorkflowDefinition,
)
from .errors import DefinitionError, Problem
from .validation import validate


def load_workflow(spec: Mapping[str, Any] | Path | str, hooks: Hooks) -> WorkflowDefinition:
    """Build a definition from a TOML file or a mapping and validate it.

    Raises:
        DefinitionError: listing every problem found, each with its location.
    """
    if isinstance(spec, (str, Path)):
        path = Path(spec)
        try:
            with path.open("rb") as fh:
                data: Mapping[str, Any] = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise DefinitionError(str(path), [Problem("", f"not valid TOML: {exc}")]) from exc
        source = str(path)
    else:
        data, source = spec, "<mapping>"
    definition, problems = _build(data, hooks, source)
    problems.extend(validate(definition) if definition is not None else [])
    if problems or definition is None:
        raise DefinitionError(source, problems)
    return definition


def _build(
    data: Mapping[str, Any], hooks: Hooks, source: str
) -> tuple[WorkflowDefinition | None, list[Any]]:
    """Turn raw data into a definition, collecting shape problems instead of stopping."""

    problems: list[Problem] = []

    def want(obj: Mapping[str, Any], key: str, typ: type, where: str, default: Any = ...) -> Any:
        if key not in obj:
            if default is ...:
                problems.append(Problem(f"{where}.{key}", f"is required ({typ.__name__})"))
            return None if default is ... else default
        value = obj[key]
        if (typ is int and isinstance(value, bool)) or not isinstance(value, typ):
            problems.append(
                Problem(f"{where}.{key}", f"must be {typ.__name__}, got {type(value).__name__}")
            )
            return None if default is ... else default
        return value

    wf = data.get("workflow")
    if not isinstance(wf, Mapping):
        return None, [Problem("workflow", "the [workflow] table is required")]
    name = want(wf, "name", str, "workflow")
    version = want(wf, "version", int, "workflow")
    title = want(wf, "title", str, "workflow", "")
    prefix = want(wf, "case_number_prefix", str, "workflow")
    initial = want(wf, "initial", str, "workflow")
    open_schema = want(wf, "open_schema", str, "workflow", None)
    intake = want(wf, "intake", str, "workflow", None)
    index = dict(want(wf, "index", dict, "workflow", {}))
    for key, path in index.items():
        if key not in SEARCH_KEYS:
            problems.append(
                Problem(
                    f"workflow.index.{key}", f"unknown search key; use {', '.join(SEARCH_KEYS)}"
                )
            )
        elif not isinstance(path, str):
            problems.append(Problem(f"workflow.index.{key}", "must be a dotted path string"))

    states: list[State] = []
    raw_states = data.get("states")
    if not isinstance(raw_states, Mapping) or not raw_states:
        problems.append(Problem("states", "at least one [states.NAME] table is required"))
        raw_states = {}
    for sname, sdata in raw_states.items():
        where = f"states.{sname}"
        if not isinstance(sdata, Mapping):
            problems.append(Problem(where, "must be a table"))
            continue
        states.append(
            State(
                name=sname,
                title=want(sdata, "title", str, where, ""),
                final=bool(want(sdata, "final", bool, where, False)),
                description=want(sdata, "description", str, where, ""),
            )
        )
    finals = {s.name for s in states if s.final}

    transitions: list[Transition] = []
    raw_transitions = data.get("transitions", [])
    if not isinstance(raw_transitions, list):
        problems.append(Problem("transitions", "must be an array of [[transitions]] tables"))
        raw_transitions = []
    for i, tdata in enumerate(raw_transitions):
        where = f"transitions[{i}]"
        if not isinstance(tdata, Mapping):
            problems.append(Problem(where, "must be a table"))
            continue
        event = want(tdata, "event", str, where)
        target = want(tdata, "target", str, where)
        raw_source = tdata.get("source")
        if isinstance(raw_source, str):
            sources = [raw_source]
        elif isinstance(raw_source, list) and all(isinstance(s, str) for s in raw_source):
            sources = list(raw_source)
        else:
            problems.append(Problem(f"{where}.source", "is required: a state name or a list"))
            sources = []
        if ANY_STATE in sources:
            sources = [s.name for s in states if s.name not in finals and s.name != target]
        guards = tuple(want(tdata, "guards", list, where, []))
        actions = tuple(want(tdata, "actions", list, where, []))
        for kind, names, known in (
            ("guards", guards, hooks.guards),
            ("actions", actions, hooks.actions),
        ):
            for j, hname in enumerate(names):
                if hname not in known:
                    problems.append(
                        Problem(
                            f"{where}.{kind}[{j}]",
                            f"no {kind[:-1]} named {hname!r}; known: {', '.join(known) or '(none)'}",
                        )
                    )
        schema = want(tdata, "schema", str, where, None)
        if schema is not None and schema not in hooks.schemas:
            problems.append(Problem(f"{where}.schema", f"no schema named {schema!r}"))
        notices = _build_notices(tdata.get("notify", []), f"{where}.notify", hooks, problems)
        for src in sources:
            transitions.append(
                Transition(
                    event=event or "",
                    source=src,
                    target=src if target == SAME_STATE else target or "",
                    title=want(tdata, "title", str, where, ""),
                    guards=guards,
                    actions=actions,
                    schema=schema,
                    store_as=want(tdata, "store_as", str, where, None),
                    article=want(tdata, "article", str, where, ""),
                    notices=notices,
                )
            )

    if open_schema is not None and open_schema not in hooks.schemas:
        problems.append(Problem("workflow.open_schema", f"no schema named {open_schema!r}"))
    if intake is not None and intake not in hooks.intake:
        problems.append(Problem("workflow.intake", f"no intake hook named {intake!r}"))
    if None in (name, version, prefix, initial):
        return None, problems
    return (
        WorkflowDefinition(
            name=name,
            version=version,
            title=title,
            case_number_prefix=prefix,
            initial=initial,
            states=tuple(states),
            transitions=tuple(transitions),
            open_schema=open_schema,
            intake=intake,
            hooks=hooks,
            index=index,
            deadlines=_build_deadlines(data.get("deadlines", []), hooks, problems),
            permissions=_build_permissions(data.get("permissions", []), hooks, problems),
            case_number_parts=_number_parts(wf.get("case_number_parts", []), problems),
            source=source,
        ),
        problems,
    )


def _build_permissions(raw: Any, hooks: Hooks, problems: list[Problem]) -> tuple[Permission, ...]:
    """``[[permissions]]``: shapes, roles and conditions here; events in validation.py."""
    if not isinstance(raw, list):
        problems.append(Problem("permissions", "must be an array of [[permissions]] tables"))
        return ()
    rows = []
    for i, p in enumerate(raw):
        where = f"permissions[{i}]"
        if not isinstance(p, Mapping):
            problems.append(Problem(where, "must be a table"))
            continue
        unknown = sorted(set(p) - {"events", "roles", "own_org_unit", "when", "title"})
        if unknown:
            problems.append(
                Problem(
                    where,
                    f"unknown key(s) {', '.join(unknown)}; use events, roles, "
                    "own_org_unit, when, title",
                )
            )
        events, roles = p.get("events"), p.get("roles")
        if (
            not isinstance(events, list)
            or not events
            or not all(isinstance(e, str) for e in events)
        ):
            problems.append(Problem(f"{where}.events", "must be a non-empty list of event names"))
            events = []
        if not isinstance(roles, list) or not roles or not all(isinstance(r, str) for r in roles):
            problems.append(Problem(f"{where}.roles", "must be a non-empty list of roles"))
            roles = []
        for j, role in enumerate(roles):
            if role not in ROLES:
                problems.append(
                    Problem(f"{where}.roles[{j}]", f"unknown role {role!r}; use {', '.join(ROLES)}")
                )
        when = p.get("when")
        if when is not None and when not in hooks.conditions:
            known = ", ".join(sorted(hooks.conditions)) or "(none)"
            problems.append(
                Problem(f"{where}.when", f"no condition named {when!r}; known: {known}")
            )
        rows.append(
            Permission(
                events=tuple(events),
                roles=tuple(roles),
                own_org_unit=bool(p.get("own_org_unit", True)),
                when=when if isinstance(when, str) else None,
                title=str(p.get("title", "")),
            )
        )
    return tuple(rows)


def _number_parts(raw: Any, problems: list[Problem]) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(p, str) and p for p in raw):
        problems.append(
            Problem(
                "workflow.case_number_parts",
                "must be a list such as ['org_unit'] or paths into the opening data",
            )
        )
        return ()
    return tuple(raw)


def _build_notices(
    raw: Any, where: str, hooks: Hooks, problems: list[Problem]
) -> tuple[TransitionNotice, ...]:
    """``notify = [{ template, to, when }]`` of a transition, checked against the hooks."""
    if not isinstance(raw, list):
        problems.append(Problem(where, "must be a list of { template = ..., to = ... } tables"))
        return ()
    notices = []
    for i, n in enumerate(raw):
        at = f"{where}[{i}]"
        if not isinstance(n, Mapping):
            problems.append(Problem(at, "must be a table: { template = ..., to = ... }"))
            continue
        unknown = sorted(set(n) - {"template", "to", "when"})
        if unknown:
            problems.append(
                Problem(at, f"unknown key(s) {', '.join(unknown)}; use template, to, when")
            )
        template, to, when = n.get("template"), n.get("to"), n.get("when")
        if template not in hooks.notices:
            known = ", ".join(sorted(hooks.notices)) or "(none)"
            problems.append(
                Problem(f"{at}.template", f"no notice named {template!r}; known: {known}")
            )
        if not isinstance(to, str) or not to:
            problems.append(
                Problem(
                    f"{at}.to", "who is told: a role (e.g. 'supervisor') or a party ('reporter')"
                )
            )
        if when is not None and when not in hooks.conditions:
            known = ", ".join(sorted(hooks.conditions)) or "(none)"
            problems.append(Problem(f"{at}.when", f"no condition named {when!r}; known: {known}"))
        if isinstance(template, str) and isinstance(to, str):
            notices.append(TransitionNotice(template, to, when if isinstance(when, str) else None))
    return tuple(notices)


def _build_deadlines(raw: Any, hooks: Hooks, problems: list[Problem]) -> tuple[DeadlineRule, ...]:
    """Shape checks of ``[[deadlines]]``; references to states and events are checked
    by validation.py once the whole definition exists."""
    if not isinstance(raw, list):
        problems.append(Problem("deadlines", "must be an array of [[deadlines]] tables"))
        return ()
    rules = []
    for i, r in enumerate(raw):
        where = f"deadlines[{i}]"
        if not isinstance(r, Mapping):
            problems.append(Problem(where, "must be a table"))
            continue
        name = r.get("name")
        if not isinstance(name, str) or not name:
            problems.append(Problem(f"{where}.name", "is required"))
            name = f"deadline_{i}"
        period = _period(r.get("period"), f"{where}.period", problems, allow_zero=False)
        warnings = r.get("warnings", [])
        if not isinstance(warnings, list) or not all(
            isinstance(w, (int, float)) and 0 < w < 1 for w in warnings
        ):
            problems.append(
                Problem(f"{where}.warnings", "must be fractions between 0 and 1, e.g. [0.5, 0.8]")
            )
            warnings = []
        pauses = r.get("pauses", {})
        if not isinstance(pauses, Mapping) or not all(isinstance(v, list) for v in pauses.values()):
            problems.append(
                Problem(f"{where}.pauses", "must map a pause reason to a list of states")
            )
            pauses = {}
        escalations = []
        for j, e in enumerate(r.get("escalations", [])):
            at = f"{where}.escalations[{j}]"
            if not isinstance(e, Mapping):
                problems.append(Problem(at, "must be a table"))
                continue
            to = e.get("to")
            if not isinstance(to, str) or not to:
                problems.append(
                    Problem(
                        f"{at}.to", "every escalation level needs a target role, e.g. 'supervisor'"
                    )
                )
            actions = tuple(e.get("actions", ["notify"]))
            for k, action in enumerate(actions):
                if action not in ESCALATION_ACTIONS:
                    problems.append(
                        Problem(
                            f"{at}.actions[{k}]",
                            f"unknown action {action!r}; use {', '.join(ESCALATION_ACTIONS)}",
                        )
                    )
            if "fire_event" in actions and not isinstance(e.get("event"), str):
                problems.append(Problem(f"{at}.event", "fire_event needs the event to fire"))
            escalations.append(
                Escalation(
                    level=j + 1,
                    after=_period(e.get("after", "0 hours"), f"{at}.after", problems, True),
                    to=to if isinstance(to, str) else "",
                    actions=actions,
                    event=e.get("event"),
                )
            )
        when = r.get("when")
        if when is not None and when not in hooks.conditions:
            problems.append(
                Problem(
                    f"{where}.when",
                    f"no condition named {when!r}; known: {', '.join(hooks.conditions) or '(none)'}",
                )
            )
        notify = r.get("notify", ["handler"])
        if not isinstance(notify, list) or not all(isinstance(n, str) and n for n in notify):
            problems.append(
                Problem(
                    f"{where}.notify",
                    "must be a list of roles told of the warnings and the breach, "
                    "e.g. ['handler'] ([] for nobody)",
                )
            )
            notify = ["handler"]
        cob = r.get("close_of_business")
        close = None
        if cob is not None:
            try:
                close = time.fromisoformat(cob)
            except (TypeError, ValueError):
                problems.append(
                    Problem(f"{where}.close_of_business", "must be HH:MM, e.g. '17:30'")
                )
        rules.append(
            DeadlineRule(
                name=name,
                title=str(r.get("title", "")),
                period=period,
                starts_on=tuple(r.get("starts_on", ())),
                stops_on=tuple(r.get("stops_on", ())),
                stops_on_events=tuple(r.get("stops_on_events", ())),
                starts_on_events=tuple(r.get("starts_on_events", ())),
                restarts_on_events=tuple(r.get("restarts_on_events", ())),
                extensions=_extensions(r.get("extensions", []), where, problems),
                pauses={k: tuple(v) for k, v in pauses.items()},
                warnings=tuple(float(w) for w in warnings),
                escalations=tuple(escalations),
                when=when,
                close_of_business=close,
                article=str(r.get("article", "")),
                notify=tuple(notify),
            )
        )
    return tuple(rules)


def _extensions(raw: Any, where: str, problems: list[Problem]) -> tuple[Extension, ...]:
    if not isinstance(raw, list):
        problems.append(Problem(f"{where}.extensions", "must be an array of tables"))
        return ()
    found = []
    for j, e in enumerate(raw):
        at = f"{where}.extensions[{j}]"
        if not isinstance(e, Mapping) or not isinstance(e.get("event"), str):
            problems.append(Problem(at, "needs event = '...' and period = '...'"))
            continue
        found.append(
            Extension(e["event"], _period(e.get("period"), f"{at}.period", problems, False))
        )
    return tuple(found)


def _period(raw: Any, where: str, problems: list[Problem], allow_zero: bool) -> Period:
    try:
        period = Period.parse(raw)
    except ValueError as exc:
        problems.append(Problem(where, str(exc)))
        return Period(1, Unit.hours)
    if period.amount == 0 and not allow_zero:
        problems.append(Problem(where, "a period must be longer than zero"))
    return period
