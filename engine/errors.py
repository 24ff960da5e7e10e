"""The whole exception tree of baoflow.

Every error carries typed fields so an adapter (CLI, HTTP API) can map it without
parsing the message, and a message that says what is wrong and what to do next.

    BaoflowError
    ├── DefinitionError          a workflow definition failed validation at load
    ├── UnknownWorkflow          no workflow (or version) of that name is registered
    ├── CaseNotFound             no case with that id or case number
    ├── UnknownEvent             the workflow has no event of that name
    ├── EventNotAllowed          the event exists but not from the case's state
    ├── GuardRefused             a guard refused the transition, with its reasons
    ├── NotPermitted             the actor's roles or org unit may not fire that event
    ├── InvalidData              the data given is malformed, with every problem
    ├── ConflictError            the case changed since it was read (optimistic lock)
    ├── IdempotencyKeyReused     the key was used before for a different request
    ├── MessageIdReused          an insurer's message id came again with other content
    ├── InboundNotFound          no stored insurer message with that id
    ├── InboundSettled           that insurer message is not waiting for a person
    ├── CalendarYearUnknown      the working-day calendar has no data for that year
    ├── CalendarDataInvalid      a holiday-arrangement file cannot be imported, per line
    ├── CalendarDisagrees        an arrangement differs from the published one
    ├── ApiTokenRejected         an HTTP API token is missing, unknown, revoked, or may
    │                            not act for the person the request names
    ├── UnknownApiToken          no API token with that id (to revoke)
    ├── UnknownUser              no dashboard account with that id
    ├── LogInRefused             a wrong password, a disabled account, or too many
    │                            wrong passwords lately (throttled)
    ├── ImportRefused            a case export cannot be imported (nothing was): another
    │                            format or schema, a malformed line, a case already here
    ├── BackupRefused            `db backup` cannot copy this database to that file
    └── StorageError             the database is not usable (not migrated, a read-only
        │                        or full SQLite file, ...)
        └── StorageUnavailable   the database cannot be reached, the connection to it
                                 was lost, or (SQLite) another writer held it too long;
                                 a retry later may succeed
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta


def first_line(error: BaseException) -> str:
    """An exception as one line of a log or a message: a driver's runs on over several."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class BaoflowError(Exception):
    """Base class of every error baoflow raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a definition or with data, and where it is.

    Attributes:
        location: a dotted path to the offending item, e.g. ``transitions[3].target``
            or ``incident.time``.
        message: what is wrong there, and what would be right.
    """

    location: str
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}" if self.location else self.message


def _bullets(problems: Iterable[Problem]) -> str:
    return "\n".join(f"  - {p}" for p in problems)


class DefinitionError(BaoflowError):
    """A workflow definition is invalid; every problem is listed at once."""

    def __init__(self, source: str, problems: Sequence[Problem]) -> None:
        self.source = source
        self.problems = tuple(problems)
        n = len(self.problems)
        super().__init__(
            f"workflow definition {source} has {n} problem{'s' if n != 1 else ''}; "
            f"fix them and load it again:\n{_bullets(self.problems)}"
        )


class UnknownWorkflow(BaoflowError):
    def __init__(self, name: str, known: Sequence[str], version: int | None = None) -> None:
        self.name = name
        self.version = version
        self.known = tuple(known)
        what = f"{name!r} version {version}" if version is not None else repr(name)
        super().__init__(
            f"no workflow {what} is registered. Known workflows: "
            f"{', '.join(self.known) or '(none)'}."
        )


class CaseNotFound(BaoflowError):
    def __init__(self, ref: object) -> None:
        self.ref = ref
        super().__init__(
            f"no case {ref!r}: give a case id (a number) or a case number such as "
            "'LP-20260930-000042'; `baoflow cases list` shows the cases that exist."
        )


class UnknownEvent(BaoflowError):
    def __init__(self, workflow: str, event: str, known: Sequence[str]) -> None:
        self.workflow = workflow
        self.event = event
        self.known = tuple(known)
        super().__init__(
            f"workflow {workflow!r} has no event {event!r}. Its events are: "
            f"{', '.join(self.known)}."
        )


class EventNotAllowed(BaoflowError):
    def __init__(self, case_number: str, event: str, state: str, allowed: Sequence[str]) -> None:
        self.case_number = case_number
        self.event = event
        self.state = state
        self.allowed = tuple(allowed)
        if self.allowed:
            allowed_text = (
                f"The events of {state!r} are: {', '.join(self.allowed)} "
                "(their guards may still refuse them: available_events says which pass now)."
            )
        else:
            allowed_text = f"{state!r} has no events (the case is closed)."
        super().__init__(
            f"can't fire {event!r} on case {case_number}: it is in {state!r}. {allowed_text}"
        )


class GuardRefused(BaoflowError):
    def __init__(self, case_number: str, event: str, reasons: Sequence[str]) -> None:
        self.case_number = case_number
        self.event = event
        self.reasons = tuple(reasons)
        super().__init__(
            f"{event!r} on case {case_number} was refused:\n"
            + "\n".join(f"  - {r}" for r in self.reasons)
        )


