"""Database round trips per API operation on PostgreSQL, counted on the wire.

A small TCP proxy on loopback sits between the app's pool and PostgreSQL. A round trip is a
burst of bytes from the client after the server has spoken (or the first one): the client sent
something and had to wait for an answer before sending more. Several statements sent in one
psycopg pipeline count once; BEGIN, statement, COMMIT count three. Requests go through the real
HTTP API (httpx against the app), with a warm pool.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from backend.app import create_app
from tests.support import (
    PG_SKIP_REASON,
    Operation,
    User,
    api_settings,
    truncate_postgres,
    user_operations,
)

# Each operation runs this many times: past psycopg's prepare threshold (5 by default) on each
# of the pool's connections, so the count covers first executions and prepared ones.
REPEATS = 16
POOL_SIZE = 2
STEADY = 4  # the last executions of each operation: every statement prepared on every connection


@dataclass
class WireCounter:
    """Client bursts over every proxied connection."""

    bursts: int = 0
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


async def _pipe(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    on_data: Callable[[], None],
) -> None:
    try:
        while data := await reader.read(65536):
            on_data()
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


@contextlib.asynccontextmanager
async def wire_proxy(host: str, port: int) -> AsyncIterator[tuple[int, WireCounter]]:
    """A loopback proxy to host:port; yields its port and the counter."""
    counter = WireCounter()

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection(host, port)
        client_turn = [True]  # True: the next client bytes start a new round trip

        def from_client() -> None:
            if client_turn[0]:
                counter.bursts += 1
                client_turn[0] = False

        def from_server() -> None:
            client_turn[0] = True

        await asyncio.gather(
            _pipe(client_r, server_w, from_client), _pipe(server_r, client_w, from_server)
        )

    def spawn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.create_task(handle(reader, writer))
        counter.tasks.add(task)
        task.add_done_callback(counter.tasks.discard)

    server = await asyncio.start_server(spawn, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], counter
    finally:
        server.close()
        for task in list(counter.tasks):
            task.cancel()
        await asyncio.gather(*counter.tasks, return_exceptions=True)


@pytest.fixture(params=[5, None], ids=["prepared", "unprepared"])
async def proxied(
    request: pytest.FixtureRequest, migrated_postgres: str | None
) -> AsyncIterator[tuple[httpx.AsyncClient, WireCounter, FastAPI]]:
    if migrated_postgres is None:
        pytest.skip(PG_SKIP_REASON)
    truncate_postgres(migrated_postgres)
    url = make_url(migrated_postgres)
    async with wire_proxy(url.host or "127.0.0.1", url.port or 5432) as (port, counter):
        proxied_url = url.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
        settings = api_settings(proxied_url).model_copy(
            update={"db_pool_size": POOL_SIZE, "db_prepare_threshold": request.param}
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            await app.state.pool.wait(timeout=10)  # warm: connections made and configured
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                yield client, counter, app


async def _trips(counter: WireCounter, request: Awaitable[httpx.Response], status: int) -> int:
    before = counter.bursts
    response = await request
    assert response.status_code == status, response.text
    await asyncio.sleep(0)  # let the proxy forward anything still in flight
    return counter.bursts - before


async def _most_trips(
    counter: WireCounter, make: Callable[[int], Awaitable[httpx.Response]], status: int
) -> int:
    """The round trips of the operation on a warm pool (the most of its last executions).

    Before that, psycopg's first execution of a statement past the prepare threshold waits
    for the PREPARE's answer: one more round trip, once per statement and connection.
    """
    seen = [await _trips(counter, make(index), status) for index in range(REPEATS)]
    steady = max(seen[-STEADY:])
    assert sum(seen) <= steady * (REPEATS + POOL_SIZE), seen
    return steady


def _example(
    op: Operation, client: httpx.AsyncClient, user: User, ids: list[int]
) -> Callable[[int], Awaitable[httpx.Response]]:
    """The operation's example request, run `index`-th time on the `index`-th task."""

    def make(index: int) -> Awaitable[httpx.Response]:
        return op.call(client, user_id=user.id, task_id=ids[index], headers=user.headers)

    return make


