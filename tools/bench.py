"""Load benchmark: the API next to two ceilings, driven by wrk on loopback.

    python -m tools.bench [--workers 1 2] [--connections 8 64] [--duration 5] [--tasks 20]
                          [--endpoints list,get,...] [--jwt] [--soak 100000] [--compare FILE]
                          [--publish]

For each worker count it starts `todo-api serve` (PostgreSQL from DATABASE_URL after
`todo-api migrate`, otherwise a fresh SQLite file) and two ceiling servers under the same uvicorn
settings (tools/bench_ceiling.py: (a) bare ASGI returning the API's bytes from memory, (b) the
fastest honest implementation of the same work, raw ASGI + one prepared autocommit psycopg
statement + orjson, none of the API's code; PostgreSQL only). Each endpoint runs against all
three, interleaved, so the ratios are measured side by side even on a noisy machine. Any non-2xx
response or socket error fails the run. Results go to reports/bench-<timestamp>.json, and with
--publish a summary of a full run to docs/performance/latest.json.
See README.md, "Performance: `python -m tools.bench`".
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from backend.auth import mint_token
from tools.bench_ceiling import CONFIG_ENV, FILTER_QUERY, SEARCH_QUERY

ROOT = Path(__file__).resolve().parent.parent
LUA_DIR = Path(__file__).resolve().parent / "bench_lua"
REPORTS = ROOT / "reports"
PUBLISHED = ROOT / "docs" / "performance" / "latest.json"
WRK_HINT = (
    "wrk is not installed. Install it with `apt-get install -y wrk` (Debian/Ubuntu) or "
    "`brew install wrk` (macOS), then run again."
)
TARGETS = ("bare", "sql", "app")  # run in this order for every (endpoint, connections)
TARGET_LABEL = {"bare": "ceiling (a) bare ASGI", "sql": "ceiling (b) ASGI + SQL", "app": "todo-api"}
MB = 1024 * 1024


@dataclass(frozen=True)
class Endpoint:
    name: str
    script: str
    method: str
    shape: str  # "tasks", "task" or "complete" (see tools.bench_ceiling.route_key)
    query: str = ""
    user: str = "reader"  # reader (seeded tasks), writer (creates), deleter (a fresh id pool)

    def path(self, user_id: str, task_id: int | None = None) -> str:
        base = f"/api/{user_id}/tasks"
        if self.shape == "task":
            base += f"/{task_id}"
        elif self.shape == "complete":
            base += f"/{task_id}/complete"
        return base + (f"?{self.query}" if self.query else "")


ENDPOINTS = {
    e.name: e
    for e in (
        Endpoint("list", "list.lua", "GET", "tasks"),
        Endpoint("get", "get.lua", "GET", "task"),
        Endpoint("create", "create.lua", "POST", "tasks", user="writer"),
        Endpoint("put", "put.lua", "PUT", "task"),
        Endpoint("complete", "complete.lua", "PATCH", "complete"),
        Endpoint("delete", "delete.lua", "DELETE", "task", user="deleter"),
        Endpoint("search", "list.lua", "GET", "tasks", SEARCH_QUERY),
        Endpoint("filter", "list.lua", "GET", "tasks", FILTER_QUERY),
    )
}
# Request bodies of the capture step; the Lua scripts send the same shapes.
CREATE_BODY = {
    "title": "bench task 0-0",
    "description": "created by tools/bench",
    "priority": "high",
    "tags": ["bench", "load"],
    "due_at": "2030-01-01T09:00:00Z",
}
PUT_BODY = {
    "title": "replaced 0-0",
    "description": "replaced by tools/bench",
    "completed": False,
    "priority": "low",
    "tags": ["bench"],
    "due_at": None,
}

# The targets, checked and printed at the end of every run: the API's share of ceiling (b) at
# RATIO_CONNECTIONS, throughput at SCALING_HIGH connections against SCALING_LOW, tail latency.
RATIO_TARGET = 0.50
RATIO_ENDPOINTS = ("list", "get", "create", "put", "complete")
RATIO_CONNECTIONS = 8
P99_OVER_P50_MAX = 5.0
SCALING_MIN = 0.90
SCALING_LOW, SCALING_HIGH = 8, 64
RSS_PER_WORKER_MAX_MB = 150.0
JWT_SHARE_MAX = 0.10
FLAT_P50_MAX = 1.5


# -- the database: migrate, seed, clean up ---------------------------------------------------


def _seed_row(user_id: str, g: int, n: int, now: datetime) -> tuple[Any, ...]:
    """Row g of n (1-based) for SQLite; the PostgreSQL seed computes the same values in SQL."""
    title = f"Task {g} " + ("buy milk" if g % 4 == 0 else "write report")
    return (
        user_id,
        title,
        title.lower(),
        f"Details for task {g}" if g % 2 == 0 else None,
        f"details for task {g}" if g % 2 == 0 else None,
        g % 3 == 0,
        1 + g % 3,
        None if g % 5 == 0 else _sqlite_time(now + timedelta(minutes=g)),
        '["work", "home"]' if g % 2 == 0 else '["home"]',
        1,
        _sqlite_time(now - timedelta(seconds=n - g)),
        _sqlite_time(now - timedelta(seconds=n - g)),
    )


def _sqlite_time(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")  # the format the API's UTCDateTime stores


PG_SEED = """
INSERT INTO tasks (user_id, title, title_key, description, description_key, completed, priority,
                   due_at, tags, version, created_at, updated_at)
SELECT {user_expr}, t.title, lower(t.title),
       CASE WHEN g %% 2 = 0 THEN 'Details for task ' || g END,
       CASE WHEN g %% 2 = 0 THEN 'details for task ' || g END,
       g %% 3 = 0, 1 + g %% 3,
       CASE WHEN g %% 5 <> 0 THEN now() + g * interval '1 minute' END,
       CASE WHEN g %% 2 = 0 THEN '["work", "home"]'::jsonb ELSE '["home"]'::jsonb END,
       1, now() - (%(n)s - g) * interval '1 millisecond',
       now() - (%(n)s - g) * interval '1 millisecond'
FROM generate_series(1, %(n)s) AS g,
     LATERAL (SELECT 'Task ' || g || CASE WHEN g %% 4 = 0 THEN ' buy milk' ELSE ' write report' END
              AS title) AS t
