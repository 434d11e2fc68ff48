"""Tasks through the API: create, read back, the whole state of users, parsed headers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from generated.models import Task
from tests.support.identity import User


async def create_task(client: httpx.AsyncClient, user: User, **fields: Any) -> dict[str, Any]:
    """Create a task (title defaults to "task") and return its body; fails on anything but 201."""
    response = await client.post(user.tasks, json={"title": "task", **fields}, headers=user.headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    Task.model_validate(body)  # the response keeps its own contract
    return body


async def get_task(client: httpx.AsyncClient, user: User, task_id: int) -> dict[str, Any]:
    response = await client.get(user.task(task_id), headers=user.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def snapshot(client: httpx.AsyncClient, user: User) -> list[dict[str, Any]]:
    """All of a user's tasks as the user sees them, in creation order (the state to compare)."""
    response = await client.get(
        user.tasks,
        params={"limit": 1000, "sort": "created_at", "order": "asc"},
        headers=user.headers,
    )
    assert response.status_code == 200, response.text
    tasks: list[dict[str, Any]] = response.json()
    return tasks


async def snapshots(client: httpx.AsyncClient, *users: User) -> dict[str, list[dict[str, Any]]]:
    """`snapshot` of each user, by user id."""
    return {user.id: await snapshot(client, user) for user in users}


def parse_utc(value: str) -> datetime:
    """A response timestamp, which must carry a zero UTC offset."""
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None and parsed.utcoffset() == UTC.utcoffset(None), value
    return parsed


def parse_links(header: str) -> dict[str, httpx.URL]:
    """RFC 8288 `Link` header -> {rel: URL}."""
    links = {}
    for part in header.split(","):
        target, _, params = part.strip().partition(";")
        rel = params.strip().removeprefix('rel="').removesuffix('"')
        links[rel] = httpx.URL(target.strip().removeprefix("<").removesuffix(">"))
    return links
