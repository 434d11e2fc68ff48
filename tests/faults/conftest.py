"""Fixtures for the write-path tests: PostgreSQL (TEST_DATABASE_URL) emptied per test."""

from __future__ import annotations

import pytest

from tests.support import PG_SKIP_REASON, truncate_postgres


@pytest.fixture
def pg_url(migrated_postgres: str | None) -> str:
    """The migrated test database, emptied; skipped when TEST_DATABASE_URL is not set."""
    if migrated_postgres is None:
        pytest.skip(PG_SKIP_REASON)
    truncate_postgres(migrated_postgres)
    return migrated_postgres
