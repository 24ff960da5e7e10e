"""each case's handler (经办人) as a search key: the desk's deadline list filters by it

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

# Of the bundled workflows only the complaint assigned a handler before this revision
# (its ``assign`` event stores ``assignment.handler_id``); its cases get the column from
# their data now. Every other case gets it when an event assigns one.
_BACKFILL = {
    "sqlite": "UPDATE cases SET handler = json_extract(data, '$.assignment.handler_id') "
    "WHERE workflow = 'complaint'",
    "postgresql": "UPDATE cases SET handler = data -> 'assignment' ->> 'handler_id' "
    "WHERE workflow = 'complaint'",
}


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("handler", sa.String(length=64), nullable=True))
        batch_op.create_index("ix_cases_handler", ["handler"], unique=False)
    op.execute(_BACKFILL[op.get_bind().dialect.name])


def downgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index("ix_cases_handler")
        batch_op.drop_column("handler")
