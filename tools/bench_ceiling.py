"""Ceiling apps for tools/bench: what uvicorn and PostgreSQL can do without our code.

* `bare` (ceiling (a)): a plain ASGI app that reads the request and answers with the bytes the
  real API gave for the same request, from memory ($BENCH_CEILING_CONFIG, written by tools.bench).
* `sql` (ceiling (b)): the fastest honest implementation of the same work, written without any of
  the API's code: raw ASGI, one psycopg 3 connection per request from a pool of $DB_POOL_SIZE
  (the API's default, 5) per worker, autocommit, ONE server-side prepared statement per request
  (`prepare=True`) doing what the API's statement does (a list page with its total from
  `task_counts`, get, create with RETURNING, PUT, complete, delete), the row rendered by orjson
  with the contract's data headers (ETag, X-Total-Count, Link, Location). PostgreSQL only.
  Done minimally: auth is a check that a Bearer token is present (not verified; the API's
  verified-token cache makes a repeat check about 1 us) and request bodies are read without
  validation. Omitted: request id, API-Version and access-log work.

Both run under uvicorn as `todo-api serve --workers N` does: uvloop, httptools, no access log,
a SO_REUSEPORT listening socket per worker, TCP_NODELAY on accepted sockets.

    python -m tools.bench_ceiling {bare,sql} --port P --workers N
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import multiprocessing
import os
import re
import signal
import socket
import sys
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import orjson
import psycopg
import uvicorn
from psycopg.types.json import set_json_loads

CONFIG_ENV = "BENCH_CEILING_CONFIG"
DEFAULT_POOL_SIZE = 5  # the API's default DB_POOL_SIZE

# The filtered list requests tools/bench sends; ceiling (b) binds what they ask for.
FILTER_QUERY = "status=pending&priority=high&sort=due_at&order=asc"
SEARCH_QUERY = "status=pending&priority=high&q=milk&sort=due_at&order=asc"
PRIORITY_RANK = {"low": 1, "medium": 2, "high": 3}
PRIORITY_NAME = {rank: name for name, rank in PRIORITY_RANK.items()}
PAGE_LIMIT = 100  # the contract's default `limit`

# -- ceiling (b)'s SQL: constants of this module, every value a bound parameter ---------------

# The contract's Task fields in order, then version (for the ETag); list rows add the total.
COLUMNS = (
    "id, user_id, title, description, completed, priority, due_at, tags, created_at, "
    "updated_at, version"
)
FIELDS = (
    "id", "user_id", "title", "description", "completed", "priority", "due_at", "tags",
    "created_at", "updated_at",
)  # fmt: skip
PRIORITY_AT = FIELDS.index("priority")
VERSION_AT = len(FIELDS)
PENDING_HIGH = "completed = %(completed)s AND priority = %(priority)s"
SEARCHED = (  # the API's case-folded search keys (specs/database/schema.md)
    f"{PENDING_HIGH} AND (title_key LIKE %(pattern)s OR description_key LIKE %(pattern)s)"
)
BY_DUE = f"ORDER BY due_at ASC NULLS LAST, id ASC LIMIT {PAGE_LIMIT}"
# The total rides in the page as a last column, as the API's does (task_counts, kept exact by
# triggers on tasks); a search counts its matches, which a window over the page's rows gives.
COUNTED = "(SELECT coalesce(sum(n), 0) FROM task_counts WHERE user_id = %(user_id)s{filter})"
STATEMENTS: dict[str, str] = {
    "list": f"SELECT {COLUMNS}, {COUNTED.format(filter='')} FROM tasks "  # noqa: S608
    f"WHERE user_id = %(user_id)s ORDER BY created_at DESC, id DESC LIMIT {PAGE_LIMIT}",
    "filter": f"SELECT {COLUMNS}, {COUNTED.format(filter=' AND ' + PENDING_HIGH)} "  # noqa: S608
    f"FROM tasks WHERE user_id = %(user_id)s AND {PENDING_HIGH} {BY_DUE}",
    "search": f"SELECT {COLUMNS}, count(*) OVER () FROM tasks "  # noqa: S608
    f"WHERE user_id = %(user_id)s AND {SEARCHED} {BY_DUE}",
    "get": f"SELECT {COLUMNS} FROM tasks WHERE user_id = %(user_id)s AND id = %(id)s",  # noqa: S608
    "create": "INSERT INTO tasks (user_id, title, title_key, description, description_key, "  # noqa: S608
    "completed, priority, due_at, tags, version, created_at, updated_at) VALUES (%(user_id)s, "
    "%(title)s, %(title_key)s, %(description)s, %(description_key)s, false, %(priority)s, "
    f"%(due_at)s, %(tags)s::jsonb, 1, %(now)s, %(now)s) RETURNING {COLUMNS}",
    "put": "UPDATE tasks SET title = %(title)s, title_key = %(title_key)s, "  # noqa: S608
    "description = %(description)s, description_key = %(description_key)s, "
    "completed = %(completed)s, priority = %(priority)s, due_at = %(due_at)s, "
    "tags = %(tags)s::jsonb, version = version + 1, updated_at = %(now)s "
    f"WHERE user_id = %(user_id)s AND id = %(id)s RETURNING {COLUMNS}",
    "complete": "UPDATE tasks SET completed = NOT completed, version = version + 1, "  # noqa: S608
    "updated_at = %(now)s WHERE user_id = %(user_id)s AND id = %(id)s "
    f"RETURNING {COLUMNS}",
    "delete": "DELETE FROM tasks WHERE user_id = %(user_id)s AND id = %(id)s RETURNING id",
}
LISTS = frozenset({"list", "filter", "search"})
WRITES_BODY = frozenset({"create", "put"})

Headers = list[tuple[bytes, bytes]]
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
JSON = (b"content-type", b"application/json")


@dataclass(frozen=True, slots=True)
class Route:
    """One endpoint's canned answer: what the real API sent for the same request."""

    endpoint: str
    status: int
    headers: Headers
    body: bytes


