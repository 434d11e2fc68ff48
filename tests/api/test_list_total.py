"""X-Total-Count: right for every filter and page, always from the page's own statement.

The page and its total are one statement (backend.repository._list_statement): a task_counts
total (no filter, or status/priority only) sums at most six rows; a count(*) total (q, tag, due
range) is counted only when the page cannot tell it. A page beyond the end still carries its
total (one row of NULL task columns). The expected totals are computed here from the tasks the
test created, not from the API. Round trips on PostgreSQL: tests/db/test_round_trips.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from tests.support import User, create_task

Spec = dict[str, Any]
BASE = datetime.fromisoformat("2026-06-01T12:00:00+00:00")
PRIORITIES = ("low", "medium", "high")
COUNT = 13


def spec(index: int) -> Spec:
    """Task `index` of alice's list: every status x priority bucket, tags, text and due dates."""
    return {
        "title": f"task {index}",
        "completed": index % 2 == 0,
        "priority": PRIORITIES[index % 3],
        "tags": ["a", "b"] if index % 3 == 0 else ["a"] if index % 3 == 1 else [],
        "description": "buy MILK" if index % 4 == 0 else None,
        "due_at": None if index % 5 == 0 else (BASE + timedelta(days=index)).isoformat(),
    }


def due(task: Spec) -> datetime | None:
    return None if task["due_at"] is None else datetime.fromisoformat(task["due_at"])


CUT = BASE + timedelta(days=6)
# query parameters -> which of alice's tasks the list holds
QUERIES: list[tuple[dict[str, Any], Callable[[Spec], bool]]] = [
    ({}, lambda t: True),
    ({"status": "all"}, lambda t: True),
    ({"status": "pending"}, lambda t: not t["completed"]),
    ({"status": "completed"}, lambda t: t["completed"]),
    *(({"priority": p}, lambda t, p=p: t["priority"] == p) for p in PRIORITIES),
    ({"status": "pending", "priority": "high"},
     lambda t: not t["completed"] and t["priority"] == "high"),
    ({"tag": "a"}, lambda t: "a" in t["tags"]),
    ({"tag": ["a", "b"]}, lambda t: {"a", "b"} <= set(t["tags"])),
    ({"tag": "b", "status": "completed"}, lambda t: "b" in t["tags"] and t["completed"]),
    ({"q": "milk"}, lambda t: "milk" in (t["description"] or "").lower()),
    ({"q": "task 1"}, lambda t: "task 1" in t["title"]),
    ({"due_before": CUT.isoformat()}, lambda t: (d := due(t)) is not None and d < CUT),
    ({"due_after": CUT.isoformat(), "priority": "low"},
     lambda t: (d := due(t)) is not None and d > CUT and t["priority"] == "low"),
    ({"q": "nothing matches this"}, lambda t: False),
    ({"status": "completed", "priority": "medium", "tag": "b"}, lambda t: False),
]  # fmt: skip


def pages(total: int) -> list[tuple[int, int]]:
    """(skip, limit): single rows, a full and a short first page, the last row, past the end."""
    return [(0, 1), (0, 3), (0, 1000), (1, 1000), (max(total - 1, 0), 1), (total, 1),
            (total + 7, 5), (max(total - 2, 0), 5)]  # fmt: skip


@contextmanager
def statements(app: FastAPI) -> Iterator[list[str]]:
    """The SQL statements the app sends through SQLAlchemy's engine (SQLite) in the block."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    engine = app.state.engine.sync_engine
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


async def listed(
    client: httpx.AsyncClient, user: User, params: dict[str, Any]
) -> tuple[int, list[dict[str, Any]]]:
    response = await client.get(user.tasks, params=params, headers=user.headers)
    assert response.status_code == 200, (params, response.text)
    return int(response.headers["x-total-count"]), response.json()


@pytest.fixture
async def tasks(client: httpx.AsyncClient, alice: User, bob: User) -> list[Spec]:
    """alice's 13 tasks; bob's tasks match every query too, and must never be counted."""
    for index in range(4):
        await create_task(client, bob, **{**spec(index), "title": "task 1 of bob"})
    return [
        await create_task(client, alice, **spec(index)) and spec(index) for index in range(COUNT)
    ]


async def test_total_is_the_number_of_matching_tasks_on_every_page(
    client: httpx.AsyncClient, alice: User, tasks: list[Spec]
) -> None:
    for params, matches in QUERIES:
        expected = sum(1 for task in tasks if matches(task))
        for skip, limit in pages(expected):
            page = {**params, "skip": skip, "limit": limit}
            total, rows = await listed(client, alice, page)
            assert total == expected, page
            assert len(rows) == max(0, min(limit, expected - skip)), page


async def test_a_user_without_tasks_has_a_total_of_zero(
    app: FastAPI, client: httpx.AsyncClient, alice: User, tasks: list[Spec]
) -> None:
    carol = User.named("carol")
    for params, _ in QUERIES:
        for skip, limit in ((0, 1), (0, 100), (5, 5)):
            page = {**params, "skip": skip, "limit": limit}
            assert await listed(client, carol, page) == (0, []), page


# SQLite only: on PostgreSQL statements bypass SQLAlchemy's engine, and
# tests/db/test_round_trips.py counts the same pages on the wire.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_one_statement_per_list_on_every_page(
    app: FastAPI, client: httpx.AsyncClient, alice: User, tasks: list[Spec]
) -> None:
    """Full, short, empty and past-the-end pages: the total is always in the page statement."""
    carol = User.named("carol")
    cases: list[tuple[User, dict[str, Any]]] = [
        (alice, {"limit": 5}),
        (alice, {}),
        (alice, {"status": "pending", "limit": 1}),
        (alice, {"status": "completed", "priority": "high", "limit": 1}),
        (alice, {"priority": "low", "skip": 2, "limit": 1}),
        (carol, {}),
        (carol, {"status": "pending", "priority": "low"}),
        (alice, {"q": "milk"}),
        (alice, {"tag": ["a", "b"], "skip": 1}),
        (alice, {"q": "milk", "limit": 1}),
        (alice, {"tag": ["a", "b"], "limit": 1}),
        (alice, {"due_before": CUT.isoformat(), "limit": 1}),
        (alice, {"skip": COUNT}),
        (alice, {"status": "completed", "skip": COUNT}),
        (alice, {"q": "milk", "skip": 50}),
        (carol, {"skip": 5}),
    ]
    for user, params in cases:
        with statements(app) as seen:
            await listed(client, user, params)
        # SQLite's driver sends its own BEGIN (whatever the request); the rest are the list's.
        queries = [sql for sql in seen if sql.strip().upper() not in {"BEGIN", "COMMIT"}]
        assert len(queries) == 1, (user.id, params, seen)
        assert queries[0].lstrip().startswith("WITH"), seen
