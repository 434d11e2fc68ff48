"""Idempotent create: a retried POST with the same Idempotency-Key never makes a second task."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from backend.repository import delete_expired_keys
from backend.tables import IdempotencyKey
from tests.support import LiveServer, User, assert_problem, libpq, pg_scalar

BODY: dict[str, object] = {"title": "Pay rent", "priority": "high", "tags": ["home"]}


async def _count(client: httpx.AsyncClient, user: User) -> int:
    listed = await client.get(user.tasks, headers=user.headers)
    assert listed.status_code == 200, listed.text
    return int(listed.headers["x-total-count"])


async def _expire_keys(app: FastAPI, *keys: str) -> None:
    """Move keys' expiry into the past, as if their 24 hours had run out."""
    table = IdempotencyKey.__table__  # type: ignore[attr-defined]
    past = datetime.now(UTC) - timedelta(minutes=1)
    async with app.state.engine.begin() as connection:
        result = await connection.execute(
            sa.update(table).where(table.c.key.in_(keys)).values(expires_at=past)
        )
        assert result.rowcount == len(keys)


async def test_same_key_same_body_returns_the_original_201(
    client: httpx.AsyncClient, alice: User
) -> None:
    headers = {**alice.headers, "Idempotency-Key": "create-rent-1"}
    first = await client.post(alice.tasks, json=BODY, headers=headers)
    assert first.status_code == 201, first.text
    # The same JSON with another key order and spacing is the same request.
    again = await client.post(
        alice.tasks,
        content=b'{ "tags": ["home"],  "priority": "high", "title": "Pay rent" }',
        headers={**headers, "Content-Type": "application/json"},
    )
    assert again.status_code == 201, again.text
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"] == alice.task(first.json()["id"])
    assert again.headers["etag"] == first.headers["etag"]
    assert await _count(client, alice) == 1


async def test_replay_is_the_original_response_even_after_the_task_changed(
    client: httpx.AsyncClient, alice: User
) -> None:
    headers = {**alice.headers, "Idempotency-Key": "create-then-edit"}
    first = await client.post(alice.tasks, json=BODY, headers=headers)
    assert first.status_code == 201, first.text
    edited = await client.patch(
        alice.task(first.json()["id"]), json={"title": "Paid rent"}, headers=alice.headers
    )
    assert edited.status_code == 200, edited.text
    replay = await client.post(alice.tasks, json=BODY, headers=headers)
    assert replay.status_code == 201
    assert replay.json() == first.json()
    assert replay.headers["etag"] == first.headers["etag"]
    assert await _count(client, alice) == 1


async def test_same_key_different_body_is_422_and_creates_nothing(
    client: httpx.AsyncClient, alice: User
) -> None:
    headers = {**alice.headers, "Idempotency-Key": "create-rent-2"}
    first = await client.post(alice.tasks, json=BODY, headers=headers)
    assert first.status_code == 201, first.text
    reused = await client.post(alice.tasks, json={**BODY, "title": "Pay gas"}, headers=headers)
    problem = assert_problem(reused, 422, "idempotency-key-reused")
    assert "Idempotency-Key" in problem["detail"]
    assert await _count(client, alice) == 1
    # The original request can still be replayed after the rejected one.
    replay = await client.post(alice.tasks, json=BODY, headers=headers)
    assert replay.status_code == 201 and replay.json() == first.json()


async def test_a_key_belongs_to_its_user(client: httpx.AsyncClient, alice: User, bob: User) -> None:
    """Bob sending Alice's key gets neither her stored 201 nor a 422: the key is his own."""
    same, other = {"Idempotency-Key": "shared-1"}, {"Idempotency-Key": "shared-2"}
    mine = await client.post(alice.tasks, json=BODY, headers={**alice.headers, **same})
    mine_too = await client.post(alice.tasks, json=BODY, headers={**alice.headers, **other})
    assert mine.status_code == mine_too.status_code == 201, (mine.text, mine_too.text)
    # The same key and body as Alice: Bob's own create, not a replay of hers.
    theirs = await client.post(bob.tasks, json=BODY, headers={**bob.headers, **same})
    # The same key with another body: not a "key reused with another body" 422.
    other_body = await client.post(
        bob.tasks, json={"title": "Bob's other"}, headers={**bob.headers, **other}
    )
    alice_ids = {mine.json()["id"], mine_too.json()["id"]}
    for response in (theirs, other_body):
        assert response.status_code == 201, response.text
        task = response.json()
        assert task["user_id"] == bob.id and task["id"] not in alice_ids
        assert response.headers["location"] == bob.task(task["id"])
    replay = await client.post(alice.tasks, json=BODY, headers={**alice.headers, **same})
    assert replay.json() == mine.json()
    assert await _count(client, alice) == 2
    assert await _count(client, bob) == 2


async def test_without_a_key_every_post_creates(client: httpx.AsyncClient, alice: User) -> None:
    for _ in range(2):
        created = await client.post(alice.tasks, json=BODY, headers=alice.headers)
        assert created.status_code == 201
    assert await _count(client, alice) == 2


@pytest.mark.parametrize("key", ["", "has space", "x" * 256, "tab\there"])
async def test_malformed_key_is_a_validation_problem(
    client: httpx.AsyncClient, alice: User, key: str
) -> None:
    response = await client.post(
        alice.tasks, json=BODY, headers={**alice.headers, "Idempotency-Key": key}
    )
    problem = assert_problem(response, 422, "validation-error")
    assert problem["errors"][0]["location"] == "header"
    assert await _count(client, alice) == 0


