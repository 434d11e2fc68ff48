"""Limits that keep one client or one slow query from taking the server down: 413 and 503."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest

from tests.support import (
    PG_SKIP_REASON,
    PROBLEM_JSON,
    PROBLEMS,
    LiveServer,
    User,
    assert_problem,
    libpq,
    pg_scalar,
    running_server,
    server_env,
)

DEFAULT_LIMIT = 64 * 1024


# -- request bodies over MAX_BODY_BYTES (default 64 KiB) ------------------------------------


@pytest.fixture(scope="module")
def sqlite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A real server with the default body limit (MAX_BODY_BYTES left unset)."""
    workdir = tmp_path_factory.mktemp("limits")
    with running_server(server_env(f"sqlite:///{workdir / 'todo.db'}"), workdir) as server:
        yield server


def _padded_body(size: int) -> bytes:
    """A valid create body of exactly `size` bytes (JSON whitespace is padding)."""
    start, end = b'{"title": "big"', b"}"
    return start + b" " * (size - len(start) - len(end)) + end


def _raw_exchange(
    server: LiveServer, head: bytes, chunks: list[bytes]
) -> tuple[int, dict[str, str], bytes]:
    """Send a request by hand and read the whole response (the server closes the connection)."""
    url = urlsplit(server.base_url)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(head)
        for chunk in chunks:
            sock.sendall(chunk)
        received = b""
        while data := sock.recv(65536):
            received += data
    header_block, _, body = received.partition(b"\r\n\r\n")
    status_line, *lines = header_block.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


def _head(user: User, extra: str) -> bytes:
    return (
        f"POST {user.tasks} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {user.token}\r\n"
        f"Content-Type: application/json\r\nX-Request-ID: limit-test\r\n{extra}\r\n"
    ).encode()


def _assert_too_large(status: int, headers: dict[str, str], body: bytes) -> None:
    assert status == 413, body
    assert headers["content-type"] == PROBLEM_JSON
    assert headers["connection"] == "close"
    assert headers["x-request-id"] == "limit-test"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == "private, no-cache"
    problem = json.loads(body)
    assert problem["type"] == PROBLEMS + "payload-too-large"
    assert problem["status"] == 413 and problem["request_id"] == "limit-test"
    assert str(DEFAULT_LIMIT) in problem["detail"]


async def _count(server: LiveServer, user: User) -> int:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        listed = await http.get(user.tasks, headers=user.headers)
    return int(listed.headers["x-total-count"])


async def test_body_at_the_limit_is_accepted_and_one_byte_more_is_413(
    sqlite_server: LiveServer, alice: User
) -> None:
    before = await _count(sqlite_server, alice)
    async with httpx.AsyncClient(base_url=sqlite_server.base_url, timeout=10) as http:
        headers = {**alice.headers, "Content-Type": "application/json"}
        fits = await http.post(alice.tasks, content=_padded_body(DEFAULT_LIMIT), headers=headers)
        assert fits.status_code == 201, fits.text
        over = await http.post(
            alice.tasks, content=_padded_body(DEFAULT_LIMIT + 1), headers=headers
        )
        assert_problem(over, 413, "payload-too-large")
    assert await _count(sqlite_server, alice) == before + 1


async def test_declared_content_length_over_the_limit_is_413_before_the_body_is_sent(
    sqlite_server: LiveServer, alice: User
) -> None:
    before = await _count(sqlite_server, alice)
    # Only the head is sent: the answer must not wait for a body that never comes.
    started = time.monotonic()
    status, headers, body = await asyncio.to_thread(
        _raw_exchange, sqlite_server, _head(alice, "Content-Length: 10000000\r\n"), []
    )
    assert time.monotonic() - started < 5
    _assert_too_large(status, headers, body)
    assert await _count(sqlite_server, alice) == before


async def test_chunked_body_over_the_limit_is_413(sqlite_server: LiveServer, alice: User) -> None:
    before = await _count(sqlite_server, alice)
    body = _padded_body(DEFAULT_LIMIT + 16 * 1024)
    pieces = [body[i : i + 16 * 1024] for i in range(0, len(body), 16 * 1024)]
    # Every chunk but the terminator: the server has to stop reading on its own.
    chunks = [f"{len(piece):x}\r\n".encode() + piece + b"\r\n" for piece in pieces]
    status, headers, answer = await asyncio.to_thread(
        _raw_exchange, sqlite_server, _head(alice, "Transfer-Encoding: chunked\r\n"), chunks
    )
    _assert_too_large(status, headers, answer)
    assert await _count(sqlite_server, alice) == before