"""
SQL_INSERT = (
    "INSERT INTO tasks (user_id, title, title_key, description, description_key, completed, "
    "priority, due_at, tags, version, created_at, updated_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
BACKGROUND_PREFIX = "bench-bg-"
BACKGROUND_USERS = 1000


class BenchDatabase:
    """The benchmark's rows in DATABASE_URL (PostgreSQL) or a SQLite file, under bench-* users."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")

    @property
    def kind(self) -> str:
        return "sqlite" if self.is_sqlite else "postgresql"

    def migrate(self, env: dict[str, str]) -> None:
        todo_api = shutil.which("todo-api", path=str(Path(sys.executable).parent)) or "todo-api"
        done = subprocess.run(
            [todo_api, "migrate"], env=env, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise SystemExit(f"todo-api migrate failed:\n{done.stdout}{done.stderr}")

    @contextlib.contextmanager
    def _pg(self) -> Iterator[Any]:
        import psycopg
        from sqlalchemy.engine import make_url

        url = make_url(self.url).set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(url, autocommit=True) as connection:
            yield connection

    @contextlib.contextmanager
    def _sqlite(self) -> Iterator[sqlite3.Connection]:
        path = self.url.split(":///", 1)[1].split("?", 1)[0]
        connection = sqlite3.connect(path, timeout=30)
        try:
            with connection:
                yield connection
        finally:
            connection.close()

    def seed(self, user_id: str, n: int) -> None:
        """n tasks for user_id, newest last; titles every 4th 'buy milk', a mix of everything."""
        if n <= 0:
            return
        if self.is_sqlite:
            now = datetime.now(UTC)
            with self._sqlite() as db:
                db.executemany(SQL_INSERT, (_seed_row(user_id, g, n, now) for g in range(1, n + 1)))
            return
        with self._pg() as db:
            db.execute(PG_SEED.replace("{user_expr}", "%(user)s"), {"user": user_id, "n": n})

    def seed_background(self, total: int) -> int:
        """Top up to `total` rows spread over 1000 bench-bg-* users; kept across runs."""
        have = self._count(f"{BACKGROUND_PREFIX}%")
        missing = total - have
        if missing <= 0:
            return 0
        if self.is_sqlite:
            now = datetime.now(UTC)
            rows = (
                _seed_row(f"{BACKGROUND_PREFIX}{g % BACKGROUND_USERS:04d}", g, missing, now)
                for g in range(1, missing + 1)
            )
            with self._sqlite() as db:
                db.executemany(SQL_INSERT, rows)
        else:
            user_expr = f"'{BACKGROUND_PREFIX}' || lpad((g %% {BACKGROUND_USERS})::text, 4, '0')"
            with self._pg() as db:
                db.execute(PG_SEED.replace("{user_expr}", user_expr), {"n": missing})
        return missing

    def analyze(self, *, vacuum: bool = True) -> None:
        """Fresh planner statistics (and with `vacuum` the visibility map), as autovacuum keeps
        a live table. ANALYZE alone samples, so it is quick even with 1M rows."""
        if self.is_sqlite:
            with self._sqlite() as db:
                db.execute("ANALYZE")
            return
        with self._pg() as db:
            db.execute("VACUUM ANALYZE tasks" if vacuum else "ANALYZE tasks")

    def _count(self, pattern: str) -> int:
        if self.is_sqlite:
            with self._sqlite() as db:
                return int(
                    db.execute(
                        "SELECT count(*) FROM tasks WHERE user_id LIKE ?", (pattern,)
                    ).fetchone()[0]
                )
        with self._pg() as db:
            return int(
                db.execute(
                    "SELECT count(*) FROM tasks WHERE user_id LIKE %s", (pattern,)
                ).fetchone()[0]
            )

    def total_rows(self) -> int:
        return self._count("%")

    def ids(self, user_id: str, limit: int | None = None) -> list[int]:
        """The user's task ids (a sample spread over all of them when `limit` is given)."""
        if self.is_sqlite:
            with self._sqlite() as db:
                ids = [
                    r[0]
                    for r in db.execute(
                        "SELECT id FROM tasks WHERE user_id = ? ORDER BY id", (user_id,)
                    )
                ]
        else:
            with self._pg() as db:
                ids = [
                    r[0]
                    for r in db.execute(
                        "SELECT id FROM tasks WHERE user_id = %s ORDER BY id", (user_id,)
                    )
                ]
        if limit is not None and len(ids) > limit:
            step = len(ids) / limit
            ids = [ids[int(i * step)] for i in range(limit)]
        return ids

    def cleanup(self, prefix: str) -> None:
        pattern = prefix + "%"
        if self.is_sqlite:
            with self._sqlite() as db:
                db.execute("DELETE FROM tasks WHERE user_id LIKE ?", (pattern,))
            return
        with self._pg() as db:
            db.execute("DELETE FROM tasks WHERE user_id LIKE %s", (pattern,))
            db.execute("DELETE FROM idempotency_keys WHERE user_id LIKE %s", (pattern,))


# -- servers and their memory ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def listeners(port: int) -> int:
    """Sockets listening on `port`: `--workers N` has one per worker once each is serving."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
                    count += 1
    return count


def start_server(
    name: str,
    command: list[str],
    env: dict[str, str],
    workdir: Path,
    timeout: float = 60,
    *,
    workers: int = 1,
) -> Server:
    """Start a server and wait until every worker listens (wrk keeps the connections it opens
    first: opened while only one worker listened, they would all stay on that worker)."""
    port = free_port()
    log_path = workdir / f"{name}-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port)],
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(name, process, port, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(
                f"{name} server exited with {process.returncode}:\n{server.log_tail()}"
            )
        with contextlib.suppress(httpx.HTTPError):
            healthy = httpx.get(f"{server.url}/api/health", timeout=1.0).status_code == 200
            if healthy and (
                workers == 1 or not Path("/proc/net/tcp").exists() or listeners(port) >= workers
            ):
                return server
        time.sleep(0.2)
    stop_server(server)
    raise SystemExit(
        f"{name} server did not become healthy in {timeout:.0f} s:\n{server.log_tail()}"
    )


def stop_server(server: Server, timeout: float = 20) -> None:
    """SIGTERM (uvicorn stops its workers), then SIGKILL to the server's own process group."""
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait()


def _children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def process_tree(pid: int) -> list[int]:
    """pid and all its descendants (uvicorn's supervisor and workers); Linux /proc only."""
    children = _children()
    tree, stack = [], [pid]
    while stack:
        current = stack.pop()
        tree.append(current)
        stack.extend(children.get(current, []))
    return tree


def rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU time used so far by these processes."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / ticks


def worker_rss(server: Server) -> list[int]:
    """RSS of each process that serves requests: the workers (or the only process, 1 worker)."""
    tree = process_tree(server.process.pid)
    workers = tree[1:] if len(tree) > 1 else tree
    # uvicorn's supervisor may also run a multiprocessing helper; workers are the big ones.
    return sorted((rss_bytes(pid) for pid in workers), reverse=True)


class RssSampler:
    """Peak RSS of a server's processes while a load runs (sampled every 0.2 s)."""

    def __init__(self, server: Server, workers: int) -> None:
        self.server = server
        self.workers = workers
        self.peak_total = 0
        self.peak_worker = 0
        self.cpu = 0.0  # CPU seconds the server used while sampling
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        tree = process_tree(self.server.process.pid)
        sizes = [rss_bytes(pid) for pid in tree]
        self.peak_total = max(self.peak_total, sum(sizes))
        self.peak_worker = max(
            self.peak_worker, max(worker_rss(self.server)[: self.workers], default=0)
        )

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self._sample()

    def __enter__(self) -> RssSampler:
        self._sample()
        self._cpu_start = cpu_seconds(process_tree(self.server.process.pid))
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.cpu = cpu_seconds(process_tree(self.server.process.pid)) - self._cpu_start
        self._sample()


# -- wrk ---------------------------------------------------------------------------------------


class WrkError(RuntimeError):
    pass


def run_wrk(
    wrk: str,
    url: str,
    script: str,
    script_args: Sequence[str],
    *,
    connections: int,
    duration: float,
    threads: int,
) -> dict[str, Any]:
    threads = max(1, min(threads, connections))
    command = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA_DIR / script),
        url,
        "--",
        *script_args,
        f"threads={threads}",
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=duration + 60, check=False
    )
    match = re.search(r"^BENCH_RESULT (\{.*\})$", done.stdout, re.MULTILINE)
    if done.returncode != 0 or match is None:
        raise WrkError(f"wrk failed ({done.returncode}): {done.stdout}\n{done.stderr}")
    raw = json.loads(match.group(1))
    seconds = raw["duration_us"] / 1e6
    socket_errors = sum(raw["socket_errors"].values())
    latency = raw["latency_us"]
    return {
        "requests": raw["requests"],
        "seconds": round(seconds, 3),
        "rps": round(raw["requests"] / seconds, 1) if seconds else 0.0,
        "p50_ms": latency["p50"] / 1000,
        "p90_ms": latency["p90"] / 1000,
        "p99_ms": latency["p99"] / 1000,
        "max_ms": latency["max"] / 1000,
        "non_2xx": raw["non_2xx"],
        "first_bad_status": raw["first_bad_status"] or None,
        "socket_errors": raw["socket_errors"],
        "errors": raw["non_2xx"] + socket_errors,
    }


