"""Concurrent toggles of one task: each is one atomic UPDATE, so none is ever lost."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import (
    SECRET,
    User,
    create_task,
    get_task,
    start_server,
    stop_server,
    truncate_postgres,
)


async def toggle_burst(
    client: httpx.AsyncClient, user: User, task_id: int, n: int
) -> tuple[list[bool], list[int]]:
    """Send n body-less toggles at once; return the `completed` and version each response saw."""
    url = user.task(task_id) + "/complete"
    responses = await asyncio.gather(*(client.patch(url, headers=user.headers) for _ in range(n)))
    assert [response.status_code for response in responses] == [200] * n, [
        response.text for response in responses if response.status_code != 200
    ]
    versions = [int(response.headers["etag"].strip('"').split(".")[1]) for response in responses]
    return [response.json()["completed"] for response in responses], versions


async def check_burst(
    client: httpx.AsyncClient, user: User, task: dict[str, Any], initial: bool, n: int
) -> None:
    """No lost update: the n writes happened one after another, each flipping the last state."""
    before = await client.get(user.task(task["id"]), headers=user.headers)
    version = int(before.headers["etag"].strip('"').split(".")[1])
    assert before.json()["completed"] is initial
    seen, versions = await toggle_burst(client, user, task["id"], n)
    # Each response carries its own version: n distinct, consecutive writes.
    assert sorted(versions) == list(range(version + 1, version + n + 1))
    # Ordered by version, the states alternate starting from the flip of the initial state.
    by_version = [state for _, state in sorted(zip(versions, seen, strict=True))]
    assert by_version == [(initial ^ (index % 2 == 0)) for index in range(n)]
    final = await get_task(client, user, task["id"])
    assert final["completed"] is (initial ^ (n % 2 == 1))


@pytest.mark.parametrize(("initial", "n"), [(False, 20), (True, 20), (False, 21)])
async def test_concurrent_toggles_are_never_lost(
    client: httpx.AsyncClient, alice: User, initial: bool, n: int
) -> None:
    task = await create_task(client, alice, completed=initial)
    await check_burst(client, alice, task, initial, n)


@pytest.mark.postgres
@pytest.mark.slow
async def test_concurrent_toggles_through_two_server_processes(
    migrated_postgres: str | None, alice: User, tmp_path: Path
) -> None:
    """The same burst over real HTTP to `todo-api serve --workers 2` on PostgreSQL."""
    if migrated_postgres is None:
        pytest.skip("needs PostgreSQL (TEST_DATABASE_URL)")
    truncate_postgres(migrated_postgres)
    env = {
        "TODO_ENV": "test",
        "DATABASE_URL": migrated_postgres,
        "BETTER_AUTH_SECRET": SECRET.decode(),
        "LOG_LEVEL": "WARNING",
        "PATH": os.environ.get("PATH", ""),
    }
    server = start_server(env, tmp_path, workers=2)
    try:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30.0) as client:
            task = await create_task(client, alice)
            await check_burst(client, alice, task, False, 20)
            await check_burst(client, alice, task, False, 21)
    finally:
        assert stop_server(server) == 0, server.log()
