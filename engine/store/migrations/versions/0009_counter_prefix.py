"""case-number counters keyed by the prefix with its parts (TS-SH)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("case_counters", schema=None) as batch_op:
        batch_op.alter_column(
            "prefix", existing_type=sa.String(length=8), type_=sa.String(length=40)
        )


def downgrade() -> None:
    with op.batch_alter_table("case_counters", schema=None) as batch_op:
        batch_op.alter_column(
            "prefix", existing_type=sa.String(length=40), type_=sa.String(length=8)
        )
