"""Bad input of every kind gets the contract's problem+json 4xx, never a 500, never a write.

Each test stores tasks for alice and bob first, sends a batch of bad requests, and after every
one of them checks the problem document and that the stored data is exactly as before.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI

from tests.support import User, assert_problem, create_task, snapshots, user_operations

FULL = {
    "title": "Original title",
    "description": "Original\ndescription",
    "priority": "high",
    "due_at": "2026-12-01T17:00:00Z",
    "tags": ["work", "home"],
}
# C0 controls and DEL; a description may hold tab, newline and carriage return.
CONTROLS = [chr(code) for code in (*range(0x20), 0x7F)]
DESCRIPTION_ALLOWED = {"\t", "\n", "\r"}
LONG = "x" * 10_000

Reject = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
async def reject(client: httpx.AsyncClient, alice: User, bob: User) -> AsyncIterator[Reject]:
    """Store some tasks; yield a function that sends one bad request (as alice) and checks it.

    After each request alice's tasks must be unchanged; at the end, bob's as well.
    """
    await create_task(client, alice, **FULL)
    await create_task(client, alice, title="second")
    await create_task(client, bob, title="bob's own")
    before = await snapshots(client, alice, bob)

    async def send(
        method: str,
        url: str,
        status: int = 422,
        *,
        field: str | None = None,
        location: str | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        response = await client.request(
            method, url, headers={**alice.headers, **(headers or {})}, **kwargs
        )
        what = (method, url[:80], str(kwargs)[:200])
        assert response.status_code == status, (what, response.status_code, response.text)
        problem = assert_problem(response, status)
        issues = problem.get("errors", [])
        if field is not None:
            assert any(
                issue["field"] == field or issue["field"].startswith(f"{field}.")
                for issue in issues
            ), (what, issues)
        if location is not None:
            assert issues and all(issue["location"] == location for issue in issues), (what, issues)
        assert await snapshots(client, alice) == {alice.id: before[alice.id]}, what
        return problem

    yield send
    assert await snapshots(client, alice, bob) == before


def task_url(user: User, task_id: int | str = 1) -> str:
    return user.task(task_id)


def body_operations(user: User) -> list[tuple[str, str]]:
    """Every operation of the contract that takes a JSON body (on task 1 where it needs a task)."""
    return [
        (op.method, op.url(user_id=user.id, task_id=1))
        for op in user_operations().values()
        if op.body is not None
    ]


# -- path --------------------------------------------------------------------------------------

BAD_TASK_IDS = ["abc", "0", "-1", str(2**63), str(2**63 + 1), str(2**64), "9" * 40, "1.5",
                "1e3", "0x10", "%00", "1%00", quote("\u0661"), "true", "%20"]  # fmt: skip


async def test_bad_task_ids_are_422_for_every_operation(reject: Reject, alice: User) -> None:
    on_task = [op for op in user_operations().values() if op.on_task]
    assert on_task
    for raw in BAD_TASK_IDS:
        for op in on_task:
            url = op.url(user_id=alice.id, task_id=raw)
            await reject(op.method, url, json=op.body, field="task_id", location="path")


async def test_the_largest_int64_task_id_is_a_plain_404(reject: Reject, alice: User) -> None:
    for method, body in [("GET", None), ("PUT", {"title": "x"}), ("DELETE", None)]:
        await reject(method, alice.task(2**63 - 1), 404, json=body)


# -- query -------------------------------------------------------------------------------------

BAD_QUERIES: list[tuple[str, str]] = [
    ("status=bogus", "status"),
    ("status=ALL", "status"),
    ("status=", "status"),
    ("priority=urgent", "priority"),
    ("priority=High", "priority"),
    ("sort=id", "sort"),
    ("sort=title;drop", "sort"),
    ("order=up", "order"),
    ("q=", "q"),
    ("q=" + "x" * 201, "q"),
    ("q=" + LONG, "q"),
    ("tag=", "tag"),
    ("tag=" + "t" * 33, "tag"),
    ("tag=%20lead", "tag"),
    ("&".join(f"tag=t{index}" for index in range(11)), "tag"),
    ("due_before=2026-01-01T00:00:00", "due_before"),
    ("due_before=2026-01-01", "due_before"),
    ("due_before=now", "due_before"),
    ("due_before=1700000000", "due_before"),
    ("due_before=0001-01-01T00:00:00%2B14:00", "due_before"),
    ("due_before=9999-12-31T23:59:59-14:00", "due_before"),
    ("due_after=2026-01-01T00:00:00", "due_after"),
    ("due_after=2026-13-01T00:00:00Z", "due_after"),
    ("due_after=0001-01-01T00:00:00%2B14:00", "due_after"),
    ("due_after=9999-12-31T23:59:59-14:00", "due_after"),
    ("skip=-1", "skip"),
    ("skip=abc", "skip"),
    ("skip=" + "9" * 30, "skip"),
    ("limit=0", "limit"),
    ("limit=1001", "limit"),
    ("limit=1.5", "limit"),
]


async def test_bad_query_parameters_are_422_naming_the_parameter(
    reject: Reject, alice: User
) -> None:
    for query, parameter in BAD_QUERIES:
        await reject("GET", f"{alice.tasks}?{query}", field=parameter, location="query")


async def test_control_characters_in_q_and_tag_are_422(reject: Reject, alice: User) -> None:
    for char in CONTROLS:
        for parameter in ("q", "tag"):
            await reject(
                "GET", alice.tasks, params={parameter: f"a{char}b"}, field=parameter,
                location="query",
            )  # fmt: skip


# -- bodies ------------------------------------------------------------------------------------

# (body, the field the problem must name) for create; PUT and PATCH reuse them with a title.
BAD_FIELDS: list[tuple[dict[str, Any], str]] = [
    ({"title": ""}, "title"),
    ({"title": " "}, "title"),
    ({"title": "   \u3000 "}, "title"),
    ({"title": "\u00a0"}, "title"),
    ({"title": "x" * 201}, "title"),
    ({"title": LONG}, "title"),
    ({"title": 123}, "title"),
    ({"title": ["x"]}, "title"),
    ({"title": {"text": "x"}}, "title"),
    ({"title": True}, "title"),
    ({"title": "ok", "description": "d" * 1001}, "description"),
    ({"title": "ok", "description": LONG}, "description"),
    ({"title": "ok", "description": 5}, "description"),
    ({"title": "ok", "completed": "yes"}, "completed"),
    ({"title": "ok", "completed": "true"}, "completed"),
    ({"title": "ok", "completed": 1}, "completed"),
    ({"title": "ok", "completed": 0}, "completed"),
    ({"title": "ok", "completed": "false"}, "completed"),
    ({"title": "ok", "priority": "urgent"}, "priority"),
    ({"title": "ok", "priority": "HIGH"}, "priority"),
    ({"title": "ok", "priority": 3}, "priority"),
    ({"title": "ok", "tags": "work"}, "tags"),
    ({"title": "ok", "tags": [1]}, "tags"),
    ({"title": "ok", "tags": ["a", "a"]}, "tags.1"),
    ({"title": "ok", "tags": ["a", "b", "a"]}, "tags.2"),
    ({"title": "ok", "tags": [f"t{index}" for index in range(11)]}, "tags"),
    ({"title": "ok", "tags": [""]}, "tags.0"),
    ({"title": "ok", "tags": ["t" * 33]}, "tags.0"),
    ({"title": "ok", "tags": [LONG]}, "tags.0"),
    ({"title": "ok", "tags": [" padded"]}, "tags.0"),
    ({"title": "ok", "tags": ["padded "]}, "tags.0"),
    ({"title": "ok", "due_at": "2026-12-01T17:00:00"}, "due_at"),
    ({"title": "ok", "due_at": "2026-12-01"}, "due_at"),
    ({"title": "ok", "due_at": "tomorrow"}, "due_at"),
    ({"title": "ok", "due_at": 1700000000}, "due_at"),
    ({"title": "ok", "due_at": "2026-02-30T00:00:00Z"}, "due_at"),
    ({"title": "ok", "due_at": "0001-01-01T00:00:00+14:00"}, "due_at"),
    ({"title": "ok", "due_at": "9999-12-31T23:59:59-14:00"}, "due_at"),
    ({"title": "ok", "extra": 1}, "extra"),
    ({"title": "ok", "id": 99}, "id"),
    ({"title": "ok", "user_id": "bob"}, "user_id"),
    ({"title": "ok", "created_at": "2026-01-01T00:00:00Z"}, "created_at"),
]


async def test_bad_fields_on_create_put_and_patch(reject: Reject, alice: User) -> None:
    for body, field in BAD_FIELDS:
        await reject("POST", alice.tasks, json=body, field=field, location="body")
        await reject("PUT", task_url(alice), json=body, field=field, location="body")
        await reject("PATCH", task_url(alice), json=body, field=field, location="body")


async def test_control_characters_in_title_description_and_tags(
    reject: Reject, alice: User
) -> None:
    for char in CONTROLS:
        bodies = [
            ({"title": f"a{char}b"}, "title"),
            ({"title": "ok", "tags": [f"a{char}b"]}, "tags.0"),
        ]
        if char not in DESCRIPTION_ALLOWED:
            bodies.append(({"title": "ok", "description": f"a{char}b"}, "description"))
        for body, field in bodies:
            await reject("POST", alice.tasks, json=body, field=field, location="body")
            await reject("PATCH", task_url(alice), json=body, field=field, location="body")


async def test_required_and_nullable_rules(reject: Reject, alice: User) -> None:
    await reject("POST", alice.tasks, json={}, field="title")
    await reject("POST", alice.tasks, json={"description": "no title"}, field="title")
    await reject("POST", alice.tasks, json={"title": None}, field="title")
    await reject("PUT", task_url(alice), json={"priority": "low"}, field="title")
    for field in ("title", "completed", "priority", "tags"):
        await reject("PATCH", task_url(alice), json={field: None}, field=field)
    for body in ({}, {"completed": None}, {"completed": "yes"}, {"completed": 1},
                 {"completed": True, "extra": 1}, [True]):  # fmt: skip
        await reject("PATCH", task_url(alice) + "/complete", json=body, location="body")


async def test_bodies_that_are_not_a_json_object(reject: Reject, alice: User) -> None:
    for raw in (b"null", b"[]", b'"title"', b"42", b"true", b'[{"title": "x"}]'):
        for method, url in body_operations(alice):
            await reject(
                method, url, content=raw, headers={"Content-Type": "application/json"},
                location="body",
            )  # fmt: skip


async def test_empty_bodies(reject: Reject, alice: User) -> None:
    for method, url in [("POST", alice.tasks), ("PUT", task_url(alice)),
                        ("PATCH", task_url(alice))]:  # fmt: skip
        await reject(method, url, content=b"", headers={"Content-Type": "application/json"})
        await reject(method, url, content=b"")


# -- bytes that are not JSON -------------------------------------------------------------------

MALFORMED = [b"{", b'{"title": }', b"{'title': 'x'}", b'{"title": "x",}', b'{"title": "x"} extra',
             b'{"title" "x"}', b"\xef\xbb\xbf{", b'{"title": "unterminated}']  # fmt: skip
NOT_UTF8 = [b"\xff\xfe", b'{"title": "\xff"}', b'{"title": "caf\xe9"}', b'{"title": "\xc3\x28"}',
            b'{"title": "\xed\xa0\x80"}', b"\xfe\xff\x00{\x00}"]  # fmt: skip


async def test_malformed_json_is_400(reject: Reject, alice: User) -> None:
    for raw in MALFORMED:
        for method, url in [("POST", alice.tasks), ("PATCH", task_url(alice)),
                            ("PATCH", task_url(alice) + "/complete")]:  # fmt: skip
            await reject(
                method, url, 400, content=raw, headers={"Content-Type": "application/json"}
            )


async def test_invalid_utf8_is_400(reject: Reject, alice: User) -> None:
    for raw in NOT_UTF8:
        for method, url in [("POST", alice.tasks), ("PUT", task_url(alice))]:
            await reject(
                method, url, 400, content=raw, headers={"Content-Type": "application/json"}
            )


async def test_json_lone_surrogates_are_422(reject: Reject, alice: User) -> None:
    """Valid JSON text, but no Unicode string (and nothing PostgreSQL could store)."""
    for raw in (b'{"title": "\\ud800"}', b'{"title": "ok", "description": "\\udfff"}'):
        await reject("POST", alice.tasks, content=raw, headers={"Content-Type": "application/json"},
                     location="body")  # fmt: skip


async def test_wrong_content_type_is_415(reject: Reject, alice: User) -> None:
    body = b'{"title": "fine"}'
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
                         "application/xml", "application/jsonx", "text/json", ""):  # fmt: skip
        for method, url in body_operations(alice):
            headers = {"Content-Type": content_type} if content_type else {}
            problem = await reject(method, url, 415, content=body, headers=headers)
            assert "application/json" in problem["detail"]


async def test_json_with_a_charset_parameter_is_accepted(
    client: httpx.AsyncClient, alice: User
) -> None:
    response = await client.post(
        alice.tasks, content='{"title": "Café"}'.encode(),
        headers={**alice.headers, "Content-Type": "application/json; charset=utf-8"},
    )  # fmt: skip
    assert response.status_code == 201, response.text
    assert response.json()["title"] == "Café"


async def test_newlines_and_tabs_are_kept_in_a_description(
    client: httpx.AsyncClient, alice: User
) -> None:
    text = "line one\nline two\r\n\tindented"
    task = await create_task(client, alice, description=text)
    assert task["description"] == text
    fetched = await client.get(alice.task(task["id"]), headers=alice.headers)
    assert fetched.json()["description"] == text


async def test_extreme_but_valid_instants_round_trip(
    client: httpx.AsyncClient, alice: User
) -> None:
    for sent, stored in [
        ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z"),
        ("0001-01-01T00:00:00-14:00", "0001-01-01T14:00:00Z"),
        ("9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59.999999Z"),
        ("9999-12-31T23:59:59+14:00", "9999-12-31T09:59:59Z"),
    ]:
        task = await create_task(client, alice, due_at=sent)
        assert task["due_at"] == stored
        fetched = await client.get(alice.task(task["id"]), headers=alice.headers)
        assert fetched.json()["due_at"] == stored
    rows = (await client.get(alice.tasks, params={"sort": "due_at"}, headers=alice.headers)).json()
    assert [row["due_at"] for row in rows] == [
        "0001-01-01T00:00:00Z", "0001-01-01T14:00:00Z", "9999-12-31T09:59:59Z",
        "9999-12-31T23:59:59.999999Z",
    ]  # fmt: skip


# -- order of checks -----------------------------------------------------------------------------


async def test_who_is_asking_is_checked_before_the_request_is_validated(
    client: httpx.AsyncClient, alice: User, bob: User
) -> None:
    """401, then 403, then parameters and body (422): an outsider learns nothing of the rules.

    Only bytes that are not JSON at all answer 400 first: FastAPI decodes the body before it
    resolves dependencies, and that answer says nothing about any user or resource.
    """
    json_type = {"Content-Type": "application/json"}
    for method, url in [("POST", alice.tasks + "?limit=0"), ("PUT", task_url(alice, 0))]:
        anonymous = await client.request(method, url, content=b'{"title": 5}', headers=json_type)
        assert_problem(anonymous, 401)
        as_bob = await client.request(
            method, url, content=b'{"title": 5}', headers={**bob.headers, **json_type}
        )
        assert_problem(as_bob, 403)
    for headers in ({}, bob.headers, alice.headers):
        malformed = await client.post(
            alice.tasks, content=b"{not json", headers={**headers, **json_type}
        )
        assert_problem(malformed, 400)


async def test_errors_in_every_location_come_in_one_problem(reject: Reject, alice: User) -> None:
    """Path, header and body errors are reported together, in that order, each located."""
    problem = await reject(
        "PUT",
        task_url(alice, 0),
        headers={"If-Match": "x" * 2000, "Content-Type": "application/json"},
        content=b'{"title": 5, "priority": "urgent"}',
    )
    located = [(issue["location"], issue["field"]) for issue in problem["errors"]]
    assert located == [
        ("path", "task_id"),
        ("header", "If-Match"),
        ("body", "title"),
        ("body", "priority"),
    ]


async def test_a_repeated_query_parameter_takes_its_last_value(
    client: httpx.AsyncClient, alice: User
) -> None:
    for title in ("a", "b", "c"):
        await create_task(client, alice, title=title)
    response = await client.get(alice.tasks + "?limit=1&limit=2", headers=alice.headers)
    assert response.status_code == 200, response.text
    assert len(response.json()) == 2
    rejected = await client.get(alice.tasks + "?limit=2&limit=0", headers=alice.headers)
    assert_problem(rejected, 422)


async def test_a_query_string_that_is_not_utf8_is_no_500(app: FastAPI, alice: User) -> None:
    """uvicorn refuses raw non-ASCII in the request target; other ASGI servers pass it on."""
    authorization = (b"authorization", f"Bearer {alice.token}".encode())

    messages: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        messages.append(message)

    for path, query in [(alice.tasks, b"q=\xff"), (alice.tasks, b"limit=2&x=\xfe"),
                        ("/api/nowhere", b"x=\xff")]:  # fmt: skip
        messages.clear()
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
            "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": query,
            "root_path": "", "headers": [(b"host", b"test"), authorization],
            "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80), "state": {},
        }  # fmt: skip
        await app(scope, receive, send)
        assert messages[0]["status"] in (200, 404), (path, query, messages)
