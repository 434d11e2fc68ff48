"""The PostgreSQL request pool: first come, first served, and an exhausted pool answers 503."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import psycopg_pool
import pytest
from fastapi import FastAPI

from backend.app import create_app
from backend.db import create_pool, is_database_unavailable
from backend.settings import Settings
from tests.support import PG_SKIP_REASON, User, api_settings, truncate_postgres


def _settings(url: str) -> Settings:
    return api_settings(url).model_copy(update={"db_pool_size": 1, "db_pool_timeout_seconds": 0.3})


@pytest.fixture
def pg(migrated_postgres: str | None) -> str:
    if migrated_postgres is None:
        pytest.skip(PG_SKIP_REASON)
    truncate_postgres(migrated_postgres)
    return migrated_postgres


@pytest.fixture
async def one_connection_app(pg: str) -> AsyncIterator[FastAPI]:
    app = create_app(_settings(pg))
    async with app.router.lifespan_context(app):
        await app.state.pool.wait(timeout=10)
        yield app


async def test_waiters_get_connections_in_arrival_order(pg: str) -> None:
    """A returned connection goes to the oldest waiter; a newcomer queues behind the others."""
    pool = create_pool(_settings(pg).model_copy(update={"db_pool_timeout_seconds": 10}))
    await pool.open(wait=True, timeout=10)
    order: list[int] = []

    async def request(number: int) -> None:
        async with pool.connection():
            order.append(number)
            await asyncio.sleep(0.01)

    try:
        held = await pool.getconn()
        waiters = []
        for number in range(6):
            waiters.append(asyncio.create_task(request(number)))
            await asyncio.sleep(0.01)  # each one queued before the next arrives
        await pool.putconn(held)
        latecomer = asyncio.create_task(request(99))  # arrives while the others still wait
        await asyncio.gather(*waiters, latecomer)
        assert order == [0, 1, 2, 3, 4, 5, 99]
    finally:
        await pool.close()


async def test_an_exhausted_pool_is_a_503_problem(one_connection_app: FastAPI) -> None:
    alice = User.named("alice")
    transport = httpx.ASGITransport(app=one_connection_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        async with one_connection_app.state.pool.connection():  # the only connection, held
            response = await client.get(alice.tasks, headers=alice.headers)
            ready = await client.get("/api/health/ready")
        assert response.status_code == 503, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["type"].endswith("/service-unavailable")
        assert response.headers["retry-after"].isdigit()
        assert ready.status_code == 503
        # Released: served again.
        assert (await client.get(alice.tasks, headers=alice.headers)).status_code == 200


async def test_a_pool_timeout_counts_as_unavailable(pg: str) -> None:
    pool = create_pool(_settings(pg))
    await pool.open(wait=True, timeout=10)
    try:
        async with pool.connection():
            with pytest.raises(psycopg_pool.PoolTimeout) as raised:
                await pool.getconn()
        assert is_database_unavailable(raised.value)
    finally:
        await pool.close()
