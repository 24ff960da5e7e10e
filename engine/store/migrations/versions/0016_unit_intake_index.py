"""one org unit's intake counted from its own index

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03

The dashboard counts a unit's cases opened since a time (workflow, org unit, created
after). With ix_cases_workflow_created_at and ix_cases_org_unit alone, SQLite's
statistics (after an ANALYZE) chose the org unit's index and read every case of the
unit: 24 ms per count at 100,000 cases, where this index answers in well under one.
"""

from __future__ import annotations

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_cases_workflow_org_unit_created_at",
        "cases",
        ["workflow", "org_unit", "created_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_cases_workflow_org_unit_created_at", table_name="cases")
