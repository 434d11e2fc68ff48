"""Cross-user access on every operation of the contract, as owner, other user and anonymous.

Each test runs on SQLite and PostgreSQL (the `client` fixture is parametrized) and ends by
checking that both users' data is exactly what it was, so a request that answers correctly
but writes anyway still fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.security.helpers import OPERATIONS, TASK_OPERATIONS, comparable, marker
from tests.support import User, assert_problem, assert_unauthorized, create_task, snapshot

FORBIDDEN_DETAIL = "the user_id in the path is not the authenticated user"


@dataclass
class World:
    """Alice's and Bob's tasks, and what each of them saw before the request under test."""

    alice: User
    bob: User
    alice_tasks: list[dict[str, Any]]
    bob_tasks: list[dict[str, Any]]
    alice_before: list[dict[str, Any]]
    bob_before: list[dict[str, Any]]

    @property
    def target(self) -> dict[str, Any]:
        """Alice's richest task: the one every attack aims at."""
        return self.alice_tasks[0]

    @property
    def missing_id(self) -> int:
        """An id no task has (past every id handed out so far)."""
        return int(max(t["id"] for t in self.alice_tasks + self.bob_tasks)) + 1000

    async def assert_unchanged(self, client: httpx.AsyncClient) -> None:
        assert await snapshot(client, self.alice) == self.alice_before
        assert await snapshot(client, self.bob) == self.bob_before


@pytest.fixture
async def world(client: httpx.AsyncClient, alice: User, bob: User) -> World:
    alice_tasks = [
        await create_task(
            client,
            alice,
            title=marker("alice"),
            description=marker("alice-description"),
            priority="high",
            tags=["alice-only"],
            due_at="2030-01-01T09:00:00Z",
        ),
        await create_task(client, alice, title=marker("alice")),
    ]
    bob_tasks = [await create_task(client, bob, title="bob's own task")]
    return World(
        alice,
        bob,
        alice_tasks,
        bob_tasks,
        await snapshot(client, alice),
        await snapshot(client, bob),
    )


@pytest.mark.parametrize("name", list(OPERATIONS))
async def test_owner_may_run_every_operation(
    client: httpx.AsyncClient, world: World, name: str
) -> None:
    """Control for the tests below: a check that refused everyone would pass them all.

    The owner gets the contract's success status on her own path, and her request never
    touches another user's tasks.
    """
    op = OPERATIONS[name]
    response = await op.call(
        client, user_id=world.alice.id, task_id=world.target["id"], headers=world.alice.headers
    )
    assert response.status_code == op.success, response.text
    after = await snapshot(client, world.alice)
    ids = [t["id"] for t in after]
    on_tasks = op.path.endswith("/tasks")
    if on_tasks and not op.writes:
        assert sorted(response.json(), key=lambda t: t["id"]) == world.alice_before
    elif on_tasks and op.method == "POST":
        assert len(after) == len(world.alice_before) + 1
        assert response.json()["user_id"] == world.alice.id
    elif op.on_task and op.method == "DELETE":
        assert world.target["id"] not in ids
    elif op.on_task and op.writes:
        assert response.json()["id"] == world.target["id"]
        assert after != world.alice_before
    elif op.on_task:
        assert response.json() == world.target
    else:
        assert after == world.alice_before
    assert await snapshot(client, world.bob) == world.bob_before


@pytest.mark.parametrize("name", list(OPERATIONS))
async def test_other_users_path_is_403(client: httpx.AsyncClient, world: World, name: str) -> None:
    """Threat: Bob puts Alice's id in the path (IDOR on user_id) to read or write her tasks.

    Every operation answers 403 problem+json before touching storage: nothing is read,
    created, changed or deleted for either user.
    """
    op = OPERATIONS[name]
    response = await op.call(
        client, user_id=world.alice.id, task_id=world.target["id"], headers=world.bob.headers
    )
    body = assert_problem(response, 403)
    assert body["detail"] == FORBIDDEN_DETAIL
    assert world.target["title"] not in response.text
    await world.assert_unchanged(client)


@pytest.mark.parametrize("name", list(OPERATIONS))
async def test_anonymous_is_401(client: httpx.AsyncClient, world: World, name: str) -> None:
    """Threat: a request with no credentials at all reads or writes a user's tasks.

    401 (not 403) with a Bearer challenge, so clients know to sign in; nothing changes.
    """
    op = OPERATIONS[name]
    response = await op.call(client, user_id=world.alice.id, task_id=world.target["id"])
    assert_unauthorized(response)
    assert world.target["title"] not in response.text
    await world.assert_unchanged(client)


