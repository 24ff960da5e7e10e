"""The policy directory: the narrow interface a review asks of an app's policy system.

The default is backed by baoflow's own ``policies`` table, filled by the app or
imported from CSV (``baoflow policies import FILE``). An app with its own policy
system passes any object with these two methods to ``open_engine(policies=...)``.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Protocol

from .errors import InvalidData, Problem


@dataclass(frozen=True)
class Policy:
    """A policy as the service desk needs it.

    Attributes:
        product_line: e.g. ``life``, ``health``, ``accident``, ``property``, ``auto``;
            decides the filing limit (Insurance Law Art. 26) and, later, which service
            standards apply.
        coverages: what the policy covers, as cause codes (``accident``, ``illness``,
            ``property_damage``, ...); the claim review checks the incident's cause
            against them.
    """

    number: str
    product_name: str
    product_line: str
    insured_name: str
    insured_id_number: str | None
    start_date: date
    end_date: date
    coverages: tuple[str, ...]
    sum_insured: Decimal
    beneficiaries: tuple[str, ...] = ()

    def covers_date(self, day: date) -> bool:
        return self.start_date <= day <= self.end_date


class PolicyDirectory(Protocol):
    """Where the engine looks policies up. Two methods, both read-only."""

    def get(self, number: str) -> Policy | None:
        """The policy with this number, or ``None`` if it is not one of ours."""
        ...

    def by_insured(self, name: str, id_number: str | None = None) -> Sequence[Policy]:
        """Policies whose insured has this name (and ID number, when given)."""
        ...


_COLUMNS = (
    "number",
    "product_name",
    "product_line",
    "insured_name",
    "insured_id_number",
    "start_date",
    "end_date",
    "coverages",
    "sum_insured",
)


def read_policies_csv(path: Path | str) -> list[Policy]:
    problems: list[Problem] = []
    policies: list[Policy] = []
    with Path(path).open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in _COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise InvalidData(
                f"policy CSV {path}",
                [Problem("header", f"missing columns: {', '.join(missing)}")],
            )
        for lineno, raw in enumerate(reader, start=2):
            where = f"line {lineno}"
            try:
                start = date.fromisoformat(raw["start_date"])
                end = date.fromisoformat(raw["end_date"])
            except ValueError:
                problems.append(Problem(where, "start_date and end_date must be YYYY-MM-DD"))
                continue
            try:
                amount = Decimal(raw["sum_insured"])
            except InvalidOperation:
                problems.append(
                    Problem(f"{where}.sum_insured", f"{raw['sum_insured']!r} is not a number")
                )
                continue
            if end < start:
                problems.append(Problem(where, "end_date is before start_date"))
                continue
            if not raw["number"] or not raw["insured_name"]:
                problems.append(Problem(where, "number and insured_name are required"))
                continue
            policies.append(
                Policy(
                    number=raw["number"].strip(),
                    product_name=raw["product_name"].strip(),
                    product_line=raw["product_line"].strip(),
                    insured_name=raw["insured_name"].strip(),
                    insured_id_number=(raw["insured_id_number"] or "").strip().upper() or None,
                    start_date=start,
                    end_date=end,
                    coverages=_split(raw["coverages"]),
                    sum_insured=amount,
                    beneficiaries=_split(raw.get("beneficiaries") or ""),
                )
            )
    if problems:
        raise InvalidData(f"policy CSV {path}", problems)
    return policies


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(";") if part.strip())
