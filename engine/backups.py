"""Cases exported as JSON lines and imported back exactly (issue #15 item 5).

An export is text, one JSON object a line: first a header —
``{"exported_at": ..., "format": "baoflow-cases", "schema_revision": ..., "version": 1}``
— then one line per case: ``case`` (its row, by its number) and one list per table of
its own (``case_keys``, ``history``, ``case_deadlines``, ``timers``, ``outbox``,
``refusals``, ``idempotency_keys``; ``store/export.py`` writes each row from its table's
columns, without the database's ids). Keys are sorted and values written one way on
every database, so an export imported and exported again — on SQLite or PostgreSQL —
is the same text but for the header's time. Characters a terminal obeys or a line
reader splits on (C1 controls, bidirectional marks, U+2028) are JSON escapes, so a
line is one line wherever it is read.

An import is one transaction: all of the file, or nothing of it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime
from typing import Any, Protocol

import orjson

from . import audit
from .errors import BaoflowError, ImportRefused
from .registry import Registry
from .store import IntegrityViolation, Store
from .store.tx import AuditTx, BackupTx
from .types import ImportResult

FORMAT = "baoflow-cases"
VERSION = 1
#: Cases read (exported) or checked and written (imported) at a time.
BATCH = 200

_UNSAFE = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def dumps(value: Any) -> str:
    """``value`` as one line of an export: JSON, keys sorted, nothing a terminal obeys."""
    text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    return _UNSAFE.sub(lambda m: f"\\u{ord(m[0]):04x}", text)


def header(revision: str | None, now: datetime) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "schema_revision": revision,
        "exported_at": now.astimezone(UTC).isoformat(timespec="microseconds"),
    }


def export(
    store: Store, cases: Sequence[int | str] | None, revision: str | None, now: datetime
) -> Iterator[str]:
    """The export's lines (no newline), the header first; of ``cases`` (ids or numbers,
    CaseNotFound for one there is not) or of every case, by id, all read in one
    snapshot of the database."""
    with store.snapshot() as tx:
        ids = None if cases is None else sorted({tx.load_case(ref).id for ref in cases})
        yield dumps(header(revision, now))
        if ids is not None:
            for start in range(0, len(ids), BATCH):
                yield from map(dumps, tx.export_cases(ids[start : start + BATCH]))
            return
        after = 0
        while page := tx.case_ids(after, BATCH):
            yield from map(dumps, tx.export_cases(page))
            after = page[-1]


def import_lines(
    store: Store, registry: Registry, lines: Iterable[str], revision: str | None
) -> ImportResult:
    """Import an export's lines (``export``) in one transaction.

    Raises:
        ImportRefused: another format or schema revision, a malformed line, a case
            number the database has, or a workflow, version or state not registered;
            nothing is written.
    """
    numbered = ((n, text) for n, text in enumerate(lines, 1) if text.strip())
    first = next(numbered, None)
    if first is None:
        raise ImportRefused("format", "the file is empty: it holds no case export")
    _check_header(*first, revision)
    rows: Counter[str] = Counter()
    try:
        with store.write() as tx:
            importer = _Importer(tx, registry)
            batch: list[tuple[int, dict[str, Any]]] = []
            for lineno, text in numbered:
                batch.append((lineno, importer.parsed(lineno, text)))
                if len(batch) >= BATCH:
                    rows += importer.write(batch)
                    batch = []
            rows += importer.write(batch)
            if importer.existing:
                raise _exists(importer.existing)
    except IntegrityViolation:
        # A case stored meanwhile under one of the numbers (another import of the file):
        # the check above had not seen it, the database's unique key did.
        raise ImportRefused(
            "exists",
            "a case with one of the file's numbers was stored while it was being imported "
            "(another import of it?); nothing was imported: import it again to see which",
        ) from None
    cases = rows.pop("cases", 0)
    return ImportResult(cases=cases, rows=dict(sorted(rows.items())))


def _check_header(lineno: int, text: str, revision: str | None) -> None:
    try:
        head = orjson.loads(text)
    except orjson.JSONDecodeError:
        head = None
    if not isinstance(head, dict) or head.get("format") != FORMAT:
        raise ImportRefused(
            "format",
            f"this is not a baoflow case export: its first line is not a header "
            f'{{"format": "{FORMAT}", ...}}; write one with `baoflow export`',
            line=lineno,
        )
    if head.get("version") != VERSION:
        raise ImportRefused(
            "format",
            f"the file is version {head.get('version')!r} of the {FORMAT} format; this "
            f"baoflow reads version {VERSION}: import it with the baoflow that wrote it",
            line=lineno,
        )
    if head.get("schema_revision") != revision:
        raise ImportRefused(
            "schema",
            f"the file was exported at schema revision {head.get('schema_revision')!r} and "
            f"this database is at {revision!r}: import it into a database at its revision, "
            "upgrade that (`baoflow db upgrade`) and export again",
            line=lineno,
        )


class _ImportTx(BackupTx, AuditTx, Protocol):
    """What an import needs: the cases' rows, and the days sealed."""


