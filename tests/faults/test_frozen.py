"""A database that freezes (SIGSTOP) instead of going away: 503 within the deadline, no hang.

Its connections stay open and nothing answers on them, so only our own deadline, not a
connection error, can end a request. Runs on a private PostgreSQL cluster.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest

from backend.db import connection_parameters
from backend.settings import Settings
from tests.faults.cluster import PrivateCluster, create_cluster, unavailable_reason
from tests.faults.test_outage import Outcome, _create, migrate
from tests.support import PROBLEM_JSON, PROBLEMS, User, pg_scalar, running_server, server_env

DEADLINE = 2.0
FROZEN_SECONDS = 5.0  # well past the deadline
SLACK = 1.5  # scheduling on a busy two-core machine
RECOVERY_BOUND = 8.0  # from the thaw to ready and writes succeeding again


@dataclass
class Probe:
    path: str
    started: float
    elapsed: float
    status: int | str


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivateCluster]:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    private = create_cluster()
    try:
        yield private
    finally:
        private.destroy()


async def test_frozen_database_gives_503_within_the_deadline_and_recovers(
    cluster: PrivateCluster, tmp_path: Path, alice: User
) -> None:
    url = cluster.create_database("frozen")
    migrate(url, tmp_path)
    env = server_env(
        url,
        DB_REQUEST_DEADLINE_SECONDS=str(DEADLINE),
        DB_POOL_SIZE="4",
        DB_MAX_OVERFLOW="0",
        DB_POOL_TIMEOUT_SECONDS="2",
        DB_CONNECT_TIMEOUT_SECONDS="1",
        LOG_LEVEL="ERROR",
    )
    outcomes: list[Outcome] = []
    reads: list[Probe] = []
    probes: list[Probe] = []
    numbers = itertools.count()
    finished = asyncio.Event()
    frozen_at = thawed_at = float("inf")

    with running_server(env, tmp_path) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30.0) as http:

            async def get(path: str, into: list[Probe], **kwargs: object) -> None:
                started = time.monotonic()
                try:
                    status: int | str = (await http.get(path, **kwargs)).status_code  # type: ignore[arg-type]
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                into.append(Probe(path, started, time.monotonic() - started, status))

            async def writer() -> None:
                while not finished.is_set():
                    n = next(numbers)
                    outcomes.append(await _create(http, alice, f"key-{n}", f"task {n}"))
                    await asyncio.sleep(0.05)

            async def reader() -> None:
                while not finished.is_set():
                    await get(alice.tasks, reads, headers=alice.headers)
                    await asyncio.sleep(0.05)

            async def prober(path: str) -> None:
                while not finished.is_set():
                    await get(path, probes)
                    await asyncio.sleep(0.1)

            def created_since(moment: float) -> int:
                return sum(1 for o in outcomes if o.status == 201 and o.started > moment)

            async def wait_for(condition: object, seconds: float, what: str) -> None:
                deadline = time.monotonic() + seconds
                while not condition():  # type: ignore[operator]
                    assert time.monotonic() < deadline, f"timed out waiting for {what}"
                    await asyncio.sleep(0.05)

            tasks = [asyncio.create_task(writer()) for _ in range(3)]
            tasks += [asyncio.create_task(reader()) for _ in range(2)]
            tasks += [asyncio.create_task(prober(p)) for p in ("/api/health", "/api/health/ready")]
            try:
                await wait_for(lambda: created_since(0) >= 10, 15, "writes before the freeze")
                frozen_at = time.monotonic()
                cluster.freeze()
                try:
                    await asyncio.sleep(FROZEN_SECONDS)
                finally:
                    cluster.thaw()
                thawed_at = time.monotonic()
                await wait_for(
                    lambda: (
                        created_since(thawed_at) >= 5
                        and any(
                            p.started > thawed_at and p.status == 200
                            for p in probes
                            if p.path == "/api/health/ready"
                        )
                    ),
                    RECOVERY_BOUND,
                    "the service to recover after the thaw",
                )
            finally:
                finished.set()
                await asyncio.gather(*tasks)
            assert server.process.poll() is None, "the server had to be restarted"

            # -- every request answered within the deadline: 503 while frozen ----------------
            assert not [o for o in outcomes if o.error], "requests failed at the HTTP level"
            assert {o.status for o in outcomes} <= {201, 503}
            assert {r.status for r in reads} <= {200, 503}
            slowest = max([o.elapsed for o in outcomes] + [r.elapsed for r in reads])
            assert slowest < DEADLINE + SLACK, f"a request took {slowest:.1f}s"
            during = [o for o in outcomes if frozen_at < o.started < thawed_at - DEADLINE - SLACK]
            reads_during = [
                r for r in reads if frozen_at < r.started < thawed_at - DEADLINE - SLACK
            ]
            assert during and reads_during, "no request was made while the database was frozen"
            assert all(o.status == 503 for o in during), "a write succeeded on a frozen database"
            assert all(r.status == 503 for r in reads_during)
            for outcome in (o for o in outcomes if o.status == 503):
                assert outcome.content_type == PROBLEM_JSON
                assert outcome.problem_type == PROBLEMS + "service-unavailable"
                assert outcome.retry_after is not None and outcome.retry_after.isdigit()

            # -- liveness stays fast, readiness says 503 --------------------------------------
            frozen = [
                p for p in probes if frozen_at < p.started and p.started + p.elapsed < thawed_at
            ]
            live = [p for p in frozen if p.path == "/api/health"]
            ready = [p for p in frozen if p.path == "/api/health/ready"]
            assert live and all(p.status == 200 and p.elapsed < 0.5 for p in live), live
            late_ready = [p for p in ready if p.started > frozen_at + SLACK]
            assert late_ready and all(p.status == 503 for p in late_ready), late_ready
            assert all(p.elapsed < DEADLINE + SLACK for p in ready)

            # -- nothing acknowledged lost; unknown outcomes retried with their key -----------
            limit = asyncio.Semaphore(8)

            async def retry(original: Outcome) -> tuple[Outcome, Outcome]:
                async with limit:
                    return original, await _create(http, alice, original.key, original.title)

            for original, again in await asyncio.gather(*(retry(o) for o in outcomes)):
                assert again.status == 201, (original, again)
                if not original.unknown:
                    assert again.task_id == original.task_id, "a replay returned another task"

    attempted = len(outcomes)
    assert pg_scalar(url, "SELECT count(*) FROM tasks") == attempted
    assert pg_scalar(url, "SELECT count(DISTINCT title) FROM tasks") == attempted


def test_connections_carry_keepalives_and_tcp_user_timeout(cluster: PrivateCluster) -> None:
    """The kernel's own timers are set on the pool's sockets, as the settings say."""
    settings = Settings(
        _env_file=None,
        database_url=cluster.url(),
        db_keepalives_idle_seconds=7,
        db_tcp_user_timeout_ms=4000,
    )
    with psycopg.connect(cluster.url(), **connection_parameters(settings)) as connection:
        sock = socket.socket(fileno=os.dup(connection.pgconn.socket))
        try:
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 7
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == 5
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 3
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 4000
        finally:
            sock.close()