async def test_chunked_body_under_the_limit_is_accepted(
    sqlite_server: LiveServer, alice: User
) -> None:
    before = await _count(sqlite_server, alice)

    async def stream() -> AsyncIterator[bytes]:
        body = _padded_body(DEFAULT_LIMIT - 10)
        for i in range(0, len(body), 8192):
            yield body[i : i + 8192]

    async with httpx.AsyncClient(base_url=sqlite_server.base_url, timeout=10) as http:
        created = await http.post(
            alice.tasks,
            content=stream(),
            headers={**alice.headers, "Content-Type": "application/json"},
        )
    assert created.status_code == 201, created.text
    assert created.request.headers["transfer-encoding"] == "chunked"
    assert await _count(sqlite_server, alice) == before + 1


# -- a busy or slow database: 503 quickly, never a hang or a 500 -----------------------------


def _wait_for_lock_waiters(url: str, count: int, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        waiting = pg_scalar(
            url,
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        if waiting >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"fewer than {count} sessions ended up waiting on the row lock")


async def _task_of(http: httpx.AsyncClient, user: User) -> tuple[int, str]:
    created = await http.post(user.tasks, json={"title": "Locked"}, headers=user.headers)
    assert created.status_code == 201
    return created.json()["id"], created.headers["etag"]


async def test_pool_exhaustion_is_a_quick_503(pg_url: str, tmp_path: Path, alice: User) -> None:
    env = server_env(
        pg_url, DB_POOL_SIZE="1", DB_MAX_OVERFLOW="0", DB_POOL_TIMEOUT_SECONDS="0.5",
        LOG_LEVEL="WARNING",
    )  # fmt: skip
    with running_server(env, tmp_path) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=20) as http:
            task_id, _ = await _task_of(http, alice)
            with psycopg.connect(libpq(pg_url)) as holder:
                holder.execute("SELECT id FROM tasks WHERE id = %s FOR UPDATE", (task_id,))
                # This request takes the pool's only connection and waits on the row lock.
                stuck = asyncio.create_task(
                    http.patch(alice.task(task_id), json={"title": "Later"}, headers=alice.headers)
                )
                await asyncio.to_thread(_wait_for_lock_waiters, pg_url, 1)
                for path in (alice.tasks, "/api/health/ready"):
                    started = time.monotonic()
                    response = await http.get(path, headers=alice.headers)
                    assert time.monotonic() - started < 3, "waited far beyond the pool timeout"
                    assert_problem(response, 503, "service-unavailable")
                    assert response.headers["retry-after"].isdigit()
                holder.rollback()
            finished = await stuck
            assert finished.status_code == 200, finished.text
            # The pool recovers once its connection is back.
            listed = await http.get(alice.tasks, headers=alice.headers)
            assert listed.status_code == 200 and listed.json()[0]["title"] == "Later"


@pytest.fixture(scope="module")
def short_statement_server(
    migrated_postgres: str | None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    if migrated_postgres is None:
        pytest.skip(PG_SKIP_REASON)
    env = server_env(migrated_postgres, DB_STATEMENT_TIMEOUT_MS="300", LOG_LEVEL="WARNING")
    with running_server(env, tmp_path_factory.mktemp("statement-timeout")) as server:
        yield server


@pytest.mark.parametrize("method", ["PATCH", "PUT", "DELETE", "complete"])
async def test_statement_timeout_is_503_and_the_task_is_untouched(
    short_statement_server: LiveServer, pg_url: str, alice: User, method: str
) -> None:
    async with httpx.AsyncClient(base_url=short_statement_server.base_url, timeout=20) as http:
        task_id, etag = await _task_of(http, alice)
        before = (await http.get(alice.task(task_id), headers=alice.headers)).json()
        with psycopg.connect(libpq(pg_url)) as holder:
            holder.execute("SELECT id FROM tasks WHERE id = %s FOR UPDATE", (task_id,))
            path, verb, body = {
                "PATCH": (alice.task(task_id), "PATCH", {"title": "Blocked"}),
                "PUT": (alice.task(task_id), "PUT", {"title": "Blocked"}),
                "DELETE": (alice.task(task_id), "DELETE", None),
                "complete": (alice.task(task_id) + "/complete", "PATCH", None),
            }[method]
            started = time.monotonic()
            response = await http.request(verb, path, json=body, headers=alice.headers)
            elapsed = time.monotonic() - started
            holder.rollback()
        assert_problem(response, 503, "service-unavailable")
        assert response.headers["retry-after"].isdigit()
        assert elapsed < 5, f"the statement timeout did not stop the wait ({elapsed:.1f}s)"
        after = await http.get(alice.task(task_id), headers=alice.headers)
        assert after.status_code == 200
        assert after.json() == before and after.headers["etag"] == etag
        # The connection whose statement was cancelled serves the next request normally.
        again = await http.patch(alice.task(task_id), json={"title": "Done"}, headers=alice.headers)
        assert again.status_code == 200, again.text