# -- one benchmark session per worker count --------------------------------------------------


@dataclass
class Users:
    """The run's users: tokens are minted with the run's own secret."""

    prefix: str
    secret: bytes
    tokens: dict[str, str] = field(default_factory=dict)

    def id(self, role: str) -> str:
        return self.prefix if role == "reader" else f"{self.prefix}-{role}"

    def token(self, user_id: str) -> str:
        if user_id not in self.tokens:
            self.tokens[user_id] = mint_token(self.secret, user_id, ttl_seconds=24 * 3600)
        return self.tokens[user_id]


@dataclass
class Context:
    args: argparse.Namespace
    wrk: str
    db: BenchDatabase
    env: dict[str, str]
    workdir: Path
    users: Users
    reader_ids: list[int]
    pools: int = 0

    def delete_pool(self, seconds: float, workers: int) -> list[int]:
        """A fresh user with enough tasks to delete one per request for `seconds`."""
        self.pools += 1
        user_id = f"{self.users.id('deleter')}{self.pools}"
        size = int(seconds * self.args.delete_rate * workers) + 10
        self.db.seed(user_id, size)
        return self.db.ids(user_id)

    def ids_file(self, name: str, ids: Sequence[int]) -> Path:
        path = self.workdir / f"{name}.ids"
        path.write_text("\n".join(map(str, ids)) + "\n")
        return path


def capture_routes(
    ctx: Context, app: Server, endpoints: Sequence[Endpoint]
) -> list[dict[str, Any]]:
    """One real request per endpoint: the ceilings answer with exactly these bytes."""
    routes = []
    with httpx.Client(base_url=app.url, timeout=10) as client:
        for endpoint in endpoints:
            body: dict[str, Any] | None = None
            task_id: int | None = ctx.reader_ids[0]
            user_id = ctx.users.id("reader")
            if endpoint.name == "create":
                user_id, body = ctx.users.id("writer"), CREATE_BODY
            elif endpoint.name == "put":
                body = PUT_BODY
            elif endpoint.name == "delete":
                user_id = f"{ctx.users.id('deleter')}0"
                ctx.db.seed(user_id, 1)
                task_id = ctx.db.ids(user_id)[0]
            response = client.request(
                endpoint.method,
                endpoint.path(user_id, task_id),
                json=body,
                headers={"Authorization": f"Bearer {ctx.users.token(user_id)}"},
            )
            if not response.is_success:
                raise SystemExit(
                    f"{endpoint.name}: the API answered {response.status_code}: {response.text}"
                )
            kept = [
                (k, v) for k, v in response.headers.items() if k not in ("date", "content-length")
            ]
            routes.append(
                {
                    "endpoint": endpoint.name,
                    "method": endpoint.method,
                    "shape": endpoint.shape,
                    "query": endpoint.query,
                    "status": response.status_code,
                    "headers": kept,
                    "body": response.text,
                }
            )
    return routes


def script_args(ctx: Context, endpoint: Endpoint, pool: list[int] | None) -> list[str]:
    user_id = ctx.users.id(endpoint.user if endpoint.user != "deleter" else "reader")
    ids: Sequence[int] = ctx.reader_ids
    if endpoint.user == "writer":
        user_id = ctx.users.id("writer")
    if pool is not None:
        user_id = f"{ctx.users.id('deleter')}{ctx.pools}"
        ids = pool
    args = [f"user={user_id}", f"token={ctx.users.token(user_id)}"]
    if endpoint.shape != "tasks":
        args.append(f"ids={ctx.ids_file(f'{endpoint.name}-{ctx.pools}', ids)}")
    if endpoint.query:
        args.append(f"query={endpoint.query}")
    return args


