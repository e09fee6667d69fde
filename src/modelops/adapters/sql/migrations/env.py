from __future__ import annotations

from alembic import context

from modelops.adapters.sql.tables import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("modelops migrations run through modelops.adapters.sql.engine.migrate")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