@pytest.mark.parametrize("name", TASK_OPERATIONS)
async def test_other_users_task_id_is_404_like_a_missing_one(
    client: httpx.AsyncClient, world: World, name: str
) -> None:
    """Threat: Bob uses his own path with Alice's task id, or probes ids to learn which exist.

    The answer is 404, and indistinguishable from the answer for an id that does not exist
    (same status, same body apart from request_id/instance, same headers): no existence oracle.
    """
    op = OPERATIONS[name]
    foreign = await op.call(
        client, user_id=world.bob.id, task_id=world.target["id"], headers=world.bob.headers
    )
    missing = await op.call(
        client, user_id=world.bob.id, task_id=world.missing_id, headers=world.bob.headers
    )
    foreign_body = assert_problem(foreign, 404)
    missing_body = assert_problem(missing, 404)
    assert comparable(foreign_body, world.target["id"]) == comparable(
        missing_body, world.missing_id
    )
    volatile = {"x-request-id", "content-length"}
    assert set(foreign.headers) - volatile == set(missing.headers) - volatile
    assert world.target["title"] not in foreign.text
    await world.assert_unchanged(client)


@pytest.mark.parametrize(
    ("name", "header"),
    [
        (name, header)
        for name in TASK_OPERATIONS
        for header in ("If-None-Match", "If-Match")
        if OPERATIONS[name].parameter("header", header) is not None
    ],
)
@pytest.mark.parametrize("which", ["real-etag", "wildcard"])
async def test_preconditions_do_not_reveal_other_users_tasks(
    client: httpx.AsyncClient, world: World, name: str, header: str, which: str
) -> None:
    """Threat: Bob sends Alice's ETag (or `*`) so that 304/412 instead of 404 confirms a task.

    The ownership check comes before any precondition: still 404.
    """
    owned = await client.get(world.alice.task(world.target["id"]), headers=world.alice.headers)
    value = owned.headers["etag"] if which == "real-etag" else "*"
    response = await OPERATIONS[name].call(
        client,
        user_id=world.bob.id,
        task_id=world.target["id"],
        headers={**world.bob.headers, header: value},
    )
    assert_problem(response, 404)
    assert "etag" not in response.headers
    await world.assert_unchanged(client)


async def test_own_list_and_search_never_include_other_users_tasks(
    client: httpx.AsyncClient, world: World
) -> None:
    """Threat: filters (q, tag, status, priority) or paging escape the owner scope of a list.

    Bob searching for Alice's exact title, tag or description finds nothing, and counts nothing.
    """
    # (query, whether Bob's own task matches it)
    queries: list[tuple[dict[str, Any], bool]] = [
        ({}, True),
        ({"q": world.target["title"]}, False),
        ({"q": world.target["description"]}, False),
        ({"tag": "alice-only"}, False),
        ({"priority": "high"}, False),
        ({"due_after": "2029-01-01T00:00:00Z"}, False),
        ({"status": "all", "limit": 1000, "skip": 0, "sort": "title"}, True),
    ]
    for params, matches_own in queries:
        response = await client.get(world.bob.tasks, params=params, headers=world.bob.headers)
        assert response.status_code == 200, response.text
        expected = world.bob_before if matches_own else []
        assert response.json() == expected, params
        assert response.headers["x-total-count"] == str(len(expected))
        assert world.target["title"] not in response.text
    await world.assert_unchanged(client)


@pytest.mark.parametrize(
    ("method", "where", "body"),
    [
        ("POST", "collection", {"title": "planted", "user_id": "alice"}),
        ("POST", "collection", {"title": "planted", "id": "TARGET"}),
        ("PATCH", "own-task", {"user_id": "alice"}),
        ("PATCH", "own-task", {"id": "TARGET"}),
        ("PUT", "own-task", {"title": "moved", "user_id": "alice"}),
    ],
)
async def test_mass_assignment_cannot_move_tasks_between_users(
    client: httpx.AsyncClient, world: World, method: str, where: str, body: dict[str, Any]
) -> None:
    """Threat: Bob sends `user_id`/`id` in a body to plant a task in Alice's list or take hers.

    The contract's bodies forbid unknown fields: 422, and nothing moves.
    """
    payload = {k: world.target["id"] if v == "TARGET" else v for k, v in body.items()}
    url = world.bob.tasks if where == "collection" else world.bob.task(world.bob_tasks[0]["id"])
    response = await client.request(method, url, json=payload, headers=world.bob.headers)
    assert_problem(response, 422)
    await world.assert_unchanged(client)


@pytest.mark.parametrize("lookalike", ["Alice", "ALICE", "alice.", "alice_", "alice~", "alice-"])
async def test_lookalike_user_ids_are_other_users(
    client: httpx.AsyncClient, world: World, lookalike: str
) -> None:
    """Threat: a case-insensitive or normalizing comparison (in code or database collation).

    A user whose id differs from Alice's by case or one character is someone else: 403 on
    Alice's path, an empty list on their own.
    """
    other = User.named(lookalike)
    assert_problem(await client.get(world.alice.tasks, headers=other.headers), 403)
    own = await client.get(other.tasks, headers=other.headers)
    assert own.status_code == 200 and own.json() == []
    missing = await client.get(other.task(world.target["id"]), headers=other.headers)
    assert_problem(missing, 404)
    await world.assert_unchanged(client)
