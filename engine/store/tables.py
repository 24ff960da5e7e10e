"""The schema. Alembic migrations in ``migrations/`` must produce exactly this."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect

from .. import limits
from ..audit import HASH_CHARS

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware instants stored as UTC on every backend (SQLite has no zones)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"refusing to store naive datetime {value!r}; give it a time zone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONType: Any = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BigId: Any = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

cases = sa.Table(
    "cases",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("number", sa.String(limits.CASE_NUMBER.chars), nullable=False, unique=True),
    sa.Column("workflow", sa.String(limits.WORKFLOW.chars), nullable=False),
    sa.Column("workflow_version", sa.Integer, nullable=False),
    sa.Column("state", sa.String(limits.STATE.chars), nullable=False),
    sa.Column("data", JSONType, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    # Search keys copied out of ``data`` so lookups use an index.
    sa.Column("policy_number", sa.String(limits.POLICY_NUMBER.chars), index=True),
    sa.Column("insured_name", sa.String(limits.INSURED_NAME.chars), index=True),
    sa.Column("id_number", sa.String(limits.ID_NUMBER.chars), index=True),
    # "<insurer>:<its reference>": an insurer's message finds its case (issue #12).
    sa.Column("insurer_reference", sa.String(limits.INSURER_REFERENCE.chars), index=True),
    # The id of the person assigned to handle the case: the deadline list's filter (#13),
    # indexed with the org unit (ix_cases_handler_org_unit below).
    sa.Column("handler", sa.String(limits.HANDLER.chars)),
    # The org unit of whoever opened the case: breaches and SLA figures per branch.
    sa.Column("org_unit", sa.String(limits.ORG_UNIT.chars), index=True),
    sa.Index("ix_cases_workflow_state", "workflow", "state"),
    # The live diagram's counts for one org unit, from the index alone (issue #12).
    sa.Index("ix_cases_workflow_org_unit_state", "workflow", "org_unit", "state"),
    # The dashboard's intake: cases opened since a time, per workflow (issue #13).
    sa.Index("ix_cases_workflow_created_at", "workflow", "created_at"),
    # ... and one unit's intake: with only the two above, SQLite's statistics (after an
    # ANALYZE) sent that count to ix_cases_org_unit, every case of the unit read.
    sa.Index("ix_cases_workflow_org_unit_created_at", "workflow", "org_unit", "created_at"),
    # The live diagram looks up the state of each case with a warned or breached
    # deadline by its id: on PostgreSQL from this index alone (no heap page per case:
    # 83 -> 42 ms for 10,000 such claims among 1,000,000). SQLite reads its rowid
    # table as cheaply and gets a plain index on id, written once per case.
    sa.Index("ix_cases_state_of", "id", postgresql_include=["workflow", "org_unit", "state"]),
    # One handler's cases, within the viewer's unit: the deadline list filtered by
    # handler. On the handler alone, PostgreSQL ANDed its 50,000 cases with the unit's
    # 250,000 and read ~9,500 heap pages to find 25 (114 ms at 1,000,000 cases, 14 here).
    sa.Index("ix_cases_handler_org_unit", "handler", "org_unit"),
)

#: The search keys a workflow declares of its own (``[workflow.index]`` beyond the
#: built-in columns of ``cases``): one row per case and key with a value, so a new key
#: is rows, not a migration (issue #14). Looked up by (key, value), index-only.
case_keys = sa.Table(
    "case_keys",
    metadata,
    sa.Column("case_id", BigId, sa.ForeignKey("cases.id"), primary_key=True),
    sa.Column("key", sa.String(limits.OWN_KEY_NAME.chars), primary_key=True),
    sa.Column("value", sa.String(limits.OWN_KEY_VALUE.chars), nullable=False),
    sa.Index("ix_case_keys_lookup", "key", "value", "case_id"),
)

history = sa.Table(
    "history",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("case_id", BigId, sa.ForeignKey("cases.id"), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("actor", JSONType, nullable=False),
    sa.Column("event", sa.String(limits.EVENT.chars), nullable=False),
    sa.Column("from_state", sa.String(limits.STATE.chars)),
    sa.Column("to_state", sa.String(limits.STATE.chars), nullable=False),
    sa.Column("data", JSONType, nullable=False),
    sa.Column("notes", JSONType, nullable=False),
    # SHA-256 over the row before it in the case and this row's content (engine/audit.py).
    sa.Column("hash", sa.String(HASH_CHARS), nullable=False),
    # One row per version of the case: a second writer of the same version fails here.
    # On PostgreSQL its index carries each row's time and state, so that the SLA
    # report's walk of every case's history in order reads the index alone (0020).
    sa.UniqueConstraint("case_id", "seq", postgresql_include=["at", "to_state"]),
    # The dashboard's cases closed since a time: entries into a state, by time (#13).
    sa.Index("ix_history_to_state_at", "to_state", "at"),
    # A day's rows, for its audit anchor (#15).
    sa.Index("ix_history_at", "at"),
)

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("key", sa.String(limits.IDEMPOTENCY_KEY.chars), primary_key=True),
    sa.Column("case_id", BigId, sa.ForeignKey("cases.id"), nullable=False),
    sa.Column("event", sa.String(limits.EVENT.chars), nullable=False),
    # sha256 of the request (event + data): the same key with other data is refused.
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("result", JSONType, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

case_counters = sa.Table(
    "case_counters",
    metadata,
    sa.Column("prefix", sa.String(40), primary_key=True),  # with its parts: TS-SH
    sa.Column("day", sa.String(8), primary_key=True),
    sa.Column("last", sa.Integer, nullable=False),
)

policies = sa.Table(
    "policies",
    metadata,
    sa.Column("number", sa.String(limits.POLICY_NUMBER.chars), primary_key=True),
    sa.Column("product_name", sa.String(128), nullable=False),
    sa.Column("product_line", sa.String(32), nullable=False),
    sa.Column("insured_name", sa.String(limits.INSURED_NAME.chars), nullable=False, index=True),
    sa.Column("insured_id_number", sa.String(limits.ID_NUMBER.chars), index=True),
    sa.Column("start_date", sa.Date, nullable=False),
    sa.Column("end_date", sa.Date, nullable=False),
    sa.Column("coverages", JSONType, nullable=False),
    sa.Column("sum_insured", sa.Numeric(14, 2), nullable=False),
    sa.Column("beneficiaries", JSONType, nullable=False),
)

# --- deadlines (issue #4) -------------------------------------------------------------
#: One running (or finished) instance of a deadline rule on a case. ``armed_seq`` is the
#: history row that started it: a timer only takes effect while its instance is the
#: case's current one for that rule (DESIGN.md §3.10, the duplicate-job lesson).
case_deadlines = sa.Table(
    "case_deadlines",
    metadata,
    sa.Column("case_id", BigId, sa.ForeignKey("cases.id"), primary_key=True),
    sa.Column("rule", sa.String(64), primary_key=True),
    sa.Column("armed_seq", sa.Integer, primary_key=True),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("due_at", UTCDateTime, nullable=False),
    # running | paused | met | breached_met | cancelled
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("pause_reason", sa.String(64)),
    sa.Column("paused_since", UTCDateTime),
    sa.Column("paused_seconds", sa.Float, nullable=False),
    sa.Column("warned", sa.Integer, nullable=False),
    sa.Column("breached_at", UTCDateTime),
    sa.Column("level", sa.Integer, nullable=False),
    sa.Column("stopped_at", UTCDateTime),
    # The calendar data the due time was computed on (and any year only guessed).
    sa.Column("calendar", sa.String(200)),
    # The instance's period when an extension changed it (NULL: the rule's own).
    sa.Column("period", sa.String(32)),
    # The years its due time was counted on only provisionally ("2027"; NULL: none),
    # recomputed when the year's arrangement is imported (issue #10).
    sa.Column("provisional", sa.String(40)),
    # The breached running instances, counted per rule and level by the metrics scrape.
    sa.Index(
        "ix_case_deadlines_breached",
        "rule",
        "level",
        postgresql_where=sa.text("status = 'running' AND breached_at IS NOT NULL"),
        sqlite_where=sa.text("status = 'running' AND breached_at IS NOT NULL"),
    ),
)

#: A deadline a supervisor is alerted to: running or paused, and warned or breached.
#: The query that counts them repeats this text word for word, so that SQLite (which
#: matches a partial index by its terms, not by their meaning) uses the index.
ALERTING_SQL = "status IN ('running', 'paused') AND (warned > 0 OR breached_at IS NOT NULL)"
sa.Index(
    "ix_case_deadlines_alerting",
    case_deadlines.c.case_id,
    case_deadlines.c.breached_at,
    case_deadlines.c.level,
    postgresql_where=sa.text(ALERTING_SQL),
    sqlite_where=sa.text(ALERTING_SQL),
)

#: The desk's deadline list (issue #13): running and paused deadlines in due order, so
#: its first page walks the index and stops, instead of sorting every running one. The
#: query repeats this text word for word (SQLite matches partial indexes by their terms).
DESK_SQL = "status IN ('running', 'paused')"
sa.Index(
    "ix_case_deadlines_desk",
    case_deadlines.c.due_at,
    case_deadlines.c.case_id,
    case_deadlines.c.rule,
    postgresql_where=sa.text(DESK_SQL),
    sqlite_where=sa.text(DESK_SQL),
)

timers = sa.Table(
    "timers",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("case_id", BigId, sa.ForeignKey("cases.id"), nullable=False),
    sa.Column("rule", sa.String(64), nullable=False),
    sa.Column("armed_seq", sa.Integer, nullable=False),
    # warning (level = which warning), breach (level 0), escalation (level = chain level)
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("level", sa.Integer, nullable=False),
    sa.Column("due_at", UTCDateTime, nullable=False),
    # pending | fired | cancelled | skipped
    sa.Column("status", sa.String(12), nullable=False),
    sa.Column("claimed_by", sa.String(64)),
    sa.Column("claimed_until", UTCDateTime),
    sa.Column("fired_at", UTCDateTime),
    sa.Column("outcome", sa.String(200)),
    # The effect's key: one firing per (instance, kind, level), however often it is armed.
    sa.UniqueConstraint("case_id", "rule", "armed_seq", "kind", "level"),
    # Only pending timers are claimed or cancelled; fired ones must not slow the scan.
    sa.Index(
        "ix_timers_pending_due",
        "due_at",
        postgresql_where=sa.text("status = 'pending'"),
        sqlite_where=sa.text("status = 'pending'"),
    ),
    sa.Index(
        "ix_timers_pending_case",
        "case_id",
        postgresql_where=sa.text("status = 'pending'"),
        sqlite_where=sa.text("status = 'pending'"),
    ),
)

# --- the outbox (DESIGN.md §3.7; written by transitions and timer effects, issue #5) ----
#: A notice in the outbox. The engine writes one row per notice and recipient (a role,
#: or a party of the case such as the reporter: ``channel`` NULL), in the transaction of
#: the change that caused it; ``context`` is the template's context frozen at commit.
#: Delivery (``notifications.delivery``) resolves such a row to one row per address
#: (``channel``, ``address``; ``parent_id`` the notice it came from; the notice itself
#: becomes ``expanded``), then sends each with retries: pending | delivered | dead.
outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    # The message's idempotency key: its cause and its recipient (engine/notices.py).
    sa.Column("key", sa.String(300), nullable=False, unique=True),
    # No foreign key: a notice is a message with its context frozen at commit, delivered
    # whatever becomes of the case; and the key check cost ~10 µs a row (a lookup and a
    # row lock on the case) in a timer batch (docs/benchmarks.md).
    sa.Column("case_id", BigId),
    sa.Column("seq", sa.Integer),  # the history row that caused it
    sa.Column("template", sa.String(64), nullable=False),
    sa.Column("recipient", sa.String(128), nullable=False),
    sa.Column("org_unit", sa.String(limits.ORG_UNIT.chars)),
    sa.Column("context", JSONType, nullable=False),
    # pending | expanded | delivered | dead
    sa.Column("status", sa.String(12), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("last_error", sa.Text),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("delivered_at", UTCDateTime),
    # Set once resolved to an address (NULL on the notices the engine writes).
    sa.Column("parent_id", BigId),
    sa.Column("channel", sa.String(32)),
    sa.Column("address", sa.String(200)),
    sa.Column("address_name", sa.String(128)),
    sa.Column("locale", sa.String(16)),
    sa.Column("data_subject", sa.Boolean, nullable=False, server_default=sa.false()),
    # The delivery lease (a worker sending it now).
    sa.Column("claimed_by", sa.String(64)),
    sa.Column("claimed_until", UTCDateTime),
    sa.Index(
        "ix_outbox_pending_next",
        "next_attempt_at",
        postgresql_where=sa.text("status = 'pending'"),
        sqlite_where=sa.text("status = 'pending'"),
    ),
    sa.Index("ix_outbox_case", "case_id"),
    # The dead letters, counted on every metrics scrape (baoflow/api/metrics.py).
    sa.Index(
        "ix_outbox_dead",
        "id",
        postgresql_where=sa.text("status = 'dead'"),
        sqlite_where=sa.text("status = 'dead'"),
    ),
)

#: The in-app inbox: what the dashboard shows each user (the ``inbox`` channel).
inbox = sa.Table(
    "inbox",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.String(limits.ACTOR_ID.chars), nullable=False),
    # The message's idempotency key: a retried delivery lands once.
    sa.Column("key", sa.String(300), nullable=False, unique=True),
    sa.Column("case_number", sa.String(limits.CASE_NUMBER.chars)),
    sa.Column("template", sa.String(64), nullable=False),
    sa.Column("subject", sa.String(300), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("read_at", UTCDateTime),
    sa.Index("ix_inbox_user", "user_id", "created_at"),
)

#: Refused attempts (not permitted, or refused by a guard): the audit of what was tried
#: and not done. A refusal changes nothing on the case, so it has no history row.
refusals = sa.Table(
    "refusals",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("case_id", BigId, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("actor", JSONType, nullable=False),
    sa.Column("event", sa.String(limits.EVENT.chars), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("reasons", JSONType, nullable=False),
    sa.Index("ix_refusals_case", "case_id", "at"),
)

# --- the tamper-evident history (issue #15) ---------------------------------------------
#: Each sealed day's anchor: SHA-256 over the day before's and the day's history rows
#: (engine/audit.py). Written once a day is over, never changed.
audit_anchors = sa.Table(
    "audit_anchors",
    metadata,
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("hash", sa.String(HASH_CHARS), nullable=False),
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("sealed_at", UTCDateTime, nullable=False),
)

# --- the desk's own holiday arrangements (issue #10) ------------------------------------
#: One ``baoflow calendar import``: a year's arrangement typed from the State Council's
#: notice. A later import of the same year supersedes it (``current`` false); the rows
#: stay, so who imported what, and when, is kept.
calendar_imports = sa.Table(
    "calendar_imports",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("year", sa.Integer, nullable=False),
    sa.Column("source", sa.String(500), nullable=False),  # the notice it was typed from
    sa.Column("file_name", sa.String(500), nullable=False),
    sa.Column("imported_by", sa.String(200), nullable=False),
    sa.Column("imported_at", UTCDateTime, nullable=False),
    # imported although chinesecalendar says otherwise for some days
    sa.Column("override", sa.Boolean, nullable=False),
    sa.Column("current", sa.Boolean, nullable=False),
    sa.Index("ix_calendar_imports_year", "year"),
)

#: The days of an import: holidays (``working`` false) and make-up working days.
calendar_days = sa.Table(
    "calendar_days",
    metadata,
    sa.Column("import_id", BigId, sa.ForeignKey("calendar_imports.id"), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("working", sa.Boolean, nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("line", sa.Integer),  # where it stands in the imported file
)

#: One row (id 1): which imports the calendar is at. An import bumps ``generation``
#: first; a transition that computes a deadline reads it under a share lock, so the two
#: serialise and no deadline is computed on data an import has just replaced.
calendar_state = sa.Table(
    "calendar_state",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("generation", sa.Integer, nullable=False),
)


# --- inbound insurer messages (issue #12) -------------------------------------------------
#: Every message an insurer sent (a signed webhook): one row per (insurer, message id),
#: so a resend is answered from here and changes nothing. ``status`` is ``applied`` (its
#: event fired on ``case_id``), ``unresolved`` (stored for a person: ``reason_code``
#: and ``reason`` say why), ``resolved`` (a person retried it against a case and it
#: fired) or ``dismissed`` (a person set it aside, with ``resolution``).
inbound_messages = sa.Table(
    "inbound_messages",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("insurer", sa.String(limits.INSURER.chars), nullable=False),
    sa.Column("message_id", sa.String(limits.MESSAGE_ID.chars), nullable=False),
    sa.Column("kind", sa.String(limits.MESSAGE_KIND.chars), nullable=False),
    sa.Column("case_number", sa.String(limits.CASE_NUMBER.chars)),
    sa.Column("reference", sa.String(limits.REFERENCE.chars)),
    sa.Column("payload", JSONType, nullable=False),
    # sha256 of kind, case number, reference and payload: the same id with other
    # content is not a resend, and is refused.
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Column("status", sa.String(12), nullable=False),
    sa.Column("reason_code", sa.String(16)),
    sa.Column("reason", sa.Text),
    sa.Column("case_id", BigId),
    sa.Column("event", sa.String(limits.EVENT.chars)),
    # What the sender was answered (the first time, and so every time after).
    sa.Column("result", JSONType, nullable=False),
    sa.Column("resolved_at", UTCDateTime),
    sa.Column("resolved_by", sa.String(limits.PERSON.chars)),
    sa.Column("resolution", sa.Text),
    sa.UniqueConstraint("insurer", "message_id"),
    sa.Index("ix_inbound_messages_status", "status", "id"),
)


# --- the HTTP API's tokens (issue #12) ---------------------------------------------------
#: A token an app calls the API with: the SHA-256 of its secret (never the secret), whom
#: it acts as or for, and when it was made, last used and revoked (engine/tokens.py).
api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("app", sa.String(limits.APP.chars), nullable=False),
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("secret_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("actor", JSONType),
    sa.Column("act_for", JSONType, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("last_used_at", UTCDateTime),
    sa.Column("revoked_at", UTCDateTime),
)


# --- the dashboard's accounts (issue #13) ------------------------------------------------
#: A person who logs in to the dashboard: who they act as (name, roles, org unit), the
#: argon2 hash of their password (never the password), and whether they are disabled.
users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.String(limits.ACTOR_ID.chars), primary_key=True),
    sa.Column("name", sa.String(limits.ACTOR_NAME.chars), nullable=False),
    sa.Column("roles", JSONType, nullable=False),
    sa.Column("org_unit", sa.String(limits.ORG_UNIT.chars)),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("disabled_at", UTCDateTime),
)

#: Each wrong password, by the user id tried and the client it came from: five of
#: either in the window refuse the next attempts for a while (engine/accounts.py). Kept
#: in the database so every process of a deployment counts the same attempts.
login_failures = sa.Table(
    "login_failures",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.String(limits.ACTOR_ID.chars), nullable=False),
    sa.Column("client", sa.String(64), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Index("ix_login_failures_user_id", "user_id", "at"),
    sa.Index("ix_login_failures_client", "client", "at"),
)
