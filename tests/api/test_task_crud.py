"""Create, read, replace, update, complete and delete a task as the contract says."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.support import User, assert_problem, create_task, get_task, parse_utc, snapshots

FULL = {
    "title": "Write the quarterly report",
    "description": "Numbers from\nthe finance sheet",
    "completed": True,
    "priority": "high",
    "due_at": "2026-12-01T19:00:00+02:00",
    "tags": ["work", "Q4 report"],
}


async def test_create_defaults_location_and_etag(client: httpx.AsyncClient, alice: User) -> None:
    response = await client.post(alice.tasks, json={"title": "Buy milk"}, headers=alice.headers)
    assert response.status_code == 201, response.text
    task = response.json()
    assert response.headers["location"] == alice.task(task["id"])
    assert response.headers["etag"].startswith('"') and response.headers["etag"].endswith('"')
    assert task["id"] >= 1 and task["user_id"] == alice.id and task["title"] == "Buy milk"
    assert task["description"] is None and task["completed"] is False
    assert task["priority"] == "medium" and task["due_at"] is None and task["tags"] == []
    assert parse_utc(task["created_at"]) == parse_utc(task["updated_at"])

    fetched = await client.get(response.headers["location"], headers=alice.headers)
    assert fetched.status_code == 200
    assert fetched.json() == task
    assert fetched.headers["etag"] == response.headers["etag"]


async def test_create_with_every_field_returns_due_at_in_utc(
    client: httpx.AsyncClient, alice: User
) -> None:
    task = await create_task(client, alice, **FULL)
    expected = {**FULL, "due_at": "2026-12-01T17:00:00Z"}
    assert {key: task[key] for key in FULL} == expected
    assert await get_task(client, alice, task["id"]) == task


async def test_create_accepts_the_limits(client: httpx.AsyncClient, alice: User) -> None:
    """200-character titles, 1000-character descriptions, 10 tags of 32 characters, unicode."""
    tags = [f"{index}".ljust(32, "t") for index in range(10)]
    task = await create_task(
        client, alice, title="é" * 199 + "😀", description="d" * 1000, tags=tags
    )
    assert len(task["title"]) == 200 and len(task["description"]) == 1000
    assert task["tags"] == tags
    assert await get_task(client, alice, task["id"]) == task


async def test_get_missing_task_is_404(client: httpx.AsyncClient, alice: User) -> None:
    response = await client.get(alice.task(987654), headers=alice.headers)
    body = assert_problem(response, 404)
    assert body["instance"] == alice.task(987654)


async def test_put_requires_title_and_keeps_omitted_fields(
    client: httpx.AsyncClient, alice: User
) -> None:
    task = await create_task(client, alice, **FULL)
    before = await snapshots(client, alice)

    missing = await client.put(
        alice.task(task["id"]), json={"priority": "low"}, headers=alice.headers
    )
    assert_problem(missing, 422)
    assert any(issue["field"] == "title" for issue in missing.json()["errors"])
    assert await snapshots(client, alice) == before

    replaced = await client.put(
        alice.task(task["id"]), json={"title": "Renamed", "priority": "low"}, headers=alice.headers
    )
    assert replaced.status_code == 200, replaced.text
    body = replaced.json()
    assert body["title"] == "Renamed" and body["priority"] == "low"
    # Everything left out keeps its stored value.
    for key in ("description", "completed", "due_at", "tags", "created_at", "id", "user_id"):
        assert body[key] == task[key], key
    assert await get_task(client, alice, task["id"]) == body


async def test_put_explicit_null_clears_description_and_due_at(
    client: httpx.AsyncClient, alice: User
) -> None:
    task = await create_task(client, alice, **FULL)
    response = await client.put(
        alice.task(task["id"]),
        json={"title": task["title"], "description": None, "due_at": None},
        headers=alice.headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["description"] is None and body["due_at"] is None
    assert body["tags"] == task["tags"] and body["priority"] == task["priority"]
    assert await get_task(client, alice, task["id"]) == body


async def test_put_sets_every_field(client: httpx.AsyncClient, alice: User) -> None:
    task = await create_task(client, alice)
    new = {**FULL, "completed": False, "tags": ["home"], "due_at": "2030-01-01T00:00:00-05:00"}
    response = await client.put(alice.task(task["id"]), json=new, headers=alice.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert {key: body[key] for key in new} == {**new, "due_at": "2030-01-01T05:00:00Z"}


async def test_patch_changes_only_the_fields_sent(client: httpx.AsyncClient, alice: User) -> None:
    task = await create_task(client, alice, **FULL)
    response = await client.patch(
        alice.task(task["id"]), json={"priority": "low", "tags": []}, headers=alice.headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["priority"] == "low" and body["tags"] == []
    for key in ("title", "description", "completed", "due_at", "created_at"):
        assert body[key] == task[key], key
    assert await get_task(client, alice, task["id"]) == body


@pytest.mark.parametrize("field", ["description", "due_at"])
async def test_patch_null_clears_nullable_fields(
    client: httpx.AsyncClient, alice: User, field: str
) -> None:
    task = await create_task(client, alice, **FULL)
    response = await client.patch(alice.task(task["id"]), json={field: None}, headers=alice.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body[field] is None
    other = "due_at" if field == "description" else "description"
    assert body[other] == task[other] and body["title"] == task["title"]
    assert await get_task(client, alice, task["id"]) == body


@pytest.mark.parametrize("field", ["title", "completed", "priority", "tags"])
@pytest.mark.parametrize("method", ["PATCH", "PUT"])
async def test_null_for_a_required_field_is_422_and_changes_nothing(
    client: httpx.AsyncClient, alice: User, field: str, method: str
) -> None:
    task = await create_task(client, alice, **FULL)
    before = await snapshots(client, alice)
    body: dict[str, Any] = {field: None}
    if method == "PUT" and field != "title":
        body["title"] = "Renamed"
    response = await client.request(
        method, alice.task(task["id"]), json=body, headers=alice.headers
    )
    problem = assert_problem(response, 422)
    assert [issue["field"] for issue in problem["errors"]] == [field]
    assert await snapshots(client, alice) == before


async def test_delete_then_everything_is_404(client: httpx.AsyncClient, alice: User) -> None:
    keep = await create_task(client, alice, title="keep")
    task = await create_task(client, alice, title="drop")
    response = await client.delete(alice.task(task["id"]), headers=alice.headers)
    assert response.status_code == 204
    assert response.content == b""
    for method, suffix, body in [
        ("GET", "", None),
        ("DELETE", "", None),
        ("PUT", "", {"title": "again"}),
        ("PATCH", "", {"title": "again"}),
        ("PATCH", "/complete", None),
    ]:
        again = await client.request(
            method, alice.task(task["id"]) + suffix, json=body, headers=alice.headers
        )
        assert_problem(again, 404)
    assert [row["id"] for row in (await snapshots(client, alice))[alice.id]] == [keep["id"]]


async def test_complete_toggles_without_body_and_sets_with_one(
    client: httpx.AsyncClient, alice: User
) -> None:
    task = await create_task(client, alice)
    url = alice.task(task["id"]) + "/complete"
    states = []
    for body in [None, None, None, {"completed": True}, {"completed": True}, {"completed": False},
                 {"completed": False}, None]:  # fmt: skip
        response = await client.patch(url, json=body, headers=alice.headers)
        assert response.status_code == 200, response.text
        states.append(response.json()["completed"])
        assert (await get_task(client, alice, task["id"]))["completed"] is states[-1]
    assert states == [True, False, True, True, True, False, False, True]


async def test_every_write_moves_updated_at_and_etag_but_never_created_at(
    client: httpx.AsyncClient, alice: User
) -> None:
    task = await create_task(client, alice, **FULL)
    created_at = parse_utc(task["created_at"])
    url = alice.task(task["id"])
    previous: datetime = parse_utc(task["updated_at"])
    etags = {(await client.get(url, headers=alice.headers)).headers["etag"]}
    writes: list[tuple[str, str, dict[str, Any] | None]] = [
        ("PUT", url, {"title": "Renamed"}),
        ("PATCH", url, {"description": None}),
        ("PATCH", url, {"tags": ["x"]}),
        ("PATCH", url + "/complete", None),
        ("PATCH", url + "/complete", {"completed": True}),
        ("PATCH", url + "/complete", {"completed": True}),
    ]
    for method, target, body in writes:
        response = await client.request(method, target, json=body, headers=alice.headers)
        assert response.status_code == 200, response.text
        current = response.json()
        assert parse_utc(current["created_at"]) == created_at
        updated_at = parse_utc(current["updated_at"])
        assert updated_at > previous, (method, target, body)
        assert response.headers["etag"] not in etags
        etags.add(response.headers["etag"])
        previous = updated_at
        assert await get_task(client, alice, task["id"]) == current


async def test_ids_are_never_reused_so_old_etags_never_match_a_new_task(
    client: httpx.AsyncClient, alice: User, bob: User
) -> None:
    first = await client.post(alice.tasks, json={"title": "newest"}, headers=alice.headers)
    old_id, old_etag = first.json()["id"], first.headers["etag"]
    assert (await client.delete(alice.task(old_id), headers=alice.headers)).status_code == 204
    for user in (alice, bob):
        again = await client.post(user.tasks, json={"title": "next"}, headers=user.headers)
        assert again.json()["id"] > old_id
        assert again.headers["etag"] != old_etag
    stale = await client.delete(alice.task(old_id), headers={**alice.headers, "If-Match": old_etag})
    assert_problem(stale, 404)
    assert len((await snapshots(client, alice))[alice.id]) == 1
