"""MAX_TASKS_PER_USER: a create beyond the per-user quota is a 409 problem, on both databases.

The count is read inside the INSERT itself (specs/database/schema.md, "Per-user task quota").
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from backend.settings import Settings
from tests.support import User, api_settings
from tests.writes.helpers import assert_problem

LIMIT = 3


@pytest.fixture
def settings(database_url: str) -> Settings:
    return api_settings(database_url).model_copy(update={"max_tasks_per_user": LIMIT})


async def _create(client: httpx.AsyncClient, user: User, **headers: str) -> httpx.Response:
    return await client.post(user.tasks, json={"title": "t"}, headers={**user.headers, **headers})


async def _total(client: httpx.AsyncClient, user: User) -> int:
    listed = await client.get(user.tasks, headers=user.headers)
    assert listed.status_code == 200, listed.text
    return int(listed.headers["x-total-count"])


async def test_a_create_beyond_the_quota_is_a_409_naming_the_limit(
    client: httpx.AsyncClient, alice: User, bob: User
) -> None:
    created = [await _create(client, alice) for _ in range(LIMIT)]
    assert [response.status_code for response in created] == [201] * LIMIT
    refused = await _create(client, alice)
    problem = assert_problem(refused, 409, "task-quota-exceeded")
    assert problem["title"] == "Conflict"
    assert str(LIMIT) in problem["detail"] and "MAX_TASKS_PER_USER" in problem["detail"]
    assert "location" not in refused.headers
    assert await _total(client, alice) == LIMIT
    # The quota is per user, and a deleted task makes room again.
    assert (await _create(client, bob)).status_code == 201
    deleted = await client.delete(alice.task(created[0].json()["id"]), headers=alice.headers)
    assert deleted.status_code == 204
    assert (await _create(client, alice)).status_code == 201
    assert_problem(await _create(client, alice), 409, "task-quota-exceeded")


async def test_a_refused_create_does_not_spend_its_idempotency_key(
    client: httpx.AsyncClient, alice: User
) -> None:
    first = [await _create(client, alice) for _ in range(LIMIT)]
    assert_problem(
        await _create(client, alice, **{"Idempotency-Key": "k"}), 409, "task-quota-exceeded"
    )
    await client.delete(alice.task(first[0].json()["id"]), headers=alice.headers)
    retried = await _create(client, alice, **{"Idempotency-Key": "k"})
    assert retried.status_code == 201, retried.text
    replayed = await _create(client, alice, **{"Idempotency-Key": "k"})
    assert replayed.status_code == 201 and replayed.json() == retried.json()
    assert await _total(client, alice) == LIMIT


async def test_concurrent_creates_overshoot_by_less_than_their_number(
    client: httpx.AsyncClient, alice: User
) -> None:
    """The documented bound: with N creates of one user at once, at most LIMIT - 1 + N tasks.

    SQLite runs writers one at a time, so there the quota is exact; PostgreSQL (READ
    COMMITTED) lets creates that run at the same time miss each other's insert.
    """
    concurrent = 8
    responses = await asyncio.gather(*(_create(client, alice) for _ in range(concurrent)))
    statuses = sorted(response.status_code for response in responses)
    assert set(statuses) <= {201, 409}, [response.text for response in responses]
    stored = await _total(client, alice)
    assert stored == statuses.count(201)
    assert LIMIT <= stored <= LIMIT - 1 + concurrent
    for response in responses:
        if response.status_code == 409:
            assert_problem(response, 409, "task-quota-exceeded")
    # Once the burst is over the quota holds exactly again.
    assert_problem(await _create(client, alice), 409, "task-quota-exceeded")