def measure(
    ctx: Context,
    server: Server,
    target: str,
    endpoint: Endpoint,
    connections: int,
    duration: float,
    workers: int,
) -> dict[str, Any]:
    needs_pool = endpoint.name == "delete" and target != "bare"
    pool = ctx.delete_pool(duration, workers) if needs_pool else None
    if endpoint.name == "delete" and pool is None:
        pool = list(range(1, int(duration * 50_000) + 2))  # bare never looks ids up
    profiler = (
        _start_profiler(ctx, server, f"{endpoint.name}-w{workers}-c{connections}", duration)
        if target == "app" and ctx.args.profile and duration == ctx.args.duration
        else None
    )
    with RssSampler(server, workers) as rss:
        result = run_wrk(
            ctx.wrk,
            server.url,
            endpoint.script,
            script_args(ctx, endpoint, pool),
            connections=connections,
            duration=duration,
            threads=ctx.args.threads,
        )
    if profiler is not None:
        profiler.wait(timeout=60)
    result.update(
        rss_total_mb=round(rss.peak_total / MB, 1),
        rss_worker_mb=round(rss.peak_worker / MB, 1),
        cpu_us_per_request=round(rss.cpu / result["requests"] * 1e6, 1)
        if result["requests"]
        else None,
    )
    if endpoint.name == "delete" and result["first_bad_status"] == 404:
        result["note"] = "delete pool exhausted: raise --delete-rate"
    return result


def _start_profiler(
    ctx: Context, server: Server, name: str, duration: float
) -> subprocess.Popen[bytes]:
    """py-spy (collapsed stacks, one file per run) on the app's processes while wrk runs."""
    py_spy = shutil.which(
        "py-spy", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    )
    if py_spy is None:
        raise SystemExit("--profile needs py-spy: .venv/bin/pip install py-spy")
    out = ctx.args.profile / f"{name}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [
            py_spy,
            "record",
            "--pid",
            str(server.process.pid),
            "--subprocesses",
            "--format",
            "raw",
            "--rate",
            "250",
            "--duration",
            str(max(1, round(duration) - 1)),
            "--output",
            str(out),
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def server_commands(workers: int) -> dict[str, list[str]]:
    todo_api = shutil.which("todo-api", path=str(Path(sys.executable).parent)) or "todo-api"
    ceiling = [sys.executable, "-m", "tools.bench_ceiling"]
    return {
        "app": [todo_api, "serve", "--workers", str(workers)],
        "bare": [*ceiling, "bare", "--workers", str(workers)],
        "sql": [*ceiling, "sql", "--workers", str(workers)],
    }


def bench_workers(ctx: Context, workers: int, endpoints: Sequence[Endpoint]) -> dict[str, Any]:
    args = ctx.args
    commands = server_commands(workers)
    servers: dict[str, Server] = {}
    runs: list[dict[str, Any]] = []
    soak: dict[str, Any] | None = None
    try:
        servers["app"] = start_server("app", commands["app"], ctx.env, ctx.workdir, workers=workers)
        config = ctx.workdir / f"ceiling-{workers}.json"
        config.write_text(json.dumps({"routes": capture_routes(ctx, servers["app"], endpoints)}))
        ceiling_env = {**ctx.env, CONFIG_ENV: str(config), "PYTHONPATH": str(ROOT)}
        for target in args.targets:
            if target != "app":
                servers[target] = start_server(
                    target, commands[target], ceiling_env, ctx.workdir, workers=workers
                )
        idle = {name: round(sum(worker_rss(s)) / MB, 1) for name, s in servers.items()}
        for endpoint in endpoints:
            # Earlier endpoints added and deleted thousands of rows (create, the delete pool):
            # with statistics from before, PostgreSQL's cached generic plans for the prepared
            # statements went bad (search: 40 ms per query). Autovacuum would catch up later.
            ctx.db.analyze(vacuum=False)
            for target in args.targets:  # warm every worker's pool and prepared statements
                measure(
                    ctx,
                    servers[target],
                    target,
                    endpoint,
                    max(args.connections),
                    args.warmup,
                    workers,
                )
            for connections in args.connections:
                for repeat in range(args.repeat):  # targets interleaved: noise hits all three
                    for target in args.targets:
                        result = measure(
                            ctx,
                            servers[target],
                            target,
                            endpoint,
                            connections,
                            args.duration,
                            workers,
                        )
                        result.update(
                            workers=workers,
                            endpoint=endpoint.name,
                            connections=connections,
                            target=target,
                            repeat=repeat,
                        )
                        runs.append(result)
                        print(_progress(result), flush=True)
        if args.soak:
            soak = run_soak(ctx, servers["app"], workers)
        app_rss = worker_rss(servers["app"])[:workers]
    finally:
        for server in servers.values():
            stop_server(server)
    return {
        "workers": workers,
        "runs": median_runs(runs),
        "raw_runs": runs,
        "idle_rss_mb": idle,
        "soak": soak,
        "final_app_worker_rss_mb": [round(r / MB, 1) for r in app_rss],
    }