def route_key(method: str, path: str, query: str) -> tuple[str, str, str] | None:
    """(method, shape, query) for /api/{user}/tasks[/{id}[/complete]], the shapes bench sends."""
    parts = path.split("/")
    if len(parts) < 4 or parts[1] != "api" or parts[3] != "tasks":
        return None
    shape = {4: "tasks", 5: "task"}.get(len(parts))
    if len(parts) == 6 and parts[5] == "complete":
        shape = "complete"
    return None if shape is None else (method, shape, query)


def load_routes(path: Path) -> dict[tuple[str, str, str], Route]:
    config = orjson.loads(path.read_bytes())
    routes = {}
    for entry in config["routes"]:
        body = entry["body"].encode()
        headers = [(k.encode(), v.encode()) for k, v in entry["headers"]]
        headers.append((b"content-length", str(len(body)).encode()))
        routes[(entry["method"], entry["shape"], entry["query"])] = Route(
            entry["endpoint"], entry["status"], headers, body
        )
    return routes


def _answer(status: int, body: bytes, headers: Headers | None = None) -> Route:
    return Route("", status, [*(headers or []), (b"content-length", str(len(body)).encode())], body)


PROBLEM = (b"content-type", b"application/problem+json")
NOT_FOUND = _answer(404, b'{"status":404,"title":"Not Found"}', [PROBLEM])
UNAUTHORIZED = _answer(401, b'{"status":401,"title":"Unauthorized"}', [PROBLEM])
HEALTH = _answer(200, b'{"status":"ok"}', [JSON])


async def _read_body(receive: Receive) -> bytes:
    message = await receive()
    body: bytes = message.get("body", b"")
    while message.get("more_body", False):
        message = await receive()
        body += message.get("body", b"")
    return body


async def _respond(send: Send, route: Route) -> None:
    await send({"type": "http.response.start", "status": route.status, "headers": route.headers})
    await send({"type": "http.response.body", "body": route.body})


async def _lifespan(
    receive: Receive,
    send: Send,
    startup: Callable[[], Awaitable[None]],
    shutdown: Callable[[], Awaitable[None]],
) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await startup()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await shutdown()
            await send({"type": "lifespan.shutdown.complete"})
            return


class BareApp:
    """Ceiling (a): uvicorn + reading the request + sending stored bytes."""

    def __init__(self, routes: dict[tuple[str, str, str], Route]) -> None:
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send, _nothing, _nothing)
            return
        await _read_body(receive)
        path: str = scope["path"]
        if path == "/api/health":
            await _respond(send, HEALTH)
            return
        key = route_key(scope["method"], path, scope["query_string"].decode())
        route = self.routes.get(key) if key else None
        await _respond(send, NOT_FOUND if route is None else route)


async def _nothing() -> None:
    return None


# -- ceiling (b) ---------------------------------------------------------------------------------


