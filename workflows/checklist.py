"""A materials checklist as data: which material is required when, and by which article.

The claim workflow's checklist (收集理赔资料, 细则第四条(四)2; DOMAIN.md §1.8) is a TOML
file a desk can read and change (``claim_materials.toml``)::

    [materials.death_certificate]
    title = "死亡证明"
    article = "细则第四条(四)2 收集理赔资料 3) 身故"
    when = ["death"]          # any one of these conditions makes it required

Each table under ``materials`` is one material, in the order of the checklist (and of
the notices that list it). ``when`` names conditions — facts of the case the workflow
knows how to read, such as ``always``, ``death`` or ``hospitalised`` — any one of which
makes the material required; an empty list means it is never asked for. Which
materials and conditions exist is the workflow's vocabulary (its schemas accept those
materials, its code reads those facts); the file decides how they combine.

The file is validated when it is loaded, like a workflow definition: every material
listed exactly once, known names only, the keys spelt right (a typo is reported with
the nearest known key), every problem at once in one
:class:`~engine.errors.DefinitionError`.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from baoflow.engine import DefinitionError, Problem

#: A fact of the case a checklist rule may depend on (over the case data).
Condition = Callable[[Mapping[str, Any]], bool]

_TOP_KEYS = ("materials",)
_RULE_KEYS = ("title", "article", "when")


@dataclass(frozen=True)
class MaterialRule:
    """One line of the checklist: ``material`` is required when any of ``when`` holds."""

    material: str
    title: str
    article: str
    when: tuple[str, ...]


@dataclass(frozen=True)
class Checklist:
    """A validated checklist: its rules in order, and the conditions they name."""

    rules: tuple[MaterialRule, ...]
    conditions: Mapping[str, Condition]
    source: str

    def required(self, data: Mapping[str, Any]) -> list[str]:
        """The materials this case needs, in the checklist's order."""
        return [
            rule.material
            for rule in self.rules
            if any(self.conditions[name](data) for name in rule.when)
        ]

    def title(self, material: str) -> str:
        """How ``material`` reads to people (in the notices and refusals)."""
        return self._titles[material]

    def rule(self, material: str) -> MaterialRule:
        return self._by_material[material]

    @cached_property
    def _titles(self) -> dict[str, str]:
        return {rule.material: rule.title for rule in self.rules}

    @cached_property
    def _by_material(self) -> dict[str, MaterialRule]:
        return {rule.material: rule for rule in self.rules}


def load_checklist(
    path: Path | str,
    *,
    materials: Collection[str],
    conditions: Mapping[str, Condition],
) -> Checklist:
    """Read and validate a checklist file.

    Args:
        path: the TOML file.
        materials: every material the workflow knows; each must be listed once.
        conditions: the conditions a rule may name, by name.

    Raises:
        DefinitionError: listing every problem found, each with its location.
    """
    source = str(path)
    try:
        with Path(path).open("rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError as exc:
        raise DefinitionError(source, [Problem("", "the checklist file does not exist")]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise DefinitionError(source, [Problem("", f"not valid TOML: {exc}")]) from exc
    return checklist_from_mapping(raw, materials=materials, conditions=conditions, source=source)


def checklist_from_mapping(
    raw: Mapping[str, Any],
    *,
    materials: Collection[str],
    conditions: Mapping[str, Condition],
    source: str = "<mapping>",
) -> Checklist:
    """:func:`load_checklist` for data already read (a mapping shaped like the file)."""
    problems: list[Problem] = []
    for key in raw:
        if key not in _TOP_KEYS:
            problems.append(Problem(key, _unknown("key", key, _TOP_KEYS)))
    table = raw.get("materials")
    rules: list[MaterialRule] = []
    if not isinstance(table, Mapping) or not table:
        problems.append(
            Problem("materials", "is required: one [materials.NAME] table per material")
        )
        table = {}
    for name, spec in table.items():
        where = f"materials.{name}"
        if name not in materials:
            problems.append(Problem(where, _unknown("material", name, materials)))
        if not isinstance(spec, Mapping):
            problems.append(Problem(where, "must be a table with title, article and when"))
            continue
        for key in spec:
            if key not in _RULE_KEYS:
                problems.append(Problem(f"{where}.{key}", _unknown("key", key, _RULE_KEYS)))
        title = _text(spec, "title", where, problems)
        article = _text(spec, "article", where, problems)
        when = spec.get("when")
        if when is None:
            problems.append(
                Problem(
                    f"{where}.when",
                    'is required: the conditions that make it required (["always"] for the '
                    "basic set, [] for never)",
                )
            )
            when = []
        elif not isinstance(when, list) or not all(isinstance(c, str) for c in when):
            problems.append(Problem(f"{where}.when", "must be a list of condition names"))
            when = []
        for j, condition in enumerate(when):
            if condition not in conditions:
                problems.append(
                    Problem(f"{where}.when[{j}]", _unknown("condition", condition, conditions))
                )
        rules.append(MaterialRule(str(name), title, article, tuple(when)))
    for name in materials:
        if name not in table:
            problems.append(
                Problem(
                    f"materials.{name}",
                    "is not listed; list every material (with when = [] if it is never asked for)",
                )
            )
    if problems:
        raise DefinitionError(source, problems)
    return Checklist(tuple(rules), dict(conditions), source)


def _text(spec: Mapping[str, Any], key: str, where: str, problems: list[Problem]) -> str:
    value = spec.get(key)
    if not isinstance(value, str) or not value.strip():
        what = "the article it comes from" if key == "article" else "how it reads to people"
        problems.append(Problem(f"{where}.{key}", f"is required: {what} (text)"))
        return ""
    return value


def _unknown(what: str, name: str, known: Collection[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown {what} {name!r}{hint}; known: {', '.join(known)}"
