"""Alembic environment: run with the connection baoflow hands over (Store.upgrade)."""

from __future__ import annotations

from alembic import context
from baoflow.engine.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "baoflow migrations run through `baoflow db upgrade` or Store.upgrade(), "
        "which pass the connection; the plain `alembic` command is not wired up."
    )

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
if connection.dialect.name == "postgresql":
    # Several workers may start at once; only one may migrate at a time.
    connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7406339817)")
with context.begin_transaction():
    context.run_migrations()