def _listing(
    client: httpx.AsyncClient, user: User, params: dict[str, Any]
) -> Callable[[int], Awaitable[httpx.Response]]:
    def make(_: int) -> Awaitable[httpx.Response]:
        return client.get(user.tasks, params=params, headers=user.headers)

    return make


async def test_one_round_trip_per_operation(
    proxied: tuple[httpx.AsyncClient, WireCounter, FastAPI],
) -> None:
    client, counter, _ = proxied
    alice = User.named("alice")
    h = alice.headers

    async def create(**body: Any) -> dict[str, Any]:
        response = await client.post(alice.tasks, json={"title": "t", **body}, headers=h)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    tasks = [
        await create(tags=["a"], description="milk", due_at="2026-06-01T00:00:00Z")
        for _ in range(REPEATS * 2)
    ]
    ids = [task["id"] for task in tasks]
    trips: dict[str, int] = {}

    lists: dict[str, dict[str, Any]] = {
        "list": {},
        "list short page": {"limit": 100},
        "list full page": {"limit": 2},
        "list past the end": {"skip": 1000},
        "list status+priority": {"status": "pending", "priority": "medium", "limit": 2},
        "list q": {"q": "milk", "limit": 2},
        "list q short": {"q": "milk"},
        "list tag": {"tag": "a", "limit": 2},
        "list due range": {
            "due_after": "2026-01-01T00:00:00Z",
            "due_before": "2027-01-01T00:00:00Z",
            "limit": 2,
        },
        "list q past the end": {"q": "milk", "skip": 500},
    }
    for name, params in lists.items():
        trips[name] = await _most_trips(counter, _listing(client, alice, params), 200)
    # Every operation of the contract on a user's data, as its example request; deletes last
    # (each run deletes another of the first REPEATS tasks).
    operations = sorted(user_operations().values(), key=lambda op: op.method == "DELETE")
    for op in (op for op in operations if op.method != "DELETE"):
        trips[op.operation_id] = await _most_trips(
            counter, _example(op, client, alice, ids), op.success
        )
    trips["create with a new key"] = await _most_trips(
        counter,
        lambda i: client.post(
            alice.tasks, json={"title": "k"}, headers={**h, "Idempotency-Key": f"key-{i}"}
        ),
        201,
    )
    trips["create replayed"] = await _most_trips(
        counter,
        lambda i: client.post(
            alice.tasks, json={"title": "k"}, headers={**h, "Idempotency-Key": f"key-{i}"}
        ),
        201,
    )
    trips["patch with If-Match"] = await _most_trips(
        counter,
        lambda i: client.patch(
            alice.task(ids[i]), json={"title": "q"}, headers={**h, "If-Match": "*"}
        ),
        200,
    )
    for op in (op for op in operations if op.method == "DELETE"):
        trips[op.operation_id] = await _most_trips(
            counter, _example(op, client, alice, ids), op.success
        )
    trips["delete with If-Match"] = await _most_trips(
        counter,
        lambda i: client.delete(
            alice.task(ids[REPEATS + i]), headers={**h, "If-Match": f'"{ids[REPEATS + i]}.1"'}
        ),
        204,
    )
    trips["who am I"] = await _most_trips(counter, lambda _: client.get("/api/me", headers=h), 200)
    expected = {name: 1 for name in trips} | {"create with a new key": 2, "who am I": 0}
    assert trips == expected


async def test_misses_take_a_second_statement_at_most(
    proxied: tuple[httpx.AsyncClient, WireCounter, FastAPI],
) -> None:
    """A write that misses asks once more to tell 404 from 412; a quota refusal costs nothing."""
    client, counter, _ = proxied
    alice = User.named("alice")
    h = alice.headers
    created = await client.post(alice.tasks, json={"title": "t"}, headers=h)
    task = alice.task(created.json()["id"])
    stale = {**h, "If-Match": '"1.999"'}
    assert await _trips(counter, client.patch(task, json={"title": "x"}, headers=stale), 412) == 2
    assert await _trips(counter, client.delete(alice.task(10**12), headers=h), 404) == 2
    assert await _trips(counter, client.get(alice.task(10**12), headers=h), 404) == 1
