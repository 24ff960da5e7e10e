"""the desk's holiday arrangements; provisional deadlines

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("case_deadlines", schema=None) as batch_op:
        batch_op.add_column(sa.Column("provisional", sa.String(length=40), nullable=True))
    op.create_table(
        "calendar_imports",
        sa.Column("id", _BIG, autoincrement=True, nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=500), nullable=False),
        sa.Column("file_name", sa.String(length=500), nullable=False),
        sa.Column("imported_by", sa.String(length=200), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("override", sa.Boolean(), nullable=False),
        sa.Column("current", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendar_imports")),
    )
    op.create_index("ix_calendar_imports_year", "calendar_imports", ["year"], unique=False)
    op.create_table(
        "calendar_days",
        sa.Column("import_id", _BIG, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("working", sa.Boolean(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("line", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["import_id"],
            ["calendar_imports.id"],
            name=op.f("fk_calendar_days_import_id_calendar_imports"),
        ),
        sa.PrimaryKeyConstraint("import_id", "day", name=op.f("pk_calendar_days")),
    )
    state = op.create_table(
        "calendar_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendar_state")),
    )
    op.bulk_insert(state, [{"id": 1, "generation": 0}])


def downgrade() -> None:
    op.drop_table("calendar_state")
    op.drop_table("calendar_days")
    op.drop_index("ix_calendar_imports_year", table_name="calendar_imports")
    op.drop_table("calendar_imports")
    with op.batch_alter_table("case_deadlines", schema=None) as batch_op:
        batch_op.drop_column("provisional")
