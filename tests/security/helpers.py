"""The contract's task operations as data, plus the checks every security test repeats."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from generated.models import Problem, Task
from tests.support import User

PROBLEM_TYPE = "application/problem+json"
# Fields of a problem body that differ per request by design.
PER_REQUEST_FIELDS = frozenset({"request_id", "instance"})


@dataclass(frozen=True)
class Operation:
    """One operationId of the contract: how to call it for a path owner and a task id."""

    name: str
    method: str
    suffix: str  # "" (collection), "/{id}" or "/{id}/complete"
    body: dict[str, Any] | None
    success: int

    @property
    def on_task(self) -> bool:
        return "{id}" in self.suffix

    @property
    def writes(self) -> bool:
        return self.method != "GET"

    def url(self, owner_id: str, task_id: int | str | None = None) -> str:
        suffix = self.suffix.replace("{id}", str(task_id)) if self.on_task else self.suffix
        return f"/api/{owner_id}/tasks{suffix}"

    async def call(
        self,
        client: httpx.AsyncClient,
        owner_id: str,
        task_id: int | str | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        return await client.request(
            self.method, self.url(owner_id, task_id), json=self.body, headers=headers or {}
        )


OPERATIONS: dict[str, Operation] = {
    op.name: op
    for op in (
        Operation("list", "GET", "", None, 200),
        Operation("create", "POST", "", {"title": "intruder wrote this"}, 201),
        Operation("get", "GET", "/{id}", None, 200),
        Operation("put", "PUT", "/{id}", {"title": "intruder renamed it"}, 200),
        Operation("patch", "PATCH", "/{id}", {"priority": "low", "completed": True}, 200),
        Operation("delete", "DELETE", "/{id}", None, 204),
        Operation("complete", "PATCH", "/{id}/complete", {"completed": True}, 200),
    )
}
TASK_OPERATIONS = [name for name, op in OPERATIONS.items() if op.on_task]


def marker(label: str) -> str:
    """A string no request of another user can produce by chance: finding it means a leak."""
    return f"{label}-secret-{uuid.uuid4().hex}"


async def create_task(client: httpx.AsyncClient, user: User, **fields: Any) -> dict[str, Any]:
    response = await client.post(user.tasks, json=fields, headers=user.headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    Task.model_validate(body)
    return body


async def snapshot(client: httpx.AsyncClient, user: User) -> list[dict[str, Any]]:
    """All of a user's tasks as the user sees them, in id order (the state to compare)."""
    response = await client.get(
        user.tasks,
        params={"limit": 1000, "sort": "created_at", "order": "asc"},
        headers=user.headers,
    )
    assert response.status_code == 200, response.text
    tasks: list[dict[str, Any]] = response.json()
    return tasks


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The response is a contract Problem document with this status."""
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    assert response.headers["content-type"].split(";")[0] == PROBLEM_TYPE, response.headers
    body: dict[str, Any] = response.json()
    Problem.model_validate(body)
    assert body["status"] == status, body
    return body


def assert_unauthorized(response: httpx.Response) -> dict[str, Any]:
    """401 problem+json with an RFC 6750 Bearer challenge naming invalid_token."""
    body = assert_problem(response, 401)
    challenge = response.headers.get("www-authenticate", "")
    assert challenge.startswith("Bearer "), challenge
    assert 'error="invalid_token"' in challenge, challenge
    return body


def comparable(body: dict[str, Any], task_id: int | str) -> dict[str, Any]:
    """A problem body minus per-request fields, with the requested id abstracted away."""
    kept = {key: value for key, value in body.items() if key not in PER_REQUEST_FIELDS}
    if isinstance(kept.get("detail"), str):
        kept["detail"] = kept["detail"].replace(str(task_id), "{id}")
    return kept


def leaked_task_ids(document: Any, secret_ids: set[int]) -> set[int]:
    """Ids of secret tasks that appear as a task object anywhere in a JSON document."""
    found: set[int] = set()
    if isinstance(document, dict):
        if document.get("id") in secret_ids:
            found.add(document["id"])
        for value in document.values():
            found |= leaked_task_ids(value, secret_ids)
    elif isinstance(document, list):
        for item in document:
            found |= leaked_task_ids(item, secret_ids)
    return found
