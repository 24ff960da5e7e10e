"""the dashboard's accounts and their failed log-ins; intake and closings by time; the desk's deadline list in due order

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_index("ix_cases_workflow_created_at", "cases", ["workflow", "created_at"])
    op.create_index("ix_history_to_state_at", "history", ["to_state", "at"])
    op.create_index(
        "ix_case_deadlines_desk",
        "case_deadlines",
        ["due_at", "case_id", "rule"],
        postgresql_where=sa.text("status IN ('running', 'paused')"),
        sqlite_where=sa.text("status IN ('running', 'paused')"),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("roles", _JSON, nullable=False),
        sa.Column("org_unit", sa.String(length=64), nullable=True),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
    )
    op.create_table(
        "login_failures",
        sa.Column("id", _BIG, autoincrement=True, nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("client", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_failures")),
    )
    op.create_index("ix_login_failures_user_id", "login_failures", ["user_id", "at"])
    op.create_index("ix_login_failures_client", "login_failures", ["client", "at"])


def downgrade() -> None:
    op.drop_index("ix_login_failures_client", table_name="login_failures")
    op.drop_index("ix_login_failures_user_id", table_name="login_failures")
    op.drop_table("login_failures")
    op.drop_table("users")
    op.drop_index("ix_case_deadlines_desk", table_name="case_deadlines")
    op.drop_index("ix_history_to_state_at", table_name="history")
    op.drop_index("ix_cases_workflow_created_at", table_name="cases")
