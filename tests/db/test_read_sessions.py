"""GET requests read through `read_only_engine`: fewer round trips, no write lock, same data.

PostgreSQL: reads run in autocommit (one round trip for a one-query request instead of BEGIN,
query, COMMIT). SQLite: reads take a deferred BEGIN, so a reader never holds the write lock.
Also: DB_PREPARE_THRESHOLD can turn psycopg's prepared statements off (PgBouncer).
"""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from backend.db import create_engine, read_only_engine
from backend.settings import Settings


def _settings(url: str, **values: object) -> Settings:
    return Settings(_env_file=None, database_url=url, **values)  # type: ignore[call-arg]


async def _transaction_status(url: str, *, read_only: bool) -> str:
    engine = create_engine(_settings(url))
    bind = read_only_engine(engine) if read_only else engine
    try:
        async with bind.connect() as connection:
            await connection.execute(sa.text("SELECT 1"))
            raw = await connection.get_raw_connection()
            status: str = raw.driver_connection.info.transaction_status.name
            await connection.commit()
        return status
    finally:
        await engine.dispose()


async def test_postgres_reads_run_in_autocommit_writes_in_a_transaction(
    scratch_postgres: str,
) -> None:
    assert await _transaction_status(scratch_postgres, read_only=True) == "IDLE"
    assert await _transaction_status(scratch_postgres, read_only=False) == "INTRANS"


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
    assert Settings(_env_file=None).db_prepare_threshold == expected  # type: ignore[call-arg]


async def test_prepared_statements_off_reaches_psycopg(scratch_postgres: str) -> None:
    engine = create_engine(_settings(scratch_postgres, db_prepare_threshold=None))
    try:
        async with engine.connect() as connection:
            raw = await connection.get_raw_connection()
            assert raw.driver_connection.prepare_threshold is None
    finally:
        await engine.dispose()
