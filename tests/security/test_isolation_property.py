"""Property: no sequence of Bob's requests reveals, changes or deletes anything of Alice's.

Hypothesis draws short sequences of any operation, on Bob's path, Alice's path or a stranger's,
with Alice's real task ids, ETags and Idempotency-Key mixed in, and loosely shaped bodies.
Alice's data is marked with unguessable strings, so any of them in a response to Bob is a leak.
Runs on SQLite and PostgreSQL (the `client` fixture); bounded to 30 examples.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.security.helpers import OPERATIONS, create_task, leaked_task_ids, marker, snapshot
from tests.support import User

ALICE_KEY = "alice-idempotency-key"
JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.text(max_size=12), st.floats(-1, 1)
)


@dataclass
class AliceData:
    """Alice's tasks and everything about them that must never reach Bob."""

    tasks: list[dict[str, Any]]
    etags: list[str]
    secrets: list[str]
    before: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ids(self) -> set[int]:
        return {t["id"] for t in self.tasks}


@pytest.fixture
async def alice_data(client: httpx.AsyncClient, alice: User, bob: User) -> AliceData:
    tags = [f"a-{uuid.uuid4().hex[:24]}" for _ in range(2)]
    tasks = [
        await create_task(
            client,
            alice,
            title=marker("alice"),
            description=marker("alice-note"),
            priority="high",
            tags=tags,
            due_at="2031-05-01T12:00:00Z",
        ),
        await create_task(client, alice, title=marker("alice"), tags=tags[:1]),
    ]
    keyed = await client.post(
        alice.tasks,
        json={"title": marker("alice-keyed")},
        headers={**alice.headers, "Idempotency-Key": ALICE_KEY},
    )
    assert keyed.status_code == 201
    tasks.append(keyed.json())
    done = await client.patch(alice.task(tasks[1]["id"]) + "/complete", headers=alice.headers)
    assert done.status_code == 200
    await create_task(client, bob, title="bob's first task")
    etags = [
        (await client.get(alice.task(t["id"]), headers=alice.headers)).headers["etag"]
        for t in tasks
    ]
    secrets = [t["title"] for t in tasks] + [tasks[0]["description"], *tags]
    return AliceData(tasks, etags, secrets, await snapshot(client, alice))


def _bodies(alice_ids: list[int]) -> st.SearchStrategy[Any]:
    fields = {
        "title": st.one_of(st.text(max_size=30), JSON_SCALARS),
        "description": st.one_of(st.text(max_size=30), JSON_SCALARS),
        "completed": st.one_of(st.booleans(), JSON_SCALARS),
        "priority": st.one_of(st.sampled_from(["low", "medium", "high"]), JSON_SCALARS),
        "tags": st.lists(st.text(min_size=1, max_size=8), max_size=3),
        "due_at": st.sampled_from([None, "2032-01-01T00:00:00Z", "2032-13-01", 5]),
        "user_id": st.sampled_from(["alice", "bob"]),
        "id": st.sampled_from(alice_ids),
    }
    return st.one_of(
        st.none(),
        st.fixed_dictionaries({}, optional=fields),
        st.fixed_dictionaries({"title": st.text(min_size=1, max_size=20)}),
        JSON_SCALARS,
        st.lists(JSON_SCALARS, max_size=2),
    )


def _list_params(data: AliceData) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {},
        optional={
            "q": st.one_of(st.sampled_from(data.secrets), st.text(min_size=1, max_size=6)),
            "tag": st.sampled_from(data.secrets),
            "status": st.sampled_from(["all", "pending", "completed"]),
            "priority": st.sampled_from(["low", "medium", "high"]),
            "sort": st.sampled_from(["created_at", "updated_at", "priority", "title", "due_at"]),
            "limit": st.integers(1, 1000),
            "skip": st.integers(0, 3),
        },
    )


def _headers(data: AliceData) -> st.SearchStrategy[dict[str, str]]:
    return st.fixed_dictionaries(
        {},
        optional={
            "If-Match": st.sampled_from(["*", *data.etags]),
            "If-None-Match": st.sampled_from(["*", *data.etags]),
            "Idempotency-Key": st.just(ALICE_KEY),
        },
    )


def _assert_nothing_of_alice(response: httpx.Response, data: AliceData) -> None:
    exposed = response.text + "\n" + "\n".join(response.headers.values())
    for secret in data.secrets:
        assert secret not in exposed, f"leaked {secret!r}: {response.status_code} {response.text}"
    for etag in data.etags:
        assert response.headers.get("etag") != etag
    if "json" in response.headers.get("content-type", "") and response.content:
        document = response.json()
        assert not leaked_task_ids(document, data.ids), response.text
        assert '"user_id":"alice"' not in response.text.replace(" ", "")


@settings(
    max_examples=30,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(draw=st.data())
async def test_random_requests_by_bob_never_touch_alice(
    client: httpx.AsyncClient, alice: User, bob: User, alice_data: AliceData, draw: st.DataObject
) -> None:
    """Threat: any combination of operation, path, id, precondition, idempotency key and body
    that lets one user read, write or delete another user's tasks.

    Bob's requests on Alice's (or a stranger's) path are 403 whatever else they carry; on his
    own path Alice's ids are 404 (422/400 for bad input); nothing of hers is ever in a
    response, and her list, read by her, stays exactly as it was.
    """
    alice_ids = sorted(alice_data.ids)
    bob_ids = [t["id"] for t in await snapshot(client, bob)]
    for _ in range(draw.draw(st.integers(1, 5), label="steps")):
        op = OPERATIONS[draw.draw(st.sampled_from(list(OPERATIONS)), label="operation")]
        owner = draw.draw(st.sampled_from(["bob", "bob", "alice", "carol"]), label="owner")
        # Bob's ids are picked by position: the set grows across examples, and Hypothesis
        # needs the shape of what it draws to stay the same when it replays a failure.
        pick = draw.draw(
            st.one_of(
                st.sampled_from(alice_ids),
                st.tuples(st.just("bob"), st.integers(0, 1000)),
                st.integers(-2, 50),
                st.sampled_from([2**63, "abc", "1e3"]),
            ),
            label="task_id",
        )
        task_id = bob_ids[pick[1] % len(bob_ids)] if isinstance(pick, tuple) else pick
        body = draw.draw(_bodies(alice_ids), label="body") if op.method != "GET" else None
        params = draw.draw(_list_params(alice_data), label="params") if op.name == "list" else {}
        headers = {**draw.draw(_headers(alice_data), label="headers"), **bob.headers}
        response = await client.request(
            op.method,
            op.url(owner, task_id),
            params=params,
            headers=headers,
            **({} if body is None else {"json": body}),
        )
        assert response.status_code < 500, response.text
        if owner != "bob":
            assert response.status_code == 403, response.text
        elif op.on_task and task_id in alice_data.ids:
            assert response.status_code in {400, 404, 422}, response.text
        _assert_nothing_of_alice(response, alice_data)
        if op.name == "create" and response.status_code == 201 and owner == "bob":
            assert response.json()["user_id"] == "bob"
            bob_ids.append(response.json()["id"])
    assert await snapshot(client, alice) == alice_data.before