def libpq_url(url: str) -> str:
    """DATABASE_URL as libpq takes it: SQLAlchemy's `postgresql+psycopg://` scheme made plain."""
    plain, count = re.subn(r"^postgres(?:ql)?(?:\+\w+)?://", "postgresql://", url)
    if not count:
        raise SystemExit(f"ceiling (b) needs a PostgreSQL DATABASE_URL, not {url.split(':')[0]}")
    return plain


class Pool:
    """A fixed set of open connections, one cursor each; LIFO, waiters served in order.

    As small as a pool can be: no health checks, no resizing (a benchmark's warm pool).
    """

    def __init__(self, url: str, size: int) -> None:
        self.url = url
        self.size = size
        self._idle: list[psycopg.AsyncCursor[Any]] = []
        self._waiters: deque[asyncio.Future[psycopg.AsyncCursor[Any]]] = deque()
        self._connections: list[psycopg.AsyncConnection[Any]] = []

    async def open(self) -> None:
        for _ in range(self.size):
            connection = await psycopg.AsyncConnection.connect(
                self.url, autocommit=True, options="-c TimeZone=UTC"
            )
            set_json_loads(orjson.loads, connection)  # tags: ~30% of a 20-row page's CPU
            self._connections.append(connection)
            self._idle.append(connection.cursor())

    async def close(self) -> None:
        for connection in self._connections:
            await connection.close()

    async def acquire(self) -> psycopg.AsyncCursor[Any]:
        if self._idle:
            return self._idle.pop()
        waiter: asyncio.Future[psycopg.AsyncCursor[Any]] = (
            asyncio.get_running_loop().create_future()
        )
        self._waiters.append(waiter)
        return await waiter

    def release(self, cursor: psycopg.AsyncCursor[Any]) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(cursor)
                return
        self._idle.append(cursor)


def _endpoint(method: str, parts: Sequence[str], query: dict[str, str]) -> str | None:
    """Which statement answers /api/{user}/tasks[/{id}[/complete]] for this method."""
    if len(parts) == 4:
        if method == "GET":
            if "q" in query:
                return "search"
            return "filter" if "status" in query or "priority" in query else "list"
        return "create" if method == "POST" else None
    if len(parts) == 5:
        return {"GET": "get", "PUT": "put", "DELETE": "delete"}.get(method)
    return "complete" if method == "PATCH" and parts[5] == "complete" else None


