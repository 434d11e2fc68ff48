"""Scratch databases for schema tests: a fresh SQLite file and a PostgreSQL database of our own.

The PostgreSQL one is created next to TEST_DATABASE_URL (same server, name + "_migrations") and
dropped afterwards, so migrating it up and down never disturbs the API tests' database.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from tests.support import PG_SKIP_REASON, libpq, postgres_url


@pytest.fixture
def scratch_postgres() -> Iterator[str]:
    """URL of an empty PostgreSQL database, created for this test and dropped after it."""
    base = postgres_url()
    if base is None:
        pytest.skip(PG_SKIP_REASON)
    url = make_url(base)
    name = f"{url.database}_migrations"
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    with psycopg.connect(libpq(base), autocommit=True) as admin:
        admin.execute(drop)
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(libpq(base), autocommit=True) as admin:
            admin.execute(drop)


@pytest.fixture
def scratch_sqlite(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'scratch.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def scratch_url(request: pytest.FixtureRequest) -> str:
    """Each schema test on both databases."""
    fixture = "scratch_sqlite" if request.param == "sqlite" else "scratch_postgres"
    url: str = request.getfixturevalue(fixture)
    return url
