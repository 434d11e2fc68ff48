"""The test databases: which PostgreSQL to use, emptying it, and SQL probes."""

from __future__ import annotations

import os
from typing import Any, LiteralString

import psycopg
from sqlalchemy.engine import make_url

PG_SKIP_REASON = (
    "PostgreSQL tests skipped: TEST_DATABASE_URL is not set "
    "(e.g. postgresql://postgres@127.0.0.1:5432/test; .ci/run sets it)"
)


def postgres_url() -> str | None:
    return os.environ.get("TEST_DATABASE_URL") or None


def libpq(url: str) -> str:
    """A SQLAlchemy-style URL as a libpq connection string for psycopg."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def reset_postgres_schema(url: str) -> None:
    """Empty the test database: drop and recreate the public schema."""
    with psycopg.connect(libpq(url), autocommit=True) as connection:
        connection.execute("DROP SCHEMA IF EXISTS public CASCADE")
        connection.execute("CREATE SCHEMA public")


def truncate_postgres(url: str) -> None:
    with psycopg.connect(libpq(url), autocommit=True) as connection:
        connection.execute("TRUNCATE tasks, idempotency_keys RESTART IDENTITY")


def pg_scalar(url: str, sql: LiteralString, params: tuple[Any, ...] = ()) -> Any:
    """The first column of the first row of `sql` (None when there is no row)."""
    with psycopg.connect(libpq(url), autocommit=True) as connection:
        row = connection.execute(sql, params).fetchone()
        return None if row is None else row[0]
