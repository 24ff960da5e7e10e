"""the SLA report's walk of each case's history from one index on PostgreSQL

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-04

The SLA report's medians walk every case's history in (case_id, seq) order, reading
each row's time and state (LAG and LEAD over each case's rows). With the time and the
state INCLUDEd in the unique index on (case_id, seq), PostgreSQL reads that index
alone, in order: no heap page, no sort. At 1,000,000 cases (7.7 million history rows)
it read the whole heap (3.2 GB) and sorted it. The constraint is the same one, so no
index is added to the rows each fire() writes; it is rebuilt here, with writes to the
history held while it builds (seconds at a million cases). SQLite has no INCLUDE; its
scan stays on the unique index and the table.
"""

from __future__ import annotations

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

NAME = "uq_history_case_id_seq"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_constraint(NAME, "history", type_="unique")
    # As SQL: Alembic's constraint operation knows only the constraint's own columns.
    op.execute(
        f"ALTER TABLE history ADD CONSTRAINT {NAME} UNIQUE (case_id, seq) INCLUDE (at, to_state)"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_constraint(NAME, "history", type_="unique")
    op.create_unique_constraint(NAME, "history", ["case_id", "seq"])