def median_runs(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (endpoint, connections, target): medians over --repeat, errors summed."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for run in runs:
        key = (run["workers"], run["endpoint"], run["connections"], run["target"])
        groups.setdefault(key, []).append(run)
    merged = []
    for (workers, endpoint, connections, target), group in groups.items():
        row: dict[str, Any] = {
            "workers": workers,
            "endpoint": endpoint,
            "connections": connections,
            "target": target,
            "repeats": len(group),
        }
        for name in ("rps", "p50_ms", "p90_ms", "p99_ms", "cpu_us_per_request"):
            values = [r[name] for r in group if r.get(name) is not None]
            row[name] = statistics.median(values) if values else None
        for name in ("requests", "errors", "non_2xx"):
            row[name] = sum(r[name] for r in group)
        row["max_ms"] = max(r["max_ms"] for r in group)
        row["rss_total_mb"] = max(r["rss_total_mb"] for r in group)
        row["rss_worker_mb"] = max(r["rss_worker_mb"] for r in group)
        row["first_bad_status"] = next(
            (r["first_bad_status"] for r in group if r["first_bad_status"]), None
        )
        merged.append(row)
    return merged


def run_soak(ctx: Context, app: Server, workers: int) -> dict[str, Any]:
    """One endpoint until `--soak` requests have been served, RSS per worker after each chunk."""
    endpoint = ENDPOINTS[ctx.args.soak_endpoint]
    samples = []
    total = 0
    connections = max(ctx.args.connections)
    while total < ctx.args.soak:
        result = run_wrk(
            ctx.wrk,
            app.url,
            endpoint.script,
            script_args(ctx, endpoint, None),
            connections=connections,
            duration=ctx.args.soak_chunk,
            threads=ctx.args.threads,
        )
        total += result["requests"]
        if result["errors"]:
            raise WrkError(
                f"soak: {result['errors']} errors (first status {result['first_bad_status']})"
            )
        samples.append(
            {
                "requests": total,
                "worker_rss_mb": [round(r / MB, 1) for r in worker_rss(app)[:workers]],
            }
        )
        print(
            f"  soak: {total:>8} requests, worker RSS {samples[-1]['worker_rss_mb']} MB", flush=True
        )
    first, last = samples[0]["worker_rss_mb"], samples[-1]["worker_rss_mb"]
    return {
        "requests": total,
        "connections": connections,
        "samples": samples,
        "growth_mb": round(max(b - a for a, b in zip(first, last, strict=False)), 1),
    }


def _progress(r: dict[str, Any]) -> str:
    return (
        f"  w={r['workers']} {r['endpoint']:<8} c={r['connections']:<3} {r['target']:<4} "
        f"{r['rps']:>8.0f} req/s  p50 {r['p50_ms']:6.2f} ms  p99 {r['p99_ms']:7.2f} ms  "
        f"errors {r['errors']}  cpu {r['cpu_us_per_request']} us/req  rss {r['rss_total_mb']} MB"
    )


# -- JWT micro-benchmark ---------------------------------------------------------------------


def jwt_bench(iterations: int) -> dict[str, dict[str, float]]:
    """CPU us per TokenVerifier.verify for HS256 and EdDSA (cached JWKS key), in process."""
    return asyncio.run(_jwt_bench(iterations))


async def _jwt_bench(iterations: int) -> dict[str, dict[str, float]]:
    import jwt
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from jwt.algorithms import OKPAlgorithm

    from backend.auth import JwksCache, TokenVerifier
    from backend.settings import Settings

    issuer = "http://127.0.0.1:9"  # Better Auth's base URL shape; never contacted (see below)
    secret = secrets.token_urlsafe(48).encode()
    private = Ed25519PrivateKey.generate()
    jwk = {
        **OKPAlgorithm.to_jwk(private.public_key(), as_dict=True),
        "kid": "bench",
        "alg": "EdDSA",
    }
    # The key set is served in process: the first verify fetches it, the timed ones use the cache.
    transport = httpx.MockTransport(lambda _: httpx.Response(200, json={"keys": [jwk]}))
    settings = Settings(
        _env_file=None,
        todo_env="test",
        better_auth_secret=secret.decode(),
        better_auth_url=issuer,
    )
    jwks = JwksCache(
        settings.jwks_url or "",
        timeout_seconds=3,
        ttl_seconds=3600,
        refetch_cooldown_seconds=30,
        client=httpx.AsyncClient(transport=transport),
    )
    verifier = TokenVerifier(settings, secret, jwks=jwks)
    now = int(time.time())
    claims = {
        "sub": "bench-user",
        "iss": issuer,
        "aud": issuer,
        "iat": now,
        "exp": now + 900,
        "id": "bench-user",
        "email": "bench@example.test",
        "name": "Bench",
        "emailVerified": True,
        "createdAt": "2026-01-01T00:00:00.000Z",
        "updatedAt": "2026-01-01T00:00:00.000Z",
    }

    def sign(name: str, n: int) -> str:
        """A distinct token per n (iat differs), so a first verification is measured each time."""
        if name == "HS256":
            return mint_token(
                secret, "bench-user", ttl_seconds=900 + n, issuer=issuer, audience=issuer
            )
        return jwt.encode(
            {**claims, "iat": now - n}, private, algorithm="EdDSA", headers={"kid": "bench"}
        )

    async def cpu_us(tokens: Sequence[str], batches: int = 5) -> float:
        """CPU time per verify, the best of `batches` runs: the machine is shared and noisy."""
        best = float("inf")
        for _ in range(batches):
            started = time.process_time()
            for each in tokens:
                assert await verifier.verify(each) == "bench-user"
            best = min(best, (time.process_time() - started) / len(tokens))
        return best * 1e6

    results: dict[str, dict[str, float]] = {}
    try:
        for name in ("HS256", "EdDSA"):
            token = sign(name, -1)
            for _ in range(200):  # also fetches the key set once
                assert await verifier.verify(token) == "bench-user"
            # A fresh token per verification in every batch: first uses, never the cache.
            batch = max(200, min(iterations, 2000) // 5)
            cold = [sign(name, n) for n in range(5 * batch)]
            best_cold = float("inf")
            for i in range(5):
                best_cold = min(best_cold, await cpu_us(cold[i * batch : (i + 1) * batch], 1))
            warm_us = await cpu_us([token] * max(1000, iterations // 5))
            results[name] = {"first_us": round(best_cold, 1), "repeat_us": round(warm_us, 1)}
    finally:
        await verifier.aclose()
    return results


# -- metrics and rate-limit micro-benchmark --------------------------------------------------


def ops_bench(iterations: int) -> dict[str, float | None]:
    """CPU us per request that metrics and the rate limit add, measured in a child process:
    prometheus-client's multiprocess mode (as under `serve`) is chosen when it is imported."""
    with tempfile.TemporaryDirectory(prefix="todo-bench-metrics-") as directory:
        done = subprocess.run(
            [sys.executable, "-c", f"from tools.bench import _ops_child; _ops_child({iterations})"],
            env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": directory},
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
    result: dict[str, float | None] = json.loads(done.stdout)
    return result


def _ops_child(iterations: int) -> None:
    import uvloop

    from backend.metrics import observe_request
    from backend.ratelimit import Counts, LocalCounts, RateLimiter, RedisCounts

    class Route:
        operation_id = "getTask"

    best = float("inf")
    for _ in range(5):
        started = time.process_time()
        for _ in range(iterations):
            observe_request(Route, 200, 0.001)
        best = min(best, (time.process_time() - started) / iterations)

    async def check(counts: Counts, n: int) -> tuple[float, float]:
        """Best CPU us and median wall us per limiter check (user never over the quota)."""
        limiter = RateLimiter(2**62, counts)
        state: dict[str, Any] = {}
        cpu, wall = float("inf"), []
        for _ in range(5):
            started = time.process_time()
            for _ in range(n):
                before = time.perf_counter()
                await limiter.check("bench-user", state)
                wall.append(time.perf_counter() - before)
            cpu = min(cpu, (time.process_time() - started) / n)
        return cpu * 1e6, statistics.median(wall) * 1e6

    async def limits() -> dict[str, float | None]:
        local_cpu, _ = await check(LocalCounts(), iterations)
        redis = RedisCounts(
            os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0",
            prefix=f"todo-bench:{secrets.token_hex(4)}:",
            timeout_seconds=1.0,
        )
        try:
            if await redis.increment("warm-up", 0) is None:
                return {"ratelimit_local_us": round(local_cpu, 2)}
            redis_cpu, redis_wall = await check(redis, max(500, iterations // 20))
        finally:
            await redis.aclose()
        return {
            "ratelimit_local_us": round(local_cpu, 2),
            "ratelimit_redis_us": round(redis_cpu, 1),
            "redis_round_trip_wall_us": round(redis_wall, 1),
        }

    print(json.dumps({"metrics_record_us": round(best * 1e6, 2), **uvloop.run(limits())}))


# -- report ----------------------------------------------------------------------------------


def _find(runs: Sequence[dict[str, Any]], **match: Any) -> dict[str, Any] | None:
    return next((r for r in runs if all(r.get(k) == v for k, v in match.items())), None)


def print_table(sessions: Sequence[dict[str, Any]]) -> None:
    """The API per endpoint, next to ceiling (b) and (a): req/s ratios and CPU per request."""
    columns = (
        f"{'workers':>7} {'endpoint':<9} {'conns':>5} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>8} "
        f"{'p99/p50':>7} {'errors':>6} {'RSS MB':>6} {'/worker':>7} {'cpu us':>7} "
        f"{'(b) req/s':>9} {'vs (b)':>6} {'(b) cpu':>7} {'(a) req/s':>9} {'vs (a)':>6}"
    )
    print("\n" + columns + "\n" + "-" * len(columns))
    for session in sessions:
        runs = session["runs"]
        for app in (r for r in runs if r["target"] == "app"):
            key = {k: app[k] for k in ("workers", "endpoint", "connections")}
            sql = _find(runs, target="sql", **key) or {}
            bare = _find(runs, target="bare", **key) or {}
            ratio_b = f"{app['rps'] / sql['rps']:.0%}" if sql.get("rps") else "-"
            ratio_a = f"{app['rps'] / bare['rps']:.0%}" if bare.get("rps") else "-"
            spread = app["p99_ms"] / app["p50_ms"] if app["p50_ms"] else 0.0
            print(
                f"{app['workers']:>7} {app['endpoint']:<9} {app['connections']:>5} "
                f"{app['rps']:>7.0f} {app['p50_ms']:>7.2f} {app['p99_ms']:>8.2f} {spread:>7.1f} "
                f"{app['errors']:>6} {app['rss_total_mb']:>6.0f} {app['rss_worker_mb']:>7.0f} "
                f"{app['cpu_us_per_request'] or 0:>7.0f} {sql.get('rps', 0):>9.0f} {ratio_b:>6} "
                f"{sql.get('cpu_us_per_request') or 0:>7.0f} {bare.get('rps', 0):>9.0f} "
                f"{ratio_a:>6}"
            )


def evaluate(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Every target this run can tell: name, measured value, pass/miss."""
    checks: list[dict[str, Any]] = []

    def check(name: str, value: str, ok: bool) -> None:
        checks.append({"target": name, "measured": value, "ok": ok})

    runs = [r for s in report["sessions"] for r in s["runs"]]
    apps = [r for r in runs if r["target"] == "app"]
    errors = sum(r["errors"] for r in runs)
    check("zero errors (non-2xx or socket) in every run", f"{errors} errors", errors == 0)
    for app in apps:
        key = {k: app[k] for k in ("workers", "endpoint", "connections")}
        sql = _find(runs, target="sql", **key)
        label = f"w={app['workers']} c={app['connections']} {app['endpoint']}"
        if app["endpoint"] in RATIO_ENDPOINTS and app["connections"] == RATIO_CONNECTIONS:
            name = f"{label}: >= {RATIO_TARGET:.0%} of ceiling (b)"
            if sql and sql["rps"]:
                ratio = app["rps"] / sql["rps"]
                check(name, f"{ratio:.0%}", ratio >= RATIO_TARGET)
            else:  # ceiling (b) runs on PostgreSQL only
                check(name, "ceiling (b) not measured", False)
        if app["p50_ms"]:
            spread = app["p99_ms"] / app["p50_ms"]
            check(
                f"{label}: p99 <= {P99_OVER_P50_MAX:g} x p50",
                f"{spread:.1f}x",
                spread <= P99_OVER_P50_MAX,
            )
    for app in (r for r in apps if r["connections"] == SCALING_HIGH):
        base = _find(
            apps, workers=app["workers"], endpoint=app["endpoint"], connections=SCALING_LOW
        )
        if base and base["rps"]:
            share = app["rps"] / base["rps"]
            check(
                f"w={app['workers']} {app['endpoint']}: req/s at c={SCALING_HIGH} "
                f">= {SCALING_MIN:.0%} of c={SCALING_LOW}",
                f"{share:.0%}",
                share >= SCALING_MIN,
            )
    if apps:
        peak = max(r["rss_worker_mb"] for r in apps)
        check(
            f"RSS per worker < {RSS_PER_WORKER_MAX_MB:g} MB",
            f"peak {peak:.0f} MB",
            peak < RSS_PER_WORKER_MAX_MB,
        )
    for session in report["sessions"]:
        soak = session.get("soak")
        if soak:
            first = max(soak["samples"][0]["worker_rss_mb"])
            allowed = max(5.0, 0.05 * first)
            check(
                f"w={session['workers']}: RSS not growing over {soak['requests']} requests",
                f"{soak['growth_mb']:+.1f} MB (allowed {allowed:.1f})",
                soak["growth_mb"] <= allowed,
            )
    jwt_result = report.get("jwt")
    if jwt_result:
        workers = min(s["workers"] for s in report["sessions"]) if report["sessions"] else 1
        lists = [r for r in apps if r["endpoint"] == "list" and r["workers"] == workers]
        if lists:
            # The CPU a server spends on one list request (lowest over the connection counts).
            service_us = min(r["cpu_us_per_request"] or workers / r["rps"] * 1e6 for r in lists)
            jwt_result["list_cpu_us"] = round(service_us, 1)
            for alg in ("HS256", "EdDSA"):
                for kind in ("first_us", "repeat_us"):
                    cost = jwt_result[alg][kind]
                    share = cost / service_us
                    jwt_result[alg][kind.replace("_us", "_share")] = round(share, 4)
                    check(
                        f"JWT {alg} verify ({kind[:-3]} use of a token) "
                        f"< {JWT_SHARE_MAX:.0%} of a list request's CPU",
                        f"{cost:.0f} us of {service_us:.0f} us = {share:.1%}",
                        share < JWT_SHARE_MAX,
                    )
    compared = report.get("compare")
    if compared:
        for row in compared["rows"]:
            if row["endpoint"] in ("list", "filter", "get", "put"):
                label = f"w={row['workers']} c={row['connections']} {row['endpoint']}"
                check(
                    f"{label}: p50 <= {FLAT_P50_MAX:g} x the compared run",
                    f"{row['p50_ratio']:.2f}x",
                    row["p50_ratio"] <= FLAT_P50_MAX,
                )
    return checks


def compare(report: dict[str, Any], other_path: Path) -> dict[str, Any]:
    other = json.loads(other_path.read_text())
    theirs = [r for s in other["sessions"] for r in s["runs"] if r["target"] == "app"]
    rows = []
    for mine in (r for s in report["sessions"] for r in s["runs"] if r["target"] == "app"):
        key = {k: mine[k] for k in ("workers", "endpoint", "connections")}
        base = _find(theirs, **key)
        if base and base["p50_ms"] and base["rps"]:
            rows.append(
                {
                    **key,
                    "p50_ms": mine["p50_ms"],
                    "base_p50_ms": base["p50_ms"],
                    "p50_ratio": round(mine["p50_ms"] / base["p50_ms"], 2),
                    "rps_ratio": round(mine["rps"] / base["rps"], 2),
                }
            )
    return {"file": str(other_path), "tasks": other["meta"]["args"].get("tasks"), "rows": rows}


def print_report(report: dict[str, Any], checks: Sequence[dict[str, Any]]) -> None:
    print_table(report["sessions"])
    if report.get("jwt"):
        jwt_result = report["jwt"]
        print(f"\nJWT verify (in process, us): {jwt_result}")
    compared = report.get("compare")
    if compared:
        print(f"\nCompared with {compared['file']} ({compared['tasks']} tasks):")
        for row in compared["rows"]:
            print(
                f"  w={row['workers']} c={row['connections']:<3} {row['endpoint']:<9} "
                f"p50 {row['p50_ms']:.2f} ms vs {row['base_p50_ms']:.2f} ms = "
                f"{row['p50_ratio']:.2f}x, req/s {row['rps_ratio']:.2f}x"
            )
    print("\nTargets:")
    for c in checks:
        print(f"  [{'ok' if c['ok'] else 'MISS'}] {c['target']}: {c['measured']}")


# -- main --------------------------------------------------------------------------------------


def _list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tools.bench", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=[1],
        help="uvicorn workers (several: one session each)",
    )
    parser.add_argument(
        "--connections",
        type=int,
        nargs="+",
        default=[8, 64],
        help="wrk connections (default: 8 64)",
    )
    parser.add_argument(
        "--duration", type=float, default=5.0, help="seconds per measured run (default 5)"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="measure each (endpoint, connections) N times, targets interleaved; report medians",
    )
    parser.add_argument(
        "--warmup", type=float, default=1.0, help="seconds of warm-up per endpoint and server"
    )
    parser.add_argument(
        "--tasks", type=int, default=20, help="tasks seeded for the benchmark user (default 20)"
    )
    parser.add_argument(
        "--background-rows",
        type=int,
        default=0,
        help="rows owned by 1000 other users (bench-bg-*, kept for later runs)",
    )
    parser.add_argument(
        "--endpoints",
        type=_list,
        default=list(ENDPOINTS),
        help=f"comma-separated, from: {','.join(ENDPOINTS)} (default: all)",
    )
    parser.add_argument(
        "--targets",
        type=_list,
        default=list(TARGETS),
        help="which of bare,sql,app to run (default: all three)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="wrk threads (default 1: leave the cores to the server)",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", ""),
        help="default: $DATABASE_URL, else a fresh SQLite file",
    )
    parser.add_argument(
        "--log-level", default="INFO", help="the API's LOG_LEVEL (INFO writes the access log)"
    )
    parser.add_argument(
        "--delete-rate",
        type=float,
        default=6000.0,
        help="deletes/s per worker to size each delete pool for",
    )
    parser.add_argument(
        "--jwt", action="store_true", help="also time TokenVerifier.verify (HS256, EdDSA)"
    )
    parser.add_argument("--jwt-iterations", type=int, default=20000)
    parser.add_argument(
        "--ops",
        action="store_true",
        help="also time what metrics (multiprocess) and the rate limit (in process, Redis) add",
    )
    parser.add_argument("--ops-iterations", type=int, default=20000)
    parser.add_argument(
        "--soak",
        type=int,
        default=0,
        metavar="REQUESTS",
        help="after the runs, serve this many list requests and track worker RSS",
    )
    parser.add_argument(
        "--soak-endpoint",
        default="get",
        choices=["list", "get", "search", "filter"],
        help="endpoint served during --soak (default get: the most requests per second)",
    )
    parser.add_argument(
        "--soak-chunk", type=float, default=5.0, help="seconds between RSS samples in --soak"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="record each measured app run with py-spy (collapsed stacks) into DIR",
    )
    parser.add_argument(
        "--compare", type=Path, help="an earlier JSON result: print p50 and req/s ratios"
    )
    parser.add_argument("--json-out", type=Path, help="default: reports/bench-<timestamp>.json")
    parser.add_argument(
        "--publish",
        action="store_true",
        help="also write this run's summary to docs/performance/latest.json "
        "(a full run only: every endpoint, all three targets, PostgreSQL)",
    )
    parser.add_argument("--keep-data", action="store_true", help="keep this run's seeded rows")
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 when a target is missed, not only on errors"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    unknown = [e for e in args.endpoints if e not in ENDPOINTS] + [
        t for t in args.targets if t not in TARGETS
    ]
    if unknown:
        raise SystemExit(f"unknown endpoint or target: {', '.join(unknown)}")
    args.targets = [t for t in TARGETS if t in args.targets]
    if "app" not in args.targets:
        raise SystemExit("--targets must include app")
    on_postgres = bool(args.database_url) and not args.database_url.startswith("sqlite")
    full = args.targets == list(TARGETS) and set(args.endpoints) == set(ENDPOINTS)
    if args.publish and not (full and on_postgres):
        raise SystemExit("--publish needs a full run: every endpoint, all targets, PostgreSQL")
    wrk = shutil.which("wrk")
    if wrk is None:
        print(WRK_HINT, file=sys.stderr)
        return 2
    if min(args.connections) < 1 or args.duration < 1 or args.tasks < 1:
        raise SystemExit("--connections, --duration and --tasks must be at least 1")
    if "sql" in args.targets and not on_postgres:
        print("ceiling (b) runs on PostgreSQL only: not measured on SQLite", flush=True)
        args.targets.remove("sql")

    started = datetime.now(UTC)
    stamp = started.strftime("%Y%m%d-%H%M%S")
    json_out = args.json_out or REPORTS / f"bench-{stamp}.json"
    report: dict[str, Any] = {"meta": _meta(args, started), "sessions": []}
    if args.jwt:
        report["jwt"] = jwt_bench(args.jwt_iterations)
        print(f"JWT verify: {report['jwt']}", flush=True)
    if args.ops:
        report["ops"] = ops_bench(args.ops_iterations)
        print(f"metrics and rate limit, per request: {report['ops']}", flush=True)

    with tempfile.TemporaryDirectory(prefix="todo-bench-") as tmp:
        workdir = Path(tmp)
        url = args.database_url or f"sqlite:///{workdir / 'bench.db'}"
        db = BenchDatabase(url)
        secret = secrets.token_urlsafe(48)
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "BETTER_AUTH_SECRET": secret,
            "LOG_LEVEL": args.log_level,
            "TODO_ENV": "development",
            "BETTER_AUTH_URL": "",
            "JWT_JWKS_URL": "",
            "JWT_ISSUER": "",
            "JWT_AUDIENCE": "",
            # The create run gives one user more tasks than the default quota (409 beyond it).
            "MAX_TASKS_PER_USER": str(10**9),
        }
        report["meta"]["database"] = db.kind
        users = Users(prefix=f"bench-{stamp}-{secrets.token_hex(2)}", secret=secret.encode())
        db.migrate(env)
        try:
            if args.background_rows:
                added = db.seed_background(args.background_rows)
                print(f"background rows: added {added}", flush=True)
            db.seed(users.id("reader"), args.tasks)
            db.analyze()
            report["meta"]["table_rows"] = db.total_rows()
            print(
                f"{db.kind}: {args.tasks} tasks for {users.id('reader')}, "
                f"{report['meta']['table_rows']} rows in the table",
                flush=True,
            )
            ctx = Context(
                args, wrk, db, env, workdir, users, db.ids(users.id("reader"), limit=1000)
            )
            endpoints = [ENDPOINTS[name] for name in args.endpoints]
            for workers in args.workers:
                print(f"\n== {workers} worker(s) ==", flush=True)
                report["sessions"].append(bench_workers(ctx, workers, endpoints))
        except WrkError as exc:
            print(f"benchmark failed: {exc}", file=sys.stderr)
            return 1
        finally:
            if not args.keep_data:
                db.cleanup(users.prefix)

    if args.compare:
        report["compare"] = compare(report, args.compare)
    checks = evaluate(report)
    report["checks"] = checks
    report["meta"]["finished"] = datetime.now(UTC).isoformat()
    json_out.parent.mkdir(parents=True, exist_ok=True)
    json_out.write_text(json.dumps(report, indent=2))
    print_report(report, checks)
    print(f"\nresults: {json_out}")
    if args.publish:
        PUBLISHED.parent.mkdir(parents=True, exist_ok=True)
        PUBLISHED.write_text(json.dumps(summary(report), indent=2) + "\n")
        print(f"published: {PUBLISHED.relative_to(ROOT)}")
    failed_errors = any(not c["ok"] for c in checks if c["target"].startswith("zero errors"))
    return 1 if failed_errors or (args.strict and not all(c["ok"] for c in checks)) else 0


PUBLISHED_PACKAGES = ("fastapi", "pydantic", "uvicorn", "psycopg")


def _ratio(part: float | None, whole: float | None) -> float | None:
    return round(part / whole, 3) if part and whole else None


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """The small, stable record of a full run that docs/performance/latest.json keeps."""
    meta, args = report["meta"], report["meta"]["args"]
    results = []
    for session in report["sessions"]:
        runs = session["runs"]
        for app in (r for r in runs if r["target"] == "app"):
            key = {k: app[k] for k in ("workers", "endpoint", "connections")}
            bare = (_find(runs, target="bare", **key) or {}).get("rps")
            sql = (_find(runs, target="sql", **key) or {}).get("rps")
            results.append(
                {
                    **key,
                    "app_rps": round(app["rps"]),
                    "ceiling_a_rps": round(bare) if bare else None,
                    "ceiling_b_rps": round(sql) if sql else None,
                    "ratio_a": _ratio(app["rps"], bare),
                    "ratio_b": _ratio(app["rps"], sql),
                    "p50_ms": round(app["p50_ms"], 2),
                    "p99_ms": round(app["p99_ms"], 2),
                    "errors": app["errors"],
                }
            )
    return {
        "date": meta["started"][:16] + "Z",
        "commit": meta["commit"],
        "machine": {
            "nproc": len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity")
            else os.cpu_count(),
            "python": meta["python"],
            "load_average_at_start": meta.get("load_average"),
            "versions": {name: importlib.metadata.version(name) for name in PUBLISHED_PACKAGES},
        },
        "method": {
            "command": "python -m tools.bench",
            "database": meta["database"],
            "workers": args["workers"],
            "connections": args["connections"],
            "duration_s": args["duration"],
            "warmup_s": args["warmup"],
            "repeat": args["repeat"],
            "statistic": "median over repeats, targets interleaved",
            "tasks": args["tasks"],
            "table_rows": meta.get("table_rows"),
            "load": f"wrk, {args['threads']} thread(s), loopback",
            "ceiling_a": "bare ASGI answering with the API's captured bytes from memory",
            "ceiling_b": "raw ASGI, one prepared autocommit psycopg statement, orjson; "
            "bearer token presence checked, not verified",
        },
        "results": results,
        "targets": [
            {"target": c["target"], "measured": c["measured"], "ok": c["ok"]}
            for c in report.get("checks", [])
        ],
    }


def _meta(args: argparse.Namespace, started: datetime) -> dict[str, Any]:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "started": started.isoformat(),
        "commit": commit or None,
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "env": {k: os.environ[k] for k in sorted(os.environ) if k.startswith("DB_")},
    }


if __name__ == "__main__":
    sys.exit(main())
