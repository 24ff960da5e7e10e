"""room on the page for HOT updates of cases and deadline instances (PostgreSQL)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25

A case row is rewritten by every transition and every timer effect, and cases carry
eight indexes. With full pages (fillfactor 100, the default) nearly every update is a
non-HOT update that inserts into all eight; with room left on the page, an update that
changes no indexed column (data, version, updated_at: a timer effect, a data-only
transition) stays on the page and touches no index. Measured in docs/benchmarks.md
("Timers on PostgreSQL"). Rows already stored get the room as their pages are rewritten
(VACUUM FULL or pg_repack to do it at once). SQLite has no such setting.
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TABLES = {"cases": 80, "case_deadlines": 80}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, fill in TABLES.items():
        op.execute(f"ALTER TABLE {table} SET (fillfactor = {fill})")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} RESET (fillfactor)")
