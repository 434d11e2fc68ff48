"""Small helpers shared by the task API tests: create, read back, and check problem bodies."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from generated.models import Problem, Task
from tests.support import User

PROBLEM_TYPE = "application/problem+json"
ISSUE_LOCATIONS = {"body", "query", "path", "header"}


async def create(client: httpx.AsyncClient, user: User, **fields: Any) -> dict[str, Any]:
    """Create a task (title defaults to "task") and return its body; fails on anything but 201."""
    response = await client.post(user.tasks, json={"title": "task", **fields}, headers=user.headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    Task.model_validate(body)  # the response keeps its own contract
    return body


async def get(client: httpx.AsyncClient, user: User, task_id: int) -> dict[str, Any]:
    response = await client.get(user.task(task_id), headers=user.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def snapshot(client: httpx.AsyncClient, *users: User) -> dict[str, list[dict[str, Any]]]:
    """Every stored task of each user, as the API returns them (the whole state, in id order)."""
    state = {}
    for user in users:
        response = await client.get(
            user.tasks,
            params={"limit": 1000, "sort": "created_at", "order": "asc"},
            headers=user.headers,
        )
        assert response.status_code == 200, response.text
        state[user.id] = response.json()
    return state


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The response is the contract's Problem document with this status; return its body."""
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    assert response.headers["content-type"].split(";")[0] == PROBLEM_TYPE, response.headers
    body: dict[str, Any] = response.json()
    Problem.model_validate(body)
    assert body["status"] == status
    for key in ("type", "title", "detail"):
        assert isinstance(body[key], str) and body[key], body
    if status == 422:
        assert isinstance(body["errors"], list) and body["errors"], body
        for issue in body["errors"]:
            assert set(issue) == {"location", "field", "message", "type"}, issue
            assert issue["location"] in ISSUE_LOCATIONS, issue
            assert all(isinstance(issue[key], str) for key in issue), issue
            assert issue["message"] and issue["type"], issue
    return body


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
