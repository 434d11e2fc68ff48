"""Database errors raised by psycopg itself map to 503 (cannot answer now) or 422 (bad value)."""

from __future__ import annotations

import psycopg
import pytest

from backend.db import is_database_unavailable, is_rejected_value, libpq_conninfo


async def _error_of(url: str, *statements: str) -> psycopg.Error:
    async with await psycopg.AsyncConnection.connect(libpq_conninfo(url), autocommit=True) as conn:
        with pytest.raises(psycopg.Error) as raised:
            for statement in statements:
                await conn.execute(statement)
    return raised.value


async def test_a_value_the_database_refuses_is_422_not_503(scratch_postgres: str) -> None:
    error = await _error_of(scratch_postgres, "SELECT 1 / 0")
    assert is_rejected_value(error) and not is_database_unavailable(error)


async def test_a_statement_timeout_is_unavailable(scratch_postgres: str) -> None:
    error = await _error_of(scratch_postgres, "SET statement_timeout = 10", "SELECT pg_sleep(1)")
    assert is_database_unavailable(error) and not is_rejected_value(error)


async def test_a_lost_connection_is_unavailable(scratch_postgres: str) -> None:
    error = await _error_of(
        scratch_postgres, "SELECT pg_terminate_backend(pg_backend_pid())", "SELECT 1"
    )
    assert is_database_unavailable(error)


async def test_a_bug_is_neither(scratch_postgres: str) -> None:
    error = await _error_of(scratch_postgres, "SELECT no_such_column FROM pg_class")
    assert not is_database_unavailable(error) and not is_rejected_value(error)