async def test_expired_key_is_reusable(
    client: httpx.AsyncClient, app: FastAPI, alice: User
) -> None:
    headers = {**alice.headers, "Idempotency-Key": "old-key"}
    first = await client.post(alice.tasks, json=BODY, headers=headers)
    assert first.status_code == 201
    await _expire_keys(app, "old-key")
    # Expired: the same body creates a new task, and a different body is not a "reuse".
    second = await client.post(alice.tasks, json=BODY, headers=headers)
    assert second.status_code == 201, second.text
    assert second.json()["id"] != first.json()["id"]
    await _expire_keys(app, "old-key")
    third = await client.post(alice.tasks, json={"title": "Something else"}, headers=headers)
    assert third.status_code == 201, third.text
    # ...and the fresh claim is binding again.
    replay = await client.post(alice.tasks, json={"title": "Something else"}, headers=headers)
    assert replay.json() == third.json()
    assert await _count(client, alice) == 3


async def test_delete_expired_keys_removes_only_expired_ones_in_batches(
    client: httpx.AsyncClient, app: FastAPI, alice: User, bob: User
) -> None:
    for user, key in [(alice, "a1"), (alice, "a2"), (bob, "b1"), (alice, "keep")]:
        created = await client.post(
            user.tasks, json=BODY, headers={**user.headers, "Idempotency-Key": key}
        )
        assert created.status_code == 201
    await _expire_keys(app, "a1", "a2", "b1")
    table = IdempotencyKey.__table__  # type: ignore[attr-defined]
    async with app.state.engine.begin() as connection:
        assert await delete_expired_keys(connection, limit=2) == 2
    async with app.state.engine.begin() as connection:
        assert await delete_expired_keys(connection, limit=2) == 1
    async with app.state.engine.begin() as connection:
        assert await delete_expired_keys(connection) == 0
        left = (await connection.execute(sa.select(table.c.user_id, table.c.key))).all()
    assert [tuple(row) for row in left] == [(alice.id, "keep")]
    # The tasks themselves stay: only the memory of the keys goes.
    assert await _count(client, alice) == 3 and await _count(client, bob) == 1


# -- concurrency through a real server --------------------------------------------------------


async def _post_many(
    base_url: str, user: User, bodies: list[dict[str, object]], key: str
) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(bodies), max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30.0) as http:
        headers = {**user.headers, "Idempotency-Key": key}
        return list(
            await asyncio.gather(
                *(http.post(user.tasks, json=body, headers=headers) for body in bodies)
            )
        )


async def _stored(base_url: str, user: User) -> list[dict[str, object]]:
    async with httpx.AsyncClient(base_url=base_url, timeout=10.0) as http:
        listed = await http.get(user.tasks, headers=user.headers)
    assert listed.status_code == 200
    tasks: list[dict[str, object]] = listed.json()
    return tasks


async def test_twenty_concurrent_creates_with_one_key_make_one_task(
    live_server: LiveServer, carol: User
) -> None:
    responses = await _post_many(live_server.base_url, carol, [BODY] * 20, "race-1")
    assert [r.status_code for r in responses] == [201] * 20, [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    assert len({r.headers["location"] for r in responses}) == 1
    stored = await _stored(live_server.base_url, carol)
    assert [task["id"] for task in stored] == [responses[0].json()["id"]]


async def test_concurrent_creates_with_one_key_and_two_bodies(
    live_server: LiveServer, carol: User
) -> None:
    """Whichever body wins the key, requests with the other body are refused with 422."""
    other: dict[str, object] = {"title": "Pay gas"}
    bodies: list[dict[str, object]] = [BODY, other] * 8
    responses = await _post_many(live_server.base_url, carol, bodies, "race-2")
    stored = await _stored(live_server.base_url, carol)
    assert len(stored) == 1
    winner = stored[0]
    for body, response in zip(bodies, responses, strict=True):
        if body["title"] == winner["title"]:
            assert response.status_code == 201 and response.json() == winner, response.text
        else:
            assert_problem(response, 422, "idempotency-key-reused")


async def test_concurrent_duplicates_wait_for_the_first_claim(
    pg_server: LiveServer, migrated_postgres: str, carol: User
) -> None:
    """All 20 requests are provably in flight at once, then race for the key.

    A lock on the tasks table holds every request in its insert (each has looked the key up
    and found nothing). Only when all 20 are seen waiting in pg_stat_activity is the lock
    released: one insert of task and key wins, the others fail on the key's primary key as a
    whole (their tasks undone with them), look the key up again and replay the winner's.
    """
    url = migrated_postgres
    with psycopg.connect(libpq(url)) as blocker:
        blocker.execute("LOCK TABLE tasks IN SHARE ROW EXCLUSIVE MODE")
        burst = asyncio.create_task(_post_many(pg_server.base_url, carol, [BODY] * 20, "race-3"))
        waiting = 0
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and waiting < 20:
            await asyncio.sleep(0.05)
            waiting = pg_scalar(
                url,
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND pid <> %s",
                (blocker.info.backend_pid,),
            )
        assert waiting == 20, f"only {waiting} of 20 requests reached the database together"
        blocker.rollback()
    responses = await burst
    assert [r.status_code for r in responses] == [201] * 20, [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    assert pg_scalar(url, "SELECT count(*) FROM tasks WHERE user_id = %s", (carol.id,)) == 1
    keys = pg_scalar(url, "SELECT count(*) FROM idempotency_keys WHERE user_id = %s", (carol.id,))
    assert keys == 1
