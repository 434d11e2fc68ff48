"""Optimistic concurrency: ETag, If-Match (412) and If-None-Match (304)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from tests.support import LiveServer, User, assert_problem

Write = Callable[[httpx.AsyncClient, User, int, dict[str, str]], Awaitable[httpx.Response]]


async def _put(
    client: httpx.AsyncClient, user: User, task_id: int, h: dict[str, str]
) -> httpx.Response:
    return await client.put(user.task(task_id), json={"title": "Replaced"}, headers=h)


async def _patch(
    client: httpx.AsyncClient, user: User, task_id: int, h: dict[str, str]
) -> httpx.Response:
    return await client.patch(user.task(task_id), json={"priority": "low"}, headers=h)


async def _complete(
    client: httpx.AsyncClient, user: User, task_id: int, h: dict[str, str]
) -> httpx.Response:
    return await client.patch(user.task(task_id) + "/complete", headers=h)


async def _delete(
    client: httpx.AsyncClient, user: User, task_id: int, h: dict[str, str]
) -> httpx.Response:
    return await client.delete(user.task(task_id), headers=h)


WRITES: dict[str, tuple[Write, int]] = {
    "put": (_put, 200),
    "patch": (_patch, 200),
    "complete": (_complete, 200),
    "delete": (_delete, 204),
}


async def _create(client: httpx.AsyncClient, user: User, title: str = "Original") -> dict[str, Any]:
    created = await client.post(user.tasks, json={"title": title}, headers=user.headers)
    assert created.status_code == 201, created.text
    task: dict[str, Any] = created.json()
    return task


async def _snapshot(client: httpx.AsyncClient, user: User, task_id: int) -> tuple[str, Any]:
    fetched = await client.get(user.task(task_id), headers=user.headers)
    assert fetched.status_code == 200, fetched.text
    return fetched.headers["etag"], fetched.json()


async def test_get_returns_a_strong_etag_that_every_write_changes(
    client: httpx.AsyncClient, alice: User
) -> None:
    created = await client.post(alice.tasks, json={"title": "Tagged"}, headers=alice.headers)
    task_id = created.json()["id"]
    etag, _ = await _snapshot(client, alice, task_id)
    assert etag == created.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"'), "a task's ETag must be strong"
    seen = {etag}
    for name in ("put", "patch", "complete"):
        write, status = WRITES[name]
        response = await write(client, alice, task_id, alice.headers)
        assert response.status_code == status, response.text
        assert response.headers["etag"] == (await _snapshot(client, alice, task_id))[0]
        assert response.headers["etag"] not in seen, f"{name} did not change the ETag"
        seen.add(response.headers["etag"])


@pytest.mark.parametrize("operation", sorted(WRITES))
async def test_matching_if_match_succeeds(
    client: httpx.AsyncClient, alice: User, operation: str
) -> None:
    task = await _create(client, alice)
    etag, _ = await _snapshot(client, alice, task["id"])
    write, status = WRITES[operation]
    # A list of tags matches when any one of them is current.
    response = await write(
        client, alice, task["id"], {**alice.headers, "If-Match": f'"{task["id"]}.999", {etag}'}
    )
    assert response.status_code == status, response.text
    fetched = await client.get(alice.task(task["id"]), headers=alice.headers)
    if operation == "delete":
        assert fetched.status_code == 404
    else:
        assert fetched.headers["etag"] == response.headers["etag"] != etag


@pytest.mark.parametrize("operation", sorted(WRITES))
async def test_wildcard_if_match_succeeds(
    client: httpx.AsyncClient, alice: User, operation: str
) -> None:
    task = await _create(client, alice)
    write, status = WRITES[operation]
    response = await write(client, alice, task["id"], {**alice.headers, "If-Match": "*"})
    assert response.status_code == status, response.text


@pytest.mark.parametrize("operation", sorted(WRITES))
async def test_non_matching_if_match_is_412_and_changes_nothing(
    client: httpx.AsyncClient, alice: User, operation: str
) -> None:
    task = await _create(client, alice)
    other = await _create(client, alice, "Other")
    old_etag, _ = await _snapshot(client, alice, task["id"])
    renamed = await client.patch(
        alice.task(task["id"]), json={"title": "Renamed"}, headers=alice.headers
    )
    assert renamed.status_code == 200
    etag, before = await _snapshot(client, alice, task["id"])
    other_etag, _ = await _snapshot(client, alice, other["id"])
    never_match = {
        "stale": old_etag,
        "weak": f"W/{etag}",  # If-Match uses the strong comparison
        "other task": other_etag,
        "malformed bare": etag.strip('"'),
        "malformed unterminated": etag[:-1],
        "malformed separator": f"{etag} {etag}",
        "malformed empty list": ",",
    }
    write, _ = WRITES[operation]
    for kind, value in never_match.items():
        response = await write(client, alice, task["id"], {**alice.headers, "If-Match": value})
        problem = assert_problem(response, 412, "precondition-failed")
        assert "If-Match" in problem["detail"], kind
        assert response.headers["etag"] == etag, f"{kind}: a 412 carries the current ETag"
        assert await _snapshot(client, alice, task["id"]) == (etag, before), f"{kind}: changed"


async def test_if_match_on_a_missing_or_foreign_task_is_404(
    client: httpx.AsyncClient, alice: User, bob: User
) -> None:
    task = await _create(client, alice)
    etag, _ = await _snapshot(client, alice, task["id"])
    for user, task_id in [(alice, task["id"] + 1000), (bob, task["id"])]:
        for write, _ in WRITES.values():
            response = await write(client, user, task_id, {**user.headers, "If-Match": etag})
            assert_problem(response, 404, "not-found")
            response = await write(client, user, task_id, {**user.headers, "If-Match": "*"})
            assert_problem(response, 404, "not-found")
    assert (await _snapshot(client, alice, task["id"]))[0] == etag


async def test_get_with_if_none_match_is_304_without_a_body(
    client: httpx.AsyncClient, alice: User
) -> None:
    task = await _create(client, alice)
    etag, body = await _snapshot(client, alice, task["id"])
    for value in (etag, f"W/{etag}", f'"nope", {etag}', "*"):
        response = await client.get(
            alice.task(task["id"]), headers={**alice.headers, "If-None-Match": value}
        )
        assert response.status_code == 304, (value, response.text)
        assert response.content == b""
        assert response.headers["etag"] == etag
        assert "x-request-id" in response.headers
    for value in ('"nope"', etag[:-1]):
        response = await client.get(
            alice.task(task["id"]), headers={**alice.headers, "If-None-Match": value}
        )
        assert response.status_code == 200 and response.json() == body
    # After a change the old tag is stale and the full representation comes back.
    await client.patch(alice.task(task["id"]), json={"title": "Changed"}, headers=alice.headers)
    response = await client.get(
        alice.task(task["id"]), headers={**alice.headers, "If-None-Match": etag}
    )
    assert response.status_code == 200 and response.json()["title"] == "Changed"
    assert response.headers["etag"] != etag


async def test_if_none_match_never_reveals_another_users_task(
    client: httpx.AsyncClient, alice: User, bob: User
) -> None:
    task = await _create(client, alice)
    response = await client.get(bob.task(task["id"]), headers={**bob.headers, "If-None-Match": "*"})
    assert_problem(response, 404, "not-found")


async def test_list_etag_and_304_follow_every_write(client: httpx.AsyncClient, alice: User) -> None:
    async def list_etag() -> str:
        listed = await client.get(alice.tasks, headers=alice.headers)
        assert listed.status_code == 200
        etag = listed.headers["etag"]
        cached = await client.get(alice.tasks, headers={**alice.headers, "If-None-Match": etag})
        assert cached.status_code == 304 and cached.content == b""
        assert cached.headers["etag"] == etag
        return etag

    seen = [await list_etag()]
    task = await _create(client, alice)
    writes: list[Callable[[], Awaitable[httpx.Response]]] = [
        lambda: client.post(alice.tasks, json={"title": "Second"}, headers=alice.headers),
        lambda: _put(client, alice, task["id"], alice.headers),
        lambda: _patch(client, alice, task["id"], alice.headers),
        lambda: _complete(client, alice, task["id"], alice.headers),
        lambda: _delete(client, alice, task["id"], alice.headers),
    ]
    seen.append(await list_etag())
    for write in writes:
        old = seen[-1]
        response = await write()
        assert response.status_code in (200, 201, 204), response.text
        new = await list_etag()
        assert new not in seen, "the list ETag did not change after a write"
        stale = await client.get(alice.tasks, headers={**alice.headers, "If-None-Match": old})
        assert stale.status_code == 200 and stale.headers["etag"] == new
        seen.append(new)
    # Different filters over the same rows are different representations.
    filtered = await client.get(alice.tasks, params={"status": "pending"}, headers=alice.headers)
    assert filtered.headers["etag"] != seen[-1]


async def test_concurrent_writes_with_one_etag_let_exactly_one_win(
    live_server: LiveServer, carol: User
) -> None:
    """The If-Match check is part of the UPDATE itself, so a race cannot lose an update."""
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=30.0) as http:
        task = await _create(http, carol)
        etag, _ = await _snapshot(http, carol, task["id"])
        headers = {**carol.headers, "If-Match": etag}
        responses = await asyncio.gather(
            *(
                http.patch(carol.task(task["id"]), json={"title": f"Writer {n}"}, headers=headers)
                for n in range(12)
            )
        )
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [200] + [412] * 11, [r.text for r in responses]
        winner = next(r for r in responses if r.status_code == 200)
        final_etag, final = await _snapshot(http, carol, task["id"])
    assert final == winner.json() and final_etag == winner.headers["etag"]