class NotPermitted(BaoflowError):
    """The workflow's permission table does not let this actor fire this event on this
    case; ``who_can`` says who could (the attempt is recorded: ``Engine.refusals``)."""

    def __init__(
        self, case_number: str, event: str, actor: str, why: str, who_can: Sequence[str]
    ) -> None:
        self.case_number = case_number
        self.event = event
        self.actor = actor
        self.why = why
        self.who_can = tuple(who_can)
        can = "; ".join(self.who_can) if self.who_can else "nobody (it is the system's own)"
        super().__init__(
            f"{actor} may not fire {event!r} on case {case_number}: {why}. Who can: {can}."
        )


class InvalidData(BaoflowError):
    def __init__(self, what: str, problems: Sequence[Problem]) -> None:
        self.what = what
        self.problems = tuple(problems)
        super().__init__(
            f"the data for {what} is not valid; nothing was stored. Correct these and "
            f"try again:\n{_bullets(self.problems)}"
        )


class ConflictError(BaoflowError):
    def __init__(self, case_number: str, expected_version: int, actual_version: int | None) -> None:
        self.case_number = case_number
        self.expected_version = expected_version
        self.actual_version = actual_version
        super().__init__(
            f"case {case_number} changed while this request was in flight (expected "
            f"version {expected_version}, it is now {actual_version}); nothing was written. "
            "Read the case again and decide whether the event still applies."
        )


class IdempotencyKeyReused(BaoflowError):
    def __init__(self, key: str, first: str, now: str) -> None:
        self.key = key
        super().__init__(
            f"idempotency key {key!r} was first used for {first}, not {now}; "
            "use a new key for a different request."
        )


class MessageIdReused(BaoflowError):
    """An insurer sent a message id it used before, with other content: not a resend
    (a resend is answered as the first time), so it is refused and nothing changes."""

    def __init__(self, insurer: str, message_id: str) -> None:
        self.insurer = insurer
        self.message_id = message_id
        super().__init__(
            f"{insurer} already sent message {message_id!r} with other content; a resend "
            "must repeat the message exactly, and a new message needs a new id."
        )


class InboundNotFound(BaoflowError):
    def __init__(self, ref: int) -> None:
        self.ref = ref
        super().__init__(
            f"no stored insurer message {ref}; `baoflow inbound list` shows them with their ids."
        )


class InboundSettled(BaoflowError):
    """Only a message stored for a person (unresolved) can be resolved or dismissed."""

    def __init__(self, ref: int, status: str, by: str | None) -> None:
        self.ref = ref
        self.status = status
        done = f" by {by}" if by else ""
        super().__init__(
            f"insurer message {ref} is {status}{done}, not waiting for a person: there is "
            "nothing to resolve; `baoflow inbound list --status unresolved` shows those that are."
        )


class CalendarYearUnknown(BaoflowError):
    """A working-day question about a year whose holiday arrangement is not known, on a
    calendar the app made strict (``ChineseOfficialCalendar(unknown_years="error")``)."""

    def __init__(self, year: int, source: str) -> None:
        self.year = year
        self.source = source
        super().__init__(
            f"the official holiday arrangement for {year} is not in {source}, and this "
            f"calendar was made strict (unknown_years='error'), so no deadline in {year} is "
            "computed. Import the year's arrangement from the State Council's notice "
            "(baoflow calendar import FILE), or use the default calendar, which counts such "
            "a year provisionally from its statutory holidays and recomputes it on import."
        )


class CalendarDataInvalid(BaoflowError):
    """A holiday-arrangement file cannot be imported; every problem, with its line."""

    def __init__(self, source: str, problems: Sequence[Problem]) -> None:
        self.source = source
        self.problems = tuple(problems)
        n = len(self.problems)
        super().__init__(
            f"{source} cannot be imported ({n} problem{'s' if n != 1 else ''}; nothing was "
            f"imported):\n{_bullets(self.problems)}"
        )


class CalendarDisagrees(BaoflowError):
    """An imported arrangement says other things of some days than the published one."""

    def __init__(self, year: int, published: str, differences: Sequence[str]) -> None:
        self.year = year
        self.published = published
        self.differences = tuple(differences)
        shown = "\n".join(f"  - {d}" for d in self.differences[:20])
        more = len(self.differences) - 20
        super().__init__(
            f"the file's {year} arrangement differs from {published} on "
            f"{len(self.differences)} day(s); nothing was imported:\n{shown}"
            + (f"\n  … and {more} more" if more > 0 else "")
            + "\nCheck the file against the notice; if the notice is right and the package "
            "wrong, import again with override (baoflow calendar import FILE --override)."
        )


class ApiTokenRejected(BaoflowError):
    """An HTTP API request's token cannot be used: ``reason`` is ``missing``,
    ``unknown``, ``revoked`` (the API answers 401) or ``act_for`` (the token may not act
    for the person named: 403, with the people it may act for in ``act_for``)."""

    def __init__(self, reason: str, message: str, act_for: Sequence[str] = ()) -> None:
        self.reason = reason
        self.act_for = tuple(act_for)
        super().__init__(message)


