"""Pure checks of a workflow definition: every problem at once, each with its location."""

from __future__ import annotations

import re
from collections import defaultdict, deque

from .definitions import WorkflowDefinition
from .errors import Problem

_IDENT = re.compile(r"^[a-z][a-z0-9_]*$")
_PREFIX = re.compile(r"^[A-Z]{1,6}$")


def validate(d: WorkflowDefinition) -> list[Problem]:
    """Return every problem of ``d``; an empty list means it is sound."""
    problems: list[Problem] = []
    add = problems.append
    names = [s.name for s in d.states]
    known = set(names)

    if not _IDENT.match(d.name):
        add(Problem("workflow.name", f"{d.name!r} must be lower_snake_case"))
    if d.version < 1:
        add(Problem("workflow.version", f"must be 1 or more, got {d.version}"))
    if not _PREFIX.match(d.case_number_prefix):
        add(
            Problem(
                "workflow.case_number_prefix",
                f"{d.case_number_prefix!r} must be 1-6 capital letters, e.g. 'LP'",
            )
        )
    for s in d.states:
        if not _IDENT.match(s.name):
            add(Problem(f"states.{s.name}", "a state name must be lower_snake_case"))
    if d.initial not in known:
        add(Problem("workflow.initial", f"{d.initial!r} is not one of the states: {names}"))
    elif d.state(d.initial).final:
        add(Problem(f"states.{d.initial}", "the initial state cannot be final"))
    if not d.final_states:
        add(Problem("states", "no state is final; mark at least one with final = true"))

    seen: dict[tuple[str, str], int] = {}
    exits: dict[str, set[str]] = defaultdict(set)
    for i, t in enumerate(d.transitions):
        where = f"transitions[{i}]"
        if not _IDENT.match(t.event):
            add(Problem(f"{where}.event", f"{t.event!r} must be lower_snake_case"))
        if t.source not in known:
            add(Problem(f"{where}.source", f"unknown state {t.source!r}; states: {names}"))
        elif d.state(t.source).final:
            add(Problem(f"{where}.source", f"{t.source!r} is final: a final state has no exits"))
        if t.target not in known:
            add(Problem(f"{where}.target", f"unknown state {t.target!r}; states: {names}"))
        if t.store_as is not None and not _IDENT.match(t.store_as):
            add(Problem(f"{where}.store_as", f"{t.store_as!r} must be lower_snake_case"))
        key = (t.event, t.source)
        if key in seen:
            add(
                Problem(
                    where,
                    f"event {t.event!r} from {t.source!r} is already defined at "
                    f"transitions[{seen[key]}]; one event leads to one target",
                )
            )
        seen.setdefault(key, i)
        exits[t.source].add(t.target)

    if d.initial in known:
        reachable = _closure(d.initial, exits)
        for s in d.states:
            if s.name not in reachable:
                add(
                    Problem(f"states.{s.name}", f"unreachable from the initial state {d.initial!r}")
                )
    reverse: dict[str, set[str]] = defaultdict(set)
    for src, targets in exits.items():
        for tgt in targets:
            reverse[tgt].add(src)
    can_finish: set[str] = set()
    for f in d.final_states:
        can_finish |= _closure(f, reverse)
    for s in d.states:
        if s.final:
            continue
        if not exits.get(s.name):
            add(Problem(f"states.{s.name}", "a trap: not final, and no transition leaves it"))
        elif s.name not in can_finish:
            add(Problem(f"states.{s.name}", "no path from here reaches a final state"))
    problems.extend(_deadline_problems(d, known))
    events = set(d.events)
    for i, row in enumerate(d.permissions):
        for j, event in enumerate(row.events):
            if event not in events:
                problems.append(
                    Problem(f"permissions[{i}].events[{j}]", f"unknown event {event!r}")
                )
    return problems


def _deadline_problems(d: WorkflowDefinition, known: set[str]) -> list[Problem]:
    """Every name a deadline rule refers to exists, and the rule can start and stop."""
    problems: list[Problem] = []
    add = problems.append
    events = set(d.events)
    seen: set[str] = set()
    for i, rule in enumerate(d.deadlines):
        where = f"deadlines[{i}]"
        if not _IDENT.match(rule.name):
            add(Problem(f"{where}.name", f"{rule.name!r} must be lower_snake_case"))
        if rule.name in seen:
            add(Problem(f"{where}.name", f"a deadline named {rule.name!r} is already defined"))
        seen.add(rule.name)
        if not rule.starts_on and not rule.starts_on_events:
            add(
                Problem(
                    f"{where}.starts_on",
                    "name the state(s) whose entry starts the clock (or starts_on_events)",
                )
            )
        if not rule.stops_on and not rule.stops_on_events:
            add(Problem(f"{where}.stops_on", "name the state(s) or event(s) that stop the clock"))
        for field_name, names in (("starts_on", rule.starts_on), ("stops_on", rule.stops_on)):
            for j, state in enumerate(names):
                if state not in known:
                    add(Problem(f"{where}.{field_name}[{j}]", f"unknown state {state!r}"))
        for state in set(rule.starts_on) & set(rule.stops_on):
            add(Problem(f"{where}.stops_on", f"{state!r} both starts and stops the clock"))
        for j, event in enumerate(rule.stops_on_events):
            if event not in events:
                add(Problem(f"{where}.stops_on_events[{j}]", f"unknown event {event!r}"))
        for j, event in enumerate(rule.starts_on_events):
            if event not in events:
                add(Problem(f"{where}.starts_on_events[{j}]", f"unknown event {event!r}"))
        for j, event in enumerate(rule.restarts_on_events):
            if event not in events:
                add(Problem(f"{where}.restarts_on_events[{j}]", f"unknown event {event!r}"))
        longest = rule.period
        for j, ext in enumerate(rule.extensions):
            if ext.event not in events:
                add(Problem(f"{where}.extensions[{j}].event", f"unknown event {ext.event!r}"))
            if ext.period.unit == longest.unit and ext.period.amount <= longest.amount:
                add(
                    Problem(
                        f"{where}.extensions[{j}].period",
                        f"{ext.period} does not extend {longest}: an extension is longer "
                        "than the period before it",
                    )
                )
            longest = ext.period
        for reason, states in rule.pauses.items():
            if not _IDENT.match(reason):
                add(Problem(f"{where}.pauses.{reason}", "a pause reason must be lower_snake_case"))
            for j, state in enumerate(states):
                if state not in known:
                    add(Problem(f"{where}.pauses.{reason}[{j}]", f"unknown state {state!r}"))
        for j, level in enumerate(rule.escalations):
            if level.event is not None and level.event not in events:
                add(Problem(f"{where}.escalations[{j}].event", f"unknown event {level.event!r}"))
    return problems


def _closure(start: str, edges: dict[str, set[str]]) -> set[str]:
    seen = {start}
    queue = deque([start])
    while queue:
        for nxt in edges.get(queue.popleft(), ()):
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return seen
