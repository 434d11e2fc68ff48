"""Ceiling (b) is independent of the API's code, serves like `todo-api serve`, and does the
API's work: the same rows in the same JSON for the same requests, on real PostgreSQL."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from backend.app import create_app
from tests.support import PG_SKIP_REASON, ROOT, User, api_settings, free_port, truncate_postgres
from tools.bench import listeners
from tools.bench_ceiling import FILTER_QUERY, SEARCH_QUERY, listener

CEILING = (sys.executable, "-m", "tools.bench_ceiling")


def test_ceiling_imports_none_of_the_api() -> None:
    """Ceiling (b) must not measure our own code: neither backend nor generated is loaded."""
    probe = (
        "import sys, tools.bench_ceiling as c; c.sql_app; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'backend', 'generated'}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.strip() == "[]"


def test_a_listener_per_worker_with_nodelay_on_accepted_sockets() -> None:
    first = listener("127.0.0.1", 0)
    port = first.getsockname()[1]
    second = listener("127.0.0.1", port)  # SO_REUSEPORT: a second worker's own listener
    try:
        assert listeners(port) == 2
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            first.settimeout(0.2)
            second.settimeout(0.2)
            accepted = None
            for sock in (first, second) * 10:  # the kernel picks one of the two
                try:
                    accepted, _ = sock.accept()
                    break
                except TimeoutError:
                    continue
            assert accepted is not None
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        first.close()
        second.close()


@pytest.fixture
def pg_url(migrated_postgres: str | None) -> str:
    if migrated_postgres is None:
        pytest.skip(PG_SKIP_REASON)
    truncate_postgres(migrated_postgres)
    return migrated_postgres


@pytest.fixture
def ceiling(pg_url: str, tmp_path: Path) -> Iterator[str]:
    """`python -m tools.bench_ceiling sql --workers 2` on the test database."""
    port = free_port()
    log = tmp_path / "ceiling.log"
    env = {**os.environ, "DATABASE_URL": pg_url, "PYTHONPATH": str(ROOT)}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*CEILING, "sql", "--workers", "2", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while listeners(port) < 2:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        assert process.wait(timeout=20) == 128 + 15, log.read_text()  # stopped on SIGTERM


@pytest.fixture
async def api(pg_url: str) -> AsyncIterator[httpx.AsyncClient]:
    application = create_app(api_settings(pg_url))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


@pytest.mark.postgres
async def test_sql_ceiling_does_the_apis_work(api: httpx.AsyncClient, ceiling: str) -> None:
    alice = User.named("alice")
    for n in range(3):
        created = await api.post(
            alice.tasks,
            json={"title": f"Buy milk {n}", "priority": "high", "tags": ["home"]},
            headers=alice.headers,
        )
        assert created.status_code == 201
    await api.post(alice.tasks, json={"title": "Other"}, headers=alice.headers)
    task_id = created.json()["id"]
    async with httpx.AsyncClient(base_url=ceiling, headers=alice.headers) as raw:
        for path in (alice.task(task_id), alice.tasks, f"{alice.tasks}?{FILTER_QUERY}"):
            mine, theirs = await raw.get(path), await api.get(path, headers=alice.headers)
            assert mine.status_code == theirs.status_code == 200
            assert mine.json() == theirs.json(), path
            for header in ("etag", "x-total-count"):
                assert mine.headers.get(header) == theirs.headers.get(header), (path, header)
        searched = await raw.get(f"{alice.tasks}?{SEARCH_QUERY}")
        assert searched.headers["x-total-count"] == "3"
        assert (
            searched.json()
            == (await api.get(f"{alice.tasks}?{SEARCH_QUERY}", headers=alice.headers)).json()
        )

        # Writes through the ceiling are what the API reads back.
        done = await raw.patch(f"{alice.task(task_id)}/complete")
        assert done.status_code == 200 and done.json()["completed"] is True
        assert done.headers["etag"] == f'"{task_id}.2"'
        replaced = await raw.put(
            alice.task(task_id),
            json={"title": "Replaced", "completed": False, "priority": "low", "tags": ["x"]},
        )
        new = await raw.post(
            alice.tasks,
            json={"title": "Straße", "description": "D", "due_at": "2030-01-01T09:00:00Z"},
        )
        assert new.status_code == 201
        assert new.headers["location"] == alice.task(new.json()["id"])
        for answer in (replaced, new):
            stored = await api.get(alice.task(answer.json()["id"]), headers=alice.headers)
            assert answer.json() == stored.json()
            assert answer.headers["etag"] == stored.headers["etag"]
        assert (await api.get(f"{alice.tasks}?q=STRASSE", headers=alice.headers)).json()

        assert (await raw.delete(alice.task(task_id))).status_code == 204
        assert (await api.get(alice.task(task_id), headers=alice.headers)).status_code == 404
        assert (await raw.get(alice.task(task_id))).status_code == 404
        # another user's task is a missing one (statements filter by the path's user; tokens
        # are not verified), and a request without a token is refused
        bob = User.named("bob")
        assert (await raw.get(bob.task(new.json()["id"]), headers=bob.headers)).status_code == 404
        assert (await raw.get(alice.tasks, headers={"Authorization": ""})).status_code == 401
