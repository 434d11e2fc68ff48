"""The API through a real PgBouncer in transaction mode (deploy/pgbouncer.ini), as Neon runs it.

PgBouncer 1.18 (Debian's) lends a server connection per transaction and knows nothing of
prepared statements, so the API must run with `DB_PREPARE_THRESHOLD=` (empty) and take its
connection settings from the role (`DB_SESSION_SETUP=false`, deploy/roles.sql).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.faults.cluster import PrivateCluster, create_cluster, unavailable_reason
from tests.faults.test_outage import migrate
from tests.support import User, libpq, pg_scalar, running_server, server_env
from tools.drill import PgBouncer

ROLE_TIMEOUT = "7s"


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivateCluster]:
    reason = unavailable_reason() or (
        None
        if shutil.which("pgbouncer")
        else "pgbouncer is not installed (apt-get install pgbouncer)"
    )
    if reason is not None:
        pytest.skip(reason)
    private = create_cluster()
    try:
        yield private
    finally:
        private.destroy()


@pytest.fixture
def pooler(cluster: PrivateCluster, request: pytest.FixtureRequest) -> Iterator[PgBouncer]:
    """A database owned by the API's role (settings as deploy/roles.sql), behind PgBouncer."""
    name = "pooled_" + request.node.name.removeprefix("test_")[:40]
    with psycopg.connect(cluster.url(), autocommit=True) as connection:
        connection.execute(
            "DO $$BEGIN CREATE ROLE todo_api LOGIN; "
            "EXCEPTION WHEN duplicate_object THEN NULL; END$$"
        )
        connection.execute(f"ALTER ROLE todo_api SET statement_timeout = '{ROLE_TIMEOUT}'")
        connection.execute("ALTER ROLE todo_api SET timezone = 'UTC'")
        connection.execute(f'CREATE DATABASE "{name}" OWNER todo_api')
    direct = f"postgresql://todo_api@127.0.0.1:{cluster.port}/{name}"
    workdir = Path(tempfile.mkdtemp(prefix="todo-pgbouncer-"))
    workdir.chmod(0o755)
    migrate(direct, workdir)
    bouncer = PgBouncer(direct, workdir)
    bouncer.start()
    try:
        yield bouncer
    finally:
        bouncer.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def pooled_env(bouncer: PgBouncer, prepare_threshold: str) -> dict[str, str]:
    return server_env(
        bouncer.url,
        DB_PREPARE_THRESHOLD=prepare_threshold,
        DB_SESSION_SETUP="false",
        DB_POOL_SIZE="4",
        DB_MAX_OVERFLOW="0",
        LOG_LEVEL="WARNING",
    )


async def _mixed(base_url: str, user: User, count: int) -> list[int]:
    """`count` creates and as many lists and reads at once; their statuses."""
    async with httpx.AsyncClient(base_url=base_url, timeout=20.0) as http:

        async def create_then_read(n: int) -> list[int]:
            created = await http.post(
                user.tasks, json={"title": f"pooled {n}"}, headers=user.headers
            )
            statuses = [created.status_code]
            statuses.append((await http.get(user.tasks, headers=user.headers)).status_code)
            if created.status_code == 201:
                task = user.task(created.json()["id"])
                statuses.append((await http.get(task, headers=user.headers)).status_code)
            return statuses

        results = await asyncio.gather(*(create_then_read(n) for n in range(count)))
    return [status for statuses in results for status in statuses]


async def test_api_runs_through_pgbouncer_in_transaction_mode(
    pooler: PgBouncer, alice: User
) -> None:
    with running_server(pooled_env(pooler, ""), pooler.workdir) as server:
        statuses = await _mixed(server.base_url, alice, 40)
        async with httpx.AsyncClient(timeout=5.0) as http:
            ready = await http.get(f"{server.base_url}/api/health/ready")
    assert set(statuses) == {200, 201}, sorted(statuses)
    assert statuses.count(201) == 40
    direct = pooler.url  # through the pooler, as the API sees the database
    assert pg_scalar(direct, "SELECT count(*) FROM tasks WHERE user_id = %s", (alice.id,)) == 40
    assert ready.status_code == 200
    # What the API no longer SETs comes from the role, whichever server connection runs it.
    with psycopg.connect(libpq(direct), autocommit=True, prepare_threshold=None) as connection:
        for _ in range(3):
            assert connection.execute("SHOW statement_timeout").fetchone() == (ROLE_TIMEOUT,)
            assert connection.execute("SHOW TimeZone").fetchone() == ("UTC",)


async def test_prepared_statements_through_pgbouncer_1_18_fail_as_the_docs_warn(
    pooler: PgBouncer, alice: User
) -> None:
    with running_server(pooled_env(pooler, "0"), pooler.workdir) as server:
        statuses = await _mixed(server.base_url, alice, 40)
        log = server.log()
    assert 500 in statuses, sorted(statuses)
    # psycopg's statement names: "_pg3_0" does not exist / already exists on the server
    # connection PgBouncer happened to lend.
    assert re.search(r"prepared statement .{0,2}_pg3_\d+", log), log[-2000:]
