"""Another user's task is indistinguishable from a missing one, and untouchable."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.helpers import assert_problem, create, snapshot
from tests.support import User

# (method, path suffix, JSON body, extra headers): every operation on one task.
OPERATIONS: list[tuple[str, str, Any, dict[str, str]]] = [
    ("GET", "", None, {}),
    ("GET", "", None, {"If-None-Match": "*"}),
    ("PUT", "", {"title": "taken over"}, {}),
    ("PUT", "", {"title": "taken over"}, {"If-Match": "*"}),
    ("PATCH", "", {"completed": True}, {}),
    ("PATCH", "", {"title": "taken over"}, {"If-Match": "*"}),
    ("DELETE", "", None, {}),
    ("DELETE", "", None, {"If-Match": "*"}),
    ("PATCH", "/complete", None, {}),
    ("PATCH", "/complete", {"completed": True}, {"If-Match": "*"}),
]


def comparable(problem: dict[str, Any]) -> dict[str, Any]:
    """The problem body without the fields that differ between any two requests."""
    return {key: value for key, value in problem.items() if key not in ("request_id", "instance")}


async def test_another_users_task_answers_exactly_like_a_missing_one(
    client: httpx.AsyncClient, alice: User, bob: User
) -> None:
    alices = await create(client, alice, title="alice's secret", tags=["private"])
    doomed = await create(client, alice, title="will be deleted")
    await create(client, bob, title="bob's")
    before = await snapshot(client, alice, bob)

    # Bob asks, under his own path, for alice's task id: every operation is a 404 ...
    foreign = {}
    for method, suffix, body, headers in OPERATIONS:
        response = await client.request(
            method, bob.task(alices["id"]) + suffix, json=body, headers={**bob.headers, **headers}
        )
        foreign[(method, suffix, str(headers))] = assert_problem(response, 404)
        assert "etag" not in response.headers
    assert await snapshot(client, alice, bob) == before  # ... and nothing of alice's changed.

    # The same id once it is missing for everyone gives the very same answer.
    deleted = await client.delete(alice.task(doomed["id"]), headers=alice.headers)
    assert deleted.status_code == 204
    for method, suffix, body, headers in OPERATIONS:
        owned_by_alice = await client.request(
            method, bob.task(alices["id"]) + suffix, json=body, headers={**bob.headers, **headers}
        )
        missing = await client.request(
            method, bob.task(doomed["id"]) + suffix, json=body, headers={**bob.headers, **headers}
        )
        expected = comparable(foreign[(method, suffix, str(headers))])
        assert comparable(assert_problem(owned_by_alice, 404)) == expected
        # The detail names the id that was asked for; otherwise the documents are identical.
        missing_body = comparable(assert_problem(missing, 404))
        assert missing_body == {
            **expected,
            "detail": expected["detail"].replace(str(alices["id"]), str(doomed["id"])),
        }
        assert set(owned_by_alice.headers) == set(missing.headers)


async def test_lists_never_show_another_users_tasks(
    client: httpx.AsyncClient, alice: User, bob: User
) -> None:
    await create(client, alice, title="alice one", tags=["shared"])
    await create(client, alice, title="alice two", tags=["shared"])
    mine = await create(client, bob, title="bob one", tags=["shared"])
    for params in ({}, {"tag": "shared"}, {"q": "one"}, {"status": "all", "sort": "title"}):
        response = await client.get(bob.tasks, params=params, headers=bob.headers)
        assert response.status_code == 200
        assert [row["id"] for row in response.json()] == [mine["id"]], params
        assert response.headers["x-total-count"] == "1"


async def test_another_users_path_is_403_and_changes_nothing(
    client: httpx.AsyncClient, alice: User, bob: User
) -> None:
    task = await create(client, alice)
    before = await snapshot(client, alice, bob)
    for method, suffix, body, headers in OPERATIONS:
        response = await client.request(
            method, alice.task(task["id"]) + suffix, json=body, headers={**bob.headers, **headers}
        )
        assert_problem(response, 403)
    assert_problem(await client.get(alice.tasks, headers=bob.headers), 403)
    assert_problem(await client.post(alice.tasks, json={"title": "x"}, headers=bob.headers), 403)
    assert await snapshot(client, alice, bob) == before
