"""Fixtures for the write-path tests: emptied PostgreSQL, and real servers shared per session."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.support import (
    PG_SKIP_REASON,
    LiveServer,
    User,
    running_server,
    server_env,
)


def _serve(url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # A pool larger than any burst in these tests, so concurrency reaches the database.
    env = server_env(url, DB_POOL_SIZE="25", LOG_LEVEL="WARNING")
    with running_server(env, tmp_path_factory.mktemp("live")) as server:
        yield server


@pytest.fixture(scope="session")
def pg_server(
    migrated_postgres: str | None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """`todo-api serve` on TEST_DATABASE_URL, started once: tests keep apart by user."""
    if migrated_postgres is None:
        pytest.skip(PG_SKIP_REASON)
    yield from _serve(migrated_postgres, tmp_path_factory)


@pytest.fixture(scope="session")
def sqlite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    path = tmp_path_factory.mktemp("live-sqlite") / "todo.db"
    yield from _serve(f"sqlite:///{path}", tmp_path_factory)


@pytest.fixture(params=["sqlite", "postgres"])
def live_server(request: pytest.FixtureRequest) -> LiveServer:
    """A real server on each database (started once per session)."""
    server: LiveServer = request.getfixturevalue(
        "sqlite_server" if request.param == "sqlite" else "pg_server"
    )
    return server


@pytest.fixture
def carol() -> User:
    """A user of her own: the shared servers keep every earlier test's tasks."""
    return User.named(f"carol-{uuid.uuid4().hex[:12]}")