class UnknownApiToken(BaoflowError):
    def __init__(self, ref: object) -> None:
        self.ref = ref
        super().__init__(
            f"no API token {ref!r}: give a token id; `baoflow tokens list` shows them."
        )


class UnknownUser(BaoflowError):
    def __init__(self, ref: object) -> None:
        self.ref = ref
        super().__init__(f"no user {ref!r}: `baoflow users list` shows them.")


class LogInRefused(BaoflowError):
    """A log-in was refused: ``reason`` is ``wrong`` (the user id or the password —
    which one is not told), ``disabled`` (the password was right, the account is
    disabled) or ``throttled`` (too many wrong passwords for this user id or from this
    client lately; ``retry_after`` says how long until the next attempt is heard)."""

    def __init__(self, reason: str, message: str, retry_after: timedelta | None = None) -> None:
        self.reason = reason
        self.retry_after = retry_after
        super().__init__(message)


class ImportRefused(BaoflowError):
    """A case export (``Engine.export_cases``) cannot be imported; nothing of it was.

    Attributes:
        reason: ``format`` (not a baoflow case export, or another version of the
            format), ``schema`` (exported at another schema revision), ``malformed``
            (a line that is not what the format says), ``exists`` (case numbers the
            database has already), ``workflow`` (a workflow, version or state not
            registered here), ``chain`` (a case's history no longer verifies: the file
            was changed) or ``sealed`` (a case's history falls on a day this database
            has sealed, docs/audit.md).
        line: the file's line the problem is on (1 is the header), if it is one line's.
        numbers: the case numbers that exist already (``exists``).
    """

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        line: int | None = None,
        numbers: Sequence[str] = (),
    ) -> None:
        self.reason = reason
        self.detail = message
        self.line = line
        self.numbers = tuple(numbers)
        super().__init__(f"line {line}: {message}" if line is not None else message)

    def at(self, line: int) -> ImportRefused:
        """The same refusal, said of ``line``."""
        return ImportRefused(self.reason, self.detail, line=line, numbers=self.numbers)


class BackupRefused(BaoflowError):
    """``Engine.backup_database`` cannot copy the database to that file; nothing was
    written. ``reason``: ``postgresql`` (back a server's database up with ``pg_dump``),
    ``exists`` (a backup never overwrites a file) or ``folder`` (no such folder)."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


class StorageError(BaoflowError):
    """The database cannot be used as it is (not migrated, read-only, ...)."""


class StorageUnavailable(StorageError):
    """The database could not be used just now: the server is down or unreachable, the
    connection was lost during the operation, or (SQLite) the file cannot be opened, its
    disk failed, or another writer held it past the busy timeout.

    Nothing of the operation was applied — except that when the connection was lost
    while committing (``applied`` is None) it is not known whether the commit was. A
    retry with the same idempotency key is safe either way: it lands once, or returns
    the first result.

    Attributes:
        url: the database URL, password hidden.
        address: where the database is: ``host:port`` (PostgreSQL) or the file's path.
        reason: ``unreachable`` (cannot connect or open), ``lost`` (the connection was
            lost during the operation), ``io`` (SQLite: a disk or file-system error) or
            ``busy`` (SQLite: another writer held the database past the busy timeout).
        cause: what the database driver said, its first line.
        applied: False (nothing was applied), or None (lost while committing: unknown).
        retry_after: when a retry may succeed, at the earliest (the HTTP API's
            ``Retry-After``).
    """

    def __init__(
        self,
        url: str,
        address: str,
        reason: str,
        cause: str,
        *,
        applied: bool | None = False,
        retry_after: timedelta = timedelta(seconds=5),
    ) -> None:
        self.url = url
        self.address = address
        self.reason = reason
        self.cause = cause
        self.applied = applied
        self.retry_after = retry_after
        sqlite = url.startswith("sqlite")
        check = (
            f"Is the SQLite file {address} there, and may this process read and write it "
            "and its directory?"
            if sqlite
            else f"Is the PostgreSQL server running, and reachable at {address}?"
        )
        if reason == "unreachable":
            what = (
                f"the SQLite database {address} cannot be opened ({cause})"
                if sqlite
                else f"cannot connect to the database at {url} ({cause})"
            )
        elif reason == "busy":
            what = (
                f"the SQLite database {address} was locked by another writer for longer "
                f"than the busy timeout ({cause})"
            )
            check = "If that lasts, look for a process holding a long transaction on it."
        elif reason == "io":
            what = f"the SQLite database {address} could not be read or written ({cause})"
            check = "Check its disk and file system."
        else:
            what = f"the connection to the database at {url} was lost ({cause})"
        if applied is None:
            outcome = (
                "It was lost while committing, so whether the operation was applied is not "
                "known: retrying it with the same idempotency key is safe (it is applied "
                "once, or the first result is returned); without a key, read the case first."
            )
        else:
            outcome = "Nothing was applied; try again when it is back."
        super().__init__(f"{what}. {check} {outcome}")