def _has_bearer(headers: Sequence[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name == b"authorization":
            return value[:7].lower() == b"bearer " and len(value) > 7
    return False


def _params(endpoint: str, parts: Sequence[str], query: dict[str, str], body: bytes) -> Any:
    params: dict[str, Any] = {"user_id": parts[2]}
    if len(parts) >= 5:
        params["id"] = int(parts[4])
    if endpoint in ("filter", "search"):
        params["completed"] = query.get("status") == "completed"
        params["priority"] = PRIORITY_RANK[query.get("priority", "medium")]
        if endpoint == "search":
            params["pattern"] = f"%{query['q'].casefold()}%"
    if endpoint in ("create", "put", "complete"):
        params["now"] = datetime.now(UTC)
    if endpoint in WRITES_BODY:
        data = orjson.loads(body)
        description = data.get("description")
        due = data.get("due_at")
        params.update(
            title=data["title"],
            title_key=data["title"].casefold(),
            description=description,
            description_key=None if description is None else description.casefold(),
            priority=PRIORITY_RANK[data.get("priority", "medium")],
            due_at=None if due is None else datetime.fromisoformat(due),
            tags=orjson.dumps(data.get("tags", [])).decode(),
            completed=bool(data.get("completed", False)),
        )
    return params


def _task(row: Sequence[Any]) -> dict[str, Any]:
    task = dict(zip(FIELDS, row, strict=False))
    task["priority"] = PRIORITY_NAME[row[PRIORITY_AT]]
    return task


def _etag(row: Sequence[Any]) -> bytes:
    return f'"{row[0]}.{row[VERSION_AT]}"'.encode()


def _list_headers(path: str, query_string: str, rows: Sequence[Sequence[Any]]) -> Headers:
    """X-Total-Count, the page's weak ETag and first/next/last links, as the contract asks."""
    total = rows[0][-1] if rows else 0
    digest = hashlib.blake2b(f"{query_string}|{total}|".encode(), digest_size=16)
    digest.update("".join([f"{row[0]}.{row[VERSION_AT]};" for row in rows]).encode())
    kept = "&".join(
        p for p in query_string.split("&") if p and not p.startswith(("skip=", "limit="))
    )
    base = f"{path}?{kept}&" if kept else f"{path}?"
    links = [f'<{base}skip=0&limit={PAGE_LIMIT}>; rel="first"']
    if total > PAGE_LIMIT:
        links.append(f'<{base}skip={PAGE_LIMIT}&limit={PAGE_LIMIT}>; rel="next"')
    last = (total - 1) // PAGE_LIMIT * PAGE_LIMIT if total else 0
    links.append(f'<{base}skip={last}&limit={PAGE_LIMIT}>; rel="last"')
    return [
        (b"x-total-count", str(total).encode()),
        (b"etag", f'W/"{digest.hexdigest()}"'.encode()),
        (b"link", ", ".join(links).encode()),
    ]


def _answer_rows(endpoint: str, path: str, query_string: str, rows: list[Any]) -> Route:
    """The response of one statement's rows: orjson of the contract's Task fields."""
    if endpoint in LISTS:
        body = orjson.dumps([_task(row) for row in rows], option=orjson.OPT_UTC_Z)
        return _answer(200, body, [JSON, *_list_headers(path, query_string, rows)])
    if not rows:
        return NOT_FOUND
    if endpoint == "delete":
        return _answer(204, b"")
    row = rows[0]
    body = orjson.dumps(_task(row), option=orjson.OPT_UTC_Z)
    headers = [JSON, (b"etag", _etag(row))]
    if endpoint == "create":
        headers.append((b"location", f"{path}/{row[0]}".encode()))
        return _answer(201, body, headers)
    return _answer(200, body, headers)


class SqlApp:
    """Ceiling (b): raw ASGI + one prepared autocommit statement per request + orjson."""

    def __init__(self, url: str, pool_size: int) -> None:
        self.pool = Pool(libpq_url(url), pool_size)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send, self.pool.open, self.pool.close)
            return
        body = await _read_body(receive)
        path: str = scope["path"]
        if path == "/api/health":
            await _respond(send, HEALTH)
            return
        parts = path.split("/")
        query_string = scope["query_string"].decode()
        query = dict(parse_qsl(query_string))
        endpoint = None
        if 4 <= len(parts) <= 6 and parts[1] == "api" and parts[3] == "tasks":
            endpoint = _endpoint(scope["method"], parts, query)
        if endpoint is None:
            await _respond(send, NOT_FOUND)
            return
        if not _has_bearer(scope["headers"]):
            await _respond(send, UNAUTHORIZED)
            return
        params = _params(endpoint, parts, query, body)
        cursor = await self.pool.acquire()
        try:
            await cursor.execute(STATEMENTS[endpoint], params, prepare=True)
            rows = await cursor.fetchall()
        finally:
            self.pool.release(cursor)
        await _respond(send, _answer_rows(endpoint, path, query_string, rows))


def bare_app() -> BareApp:
    return BareApp(load_routes(Path(os.environ[CONFIG_ENV])))


def sql_app() -> SqlApp:
    return SqlApp(
        os.environ["DATABASE_URL"], int(os.environ.get("DB_POOL_SIZE", DEFAULT_POOL_SIZE))
    )


# -- processes: a listener per worker ------------------------------------------------------------


def listener(host: str, port: int) -> socket.socket:
    """A worker's own listening socket: SO_REUSEPORT, and TCP_NODELAY for what it accepts
    (Linux copies it to accepted sockets; uvloop sets it on them too)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(kind: str, host: str, port: int) -> None:
    """One worker: uvicorn with the settings of `todo-api serve`, on its own listener."""
    config = uvicorn.Config(
        f"tools.bench_ceiling:{kind}_app",
        factory=True,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_config=None,
        server_header=False,
        backlog=2048,
    )
    uvicorn.Server(config).run(sockets=[listener(host, port)])


def supervise(kind: str, host: str, port: int, workers: int) -> int:
    """Start the workers; stop them all on SIGTERM/SIGINT or when one of them exits."""
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=serve, args=(kind, host, port), name=f"ceiling-{kind}-{n}")
        for n in range(workers)
    ]

    def stop(signum: int, _: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    status = 0
    try:
        for process in processes:
            process.start()
        wait([process.sentinel for process in processes])
        status = 1  # a worker exited on its own
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 1
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(timeout=15)
            if process.is_alive():
                process.kill()
                process.join()
    return status


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("kind", choices=["bare", "sql"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    if args.workers <= 1:
        serve(args.kind, args.host, args.port)
        return
    sys.exit(supervise(args.kind, args.host, args.port, args.workers))


if __name__ == "__main__":
    main()
