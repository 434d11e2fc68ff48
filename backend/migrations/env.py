"""Alembic environment: runs migrations on a synchronous connection to DATABASE_URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine, pool
from sqlmodel import SQLModel

import backend.tables  # noqa: F401 - registers the table models on SQLModel.metadata

config = context.config
target_metadata = SQLModel.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(config.attributes["database_url"], poolclass=pool.NullPool)
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


run_migrations_online()
