"""inbound insurer messages; the insurer's reference as a search key; metrics' indexes

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("insurer_reference", sa.String(length=200), nullable=True))
        batch_op.create_index("ix_cases_insurer_reference", ["insurer_reference"], unique=False)
    op.create_table(
        "inbound_messages",
        sa.Column("id", _BIG, autoincrement=True, nullable=False),
        sa.Column("insurer", sa.String(length=64), nullable=False),
        sa.Column("message_id", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("case_number", sa.String(length=40), nullable=True),
        sa.Column("reference", sa.String(length=200), nullable=True),
        sa.Column("payload", _JSON, nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("reason_code", sa.String(length=16), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("case_id", _BIG, nullable=True),
        sa.Column("event", sa.String(length=64), nullable=True),
        sa.Column("result", _JSON, nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.String(length=200), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_messages")),
        sa.UniqueConstraint(
            "insurer", "message_id", name=op.f("uq_inbound_messages_insurer_message_id")
        ),
    )
    op.create_index(
        "ix_inbound_messages_status", "inbound_messages", ["status", "id"], unique=False
    )
    # What a metrics scrape counts, each through its own partial index.
    op.create_index(
        "ix_outbox_dead",
        "outbox",
        ["id"],
        unique=False,
        postgresql_where=sa.text("status = 'dead'"),
        sqlite_where=sa.text("status = 'dead'"),
    )
    breached = sa.text("status = 'running' AND breached_at IS NOT NULL")
    op.create_index(
        "ix_case_deadlines_breached",
        "case_deadlines",
        ["rule", "level"],
        unique=False,
        postgresql_where=breached,
        sqlite_where=breached,
    )


def downgrade() -> None:
    op.drop_index("ix_case_deadlines_breached", table_name="case_deadlines")
    op.drop_index("ix_outbox_dead", table_name="outbox")
    op.drop_index("ix_inbound_messages_status", table_name="inbound_messages")
    op.drop_table("inbound_messages")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index("ix_cases_insurer_reference")
        batch_op.drop_column("insurer_reference")
