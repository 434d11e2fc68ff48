"""X-Total-Count from task_counts: exact after every write the API makes, on both databases.

Lists filtered by status and/or priority alone take their total from the trigger-maintained
task_counts (revision 0004), read in the page statement itself. After each write below, the
stored counts must equal a GROUP BY over tasks, and the totals the API reports must equal the
true numbers.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from itertools import product
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from tests.support import User, create_task

Counts = dict[tuple[str, bool, int], int]
RANK = {"low": 1, "medium": 2, "high": 3}
STATUSES = {"all": None, "pending": False, "completed": True}


async def stored_counts(app: FastAPI) -> Counts:
    """task_counts as stored, rows at zero left out (a bucket that emptied keeps its row)."""
    async with app.state.engine.connect() as connection:
        rows = await connection.execute(
            sa.text("SELECT user_id, completed, priority, n FROM task_counts")
        )
        return {(user, bool(done), priority): n for user, done, priority, n in rows if n != 0}


async def true_counts(app: FastAPI) -> Counts:
    async with app.state.engine.connect() as connection:
        rows = await connection.execute(
            sa.text(
                "SELECT user_id, completed, priority, count(*) FROM tasks "
                "GROUP BY user_id, completed, priority"
            )
        )
        return {(user, bool(done), priority): n for user, done, priority, n in rows}


async def assert_exact(app: FastAPI, step: str) -> Counts:
    counts = await true_counts(app)
    assert await stored_counts(app) == counts, step
    return counts


async def total(client: httpx.AsyncClient, user: User, **params: Any) -> int:
    response = await client.get(user.tasks, params=params, headers=user.headers)
    assert response.status_code == 200, response.text
    return int(response.headers["x-total-count"])


async def assert_totals(client: httpx.AsyncClient, user: User, counts: Counts) -> None:
    """Every status x priority list of `user`, one task per page, reports the true total."""
    for (status, completed), priority in product(STATUSES.items(), [None, *RANK]):
        expected = sum(
            n
            for (owner, done, rank), n in counts.items()
            if owner == user.id
            and (completed is None or done is completed)
            and (priority is None or rank == RANK[priority])
        )
        params: dict[str, Any] = {"status": status, "limit": 1}
        if priority is not None:
            params["priority"] = priority
        assert await total(client, user, **params) == expected, params


async def test_counts_follow_every_write_path_of_the_api(
    app: FastAPI, client: httpx.AsyncClient, alice: User, bob: User
) -> None:
    tasks = [
        await create_task(client, user, priority=priority, completed=completed)
        for user, priority, completed in [
            (alice, "low", False), (alice, "high", False), (alice, "high", True),
            (alice, "medium", False), (alice, "medium", True), (bob, "high", False),
        ]
    ]  # fmt: skip
    await create_task(client, alice)  # defaults: medium, pending
    await assert_exact(app, "create")

    keyed = {**alice.headers, "Idempotency-Key": "counts-1"}
    first = await client.post(alice.tasks, json={"title": "once", "priority": "low"}, headers=keyed)
    replay = await client.post(
        alice.tasks, json={"title": "once", "priority": "low"}, headers=keyed
    )
    assert first.status_code == replay.status_code == 201 and first.json() == replay.json()
    counts = await assert_exact(app, "create with Idempotency-Key, then its replay")
    assert counts[(alice.id, False, 1)] == 2

    low, high, done, *_ = tasks
    steps: list[tuple[str, str, str, dict[str, Any] | None]] = [
        ("PUT moves bucket", "PUT", alice.task(low["id"]),
         {"title": "put", "priority": "high", "completed": True}),
        ("PUT keeps bucket", "PUT", alice.task(low["id"]),
         {"title": "put again", "priority": "high", "completed": True}),
        ("PATCH priority", "PATCH", alice.task(high["id"]), {"priority": "low"}),
        ("PATCH completed", "PATCH", alice.task(high["id"]), {"completed": True}),
        ("PATCH title only", "PATCH", alice.task(high["id"]), {"title": "renamed"}),
        ("toggle", "PATCH", alice.task(done["id"]) + "/complete", None),
        ("toggle back", "PATCH", alice.task(done["id"]) + "/complete", None),
        ("explicit complete", "PATCH", alice.task(done["id"]) + "/complete", {"completed": False}),
        ("explicit, unchanged", "PATCH", alice.task(done["id"]) + "/complete",
         {"completed": False}),
        ("DELETE", "DELETE", alice.task(high["id"]), None),
    ]  # fmt: skip
    for step, method, url, body in steps:
        response = await client.request(method, url, json=body, headers=alice.headers)
        assert response.status_code in (200, 204), (step, response.text)
        await assert_totals(client, alice, await assert_exact(app, step))

    # Writes that fail change nothing: a stale If-Match (412), another user's task (404).
    refused = [
        await client.put(alice.task(done["id"]), json={"title": "x", "priority": "low"},
                         headers={**alice.headers, "If-Match": f'"{done["id"]}.1"'}),
        await client.delete(alice.task(low["id"]),
                            headers={**alice.headers, "If-Match": '"1.99"'}),
        await client.patch(bob.task(tasks[-1]["id"]) + "/complete", headers=alice.headers),
        await client.delete(alice.task(tasks[-1]["id"]), headers=alice.headers),
    ]  # fmt: skip
    assert [response.status_code for response in refused] == [412, 412, 403, 404]
    counts = await assert_exact(app, "refused writes")
    await assert_totals(client, alice, counts)
    await assert_totals(client, bob, counts)


async def test_filtered_totals_are_exact_when_the_page_is_full(
    client: httpx.AsyncClient, alice: User, bob: User
) -> None:
    mix = [(priority, completed) for priority in RANK for completed in (False, True)]
    for index in range(15):
        priority, completed = mix[index % len(mix)]
        await create_task(client, alice, priority=priority, completed=completed)
    for _ in range(4):
        await create_task(client, bob, priority="high")
    for (status, wanted_completed), wanted in product(STATUSES.items(), [None, *RANK]):
        expected = sum(
            1
            for index in range(15)
            if (wanted_completed is None or mix[index % len(mix)][1] is wanted_completed)
            and (wanted is None or mix[index % len(mix)][0] == wanted)
        )
        assert expected >= 2
        params: dict[str, Any] = {"status": status}
        if wanted is not None:
            params["priority"] = wanted
        for page in ({"limit": 1}, {"limit": 2, "skip": 1}, {"limit": 1, "skip": 100}):
            assert await total(client, alice, **params, **page) == expected, (params, page)
    assert await total(client, bob, priority="high", limit=1) == 4
    assert await total(client, bob, status="completed", limit=1) == 0


async def test_only_status_and_priority_totals_come_from_task_counts(
    app: FastAPI, client: httpx.AsyncClient, alice: User
) -> None:
    """Counts altered behind the triggers' back show in those totals and in no other."""
    for _ in range(3):
        await create_task(client, alice, priority="high", tags=["t"], description="milk")
    async with app.state.engine.begin() as connection:
        await connection.execute(sa.text("UPDATE task_counts SET n = n + 100"))
    assert await total(client, alice, limit=1) == 103
    assert await total(client, alice, status="pending", priority="high", limit=1) == 103
    # A short page reads them too: the total is a column of the page statement.
    assert await total(client, alice, status="pending") == 103
    # q, tag and due ranges count the matching tasks, on full and short pages alike.
    assert await total(client, alice, q="milk", limit=1) == 3
    assert await total(client, alice, q="milk") == 3
    assert await total(client, alice, tag="t", priority="high", limit=1) == 3
    assert await total(client, alice, due_after="2000-01-01T00:00:00Z", limit=1) == 0


