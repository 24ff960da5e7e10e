"""A cosmic-ray filter (``make mutation``): skip every mutation outside the functions a
config lists under ``[cosmic-ray.filters.definitions] only``, by the name cosmic-ray
records for each mutation (nested functions by their own name). A config without the
list keeps every mutation.

    python mutation/definitions.py SESSION --config CONFIG
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from cosmic_ray.config import load_config
from cosmic_ray.tools.filters.filter_app import FilterApp
from cosmic_ray.work_item import WorkerOutcome, WorkResult


class DefinitionsFilter(FilterApp):
    """Skips the mutations outside the listed functions."""

    def description(self) -> str:
        return __doc__ or ""

    def add_args(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--config", required=True, help="the session's config file")

    def filter(self, work_db: Any, args: argparse.Namespace) -> None:
        only = set(load_config(args.config).sub("filters", "definitions").get("only", ()))
        if not only:
            return
        outside = [
            item.job_id
            for item in work_db.pending_work_items
            if any(m.definition_name not in only for m in item.mutations)
        ]
        if outside:
            skipped = WorkResult(output="not a listed rule", worker_outcome=WorkerOutcome.SKIPPED)
            work_db.set_multiple_results(outside, skipped)


if __name__ == "__main__":
    sys.exit(DefinitionsFilter().main())
