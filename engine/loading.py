"""Loading a workflow definition: TOML text, a file or a mapping in, a validated
definition out.

The one module that knows both the data types (definitions.py) and the checks
(validation.py), so neither of them imports the other. Every table of a definition is
read through a :class:`_Table` that declares its keys in a tuple next to the code that
reads it: a key the author mistyped is a problem with the nearest key, and a key the
loader reads without declaring it is a bug that shows on the first load.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from datetime import time
from pathlib import Path
from typing import Any

from .deadlines import Period, Unit
from .definitions import (
    ANY_STATE,
    ESCALATION_ACTIONS,
    OWN_KEY_NAME,
    ROLES,
    SAME_STATE,
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
from .definitions import SEARCH_KEYS as _BUILT_IN_SEARCH
from .errors import DefinitionError, Problem
from .validation import validate

#: How the source of a definition that is not a file is named in its errors.
TOML_TEXT = "<TOML text>"
MAPPING = "<mapping>"


def load_workflow(
    spec: Mapping[str, Any] | str | os.PathLike[str], hooks: Hooks
) -> WorkflowDefinition:
    """Build a definition from TOML text, a TOML file or a mapping, and validate it.

    What ``spec`` is, is decided by its type and content: a ``Path`` (any path-like) is
    a file; a ``str`` that contains a newline or starts with ``[`` is TOML text; any
    other ``str`` is the path of a file that must exist; a mapping is the parsed data.

    Raises:
        DefinitionError: listing every problem found, each with its location; or, when
            ``spec`` cannot be read, one problem saying what it was taken for and why
            it could not be read.
    """
    data, source = _read(spec)
    definition, problems = _build(data, hooks, source)
    problems.extend(validate(definition) if definition is not None else [])
    if problems or definition is None:
        raise DefinitionError(source, problems)
    return definition


def _read(spec: object) -> tuple[Mapping[str, Any], str]:
    """The data of ``spec`` and how its errors name it."""
    if isinstance(spec, Mapping):
        return spec, MAPPING
    if isinstance(spec, str) and ("\n" in spec or spec.lstrip().startswith("[")):
        return _parse(spec, TOML_TEXT, "the TOML text given"), TOML_TEXT
    if isinstance(spec, (str, os.PathLike)):
        path = Path(spec)
        # A str is a path only by elimination: say so, for TOML text that lost its newlines.
        hint = (
            "; a str without a newline that does not start with '[' is taken for a path"
            if isinstance(spec, str)
            else ""
        )
        source = str(path)
        return _parse(_read_file(path, hint), source, f"the file at path {source!r}"), source
    raise DefinitionError(
        f"<{type(spec).__name__}>",
        [
            Problem(
                "",
                f"load_workflow takes TOML text (a str), a path (a Path, or a str naming a "
                f"file) or a mapping; it got {type(spec).__name__}",
            )
        ],
    )


def _read_file(path: Path, hint: str) -> str:
    shown = repr(str(path))
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        problem = f"the path {shown} does not exist (looked for {path.absolute()}{hint})"
    except IsADirectoryError:
        problem = f"the path {shown} is a directory; give the TOML file in it"
    except OSError as exc:
        problem = f"the path {shown} cannot be read: {exc.strerror or exc}"
    else:
        try:
            # Windows editors start UTF-8 files with a BOM; it is not part of the TOML.
            return raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            problem = (
                f"the file at path {shown} is not UTF-8 text (byte {exc.start} cannot be "
                "decoded); save it as UTF-8"
            )
    raise DefinitionError(str(path), [Problem("", problem)])


def _parse(text: str, source: str, what: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # The decoder's message ends with "(at line N, column M)": where to look.
        raise DefinitionError(source, [Problem("", f"{what} is not valid TOML: {exc}")]) from exc


class _Table:
    """One table of a definition, read only through the keys declared for it.

    Every key present and not declared is a problem, with the nearest declared key: a
    typo such as ``guard`` for ``guards`` would otherwise load without a word and leave
    the transition unguarded. Reading a key that is not declared raises ``LookupError``
    at once (a bug in this module), so a key the loader learns to read cannot be
    forgotten in its table's tuple.
    """

    __slots__ = ("keys", "problems", "raw", "where")

    def __init__(
        self,
        raw: Mapping[str, Any],
        where: str,
        keys: tuple[str, ...],
        problems: list[Problem],
        *,
        what: str = "key",
    ) -> None:
        self.raw = raw
        self.where = where
        self.keys = keys
        self.problems = problems
        for key in raw:
            if key not in keys:
                problems.append(Problem(_at(where, key), _unknown(what, str(key), keys)))

    def __contains__(self, key: str) -> bool:
        return self._declared(key) in self.raw

    def __getitem__(self, key: str) -> Any:
        return self.raw[self._declared(key)]

    def get(self, key: str, default: Any = None) -> Any:
        return self.raw.get(self._declared(key), default)

    def _declared(self, key: str) -> str:
        if key not in self.keys:
            raise LookupError(
                f"the loader reads {key!r} from {self.where or 'the top level'} but it is not "
                f"among that table's keys {self.keys}; add it there"
            )
        return key


def _at(where: str, key: object) -> str:
    return f"{where}.{key}" if where else str(key)


def _unknown(what: str, key: str, known: tuple[str, ...]) -> str:
    near = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean {near[0]!r}?)" if near else ""
    return f"unknown {what} {key!r}{hint}; known: {', '.join(known)}"


def _want(table: _Table, key: str, typ: type, default: Any = ...) -> Any:
    """``table[key]`` if it has type ``typ``; else a problem, and ``default`` (None when
    the key is required)."""
    if key not in table:
        if default is ...:
            table.problems.append(Problem(_at(table.where, key), f"is required ({typ.__name__})"))
        return None if default is ... else default
    value = table[key]
    if (typ is int and isinstance(value, bool)) or not isinstance(value, typ):
        table.problems.append(
            Problem(_at(table.where, key), f"must be {typ.__name__}, got {type(value).__name__}")
        )
        return None if default is ... else default
    return value


#: The top level of a definition.
_TOP_KEYS = ("workflow", "states", "transitions", "permissions", "deadlines")
#: ``[workflow]``.
_WORKFLOW_KEYS = (
    "name",
    "version",
    "title",
    "case_number_prefix",
    "case_number_parts",
    "initial",
    "open_schema",
    "intake",
    "index",
    "inbound",
)
#: ``[states.NAME]``.
_STATE_KEYS = ("title", "final", "description")
#: ``[[transitions]]``.
_TRANSITION_KEYS = (
    "event",
    "source",
    "target",
    "title",
    "guards",
    "actions",
    "schema",
    "store_as",
    "article",
    "notify",
)


def _build(
    data: Mapping[str, Any], hooks: Hooks, source: str
) -> tuple[WorkflowDefinition | None, list[Problem]]:
    """Turn raw data into a definition, collecting shape problems instead of stopping."""

    problems: list[Problem] = []
    top = _Table(data, "", _TOP_KEYS, problems)
    raw_wf = top.get("workflow")
    if isinstance(raw_wf, Mapping):
        wf = _Table(raw_wf, "workflow", _WORKFLOW_KEYS, problems)
    else:
        problems.append(
            Problem(
                "workflow",
                "the [workflow] table is required: name, version, case_number_prefix, initial",
            )
        )
        # The rest is still checked; the header's own "is required" would only repeat.
        wf = _Table({}, "workflow", _WORKFLOW_KEYS, [])
    name = _want(wf, "name", str)
    version = _want(wf, "version", int)
    title = _want(wf, "title", str, "")
    prefix = _want(wf, "case_number_prefix", str)
    initial = _want(wf, "initial", str)
    open_schema = _want(wf, "open_schema", str, None)
    intake = _want(wf, "intake", str, None)
    index = _index(_want(wf, "index", dict, {}), problems)
    raw_inbound = _want(wf, "inbound", dict, {})

    states: list[State] = []
    raw_states = top.get("states")
    if not isinstance(raw_states, Mapping) or not raw_states:
        problems.append(Problem("states", "at least one [states.NAME] table is required"))
        raw_states = {}
    for sname, sdata in raw_states.items():
        where = f"states.{sname}"
        if not isinstance(sdata, Mapping):
            problems.append(Problem(where, "must be a table"))
            continue
        st = _Table(sdata, where, _STATE_KEYS, problems)
        states.append(
            State(
                name=sname,
                title=_want(st, "title", str, ""),
                final=bool(_want(st, "final", bool, False)),
                description=_want(st, "description", str, ""),
            )
        )
    finals = {s.name for s in states if s.final}

    transitions: list[Transition] = []
    raw_transitions = top.get("transitions", [])
    if not isinstance(raw_transitions, list):
        problems.append(Problem("transitions", "must be an array of [[transitions]] tables"))
        raw_transitions = []
    for i, tdata in enumerate(raw_transitions):
        where = f"transitions[{i}]"
        if not isinstance(tdata, Mapping):
            problems.append(Problem(where, "must be a table"))
            continue
        tt = _Table(tdata, where, _TRANSITION_KEYS, problems)
        event = _want(tt, "event", str)
        target = _want(tt, "target", str)
        raw_source = tt.get("source")
        if isinstance(raw_source, str):
            sources = [raw_source]
        elif isinstance(raw_source, list) and all(isinstance(s, str) for s in raw_source):
            sources = list(raw_source)
        else:
            problems.append(Problem(f"{where}.source", "is required: a state name or a list"))
            sources = []
        if ANY_STATE in sources:
            sources = [s.name for s in states if s.name not in finals and s.name != target]
        guards = tuple(_want(tt, "guards", list, []))
        actions = tuple(_want(tt, "actions", list, []))
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
        schema = _want(tt, "schema", str, None)
        if schema is not None and schema not in hooks.schemas:
            problems.append(Problem(f"{where}.schema", f"no schema named {schema!r}"))
        notices = _build_notices(tt.get("notify", []), f"{where}.notify", hooks, problems)
        ttitle = _want(tt, "title", str, "")
        store_as = _want(tt, "store_as", str, None)
        article = _want(tt, "article", str, "")
        for src in sources:
            transitions.append(
                Transition(
                    event=event or "",
                    source=src,
                    target=src if target == SAME_STATE else target or "",
                    title=ttitle,
                    guards=guards,
                    actions=actions,
                    schema=schema,
                    store_as=store_as,
                    article=article,
                    notices=notices,
                )
            )

    if open_schema is not None and open_schema not in hooks.schemas:
        problems.append(Problem("workflow.open_schema", f"no schema named {open_schema!r}"))
    if intake is not None and intake not in hooks.intake:
        problems.append(Problem("workflow.intake", f"no intake hook named {intake!r}"))
    # Built before the header is judged, so their problems are reported with the rest.
    deadlines = _build_deadlines(top.get("deadlines", []), hooks, problems)
    permissions = _build_permissions(top.get("permissions", []), hooks, problems)
    number_parts = _number_parts(wf.get("case_number_parts", []), problems)
    inbound = _inbound(raw_inbound, {t.event for t in transitions}, problems)
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
            deadlines=deadlines,
            permissions=permissions,
            case_number_parts=number_parts,
            inbound=inbound,
            source=source,
        ),
        problems,
    )


def _index(raw: Mapping[str, Any], problems: list[Problem]) -> dict[str, str]:
    """``[workflow.index]``: a search key -> a dotted path into the case data. A key is
    a built-in one (a column) or the workflow's own (a ``case_keys`` row); an own key's
    name one slip away from a built-in one (``polcy_number``) is refused, since it would
    load as a new key and leave the built-in one unset without a word."""
    index: dict[str, str] = {}
    for key, path in raw.items():
        where = f"workflow.index.{key}"
        if key not in _BUILT_IN_SEARCH:
            near = difflib.get_close_matches(str(key), _BUILT_IN_SEARCH, n=1, cutoff=0.8)
            if near:
                problems.append(
                    Problem(
                        where,
                        f"{key!r} is one slip away from the built-in key {near[0]!r}: "
                        f"did you mean {near[0]!r}? A workflow's own key needs a name "
                        f"clearly apart from the built-in ones ({', '.join(_BUILT_IN_SEARCH)})",
                    )
                )
                continue
            if not isinstance(key, str) or not OWN_KEY_NAME.fullmatch(key):
                problems.append(
                    Problem(
                        where,
                        "a search key's name is 1–32 lower-case letters, digits and _, "
                        f"starting with a letter, e.g. 'phone'; got {key!r}",
                    )
                )
                continue
        if isinstance(path, str) and path and all(path.split(".")):
            index[key] = path
        else:
            problems.append(
                Problem(
                    where,
                    f"must be a dotted path into the case data, e.g. 'policy.number'; got {path!r}",
                )
            )
    return index


_KIND = re.compile(r"[a-z][a-z0-9_]{0,31}")


def _inbound(raw: Mapping[str, Any], events: set[str], problems: list[Problem]) -> dict[str, str]:
    """``[workflow.inbound]``: a kind of insurer message -> an event of this workflow."""
    inbound: dict[str, str] = {}
    for kind, event in raw.items():
        where = f"workflow.inbound.{kind}"
        if not _KIND.fullmatch(kind):
            problems.append(
                Problem(where, "a message kind is lower-case letters, digits and _, e.g. 'receipt'")
            )
        elif not isinstance(event, str) or event not in events:
            problems.append(
                Problem(
                    where,
                    f"must name an event of this workflow; got {event!r}; "
                    f"the events are {', '.join(sorted(events)) or '(none)'}",
                )
            )
        else:
            inbound[kind] = event
    return inbound


#: ``[[permissions]]``.
_PERMISSION_KEYS = ("events", "roles", "own_org_unit", "when", "title")


def _build_permissions(raw: Any, hooks: Hooks, problems: list[Problem]) -> tuple[Permission, ...]:
    """``[[permissions]]``: shapes, roles and conditions here; events in validation.py."""
    if not isinstance(raw, list):
        problems.append(Problem("permissions", "must be an array of [[permissions]] tables"))
        return ()
    rows = []
    for i, raw_row in enumerate(raw):
        where = f"permissions[{i}]"
        if not isinstance(raw_row, Mapping):
            problems.append(Problem(where, "must be a table"))
            continue
        p = _Table(raw_row, where, _PERMISSION_KEYS, problems)
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


#: Each entry of a transition's ``notify``.
_NOTICE_KEYS = ("template", "to", "when")


def _build_notices(
    raw: Any, where: str, hooks: Hooks, problems: list[Problem]
) -> tuple[TransitionNotice, ...]:
    """``notify = [{ template, to, when }]`` of a transition, checked against the hooks."""
    if not isinstance(raw, list):
        problems.append(Problem(where, "must be a list of { template = ..., to = ... } tables"))
        return ()
    notices = []
    for i, raw_notice in enumerate(raw):
        at = f"{where}[{i}]"
        if not isinstance(raw_notice, Mapping):
            problems.append(Problem(at, "must be a table: { template = ..., to = ... }"))
            continue
        n = _Table(raw_notice, at, _NOTICE_KEYS, problems)
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


#: ``[[deadlines]]``. (``pauses`` maps reasons the author names to states: no fixed keys.)
_DEADLINE_KEYS = (
    "name",
    "title",
    "period",
    "starts_on",
    "stops_on",
    "stops_on_events",
    "starts_on_events",
    "restarts_on_events",
    "extensions",
    "pauses",
    "warnings",
    "escalations",
    "when",
    "close_of_business",
    "article",
    "notify",
)
#: ``[[deadlines.escalations]]``.
_ESCALATION_KEYS = ("after", "to", "actions", "event")
#: Each entry of a deadline's ``extensions``.
_EXTENSION_KEYS = ("event", "period")


def _build_deadlines(raw: Any, hooks: Hooks, problems: list[Problem]) -> tuple[DeadlineRule, ...]:
    """Shape checks of ``[[deadlines]]``; references to states and events are checked
    by validation.py once the whole definition exists."""
    if not isinstance(raw, list):
        problems.append(Problem("deadlines", "must be an array of [[deadlines]] tables"))
        return ()
    rules = []
    for i, raw_rule in enumerate(raw):
        where = f"deadlines[{i}]"
        if not isinstance(raw_rule, Mapping):
            problems.append(Problem(where, "must be a table"))
            continue
        r = _Table(raw_rule, where, _DEADLINE_KEYS, problems)
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
        raw_escalations = r.get("escalations", [])
        if not isinstance(raw_escalations, list):
            problems.append(
                Problem(f"{where}.escalations", "must be an array of [[deadlines.escalations]]")
            )
            raw_escalations = []
        escalations = []
        for j, raw_level in enumerate(raw_escalations):
            at = f"{where}.escalations[{j}]"
            if not isinstance(raw_level, Mapping):
                problems.append(Problem(at, "must be a table"))
                continue
            e = _Table(raw_level, at, _ESCALATION_KEYS, problems)
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
            event = e.get("event")
            if "fire_event" in actions and not isinstance(event, str):
                problems.append(Problem(f"{at}.event", "fire_event needs the event to fire"))
            escalations.append(
                Escalation(
                    level=j + 1,
                    after=_period(e.get("after", "0 hours"), f"{at}.after", problems, True),
                    to=to if isinstance(to, str) else "",
                    actions=actions,
                    event=event,
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
    for j, raw_ext in enumerate(raw):
        at = f"{where}.extensions[{j}]"
        if not isinstance(raw_ext, Mapping):
            problems.append(Problem(at, "needs event = '...' and period = '...'"))
            continue
        e = _Table(raw_ext, at, _EXTENSION_KEYS, problems)
        event = e.get("event")
        if not isinstance(event, str):
            problems.append(Problem(at, "needs event = '...' and period = '...'"))
            continue
        found.append(Extension(event, _period(e.get("period"), f"{at}.period", problems, False)))
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
