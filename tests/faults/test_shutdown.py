"""SIGTERM during a burst of writes: in-flight requests finish, every 2xx is stored, exit 0."""

from __future__ import annotations

import asyncio
import itertools
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg

from tests.support import User, libpq, pg_scalar, running_server, server_env

GRACEFUL_TIMEOUT = 15  # `todo-api serve --graceful-timeout` default, which start_server uses
HELD_KEY = "held-at-shutdown"


async def test_sigterm_finishes_in_flight_writes_and_exits_zero(
    pg_url: str, tmp_path: Path, alice: User, bob: User
) -> None:
    # The held request waits in the database for as long as the test needs: past the default
    # request deadline (which would rightly answer it 503) on a slow machine.
    env = server_env(
        pg_url, DB_POOL_SIZE="20", DB_REQUEST_DEADLINE_SECONDS="60", LOG_LEVEL="WARNING"
    )
    created: dict[str, int] = {}  # title -> id, for every 201
    failures: list[str] = []
    numbers = itertools.count()
    with running_server(env, tmp_path) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:

            async def create(title: str, key: str, user: User = alice) -> int | None:
                try:
                    response = await http.post(
                        user.tasks,
                        json={"title": title},
                        headers={**user.headers, "Idempotency-Key": key},
                    )
                except httpx.TransportError as exc:  # the server stopped taking requests
                    failures.append(type(exc).__name__)
                    return None
                if response.is_success:
                    assert response.status_code == 201, response.text
                    created[title] = response.json()["id"]
                else:
                    assert response.status_code == 503, response.text
                return response.status_code

            async def writer() -> None:
                while True:
                    n = next(numbers)
                    if await create(f"burst {n}", f"burst-{n}") is None:
                        return

            with psycopg.connect(libpq(pg_url)) as blocker:
                # An uncommitted claim of HELD_KEY makes the request with that key wait in
                # the database: it is certainly in flight when SIGTERM arrives. Another user's:
                # a waiting create holds its owner's quota lock, which would stall the burst.
                now = datetime.now(UTC)
                blocker.execute(
                    "INSERT INTO idempotency_keys (user_id, key, request_hash, created_at, "
                    "expires_at) VALUES (%s, %s, 'x', %s, %s)",
                    (bob.id, HELD_KEY, now, now + timedelta(hours=1)),
                )
                held = asyncio.create_task(create("held", HELD_KEY, bob))
                writers = [asyncio.create_task(writer()) for _ in range(6)]
                deadline = time.monotonic() + 15
                while len(created) < 20 or not _waiting(pg_url):
                    assert time.monotonic() < deadline, "the burst did not get going"
                    await asyncio.sleep(0.05)
                server.process.send_signal(signal.SIGTERM)
                signalled = time.monotonic()
                await asyncio.sleep(1.0)
                assert server.process.poll() is None, "exited with a request still in flight"
                blocker.rollback()  # the held request may now complete
            assert await held == 201, "the in-flight request was not completed"
            await asyncio.wait_for(asyncio.gather(*writers), timeout=GRACEFUL_TIMEOUT)
            returncode = await asyncio.to_thread(server.process.wait, GRACEFUL_TIMEOUT + 5)
            took = time.monotonic() - signalled
    assert returncode == 0, f"exit status {returncode}\n{server.log()[-3000:]}"
    assert took < GRACEFUL_TIMEOUT, f"shutdown took {took:.1f}s"
    assert failures, "the server kept accepting new requests after SIGTERM"
    # Every write that was acknowledged is stored, once.
    for title, task_id in created.items():
        assert pg_scalar(pg_url, "SELECT count(*) FROM tasks WHERE title = %s", (title,)) == 1
        assert pg_scalar(pg_url, "SELECT id FROM tasks WHERE title = %s", (title,)) == task_id
    assert pg_scalar(pg_url, "SELECT count(*) FROM tasks") >= len(created)
    assert pg_scalar(pg_url, "SELECT count(*) - count(DISTINCT title) FROM tasks") == 0


def _waiting(url: str) -> bool:
    return bool(
        pg_scalar(
            url,
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
    )