async def test_concurrent_writes_of_one_user_keep_counts_exact(
    app: FastAPI, client: httpx.AsyncClient, alice: User
) -> None:
    """20 toggles at once, half of them moving tasks the opposite way of the other half.

    Opposite moves touch the same two counter rows in opposite directions; on PostgreSQL the
    triggers take them in key order, so they queue instead of deadlocking (a 500).
    """
    tasks = [await create_task(client, alice, completed=index % 2 == 0) for index in range(10)]
    toggles = [alice.task(task["id"]) + "/complete" for task in tasks] * 2
    more = [
        client.post(alice.tasks, json={"title": f"new {index}"}, headers=alice.headers)
        for index in range(5)
    ]
    responses = await asyncio.gather(
        *(client.patch(url, headers=alice.headers) for url in toggles),
        *more,
        client.delete(alice.task(tasks[0]["id"]), headers=alice.headers),
    )
    statuses = Counter(response.status_code for response in responses)
    # The delete races the two toggles of its task, which may find it gone (404). Anything
    # else is a failure: a deadlock would answer 503 (the database could not serve it).
    toggled = Counter(response.status_code for response in responses[1:10] + responses[11:20])
    assert toggled == {200: 18}, statuses
    assert {responses[0].status_code, responses[10].status_code} <= {200, 404}, statuses
    assert statuses[201] == 5 and statuses[204] == 1, statuses
    counts = await assert_exact(app, "concurrent writes")
    assert sum(counts.values()) == 14
    await assert_totals(client, alice, counts)


@pytest.mark.parametrize("initial", [False, True])
async def test_twenty_concurrent_toggles_of_one_task_keep_counts_exact(
    app: FastAPI, client: httpx.AsyncClient, alice: User, initial: bool
) -> None:
    task = await create_task(client, alice, completed=initial, priority="low")
    await create_task(client, alice, completed=not initial, priority="low")
    url = alice.task(task["id"]) + "/complete"
    responses = await asyncio.gather(*(client.patch(url, headers=alice.headers) for _ in range(20)))
    assert [response.status_code for response in responses] == [200] * 20
    counts = await assert_exact(app, "20 toggles")
    assert counts == {(alice.id, False, 1): 1, (alice.id, True, 1): 1}
    await assert_totals(client, alice, counts)
