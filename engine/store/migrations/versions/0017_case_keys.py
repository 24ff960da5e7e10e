"""search keys a workflow declares of its own, as rows: a new key needs no migration

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03

Cases opened before a workflow declared a key get its rows from
``baoflow db rebuild-keys`` (``Engine.rebuild_keys``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "case_keys",
        sa.Column(
            "case_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            sa.ForeignKey("cases.id"),
            primary_key=True,
        ),
        sa.Column("key", sa.String(length=32), primary_key=True),
        sa.Column("value", sa.String(length=200), nullable=False),
    )
    op.create_index("ix_case_keys_lookup", "case_keys", ["key", "value", "case_id"])


def downgrade() -> None:
    op.drop_index("ix_case_keys_lookup", table_name="case_keys")
    op.drop_table("case_keys")
