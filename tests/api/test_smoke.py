"""The basic round trip of a task, on every database."""

from __future__ import annotations

import httpx

from tests.support import User


async def test_create_then_get_round_trip(client: httpx.AsyncClient, alice: User) -> None:
    created = await client.post(alice.tasks, json={"title": "Buy milk"}, headers=alice.headers)
    assert created.status_code == 201, created.text
    task = created.json()
    assert created.headers["location"] == alice.task(task["id"])
    fetched = await client.get(alice.task(task["id"]), headers=alice.headers)
    assert fetched.status_code == 200
    assert fetched.json() == task
    assert task["priority"] == "medium" and task["tags"] == [] and task["completed"] is False
