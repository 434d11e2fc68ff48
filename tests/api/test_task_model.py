"""Property-based: random operations by alice and bob agree with a plain in-memory model.

Hypothesis drives a state machine through create, PUT, PATCH, complete, delete and list, with
either user acting on any task id ever seen (so half the attempts hit someone else's task). After
every step the server's answer must be what the model predicts; at the end of each run, each
user's full list must equal the model's, and after every step task_counts must equal count(*).
Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.app import create_app
from tests.support import User, api_settings

USERS = [User.named("alice"), User.named("bob")]
RANK = {"low": 1, "medium": 2, "high": 3}
DEFAULT_DESCENDING = {"created_at": True, "updated_at": True, "priority": True, "title": False,
                      "due_at": False}  # fmt: skip
ZONES = [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]

# Small alphabets so that ties, case variants and LIKE wildcards collide often.
TEXT = "aAbBzZéÉß\u03a3\u03c3\u03c2%_\\' \"x"  # Greek capital, small and final sigma
titles = st.text(TEXT, min_size=1, max_size=8).filter(lambda text: text.strip() != "")
descriptions = st.none() | st.text(TEXT + "\n", max_size=12)
priorities = st.sampled_from(sorted(RANK))
tags = st.lists(st.sampled_from(["a", "b", "Work", "ß"]), unique=True, max_size=3)
due_dates = st.none() | st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2026, 1, 3), timezones=st.sampled_from(ZONES)
)
queries = st.text(TEXT, min_size=1, max_size=3)
field_values = {
    "title": titles,
    "description": descriptions,
    "completed": st.booleans(),
    "priority": priorities,
    "due_at": due_dates,
    "tags": tags,
}


def to_json(fields: dict[str, Any]) -> dict[str, Any]:
    return {
        key: value.isoformat() if isinstance(value, datetime) else value
        for key, value in fields.items()
    }


def parse(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def fold(text: str) -> str:
    return text.casefold()


class TaskModel(RuleBasedStateMachine):
    """The model: {user id: {task id: task as the API should return it}}."""

    client: httpx.AsyncClient
    engine: AsyncEngine
    loop: asyncio.AbstractEventLoop

    def __init__(self) -> None:
        super().__init__()
        self.run(self._empty_database())
        self.model: dict[str, dict[int, dict[str, Any]]] = {user.id: {} for user in USERS}
        self.seen_ids: set[int] = set()

    def run(self, awaitable: Any) -> Any:
        return self.loop.run_until_complete(awaitable)

    async def _empty_database(self) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(sa.text("DELETE FROM tasks"))

    def request(self, method: str, url: str, user: User, body: Any = None) -> httpx.Response:
        response: httpx.Response = self.run(
            self.client.request(method, url, json=body, headers=user.headers)
        )
        assert response.status_code < 500, response.text
        return response

    def store(self, user: User, response: httpx.Response, expected: dict[str, Any]) -> None:
        """Check a 200/201 body against the model's expectation, then remember it."""
        task = response.json()
        for key, value in expected.items():
            if key == "due_at":
                assert parse(task[key]) == value, (key, task[key], value)
            else:
                assert task[key] == value, (key, task[key], value)
        assert task["user_id"] == user.id
        previous = self.model[user.id].get(task["id"])
        if previous is not None:
            assert task["created_at"] == previous["created_at"]
            assert parse(task["updated_at"]) > parse(previous["updated_at"])  # type: ignore[operator]
        self.model[user.id][task["id"]] = task
        self.seen_ids.add(task["id"])

    def expect_missing(self, response: httpx.Response) -> None:
        assert response.status_code == 404, response.text
        assert response.headers["content-type"].startswith("application/problem+json")

    # -- rules -------------------------------------------------------------------------------

    @rule(user=st.sampled_from(USERS), data=st.data())
    def create(self, user: User, data: st.DataObject) -> None:
        optional = data.draw(st.sets(st.sampled_from(sorted(set(field_values) - {"title"}))))
        fields: dict[str, Any] = {"title": data.draw(titles)}
        fields |= {name: data.draw(field_values[name]) for name in sorted(optional)}
        response = self.request("POST", user.tasks, user, to_json(fields))
        assert response.status_code == 201, response.text
        assert response.json()["id"] not in self.seen_ids  # an id names one task, forever
        defaults: dict[str, Any] = {
            "description": None, "completed": False, "priority": "medium", "due_at": None,
            "tags": [],
        }  # fmt: skip
        self.store(user, response, defaults | fields)

    @precondition(lambda self: self.seen_ids)
    @rule(user=st.sampled_from(USERS), data=st.data(), method=st.sampled_from(["PUT", "PATCH"]))
    def update(self, user: User, data: st.DataObject, method: str) -> None:
        task_id = data.draw(st.sampled_from(sorted(self.seen_ids)))
        changed = data.draw(st.sets(st.sampled_from(sorted(field_values))))
        fields = {name: data.draw(field_values[name]) for name in sorted(changed)}
        if method == "PUT" and "title" not in fields:
            fields["title"] = data.draw(titles)
        response = self.request(method, user.task(task_id), user, to_json(fields))
        current = self.model[user.id].get(task_id)
        if current is None:
            return self.expect_missing(response)
        assert response.status_code == 200, response.text
        self.store(user, response, stored_fields(current) | fields)

    @precondition(lambda self: self.seen_ids)
    @rule(user=st.sampled_from(USERS), data=st.data(), value=st.none() | st.booleans())
    def complete(self, user: User, data: st.DataObject, value: bool | None) -> None:
        task_id = data.draw(st.sampled_from(sorted(self.seen_ids)))
        body = None if value is None else {"completed": value}
        response = self.request("PATCH", user.task(task_id) + "/complete", user, body)
        current = self.model[user.id].get(task_id)
        if current is None:
            return self.expect_missing(response)
        assert response.status_code == 200, response.text
        completed = (not current["completed"]) if value is None else value
        self.store(user, response, stored_fields(current) | {"completed": completed})

    @precondition(lambda self: self.seen_ids)
    @rule(user=st.sampled_from(USERS), data=st.data())
    def delete(self, user: User, data: st.DataObject) -> None:
        task_id = data.draw(st.sampled_from(sorted(self.seen_ids)))
        response = self.request("DELETE", user.task(task_id), user)
        if self.model[user.id].pop(task_id, None) is None:
            return self.expect_missing(response)
        assert response.status_code == 204, response.text

    @rule(
        user=st.sampled_from(USERS),
        status=st.sampled_from(["all", "pending", "completed"]),
        priority=st.none() | priorities,
        tag=st.lists(st.sampled_from(["a", "b", "Work", "ß"]), unique=True, max_size=2),
        q=st.none() | queries,
        sort=st.sampled_from(sorted(DEFAULT_DESCENDING)),
        order=st.sampled_from([None, "asc", "desc"]),
        skip=st.integers(0, 4),
        limit=st.integers(1, 6),
    )
    def list_tasks(
        self,
        user: User,
        status: str,
        priority: str | None,
        tag: list[str],
        q: str | None,
        sort: str,
        order: str | None,
        skip: int,
        limit: int,
    ) -> None:
        params: dict[str, Any] = {"status": status, "sort": sort, "skip": skip, "limit": limit,
                                  "tag": tag}  # fmt: skip
        for name, value in (("priority", priority), ("q", q), ("order", order)):
            if value is not None:
                params[name] = value
        response = self.run(self.client.get(user.tasks, params=params, headers=user.headers))
        assert response.status_code == 200, response.text
        matching = [
            task for task in self.model[user.id].values()
            if (status == "all" or task["completed"] is (status == "completed"))
            and (priority is None or task["priority"] == priority)
            and set(tag) <= set(task["tags"])
            and (q is None or fold(q) in fold(task["title"])
                 or fold(q) in fold(task["description"] or ""))
        ]  # fmt: skip
        descending = DEFAULT_DESCENDING[sort] if order is None else order == "desc"
        ordered = expected_order(matching, sort, descending)
        assert [task["id"] for task in response.json()] == ordered[skip : skip + limit], params
        assert response.headers["x-total-count"] == str(len(matching))

    @invariant()
    def task_counts_are_exact(self) -> None:
        """task_counts, which X-Total-Count reads, equals count(*) after every step."""
        stored, actual = self.run(self._counts())
        assert stored == actual

    async def _counts(self) -> tuple[dict[tuple[Any, ...], int], dict[tuple[Any, ...], int]]:
        async with self.engine.connect() as connection:
            stored = await connection.execute(
                sa.text("SELECT user_id, completed, priority, n FROM task_counts WHERE n > 0")
            )
            actual = await connection.execute(
                sa.text(
                    "SELECT user_id, completed, priority, count(*) FROM tasks "
                    "GROUP BY user_id, completed, priority"
                )
            )
            return (
                {(user, bool(done), rank): n for user, done, rank, n in stored},
                {(user, bool(done), rank): n for user, done, rank, n in actual},
            )

    def teardown(self) -> None:
        for user in USERS:
            response = self.run(
                self.client.get(
                    user.tasks,
                    params={"limit": 1000, "sort": "created_at", "order": "asc"},
                    headers=user.headers,
                )
            )
            assert response.status_code == 200
            assert response.json() == sorted(self.model[user.id].values(), key=lambda t: t["id"])


