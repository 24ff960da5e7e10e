"""What one history row's hash costs in Python (docs/audit.md, docs/benchmarks.md "The
audit chain"): the store's way (``audit.written_row_hash``, from the sorted JSON it
writes) against hashing the data decoded and walked (``audit.row_hash`` on what JSON
gives back: the first cut of the chain, and what a check does), on a real claim's
report and on the same data holding floats::

    .venv/bin/python -m bench.audit_hash
"""

from __future__ import annotations

import argparse
import statistics
import timeit
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from baoflow.engine.audit import row_hash, written_row_hash
from baoflow.engine.store.hot import json_dumps, json_sorted

from tests.conftest import HANDLER, report


def _timed(work: Callable[[], Any], number: int, repeats: int) -> float:
    """Median µs a call over ``repeats`` runs of ``number`` calls."""
    runs = timeit.repeat(work, number=number, repeat=repeats)
    return statistics.median(runs) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--number", type=int, default=5_000, help="calls per run")
    parser.add_argument("--repeats", type=int, default=7, help="runs; the median is shown")
    args = parser.parse_args()
    at = datetime(2026, 5, 6, 1, 0, tzinfo=UTC)
    actor_json = json_dumps(HANDLER.to_json())
    plain = report()
    with_floats = {**plain, "amounts": {"claimed": 12345.67, "rate": 0.35, "days": 3.0}}
    print(f"{'data':<28} {'written µs':>11} {'decoded µs':>11}")
    for label, data in (("a claim's report", plain), ("the same with floats", with_floats)):
        size = len(json_dumps(data).encode())

        def written(data: Any = data) -> str:
            return written_row_hash(
                "ab" * 32,
                number="LP-20260506-000001",
                seq=3,
                at=at,
                actor_json=actor_json,
                event="verify",
                from_state="reported",
                to_state="verified",
                data_json=json_sorted(data),
                notes=[],
            )

        def decoded(data: Any = data) -> str:
            return row_hash(
                "ab" * 32,
                number="LP-20260506-000001",
                seq=3,
                at=at,
                actor=orjson.loads(actor_json),
                event="verify",
                from_state="reported",
                to_state="verified",
                data=orjson.loads(json_dumps(data)),
                notes=[],
            )

        assert written() == decoded()  # the same hash, two ways
        print(
            f"{label + f' ({size} B)':<28} {_timed(written, args.number, args.repeats):>11.1f} "
            f"{_timed(decoded, args.number, args.repeats):>11.1f}"
        )


if __name__ == "__main__":
    main()
