"""Connections of the request path: autocommit on PostgreSQL, no write lock for SQLite reads.

PostgreSQL: every statement runs in autocommit (one round trip instead of BEGIN, statement,
COMMIT) with the statement timeout and UTC set per connection. SQLite: reads take a deferred
BEGIN, so a reader never holds the write lock. DB_PREPARE_THRESHOLD can turn psycopg's prepared
statements off (PgBouncer).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa

from backend.db import create_engine, create_pool, read_only_engine
from backend.settings import Settings


def _settings(url: str, **values: Any) -> Settings:
    return Settings(_env_file=None, database_url=url, **values)


async def _pooled(settings: Settings) -> dict[str, object]:
    """What a request's connection from the PostgreSQL pool is set to."""
    pool = create_pool(settings)
    await pool.open(wait=True, timeout=10)
    try:
        async with pool.connection() as connection:
            timeout = await (await connection.execute("SHOW statement_timeout")).fetchone()
            zone = await (await connection.execute("SHOW TimeZone")).fetchone()
            return {
                "autocommit": connection.autocommit,
                "status": connection.info.transaction_status.name,
                "statement_timeout": timeout[0] if timeout else None,
                "time_zone": zone[0] if zone else None,
                "prepare_threshold": connection.prepare_threshold,
            }
    finally:
        await pool.close()


async def test_postgres_requests_run_in_autocommit_with_the_session_settings(
    scratch_postgres: str,
) -> None:
    """No BEGIN/COMMIT round trips: each statement is its own transaction."""
    pooled = await _pooled(_settings(scratch_postgres, db_statement_timeout_ms=1234))
    assert pooled == {
        "autocommit": True,
        "status": "IDLE",
        "statement_timeout": "1234ms",
        "time_zone": "UTC",
        "prepare_threshold": 5,
    }


async def test_sqlite_reader_does_not_block_a_writer(scratch_sqlite: str) -> None:
    """With BEGIN IMMEDIATE a reader would hold the write lock for its whole request."""
    engine = create_engine(_settings(scratch_sqlite))
    reads, writes = read_only_engine(engine).connect, engine.connect
    try:
        async with writes() as connection:
            await connection.execute(sa.text("CREATE TABLE t (x INTEGER)"))
            await connection.commit()
        async with reads() as reader:
            assert (await reader.execute(sa.text("SELECT count(*) FROM t"))).scalar() == 0
            async with writes() as writer:  # while the read transaction is still open
                await asyncio.wait_for(writer.execute(sa.text("INSERT INTO t VALUES (1)")), 3)
                await writer.commit()
            await reader.commit()
        async with reads() as reader:
            assert (await reader.execute(sa.text("SELECT count(*) FROM t"))).scalar() == 1
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    ("raw", "expected"), [("", None), ("none", None), ("OFF", None), ("0", 0), ("5", 5)]
)
def test_prepare_threshold_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: int | None
) -> None:
    monkeypatch.setenv("DB_PREPARE_THRESHOLD", raw)
    assert Settings(_env_file=None).db_prepare_threshold == expected


async def test_prepared_statements_off_reaches_psycopg(scratch_postgres: str) -> None:
    pooled = await _pooled(_settings(scratch_postgres, db_prepare_threshold=None))
    assert pooled["prepare_threshold"] is None
