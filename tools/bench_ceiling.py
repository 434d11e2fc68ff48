"""Ceiling apps for tools/bench: what uvicorn can do without our framework code.

* `bare`: a plain ASGI app (no framework) that reads the request and answers with the bytes the
  real API gave for the same request, from memory.
* `sql`: the same, plus the one equivalent SQL statement per request through the API's own
  engine factory (same driver, pool sizes, prepared-statement threshold and connection hooks).
  By default ($BENCH_CEILING_TX=auto) reads run in autocommit and writes in a transaction
  (BEGIN, statement, COMMIT), as the API's unit of work does; `never` gives the bare minimum
  of one round trip per request also for writes, `always` a transaction for reads too.

Both run under uvicorn exactly as `todo-api serve` does (uvloop, httptools, no access log, a
listener per worker), so the API's throughput divided by theirs is the share of the ceiling.

    python -m tools.bench_ceiling {bare,sql} --port P --workers N   (config: $BENCH_CEILING_CONFIG)
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
import uvicorn

CONFIG_ENV = "BENCH_CEILING_CONFIG"
# How ceiling (b) wraps its statement: "auto" runs reads in autocommit and writes in a
# transaction (what the API does), "always" BEGIN/COMMITs every request, "never" none.
TX_ENV = "BENCH_CEILING_TX"
TX_MODES = ("auto", "always", "never")
READS = frozenset({"list", "filter", "search", "get"})

# The filtered list requests tools/bench sends; the SQL below is their equivalent.
FILTER_QUERY = "status=pending&priority=high&sort=due_at&order=asc"
SEARCH_QUERY = "status=pending&priority=high&q=milk&sort=due_at&order=asc"
SEARCH_PATTERN = "%milk%"
PRIORITY_RANK = {"low": 1, "medium": 2, "high": 3}

COLUMNS = (
    "id, user_id, title, title_key, description, completed, priority, due_at, tags, version, "
    "created_at, updated_at"
)
OWNED = "user_id = :user_id"
FILTERED = f"{OWNED} AND completed = false AND priority = 3"
BY_DUE = "ORDER BY due_at ASC NULLS LAST, id ASC LIMIT 100"
SEARCHED = (  # the API's case-folded search keys (specs/database/schema.md)
    f"{FILTERED} AND (title_key LIKE :pattern ESCAPE '\\' "
    "OR description_key LIKE :pattern ESCAPE '\\')"
)
TAGS = {"postgresql": "CAST(:tags AS jsonb)", "sqlite": ":tags"}

# endpoint -> SQL (with {tags} filled per dialect); "one" means a missing row is a 404.
# Every piece is a constant of this module; values are bound parameters.
STATEMENTS: dict[str, tuple[str, bool]] = {
    "list": (
        f"SELECT {COLUMNS} FROM tasks WHERE {OWNED} "  # noqa: S608
        "ORDER BY created_at DESC, id DESC LIMIT 100",
        False,
    ),
    "filter": (f"SELECT {COLUMNS} FROM tasks WHERE {FILTERED} {BY_DUE}", False),  # noqa: S608
    "search": (f"SELECT {COLUMNS} FROM tasks WHERE {SEARCHED} {BY_DUE}", False),  # noqa: S608
    "get": (f"SELECT {COLUMNS} FROM tasks WHERE {OWNED} AND id = :id", True),  # noqa: S608
    "create": (  # returns the row, as the API's INSERT ... RETURNING tasks.* does
        "INSERT INTO tasks (user_id, title, title_key, description, description_key, completed, "  # noqa: S608
        "priority, due_at, tags, version, created_at, updated_at) VALUES (:user_id, :title, "
        ":title_key, :description, :description_key, false, :priority, :due_at, {tags}, 1, "
        f":now, :now) RETURNING {COLUMNS}",
        True,
    ),
    "put": (
        "UPDATE tasks SET title = :title, title_key = :title_key, "  # noqa: S608
        "description = :description, description_key = :description_key, "
        "completed = :completed, priority = :priority, due_at = :due_at, tags = {tags}, "
        "version = version + 1, updated_at = :now "
        f"WHERE {OWNED} AND id = :id RETURNING {COLUMNS}",
        True,
    ),
    "complete": (
        "UPDATE tasks SET completed = NOT completed, version = version + 1, "  # noqa: S608
        f"updated_at = :now WHERE {OWNED} AND id = :id RETURNING {COLUMNS}",
        True,
    ),
    "delete": (f"DELETE FROM tasks WHERE {OWNED} AND id = :id RETURNING id", True),  # noqa: S608
}

Headers = list[tuple[bytes, bytes]]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


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


NOT_FOUND = Route(
    "", 404, [(b"content-type", b"text/plain"), (b"content-length", b"9")], b"not found"
)
HEALTH = Route(
    "",
    200,
    [(b"content-type", b"application/json"), (b"content-length", b"15")],
    b'{"status":"ok"}',
)


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


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

    async def startup(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send, self.startup, self.shutdown)
            return
        body = await _read_body(receive)
        path: str = scope["path"]
        if path == "/api/health":
            await _respond(send, HEALTH)
            return
        key = route_key(scope["method"], path, scope["query_string"].decode())
        route = self.routes.get(key) if key else None
        if route is None:
            await _respond(send, NOT_FOUND)
            return
        if not await self.work(route.endpoint, path, body):
            await _respond(send, NOT_FOUND)
            return
        await _respond(send, route)

    async def work(self, endpoint: str, path: str, body: bytes) -> bool:
        return True


class SqlApp(BareApp):
    """Ceiling (b): ceiling (a) plus the endpoint's one SQL statement in one transaction."""

    def __init__(self, routes: dict[tuple[str, str, str], Route]) -> None:
        super().__init__(routes)
        from backend.db import create_engine
        from backend.settings import Settings

        self.settings = Settings()
        self.engine = create_engine(self.settings)
        self.tx_mode = os.environ.get(TX_ENV, "auto")
        if self.tx_mode not in TX_MODES:
            raise ValueError(f"{TX_ENV} must be one of {', '.join(TX_MODES)}")
        # autocommit on PostgreSQL (a deferred BEGIN on SQLite), exactly as the API's GETs
        from backend.db import read_only_engine

        self.autocommit_engine = read_only_engine(self.engine)
        self.dialect = self.engine.dialect.name
        tags = TAGS[self.dialect]
        self.statements = {
            name: (sa.text(sql.replace("{tags}", tags)), one)
            for name, (sql, one) in STATEMENTS.items()
        }

    async def shutdown(self) -> None:
        await self.engine.dispose()

    def _time(self, value: datetime | None) -> Any:
        """Bind a UTC time the way the API's column type stores it on this database."""
        if value is None or self.dialect != "sqlite":
            return value
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")

    def _params(self, endpoint: str, path: str, body: bytes) -> dict[str, Any]:
        parts = path.split("/")
        params: dict[str, Any] = {"user_id": parts[2]}
        if len(parts) >= 5:
            params["id"] = int(parts[4])
        if endpoint == "search":
            params["pattern"] = SEARCH_PATTERN
        if endpoint in ("create", "put", "complete"):
            params["now"] = self._time(datetime.now(UTC))
        if endpoint in ("create", "put"):
            data = orjson.loads(body)
            due = data.get("due_at")
            params.update(
                title=data["title"],
                title_key=data["title"].lower(),
                description=data.get("description"),
                description_key=None
                if data.get("description") is None
                else data["description"].lower(),
                priority=PRIORITY_RANK[data.get("priority", "medium")],
                due_at=self._time(None if due is None else datetime.fromisoformat(due)),
                tags=orjson.dumps(data.get("tags", [])).decode(),
            )
            if endpoint == "put":
                params["completed"] = bool(data.get("completed", False))
        return params

    async def work(self, endpoint: str, path: str, body: bytes) -> bool:
        statement, one = self.statements[endpoint]
        params = self._params(endpoint, path, body)
        in_transaction = self.tx_mode == "always" or (
            self.tx_mode == "auto" and endpoint not in READS
        )
        engine = self.engine if in_transaction else self.autocommit_engine
        async with engine.begin() as connection:
            result = await connection.execute(statement, params)
            rows = result.fetchall()
        return bool(rows) or not one


def _config_path() -> Path:
    return Path(os.environ[CONFIG_ENV])


def bare_app() -> BareApp:
    return BareApp(load_routes(_config_path()))


def sql_app() -> SqlApp:
    return SqlApp(load_routes(_config_path()))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("kind", choices=["bare", "sql"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    # The same uvicorn settings and worker model (a SO_REUSEPORT listener per worker, see
    # backend.workers) as backend.cli.serve.
    config: dict[str, Any] = {
        "app": f"tools.bench_ceiling:{args.kind}_app",
        "factory": True,
        "loop": "uvloop",
        "http": "httptools",
        "access_log": False,
        "log_config": None,
        "server_header": False,
    }
    if args.workers > 1:
        from backend.workers import serve_workers

        raise SystemExit(
            serve_workers(
                uvicorn.Config(**config, host=args.host, port=args.port, workers=args.workers)
            )
        )
    uvicorn.run(host=args.host, port=args.port, **config)


if __name__ == "__main__":
    main()
