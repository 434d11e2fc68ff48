"""Migrations: they produce exactly the models' schema, and every step goes down and up again."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlmodel import SQLModel

import backend.tables  # noqa: F401 - registers the models on SQLModel.metadata
from backend.db import sync_url
from backend.migrate import alembic_config, upgrade_to_head


@contextmanager
def connect(url: str) -> Iterator[sa.Connection]:
    engine = sa.create_engine(sync_url(url), poolclass=sa.NullPool)
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()


# Declared with ddl_if(dialect="postgresql"): SQLite has no GIN index (or jsonb) to build.
POSTGRES_ONLY_INDEXES = {"ix_tasks_tags"}


def differences(url: str) -> list[Any]:
    """What `alembic revision --autogenerate` would write to bring the database to the models."""
    with connect(url) as connection:
        dialect = connection.dialect.name

        def include(obj: Any, name: str | None, type_: str, *_: Any) -> bool:
            return not (
                dialect != "postgresql" and type_ == "index" and name in POSTGRES_ONLY_INDEXES
            )

        context = MigrationContext.configure(
            connection,
            opts={"compare_type": True, "compare_server_default": True, "include_object": include},
        )
        return list(compare_metadata(context, SQLModel.metadata))


def current_revision(url: str) -> str | None:
    with connect(url) as connection:
        return MigrationContext.configure(connection).get_current_revision()


def revisions(url: str) -> list[Any]:
    """Every revision from the first to head."""
    script = ScriptDirectory.from_config(alembic_config(url))
    return list(reversed(list(script.walk_revisions())))


def schema(url: str) -> dict[str, Any]:
    """Tables, columns (name, type, nullability), indexes and check constraints, by reflection."""
    with connect(url) as connection:
        inspector = sa.inspect(connection)
        shape: dict[str, Any] = {}
        for table in sorted(inspector.get_table_names()):
            shape[table] = {
                "columns": [
                    (c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)
                ],
                "indexes": sorted(
                    (i["name"], tuple(i["column_names"])) for i in inspector.get_indexes(table)
                ),
                "checks": sorted(c["name"] or "" for c in inspector.get_check_constraints(table)),
                "primary_key": inspector.get_pk_constraint(table)["constrained_columns"],
            }
        return shape


def test_migrated_postgres_schema_matches_the_models(scratch_postgres: str) -> None:
    upgrade_to_head(scratch_postgres)
    assert differences(scratch_postgres) == []


def test_migrated_sqlite_schema_matches_the_models(scratch_sqlite: str) -> None:
    upgrade_to_head(scratch_sqlite)
    assert differences(scratch_sqlite) == []


def test_an_unmigrated_database_differs_from_the_models(scratch_url: str) -> None:
    """Guards the two tests above: the comparison does see a missing schema."""
    command.upgrade(alembic_config(scratch_url), revisions(scratch_url)[0].revision)
    assert differences(scratch_url) != []


def test_stairway_each_revision_goes_up_down_and_up(scratch_url: str) -> None:
    config = alembic_config(scratch_url)
    steps = revisions(scratch_url)
    assert len(steps) >= 2
    for revision in steps:
        below = revision.down_revision or "base"
        command.upgrade(config, revision.revision)
        after_upgrade = schema(scratch_url)
        command.downgrade(config, below)
        assert current_revision(scratch_url) == (None if below == "base" else below)
        command.upgrade(config, revision.revision)
        assert current_revision(scratch_url) == revision.revision
        assert schema(scratch_url) == after_upgrade, revision.revision
    assert differences(scratch_url) == []
    command.downgrade(config, "base")
    assert [table for table in schema(scratch_url) if table != "alembic_version"] == []


def test_0002_folds_the_keys_of_existing_rows_and_0001_gets_lower_back(scratch_url: str) -> None:
    config = alembic_config(scratch_url)
    command.upgrade(config, "0001")
    with connect(scratch_url) as connection, connection.begin():
        for index, (title, description) in enumerate(
            [("ΟΔΟΣ Straße", "ΣΟΦΙΑ and MASSE"), ("Plain", None)] * 3
        ):
            connection.execute(
                sa.text(
                    "INSERT INTO tasks (user_id, title, title_key, description, completed, "
                    "priority, tags, version, created_at, updated_at) VALUES (:user, :title, "
                    ":key, :description, false, 2, '[]', 1, '2026-01-01 00:00:00', "
                    "'2026-01-01 00:00:00')"
                ),
                {"user": f"u{index}", "title": title, "key": title.lower(),
                 "description": description},
            )  # fmt: skip
    command.upgrade(config, "0002")
    with connect(scratch_url) as connection:
        rows = connection.execute(
            sa.text("SELECT title, title_key, description, description_key FROM tasks ORDER BY id")
        ).all()
    assert len(rows) == 6
    for title, title_key, description, description_key in rows:
        assert title_key == title.casefold()
        assert description_key == (None if description is None else description.casefold())
    assert rows[0].title_key == "οδοσ strasse" and rows[0].description_key == "σοφια and masse"

    command.downgrade(config, "0001")
    with connect(scratch_url) as connection:
        keys = connection.execute(sa.text("SELECT title, title_key FROM tasks ORDER BY id")).all()
        assert "description_key" not in [
            c["name"] for c in sa.inspect(connection).get_columns("tasks")
        ]
    assert [key for _, key in keys] == [title.lower() for title, _ in keys]


@pytest.mark.parametrize("table", ["tasks", "idempotency_keys", "task_counts"])
def test_head_has_the_documented_tables(scratch_url: str, table: str) -> None:
    upgrade_to_head(scratch_url)
    assert table in schema(scratch_url)


def test_sqlite_task_ids_autoincrement_from_0003(scratch_sqlite: str) -> None:
    """Without AUTOINCREMENT SQLite reuses the id of a deleted newest row (see 0003)."""

    def table_sql() -> str:
        with connect(scratch_sqlite) as connection:
            return str(
                connection.execute(
                    sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'tasks'")
                ).scalar_one()
            )

    config = alembic_config(scratch_sqlite)
    command.upgrade(config, "0002")
    assert "AUTOINCREMENT" not in table_sql()
    upgrade_to_head(scratch_sqlite)
    assert "AUTOINCREMENT" in table_sql()
    command.downgrade(config, "0002")
    assert "AUTOINCREMENT" not in table_sql()
