"""Prometheus metrics: what each worker records, and the /metrics listener `serve` runs.

Every worker records into prometheus-client's default registry. Under `todo-api serve` with
METRICS_PORT set, PROMETHEUS_MULTIPROC_DIR is set before any worker starts, so each worker
writes its values to files there and the listener (a thread of the serving process) sums them
with `MultiProcessCollector`. The listener is a separate port on 127.0.0.1 by default: a proxy
in front of the API would make every client look local, so a loopback check on the API port
would not keep /metrics private.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import threading
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

logger = logging.getLogger("todo_api")

UNMATCHED = "unmatched"
POOL_SAMPLE_SECONDS = 1.0
# A get takes ~1 ms; a request over 10 s has already been cut by a timeout.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUESTS = Counter(
    "todo_http_requests",
    "HTTP requests answered, by the contract's operationId and status",
    ["operation", "status"],
)
HTTP_LATENCY = Histogram(
    "todo_http_request_duration_seconds",
    "Time from receiving a request to the end of its response, by operationId and status",
    ["operation", "status"],
    buckets=LATENCY_BUCKETS,
)
DB_UNAVAILABLE = Counter(
    "todo_db_unavailable",
    "Requests answered 503 because the database could not be reached or did not answer",
)
DB_POOL_IN_USE = Gauge(
    "todo_db_pool_connections_in_use",
    "PostgreSQL pool connections lent to requests (sampled each second, summed over workers)",
    multiprocess_mode="livesum",
)
DB_POOL_WAITING = Gauge(
    "todo_db_pool_requests_waiting",
    "Requests queued for a PostgreSQL pool connection (sampled each second, summed)",
    multiprocess_mode="livesum",
)
DB_POOL_SIZE = Gauge(
    "todo_db_pool_connections",
    "PostgreSQL pool connections open, in use or idle (sampled each second, summed)",
    multiprocess_mode="livesum",
)
WORKERS = Gauge(
    "todo_worker_processes",
    "Worker processes serving requests with metrics on",
    multiprocess_mode="livesum",
)
JWKS_FETCHES = Counter("todo_jwks_fetches", "JWKS fetches attempted (good or bad)")
JWKS_FAILURES = Counter("todo_jwks_fetch_failures", "JWKS fetches that failed")
IDEMPOTENT_REPLAYS = Counter(
    "todo_idempotent_replays",
    "Creates answered from a stored response because their Idempotency-Key was seen before",
)
RATE_LIMITED = Counter("todo_rate_limited", "Requests answered 429 by the per-user rate limit")
RATE_LIMIT_REDIS_ERRORS = Counter(
    "todo_rate_limit_redis_errors",
    "Rate-limit round trips to Redis that failed or timed out (those requests were served)",
)
RATE_LIMIT_UNCHECKED = Counter(
    "todo_rate_limit_unchecked",
    "Requests served without a rate-limit check because Redis was unavailable (fail open)",
)


def observe_request(route: Any, status: int, seconds: float) -> None:
    """Count one answered request under its route's operationId (`unmatched` for no route)."""
    operation = getattr(route, "operation_id", None) or getattr(route, "name", None) or UNMATCHED
    code = str(status)
    HTTP_REQUESTS.labels(operation, code).inc()
    HTTP_LATENCY.labels(operation, code).observe(seconds)


def sample_pool(pool: Any) -> None:
    """Copy psycopg_pool's own statistics into the pool gauges."""
    stats = pool.get_stats()
    size = stats.get("pool_size", 0)
    DB_POOL_SIZE.set(size)
    DB_POOL_IN_USE.set(size - stats.get("pool_available", 0))
    DB_POOL_WAITING.set(stats.get("requests_waiting", 0))


async def sample_pool_forever(pool: Any, interval: float = POOL_SAMPLE_SECONDS) -> None:
    """The pool gauges, refreshed every `interval` seconds (a scrape cannot reach a worker)."""
    WORKERS.set(1)
    while True:
        with contextlib.suppress(Exception):  # a gauge sample never takes the worker down
            if pool is not None:
                sample_pool(pool)
        await asyncio.sleep(interval)


# -- the listener (in the serving process) -------------------------------------------------------

_PID_FILE = re.compile(r"_(\d+)\.db$")


class LiveWorkersCollector(Collector):
    """The workers' files summed; a dead worker's live gauges are dropped before each scrape.

    uvicorn's supervisor replaces a worker that dies without telling anyone, so the files of
    a pid that no longer runs are found here (prometheus-client's `mark_process_dead`).
    """

    def __init__(self, path: str) -> None:
        self._path = path
        self._inner = MultiProcessCollector(None, path)  # type: ignore[no-untyped-call]

    def collect(self) -> Any:
        for pid in {int(m.group(1)) for m in map(_PID_FILE.search, os.listdir(self._path)) if m}:
            if not _running(pid):
                mark_process_dead(pid, self._path)  # type: ignore[no-untyped-call]
        return self._inner.collect()  # type: ignore[no-untyped-call]


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clear_directory(path: Path) -> None:
    """Remove the value files a previous run left (stale counters would be summed in)."""
    for file in path.glob("*.db"):
        file.unlink(missing_ok=True)


def start_metrics_server(host: str, port: int, path: str) -> tuple[WSGIServer, threading.Thread]:
    """Serve the summed metrics of every worker writing to `path` on host:port (a thread)."""
    registry = CollectorRegistry()
    registry.register(LiveWorkersCollector(path))
    return start_http_server(port, addr=host, registry=registry)
