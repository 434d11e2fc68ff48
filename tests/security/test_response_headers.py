"""Headers that keep one user's data out of shared caches and stop browsers sniffing types.

Threat: a shared cache (a proxy, a CDN) that stores one user's task list and serves it to the
next client; a browser that renders a JSON or problem body as HTML. Runs on SQLite and
PostgreSQL, the app built from settings as `todo-api serve` builds it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support import (
    User,
    app_client,
    assert_problem,
    assert_unauthorized,
    create_task,
    make_settings,
)

PRIVATE = "private, no-cache"


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(make_settings(database_url)) as http:
        yield http


def _assert_private(response: httpx.Response) -> None:
    assert response.headers.get_list("cache-control") == [PRIVATE], response.headers
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_every_answer_to_an_authenticated_request_is_private(
    client: httpx.AsyncClient, alice: User
) -> None:
    task = await create_task(client, alice, title="mine")
    answers = [
        await client.get(alice.tasks, headers=alice.headers),
        await client.post(alice.tasks, json={"title": "another"}, headers=alice.headers),
        await client.get(alice.task(task["id"]), headers=alice.headers),
        await client.patch(alice.task(task["id"]), json={"title": "x"}, headers=alice.headers),
        await client.get(alice.task(999_999), headers=alice.headers),  # 404 problem
        await client.get("/api/bob/tasks", headers=alice.headers),  # 403 problem
        await client.delete(alice.task(task["id"]), headers=alice.headers),  # 204
        # Authorization on a path of no user (the health check): still one client's answer.
        await client.get("/api/health", headers=alice.headers),
    ]
    for response in answers:
        _assert_private(response)


async def test_etag_revalidation_still_answers_304_with_the_same_headers(
    client: httpx.AsyncClient, alice: User
) -> None:
    task = await create_task(client, alice, title="cached")
    first = await client.get(alice.task(task["id"]), headers=alice.headers)
    assert first.status_code == 200
    _assert_private(first)
    again = await client.get(
        alice.task(task["id"]), headers={**alice.headers, "If-None-Match": first.headers["etag"]}
    )
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == first.headers["etag"]
    _assert_private(again)


async def test_answers_under_a_user_path_are_private_even_without_a_token(
    client: httpx.AsyncClient, alice: User
) -> None:
    anonymous = await client.get(alice.tasks)
    assert_unauthorized(anonymous)
    _assert_private(anonymous)
    too_large = await client.post(
        alice.tasks,
        content=b"{" + b" " * 70_000 + b"}",
        headers={"Content-Type": "application/json"},
    )
    assert_problem(too_large, 413)
    _assert_private(too_large)
    wrong_type = await client.post(
        alice.tasks, content=b"title=x", headers={"Content-Type": "text/plain"}
    )
    assert_problem(wrong_type, 415)
    _assert_private(wrong_type)


@pytest.mark.parametrize("path", ["/api/health", "/api/health/ready", "/openapi.json", "/docs"])
async def test_public_endpoints_keep_their_own_caching_and_get_nosniff(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "cache-control" not in response.headers


async def test_unmatched_paths_and_errors_get_nosniff(client: httpx.AsyncClient) -> None:
    response = await client.get("/no/such/route")
    assert_problem(response, 404)
    assert response.headers["x-content-type-options"] == "nosniff"
