"""Alembic's entry point: run the migrations on the connection ``rebuild.service.store.migrate`` hands in.

No alembic.ini: the store passes its own connection (``config.attributes["connection"]``), so a migration
runs on exactly the database the command was given.
"""

from __future__ import annotations

from alembic import context

from rebuild.service.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only when alembic is run by hand
    raise RuntimeError("run migrations through `rebuild init --db URL`")
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