class _Importer:
    """Checks each line, then writes its case, a batch at a time; once a case number
    is found taken, only checks the rest (to name every taken number at once)."""

    def __init__(self, tx: _ImportTx, registry: Registry) -> None:
        self.tx = tx
        self.registry = registry
        self.seen: dict[str, int] = {}  # case number -> its line
        self.existing: list[str] = []
        self.sealed_through: date | None = None  # the last day sealed here, once read

    def parsed(self, lineno: int, text: str) -> dict[str, Any]:
        try:
            doc = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise ImportRefused("malformed", f"not JSON ({exc})", line=lineno) from None
        case = doc.get("case") if isinstance(doc, dict) else None
        if not isinstance(case, dict):
            raise ImportRefused("malformed", "no case: not a line of a case export", line=lineno)
        number, workflow, version = (
            case.get("number"),
            case.get("workflow"),
            case.get("workflow_version"),
        )
        if (
            not isinstance(number, str)
            or not isinstance(workflow, str)
            or not isinstance(version, int)
        ):
            raise ImportRefused(
                "malformed", "the case has no number, workflow or workflow_version", line=lineno
            )
        if number in self.seen:
            raise ImportRefused(
                "malformed", f"case {number} is on line {self.seen[number]} too", line=lineno
            )
        self.seen[number] = lineno
        try:
            definition = self.registry.get(workflow, version)
        except BaoflowError as exc:
            raise ImportRefused("workflow", f"case {number}: {exc}", line=lineno) from None
        if case.get("state") not in definition.state_names:
            raise ImportRefused(
                "workflow",
                f"case {number} is in state {case.get('state')!r}, which {workflow} version "
                f"{version} has not (it has {', '.join(definition.state_names)})",
                line=lineno,
            )
        self._check_chain(lineno, number, case.get("version"), doc.get("history"))
        checked: dict[str, Any] = doc
        return checked

    def _check_chain(self, lineno: int, number: str, version: Any, history: Any) -> None:
        """The case's history must verify as it did when exported (docs/audit.md): a
        file changed since is refused, and its rows must fall after the last day this
        database has sealed, or that day's anchor would no longer verify."""
        if not isinstance(history, list) or not isinstance(version, int):
            return  # the row checks of import_case name what is wrong
        try:
            rows = [
                audit.StoredRow(
                    seq=r["seq"],
                    at=datetime.fromisoformat(r["at"]),
                    actor=r["actor"],
                    event=r["event"],
                    from_state=r["from_state"],
                    to_state=r["to_state"],
                    data=r["data"],
                    notes=r["notes"],
                    hash=r["hash"],
                )
                for r in history
                if isinstance(r["seq"], int) and isinstance(r["hash"], str)
            ]
        except (KeyError, TypeError, ValueError):
            return  # likewise
        if len(rows) < len(history):
            return  # likewise
        breaks = audit.verify_case(number, version, rows)
        if breaks:
            raise ImportRefused(
                "chain",
                f"case {number}'s history does not verify ({breaks[0]}): the file was changed "
                "after it was exported; export the case again from its database",
                line=lineno,
            )
        if self.sealed_through is None:
            anchors = self.tx.anchors()
            self.sealed_through = anchors[-1].day if anchors else date.min
        early = min((audit.desk_day(r.at) for r in rows), default=None)
        if early is not None and early <= self.sealed_through:
            raise ImportRefused(
                "sealed",
                f"case {number} has history on {early}, and this database has sealed its "
                f"days through {self.sealed_through} (their audit anchors): imported rows "
                "would break them. Import into a database whose days from then are not "
                "sealed (a new one), or restore a backup of the whole database",
                line=lineno,
            )

    def write(self, batch: list[tuple[int, dict[str, Any]]]) -> Counter[str]:
        written: Counter[str] = Counter()
        if not batch:
            return written
        taken = self.tx.existing_numbers([doc["case"]["number"] for _, doc in batch])
        self.existing += sorted(taken, key=self.seen.__getitem__)
        if self.existing:
            return written
        # Raised first: on PostgreSQL the counters' rows are then held, so a case opened
        # meanwhile waits for this import and is numbered past it.
        self.tx.raise_case_counters([doc["case"]["number"] for _, doc in batch])
        for lineno, doc in batch:
            try:
                written.update(self.tx.import_case(doc))
            except ImportRefused as refused:
                raise refused.at(lineno) from None
        return written


def _exists(numbers: Sequence[str]) -> ImportRefused:
    shown = ", ".join(numbers[:10]) + (
        f" and {len(numbers) - 10} more" if len(numbers) > 10 else ""
    )
    return ImportRefused(
        "exists",
        f"{len(numbers)} case(s) of the file are in this database already: {shown}; nothing "
        "was imported. Import only the others (export them with `baoflow export --case N` "
        "for each), or import into an empty database",
        numbers=numbers,
    )
