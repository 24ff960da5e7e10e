"""Forms built from an event's data schema (its pydantic model's JSON schema), and the
posted form read back into the data the engine validates.

Only the engine judges the data: this module turns form text into the JSON types the
schema names (a number field's text into a number, ticked boxes into a list) and leaves
every refusal — a missing field, a wrong value — to ``Engine.fire``, whose
``InvalidData.problems`` name the field each error belongs beside.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

#: Instants typed without an offset are Beijing time (the desk's).
_NO_OFFSET = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2})?$")


@dataclass(frozen=True)
class Field:
    """One input of an event's form."""

    name: str
    label: str
    #: text | textarea | lines (a list, one a line) | number | date | datetime |
    #: checkbox | select | choices (a list of fixed choices, ticked)
    kind: str
    required: bool
    choices: tuple[str, ...] = ()
    default: Any = None
    description: str = ""


@dataclass
class Form:
    """An event's form: its fields, the values posted (on an error), and the errors
    beside each field (``""``: about the form as a whole)."""

    event: str
    title: str
    fields: list[Field]
    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)


def _resolve(prop: Mapping[str, Any], defs: Mapping[str, Any]) -> Mapping[str, Any]:
    if "$ref" in prop:
        return defs[prop["$ref"].rsplit("/", 1)[-1]]  # type: ignore[no-any-return]
    return prop


def _one(prop: Mapping[str, Any], defs: Mapping[str, Any]) -> tuple[Mapping[str, Any], bool]:
    """The property's own schema, and whether null is allowed (``X | None``)."""
    prop = _resolve(prop, defs)
    options = prop.get("anyOf")
    if not options:
        return prop, False
    real = [_resolve(o, defs) for o in options if o.get("type") != "null"]
    nullable = len(real) < len(options)
    if len(real) == 1:
        return real[0], nullable
    return {"type": "string"}, nullable  # e.g. a number or a decimal's text


def fields_of(model: type[BaseModel] | None) -> list[Field]:
    """The inputs of a form for data of ``model`` (none for an event without data)."""
    if model is None:
        return []
    schema = model.model_json_schema()
    defs = schema.get("$defs", {})
    required = set(schema.get("required", ()))
    found = []
    for name, raw in schema.get("properties", {}).items():
        prop, _ = _one(raw, defs)
        kind = "text"
        choices: tuple[str, ...] = ()
        kind_of = prop.get("type")
        if "enum" in prop:
            kind, choices = "select", tuple(str(c) for c in prop["enum"])
        elif kind_of == "array":
            items = _resolve(prop.get("items", {}), defs)
            kind = "choices" if "enum" in items else "lines"
            choices = tuple(str(c) for c in items.get("enum", ()))
        elif kind_of == "boolean":
            kind = "checkbox"
        elif kind_of in ("integer", "number"):
            kind = "number"
        elif prop.get("format") == "date":
            kind = "date"
        elif prop.get("format") == "date-time":
            kind = "datetime"
        elif name in _LONG_TEXT:
            kind = "textarea"
        found.append(
            Field(
                name=name,
                label=str(raw.get("title") or prop.get("title") or name),
                kind=kind,
                required=name in required,
                choices=choices,
                default=raw.get("default"),
                description=str(raw.get("description") or ""),
            )
        )
    return found


def data_of(fields: Sequence[Field], posted: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """The event data of a posted form: empty inputs left out (so a required one is
    reported missing by the engine), each value in the JSON type its field takes."""
    data: dict[str, Any] = {}
    for f in fields:
        values = [v for v in posted.get(f.name, ()) if v.strip() != ""]
        if f.kind == "checkbox":
            data[f.name] = bool(values)
        elif f.kind == "choices":
            if values:
                data[f.name] = list(values)
        elif f.kind == "lines":
            lines = [ln.strip() for ln in values[0].splitlines() if ln.strip()] if values else []
            if lines:
                data[f.name] = lines
        elif not values:
            continue
        elif f.kind == "number":
            data[f.name] = _number(values[0].strip())
        elif f.kind == "datetime":
            text = values[0].strip()
            data[f.name] = f"{text}+08:00" if _NO_OFFSET.match(text) else text
        else:
            data[f.name] = values[0].strip() if f.kind != "textarea" else values[0]
    return data


#: Text fields given a multi-line box (free text a person writes, not a code).
_LONG_TEXT = frozenset({"note", "notice", "reason", "reasons", "summary"})


def _number(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text  # the engine says what is wrong with it


def errors_by_field(
    fields: Sequence[Field], problems: Sequence[tuple[str, str]]
) -> dict[str, list[str]]:
    """Each problem beside the field its location starts with (``""``: the form's)."""
    names = {f.name for f in fields}
    found: dict[str, list[str]] = {}
    for location, message in problems:
        head = location.split(".", 1)[0]
        found.setdefault(head if head in names else "", []).append(message)
    return found
