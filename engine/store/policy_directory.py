"""The default policy directory: baoflow's own ``policies`` table, behind the narrow
:class:`~baoflow.engine.policies.PolicyDirectory` interface the engine looks policies
up through."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ..policies import Policy, read_policies_csv
from . import Store


class SqlPolicyDirectory:
    """The default directory: baoflow's own ``policies`` table."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def get(self, number: str) -> Policy | None:
        return self._store.policy(number)

    def by_insured(self, name: str, id_number: str | None = None) -> Sequence[Policy]:
        with self._store.read() as tx:
            return tx.policies_by_insured(name, id_number)

    def add(self, policies: Iterable[Policy]) -> int:
        """Insert or replace policies; returns how many were written."""
        rows = [policy_row(p) for p in policies]
        with self._store.write() as tx:
            return tx.upsert_policies(rows)

    def import_csv(self, path: Path | str) -> int:
        """Import a CSV with a header row; every bad row is reported, none is stored.

        Columns: number, product_name, product_line, insured_name, insured_id_number,
        start_date, end_date (YYYY-MM-DD), coverages and beneficiaries (separated by
        ``;``), sum_insured.
        """
        return self.add(read_policies_csv(path))


def policy_row(p: Policy) -> dict[str, Any]:
    return {
        "number": p.number,
        "product_name": p.product_name,
        "product_line": p.product_line,
        "insured_name": p.insured_name,
        "insured_id_number": p.insured_id_number,
        "start_date": p.start_date,
        "end_date": p.end_date,
        "coverages": list(p.coverages),
        "sum_insured": p.sum_insured,
        "beneficiaries": list(p.beneficiaries),
    }
