"""the live diagram's counts: cases per state of one org unit, alerted deadlines

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# Word for word as tables.ALERTING_SQL (SQLite matches a partial index by its terms).
_ALERTING = "status IN ('running', 'paused') AND (warned > 0 OR breached_at IS NOT NULL)"


def upgrade() -> None:
    op.create_index("ix_cases_workflow_org_unit_state", "cases", ["workflow", "org_unit", "state"])
    op.create_index(
        "ix_case_deadlines_alerting",
        "case_deadlines",
        ["case_id", "breached_at", "level"],
        postgresql_where=sa.text(_ALERTING),
        sqlite_where=sa.text(_ALERTING),
    )


def downgrade() -> None:
    op.drop_index("ix_case_deadlines_alerting", table_name="case_deadlines")
    op.drop_index("ix_cases_workflow_org_unit_state", table_name="cases")
