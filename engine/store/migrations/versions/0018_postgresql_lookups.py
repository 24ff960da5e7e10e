"""two lookups of the dashboard made cheap on PostgreSQL

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03

- The live diagram's warned and breached counts look up the state of each such case
  by its id; each lookup read a heap page. With the state, workflow and org unit
  INCLUDEd in an index on id, it reads the index only (issue #13's overview at
  1,000,000 cases: the claim's alert counts from 83 to 25 ms). SQLite gets a plain
  index on id (its rowid table is read as cheaply), written once per case.
- A case's handler and org unit go together (a handler works in one unit), which the
  planner cannot know from per-column statistics: filtering a unit's deadlines by a
  handler of another unit walked every running deadline (225 ms) expecting to find
  one soon. Extended statistics on the pair tell it (63 ms). Not in the models:
  SQLAlchemy has no statistics objects, so this migration owns it.
"""

from __future__ import annotations

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_cases_state_of",
        "cases",
        ["id"],
        postgresql_include=["workflow", "org_unit", "state"],
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE STATISTICS st_cases_handler_org_unit (mcv, dependencies) "
            "ON handler, org_unit FROM cases"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP STATISTICS st_cases_handler_org_unit")
    op.drop_index("ix_cases_state_of", table_name="cases")