def stored_fields(task: dict[str, Any]) -> dict[str, Any]:
    """The client-set fields of a task in the model, due_at as a datetime."""
    fields = {key: task[key] for key in ("title", "description", "completed", "priority", "tags")}
    return fields | {"due_at": parse(task["due_at"])}


def expected_order(tasks: list[dict[str, Any]], sort: str, descending: bool) -> list[int]:
    def key(task: dict[str, Any]) -> Any:
        if sort == "priority":
            return RANK[task["priority"]]
        if sort == "title":
            return fold(task["title"])
        return parse(task[sort])

    present = [task for task in tasks if task[sort] is not None]
    missing = [task for task in tasks if task[sort] is None]  # only due_at can be null: last
    ordered = sorted(present, key=lambda task: (key(task), task["id"]), reverse=descending)
    ordered += sorted(missing, key=lambda task: task["id"], reverse=descending)
    return [task["id"] for task in ordered]


def test_random_operations_match_the_model(database_url: str) -> None:
    loop = asyncio.new_event_loop()
    app = create_app(api_settings(database_url))
    lifespan = app.router.lifespan_context(app)
    loop.run_until_complete(lifespan.__aenter__())
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
    try:
        TaskModel.client, TaskModel.engine, TaskModel.loop = client, app.state.engine, loop
        run_state_machine_as_test(
            TaskModel,
            settings=settings(
                max_examples=25,
                stateful_step_count=15,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
                derandomize=False,
            ),
        )
    finally:
        loop.run_until_complete(client.aclose())
        loop.run_until_complete(lifespan.__aexit__(None, None, None))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
