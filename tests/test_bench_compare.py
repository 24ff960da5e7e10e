"""`make bench`'s comparison runs end to end at a tiny size (timings are never asserted):
every variant takes the claims the whole way, the floor's rows equal the engine's, and
the report's section is rewritten between its markers with the notes around it kept."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from bench import compare


def test_the_comparison_runs_and_its_section_is_rewritten_in_place(tmp_path: Path) -> None:
    spiff = importlib.util.find_spec("SpiffWorkflow") is not None
    figures = compare.run(3, 1, backends=("sqlite",), spiff=spiff, processes=(), profile=3)
    figures_again = dict(figures, cases=4)

    names = {"sqlite engine", "sqlite floor", "sqlite orm"} | ({"sqlite spiff"} if spiff else set())
    assert set(figures["variants"]) == names
    assert all(v["calls_per_s"] > 0 for v in figures["variants"].values())
    assert {"sqlite_floor_share", "sqlite_vs_orm"} <= set(figures["ratios"])
    assert ("sqlite_vs_spiff" in figures["ratios"]) == spiff
    assert figures["per_call"]["sqlite"]["open_case"]["writes"] > 0
    assert figures["profile"]["top"]

    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\nnotes before\n", encoding="utf-8")
    compare.write_doc(doc, compare.section(figures, {}))
    doc.write_text(doc.read_text(encoding="utf-8") + "\nnotes after\n", encoding="utf-8")
    compare.write_doc(doc, compare.section(figures_again, {}))
    text = doc.read_text(encoding="utf-8")
    assert text.count(compare.BEGIN) == text.count(compare.END) == 1
    assert "notes before" in text and "notes after" in text
    assert "4 claims ×" in text and "3 claims ×" not in text
