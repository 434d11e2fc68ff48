"""MAX_TASKS_PER_USER: a create beyond the per-user quota is a 409 problem, on both databases.

The count is read inside the INSERT itself, exactly even for concurrent creates
(specs/database/schema.md, "Per-user task quota").
"""

from __future__ import annotations

import asyncio

import httpx
import psycopg
import pytest

from backend.settings import Settings
from tests.support import User, api_settings, assert_problem, libpq, pg_scalar

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


async def test_concurrent_creates_never_overshoot(client: httpx.AsyncClient, alice: User) -> None:
    """8 creates at once against a limit of 3: exactly 3 succeed, on both databases."""
    responses = await asyncio.gather(*(_create(client, alice) for _ in range(8)))
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] * LIMIT + [409] * (8 - LIMIT), [r.text for r in responses]
    assert await _total(client, alice) == LIMIT


async def test_a_create_that_waited_sees_the_one_it_waited_for(pg_url: str) -> None:
    """PostgreSQL: an uncommitted create holds the user's quota lock; a second create waits for
    it and then counts it (its own statement started before the first committed)."""
    insert = (
        "INSERT INTO tasks (user_id, title, title_key, completed, priority, tags, version, "
        "created_at, updated_at) SELECT 'quota', 't', 't', false, 2, '[]', 1, now(), now() "
        "WHERE task_quota_allows('quota', 1) RETURNING id"
    )
    async with (
        await psycopg.AsyncConnection.connect(libpq(pg_url)) as first,
        await psycopg.AsyncConnection.connect(libpq(pg_url), autocommit=True) as second,
    ):
        assert len(await (await first.execute(insert)).fetchall()) == 1  # not committed yet
        waiting = asyncio.create_task(second.execute(insert))
        await asyncio.sleep(0.3)
        assert not waiting.done(), "the second create did not wait for the first"
        await first.commit()
        assert await (await asyncio.wait_for(waiting, 5)).fetchall() == []
    assert pg_scalar(pg_url, "SELECT count(*) FROM tasks WHERE user_id = 'quota'") == 1
