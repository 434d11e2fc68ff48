"""A database outage under a stream of writes: 503s, readiness, recovery, no lost or double writes.

Runs against a private PostgreSQL cluster (tests/faults/cluster.py) that is stopped for a
couple of seconds while `todo-api serve` keeps running.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.faults.cluster import PrivateCluster, create_cluster, unavailable_reason
from tests.support import PROBLEM_JSON, PROBLEMS, User, pg_scalar, running_server, server_env

WRITERS = 3
PAUSE = 0.04  # between one writer's requests: a steady stream, not a flood
OUTAGE_SECONDS = 2.0
CLIENT_TIMEOUT = 10.0
# connect timeout 1 s + pool timeout 1 s + statement timeout 2 s, plus scheduling slack on a
# busy two-core machine: no request may take longer than this.
SERVER_BOUND = 6.0


@dataclass
class Outcome:
    key: str
    title: str
    started: float
    elapsed: float
    status: int | None = None
    task_id: int | None = None
    error: str | None = None
    retry_after: str | None = None
    problem_type: str | None = None
    content_type: str | None = None

    @property
    def unknown(self) -> bool:
        """The client cannot tell whether the task was stored."""
        return self.status != 201


@dataclass
class Window:
    down_started: float = float("inf")
    down: float = float("inf")  # pg_ctl stop returned: the database is gone
    up_started: float = float("inf")
    up: float = float("inf")  # pg_ctl start returned


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


def _todo_api() -> str:
    return shutil.which("todo-api", path=str(Path(sys.executable).parent)) or "todo-api"


def migrate(url: str, workdir: Path) -> None:
    done = subprocess.run(
        [_todo_api(), "migrate"],
        env={**os.environ, **server_env(url)},
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


async def _create(http: httpx.AsyncClient, user: User, key: str, title: str) -> Outcome:
    started = time.monotonic()
    outcome = Outcome(key=key, title=title, started=started, elapsed=0.0)
    try:
        response = await http.post(
            user.tasks, json={"title": title}, headers={**user.headers, "Idempotency-Key": key}
        )
    except httpx.HTTPError as exc:
        outcome.error = f"{type(exc).__name__}: {exc}"
    else:
        outcome.status = response.status_code
        outcome.content_type = response.headers.get("content-type")
        outcome.retry_after = response.headers.get("retry-after")
        if response.status_code == 201:
            outcome.task_id = response.json()["id"]
        elif outcome.content_type == PROBLEM_JSON:
            outcome.problem_type = response.json().get("type")
    outcome.elapsed = time.monotonic() - started
    return outcome


async def test_outage_gives_503_then_service_resumes_without_lost_or_double_writes(
    cluster: PrivateCluster, tmp_path: Path, alice: User
) -> None:
    url = cluster.create_database("outage")
    migrate(url, tmp_path)
    env = server_env(
        url,
        DB_CONNECT_TIMEOUT_SECONDS="1",
        DB_POOL_TIMEOUT_SECONDS="1",
        DB_STATEMENT_TIMEOUT_MS="2000",
        LOG_LEVEL="WARNING",
    )
    outcomes: list[Outcome] = []
    probes: list[tuple[float, float, int | str]] = []
    window = Window()
    numbers = itertools.count()
    finished = asyncio.Event()

    with running_server(env, tmp_path) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=CLIENT_TIMEOUT) as http:

            async def writer() -> None:
                while not finished.is_set():
                    n = next(numbers)
                    outcomes.append(await _create(http, alice, f"key-{n}", f"task {n}"))
                    await asyncio.sleep(PAUSE)

            async def prober() -> None:
                while not finished.is_set():
                    started = time.monotonic()
                    try:
                        status: int | str = (await http.get("/api/health/ready")).status_code
                    except httpx.HTTPError as exc:
                        status = type(exc).__name__
                    probes.append((started, time.monotonic(), status))
                    await asyncio.sleep(0.1)

            def created_since(moment: float) -> int:
                return sum(1 for o in outcomes if o.status == 201 and o.started > moment)

            async def wait_for(condition: object, seconds: float, what: str) -> None:
                deadline = time.monotonic() + seconds
                while not condition():  # type: ignore[operator]
                    assert time.monotonic() < deadline, f"timed out waiting for {what}"
                    await asyncio.sleep(0.05)

            workers = [asyncio.create_task(writer()) for _ in range(WRITERS)]
            workers.append(asyncio.create_task(prober()))
            try:
                await wait_for(lambda: created_since(0) >= 10, 15, "writes before the outage")
                window.down_started = time.monotonic()
                await asyncio.to_thread(cluster.stop, "fast")
                window.down = time.monotonic()
                await asyncio.sleep(OUTAGE_SECONDS)
                window.up_started = time.monotonic()
                await asyncio.to_thread(cluster.start)
                window.up = time.monotonic()
                await wait_for(
                    lambda: (
                        created_since(window.up) >= 10
                        and any(p[0] > window.up and p[2] == 200 for p in probes)
                    ),
                    15,
                    "the service to resume after the database came back",
                )
            finally:
                finished.set()
                await asyncio.gather(*workers)
            assert server.process.poll() is None, "the server had to be restarted"

            # -- what clients saw --------------------------------------------------------
            assert not [o for o in outcomes if o.error], "requests failed at the HTTP level"
            statuses = {o.status for o in outcomes}
            assert statuses <= {201, 503}, f"unexpected statuses {statuses - {201, 503}}"
            slowest = max(o.elapsed for o in outcomes)
            assert slowest < SERVER_BOUND, f"a request took {slowest:.1f}s (hang)"
            unavailable = [o for o in outcomes if o.status == 503]
            for outcome in unavailable:
                assert outcome.content_type == PROBLEM_JSON
                assert outcome.problem_type == PROBLEMS + "service-unavailable"
                assert outcome.retry_after is not None and outcome.retry_after.isdigit()
            during = [o for o in outcomes if window.down < o.started < window.up_started - 0.05]
            assert during, "no request was made while the database was down"
            assert all(o.status == 503 for o in during), "a request succeeded with no database"

            down_probes = [p for p in probes if window.down < p[0] and p[1] < window.up_started]
            assert down_probes and all(p[2] == 503 for p in down_probes), down_probes
            assert probes[-1][2] == 200, probes[-5:]

            # -- every unknown outcome is retried with its key -------------------------------
            limit = asyncio.Semaphore(8)

            async def retry(original: Outcome) -> tuple[Outcome, Outcome]:
                async with limit:
                    return original, await _create(http, alice, original.key, original.title)

            retried = await asyncio.gather(*(retry(o) for o in outcomes))
            for original, again in retried:
                assert again.status == 201, (original, again)
                if not original.unknown:
                    assert again.task_id == original.task_id, "a replay returned another task"

    # -- what was stored: every key's task exactly once --------------------------------------
    attempted = len(outcomes)
    assert pg_scalar(url, "SELECT count(*) FROM tasks") == attempted
    assert pg_scalar(url, "SELECT count(DISTINCT title) FROM tasks") == attempted
    assert pg_scalar(url, "SELECT count(*) FROM idempotency_keys") == attempted
    assert (
        pg_scalar(
            url,
            "SELECT count(*) FROM idempotency_keys k JOIN tasks t ON t.id = k.task_id "
            "WHERE t.title = 'task ' || substr(k.key, 5)",
        )
        == attempted
    )
    assert len(unavailable) >= 1 and created_since(window.up) >= 10
