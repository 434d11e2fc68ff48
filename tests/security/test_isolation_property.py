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
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.security.helpers import OPERATIONS, leaked_task_ids, marker
from tests.support import User, create_task, snapshot

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


# Strategies are static: references to stored data are ("alice" | "bob" | "secret" | "etag",
# position) pairs resolved at run time, so Hypothesis can replay and shrink a failing plan
# even though the database (Bob's own tasks) grows from one example to the next.
Ref = tuple[str, int]
REF_INDEX = st.integers(0, 100)


def _ref(kind: str) -> st.SearchStrategy[Ref]:
    return st.tuples(st.just(kind), REF_INDEX)


BODY = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {},
        optional={
            "title": st.one_of(st.text(max_size=30), JSON_SCALARS),
            "description": st.one_of(st.text(max_size=30), JSON_SCALARS),
            "completed": st.one_of(st.booleans(), JSON_SCALARS),
            "priority": st.one_of(st.sampled_from(["low", "medium", "high"]), JSON_SCALARS),
            "tags": st.lists(st.text(min_size=1, max_size=8), max_size=3),
            "due_at": st.sampled_from([None, "2032-01-01T00:00:00Z", "2032-13-01", 5]),
            "user_id": st.sampled_from(["alice", "bob"]),
            "id": st.integers(1, 10),
        },
    ),
    st.fixed_dictionaries({"title": st.text(min_size=1, max_size=20)}),
    JSON_SCALARS,
    st.lists(JSON_SCALARS, max_size=2),
)
LIST_PARAMS = st.fixed_dictionaries(
    {},
    optional={
        "q": st.one_of(_ref("secret"), st.text(min_size=1, max_size=6)),
        "tag": _ref("secret"),
        "status": st.sampled_from(["all", "pending", "completed"]),
        "priority": st.sampled_from(["low", "medium", "high"]),
        "sort": st.sampled_from(["created_at", "updated_at", "priority", "title", "due_at"]),
        "limit": st.integers(1, 1000),
        "skip": st.integers(0, 3),
    },
)
EXTRA_HEADERS = st.fixed_dictionaries(
    {},
    optional={
        "If-Match": st.one_of(st.just("*"), _ref("etag")),
        "If-None-Match": st.one_of(st.just("*"), _ref("etag")),
        "Idempotency-Key": st.just(ALICE_KEY),
    },
)
TARGET = st.one_of(
    _ref("alice"),
    _ref("bob"),
    st.integers(-2, 50),
    st.sampled_from([2**63, "abc", "1e3"]),
)


@dataclass(frozen=True)
class Step:
    operation: str
    owner: str
    target: Ref | int | str
    body: Any
    params: dict[str, Any]
    headers: dict[str, Any]


STEPS = st.lists(
    st.builds(
        Step,
        operation=st.sampled_from(list(OPERATIONS)),
        owner=st.sampled_from(["bob", "bob", "alice", "carol"]),
        target=TARGET,
        body=BODY,
        params=LIST_PARAMS,
        headers=EXTRA_HEADERS,
    ),
    min_size=1,
    max_size=5,
)


def _resolve(value: Any, data: AliceData, bob_ids: list[int]) -> Any:
    if not (isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str)):
        return value
    kind, index = value
    pool: list[Any] = {
        "alice": [t["id"] for t in data.tasks],
        "bob": bob_ids,
        "secret": data.secrets,
        "etag": data.etags,
    }[kind]
    return pool[index % len(pool)] if pool else 999_999  # Bob may have deleted all of his


def _assert_nothing_of_alice(response: httpx.Response, data: AliceData) -> None:
    exposed = response.text + "\n" + "\n".join(response.headers.values())
    # Bob may search for Alice's strings; his own query coming back (e.g. in Link) is no leak.
    sent = str(response.request.url) + response.request.content.decode("utf-8", "replace")
    for secret in data.secrets:
        if secret in sent:
            continue
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
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],  # no slow "explain"
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=STEPS)
async def test_random_requests_by_bob_never_touch_alice(
    client: httpx.AsyncClient, alice: User, bob: User, alice_data: AliceData, steps: list[Step]
) -> None:
    """Threat: any combination of operation, path, id, precondition, idempotency key and body
    that lets one user read, write or delete another user's tasks.

    Bob's requests on Alice's (or a stranger's) path are 403 whatever else they carry; on his
    own path Alice's ids are 404 (422/400 for bad input); nothing of hers is ever in a
    response, and her list, read by her, stays exactly as it was.
    """
    bob_ids = [t["id"] for t in await snapshot(client, bob)]
    for step in steps:
        op = OPERATIONS[step.operation]
        task_id = _resolve(step.target, alice_data, bob_ids)
        params = (
            {k: _resolve(v, alice_data, bob_ids) for k, v in step.params.items()}
            if op.path.endswith("/tasks") and not op.writes
            else {}
        )
        extra = {k: _resolve(v, alice_data, bob_ids) for k, v in step.headers.items()}
        body = None if op.method == "GET" else step.body
        response = await client.request(
            op.method,
            op.url(user_id=step.owner, task_id=task_id),
            params=params,
            headers={**extra, **bob.headers},
            **({} if body is None else {"json": body}),
        )
        assert response.status_code < 500, response.text
        if step.owner != "bob":
            assert response.status_code == 403, response.text
        elif op.on_task and task_id in alice_data.ids:
            assert response.status_code in {400, 404, 422}, response.text
        _assert_nothing_of_alice(response, alice_data)
        if op.method == "POST" and response.status_code == 201 and step.owner == "bob":
            assert response.json()["user_id"] == "bob"
            bob_ids.append(response.json()["id"])
    assert await snapshot(client, alice) == alice_data.before
