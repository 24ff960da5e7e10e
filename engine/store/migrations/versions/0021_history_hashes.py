"""the tamper-evident history: each row's hash chained to the row before it in its case,
and each sealed day's anchor

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04

Every history row already stored gets its hash here, case by case in sequence order
(``baoflow.engine.audit.row_hash``: the same function the store writes new rows with),
so an upgraded database verifies as a new one does. Rows are read and written 500 cases
at a time. No day is sealed: the first ``baoflow audit seal`` (or the worker) seals the
days since the oldest row.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op
from baoflow.engine import audit

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

_cases = sa.table("cases", sa.column("id", sa.BigInteger), sa.column("number", sa.String))
_history = sa.table(
    "history",
    sa.column("id", sa.BigInteger),
    sa.column("case_id", sa.BigInteger),
    sa.column("seq", sa.Integer),
    sa.column("at", sa.DateTime(timezone=True)),
    sa.column("actor", sa.JSON),
    sa.column("event", sa.String),
    sa.column("from_state", sa.String),
    sa.column("to_state", sa.String),
    sa.column("data", sa.JSON),
    sa.column("notes", sa.JSON),
    sa.column("hash", sa.String),
)


def upgrade() -> None:
    op.add_column("history", sa.Column("hash", sa.String(length=64), nullable=True))
    _hash_every_row(op.get_bind())
    with op.batch_alter_table("history", schema=None) as batch_op:
        batch_op.alter_column("hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.create_index("ix_history_at", ["at"], unique=False)
    op.create_table(
        "audit_anchors",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("sealed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_audit_anchors")),
    )


def _hash_every_row(bind: Any) -> None:
    h, c = _history.c, _cases.c
    after = 0
    while True:
        batch = bind.execute(
            sa.select(c.id, c.number).where(c.id > after).order_by(c.id).limit(500)
        ).all()
        if not batch:
            return
        numbers = {int(i): str(n) for i, n in batch}
        after = max(numbers)
        rows = bind.execute(
            sa.select(
                h.id,
                h.case_id,
                h.seq,
                h.at,
                h.actor,
                h.event,
                h.from_state,
                h.to_state,
                h.data,
                h.notes,
            )
            .where(h.case_id.in_(list(numbers)))
            .order_by(h.case_id, h.seq)
        ).all()
        prev: dict[int, str] = {}
        updates = []
        for row in rows:
            hash_ = audit.row_hash(
                prev.get(row.case_id, audit.GENESIS),
                number=numbers[row.case_id],
                seq=row.seq,
                at=_aware(row.at),
                actor=row.actor,
                event=row.event,
                from_state=row.from_state,
                to_state=row.to_state,
                data=row.data,
                notes=row.notes,
            )
            prev[row.case_id] = hash_
            updates.append({"b_id": row.id, "b_hash": hash_})
        if updates:
            bind.execute(
                _history.update()
                .where(h.id == sa.bindparam("b_id"))
                .values(hash=sa.bindparam("b_hash")),
                updates,
            )


def _aware(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def downgrade() -> None:
    op.drop_table("audit_anchors")
    with op.batch_alter_table("history", schema=None) as batch_op:
        batch_op.drop_index("ix_history_at")
        batch_op.drop_column("hash")
