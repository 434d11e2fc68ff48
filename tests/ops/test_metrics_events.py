"""Each metric moves when its event happens: requests, replays, outages, JWKS, the pool."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from backend.app import create_app
from backend.cli import build_parser
from backend.metrics import sample_pool
from backend.settings import Settings
from tests.ops.helpers import AppClient, sample
from tests.support import (
    User,
    api_settings,
    assert_problem,
    better_auth_claims,
    ed25519_key,
    free_port,
    running_jwks,
)

METRICS_ON: dict[str, Any] = {"metrics_port": 9}  # recorded; the port is only bound by `serve`


async def test_requests_are_counted_by_operation_and_status(app_client: AppClient) -> None:
    alice = User.named("alice")
    async with app_client(**METRICS_ON) as (_, client):
        created = await client.post(alice.tasks, json={"title": "count me"}, headers=alice.headers)
        assert created.status_code == 201, created.text
        path = alice.task(created.json()["id"])
        ok_before = sample("todo_http_requests_total", operation="getTask", status="200")
        missing_before = sample("todo_http_requests_total", operation="getTask", status="404")
        seconds_before = sample(
            "todo_http_request_duration_seconds_count", operation="getTask", status="200"
        )
        unmatched_before = sample("todo_http_requests_total", operation="unmatched", status="404")
        for _ in range(3):
            assert (await client.get(path, headers=alice.headers)).status_code == 200
        assert (await client.get(alice.task(999_999), headers=alice.headers)).status_code == 404
        assert (await client.get("/no/such/path")).status_code == 404

    assert sample("todo_http_requests_total", operation="getTask", status="200") == ok_before + 3
    assert (
        sample("todo_http_request_duration_seconds_count", operation="getTask", status="200")
        == seconds_before + 3
    )
    assert (
        sample("todo_http_requests_total", operation="getTask", status="404") == missing_before + 1
    )
    assert (
        sample("todo_http_requests_total", operation="unmatched", status="404")
        == unmatched_before + 1
    )


async def test_nothing_is_recorded_per_request_with_metrics_off(app_client: AppClient) -> None:
    async with app_client() as (_, client):
        before = sample("todo_http_requests_total", operation="getHealth", status="200")
        assert (await client.get("/api/health")).status_code == 200
    assert sample("todo_http_requests_total", operation="getHealth", status="200") == before


async def test_a_replayed_create_is_counted(app_client: AppClient) -> None:
    alice = User.named("alice")
    headers = {**alice.headers, "Idempotency-Key": "metrics-replay-1"}
    async with app_client() as (_, client):
        before = sample("todo_idempotent_replays_total")
        first = await client.post(alice.tasks, json={"title": "once"}, headers=headers)
        assert first.status_code == 201, first.text
        assert sample("todo_idempotent_replays_total") == before
        again = await client.post(alice.tasks, json={"title": "once"}, headers=headers)
        assert again.status_code == 201, again.text
        assert again.json() == first.json()
    assert sample("todo_idempotent_replays_total") == before + 1


async def test_a_503_from_an_unreachable_database_is_counted() -> None:
    """Nothing listens on the database's port: the pool cannot connect, the request gets 503."""
    settings = api_settings(f"postgresql://postgres@127.0.0.1:{free_port()}/gone").model_copy(
        update={"db_pool_timeout_seconds": 0.5, "db_connect_timeout_seconds": 1.0}
    )
    alice = User.named("alice")
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            before = sample("todo_db_unavailable_total")
            response = await client.get(alice.tasks, headers=alice.headers)
            assert_problem(response, 503, "service-unavailable")
            assert response.headers["retry-after"]
            assert sample("todo_db_unavailable_total") == before + 1


async def test_jwks_fetches_and_failures_are_counted(app_client: AppClient) -> None:
    key = ed25519_key("metrics-ed")
    token = key.sign(better_auth_claims("alice"))
    headers = {"Authorization": f"Bearer {token}"}
    unreachable = f"http://127.0.0.1:{free_port()}/api/auth/jwks"
    fetches, failures = sample("todo_jwks_fetches_total"), sample("todo_jwks_fetch_failures_total")
    async with app_client(
        jwt_jwks_url=unreachable, jwks_refetch_cooldown_seconds=0.0, jwks_timeout_seconds=1.0
    ) as (_, client):
        # The start-up prefetch failed; the request's own attempt fails as well.
        assert sample("todo_jwks_fetches_total") == fetches + 1
        assert sample("todo_jwks_fetch_failures_total") == failures + 1
        response = await client.get("/api/alice/tasks", headers=headers)
        assert_problem(response, 503, "service-unavailable")
    assert sample("todo_jwks_fetches_total") == fetches + 2
    assert sample("todo_jwks_fetch_failures_total") == failures + 2

    with running_jwks([key.jwk]) as jwks:
        fetches, failures = (
            sample("todo_jwks_fetches_total"),
            sample("todo_jwks_fetch_failures_total"),
        )
        async with app_client(jwt_jwks_url=jwks.url) as (_, client):
            assert sample("todo_jwks_fetches_total") == fetches + 1
        assert sample("todo_jwks_fetch_failures_total") == failures


@pytest.mark.postgres
async def test_pool_gauges_show_connections_in_use_and_waiters(pg_app_client: AppClient) -> None:
    async with pg_app_client(**METRICS_ON, db_pool_size=2, db_max_overflow=0) as (app, _):
        pool = app.state.pool
        await pool.wait(timeout=10)
        async with pool.connection(), pool.connection():
            waiter = asyncio.create_task(_borrow(pool))
            await asyncio.sleep(0.2)
            sample_pool(pool)
            assert sample("todo_db_pool_connections_in_use") == 2
            assert sample("todo_db_pool_requests_waiting") == 1
            assert sample("todo_db_pool_connections") == 2
        await waiter
        # The lifespan's sampler catches up on its own within its interval.
        for _ in range(40):
            if sample("todo_db_pool_connections_in_use") == 0:
                break
            await asyncio.sleep(0.1)
        assert sample("todo_db_pool_connections_in_use") == 0
        assert sample("todo_db_pool_requests_waiting") == 0


async def _borrow(pool: Any) -> None:
    async with pool.connection():
        pass


def test_metrics_are_off_unless_a_port_is_given() -> None:
    assert not Settings(_env_file=None).metrics_enabled
    assert not Settings(_env_file=None, metrics_port="").metrics_enabled
    on = Settings(_env_file=None, metrics_port="9464")
    assert on.metrics_enabled and on.metrics_host == "127.0.0.1"
    with pytest.raises(ValueError, match="metrics_port"):
        Settings(_env_file=None, metrics_port=0)
    assert build_parser().parse_args(["serve", "--metrics-port", "9464"]).metrics_port == 9464
