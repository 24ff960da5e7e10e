"""one handler's cases in one org unit from one index

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04

The deadline list filtered by handler, as a unit's supervisor sees it, filters cases
by handler and org unit. With an index on the handler alone, PostgreSQL combined it
with the org unit's index (50,000 and 250,000 rows at 1,000,000 cases) and read about
9,500 heap pages to find the 25 cases of that handler in that unit: 114 ms. On
(handler, org_unit) it reads those 25: 14 ms. The handler-only lookup is the index's
prefix, so ix_cases_handler goes.
"""

from __future__ import annotations

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_cases_handler_org_unit", "cases", ["handler", "org_unit"])
    op.drop_index("ix_cases_handler", table_name="cases")


def downgrade() -> None:
    op.create_index("ix_cases_handler", "cases", ["handler"])
    op.drop_index("ix_cases_handler_org_unit", table_name="cases")
