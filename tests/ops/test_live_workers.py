"""`todo-api serve --workers 2`: /metrics on its own port sums both workers, survives a worker's
death, and a Redis-backed limit holds across the workers."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from tests.ops.helpers import REDIS_HOST, REDIS_PORT, redis_reachable
from tests.support import LiveServer, User, free_port, running_server, server_env, start_server

pytestmark = pytest.mark.slow
REQUESTS = 60
PID_FILE = re.compile(r"^(counter|histogram|gauge_livesum)_(\d+)\.db$")


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(url, timeout=5.0).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def requests_total(values: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> float:
    key = ("todo_http_requests_total", (("operation", "listTasks"), ("status", "200")))
    return values.get(key, 0.0)


def worker_pids(directory: Path, supervisor: int) -> set[int]:
    """Pids that wrote live gauges, but the supervisor's (it imports the metrics, records none)."""
    return {
        int(m.group(2))
        for m in map(PID_FILE.match, os.listdir(directory))
        if m and m.group(1) == "gauge_livesum"
    } - {supervisor}


def per_worker_requests(directory: Path, pid: int, scratch: Path) -> float:
    """One worker's own count: its files alone, summed by prometheus-client's collector."""
    only = scratch / str(pid)
    only.mkdir()
    for file in directory.glob(f"*_{pid}.db"):
        shutil.copy(file, only / file.name)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, str(only))  # type: ignore[no-untyped-call]
    value = registry.get_sample_value(
        "todo_http_requests_total", {"operation": "listTasks", "status": "200"}
    )
    return value or 0.0


@contextmanager
def socket_on_port() -> Iterator[int]:
    """A listening socket on a free loopback port, so nothing else can bind it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield int(sock.getsockname()[1])


@pytest.fixture
def metrics_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "metrics"
    directory.mkdir()
    (directory / "counter_1.db").write_bytes(b"left over from an earlier run")
    return directory


@pytest.fixture
def served(tmp_path: Path, metrics_dir: Path) -> Iterator[tuple[LiveServer, str]]:
    port = free_port()
    env = server_env(
        f"sqlite:///{tmp_path / 'todo.db'}",
        METRICS_PORT=str(port),
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
        LOG_LEVEL="WARNING",
    )
    with running_server(env, tmp_path, workers=2) as server:
        yield server, f"http://127.0.0.1:{port}/metrics"


def test_metrics_sum_both_workers_and_survive_a_dead_one(
    served: tuple[LiveServer, str], metrics_dir: Path, tmp_path: Path
) -> None:
    server, metrics_url = served
    assert not (metrics_dir / "counter_1.db").exists()  # cleaned at start
    alice = User.named("alice")
    # A new connection per request: the kernel spreads connections over both workers.
    with httpx.Client(
        base_url=server.base_url, limits=httpx.Limits(max_keepalive_connections=0)
    ) as client:
        for _ in range(REQUESTS):
            assert client.get(alice.tasks, headers=alice.headers).status_code == 200
    assert httpx.get(f"{server.base_url}/metrics").status_code == 404  # not on the API port

    values = scrape(metrics_url)
    assert requests_total(values) == REQUESTS
    assert values[("todo_worker_processes", ())] == 2
    pids = worker_pids(metrics_dir, server.process.pid)
    assert len(pids) == 2
    scratch = tmp_path / "per-worker"
    scratch.mkdir()
    counts = {pid: per_worker_requests(metrics_dir, pid, scratch) for pid in pids}
    assert all(count > 0 for count in counts.values()), counts
    assert sum(counts.values()) == REQUESTS

    # A worker killed outright: the supervisor starts another; its requests stay counted,
    # and the dead one is no longer counted among the live workers.
    victim = min(pids)
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        current = worker_pids(metrics_dir, server.process.pid)
        if victim not in current or len(current) > 2:
            values = scrape(metrics_url)
            if (
                values.get(("todo_worker_processes", ())) == 2
                and len(worker_pids(metrics_dir, server.process.pid)) == 2
            ):
                break
        time.sleep(0.3)
    else:
        pytest.fail(f"no replacement worker: {sorted(os.listdir(metrics_dir))}\n{server.log()}")
    assert victim not in worker_pids(metrics_dir, server.process.pid)
    assert requests_total(scrape(metrics_url)) == REQUESTS


def test_metrics_port_refuses_to_start_when_taken(tmp_path: Path) -> None:
    temp = tmp_path / "tmp"  # where `serve` makes its metrics directory
    temp.mkdir()
    with socket_on_port() as port:
        env = server_env(
            f"sqlite:///{tmp_path / 'todo.db'}", METRICS_PORT=str(port), TMPDIR=str(temp)
        )
        with pytest.raises(RuntimeError, match="cannot serve metrics"):
            start_server(env, tmp_path, timeout=20)
    assert list(temp.iterdir()) == []  # its metrics directory is removed again


def test_a_redis_limit_holds_across_workers(tmp_path: Path) -> None:
    if not redis_reachable():
        pytest.skip(f"Redis is not running at {REDIS_HOST}:{REDIS_PORT}")
    env = server_env(
        f"sqlite:///{tmp_path / 'todo.db'}",
        RATE_LIMIT_PER_MINUTE="5",
        REDIS_URL=f"redis://{REDIS_HOST}:{REDIS_PORT}/0",
        REDIS_KEY_PREFIX=f"todo-api-test:{uuid.uuid4().hex}:",
        LOG_LEVEL="WARNING",
    )
    alice = User.named("alice")
    with running_server(env, tmp_path, workers=2) as server:
        if time.time() % 60 > 50:  # keep all requests inside one window
            time.sleep(61 - time.time() % 60)
        with httpx.Client(
            base_url=server.base_url, limits=httpx.Limits(max_keepalive_connections=0)
        ) as client:
            statuses = [
                client.get(alice.tasks, headers=alice.headers).status_code for _ in range(12)
            ]
    assert statuses == [200] * 5 + [429] * 7
