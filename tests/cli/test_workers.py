"""`todo-api serve --workers N`: uvicorn's supervisor, a listener per worker (SO_REUSEPORT).

Threat: uvicorn's shared listening socket let one worker accept every connection of a client
with a few keep-alive connections, leaving the other workers idle (half the throughput); and a
listening socket made with protocol 0 left accepted connections without TCP_NODELAY.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from multiprocessing.reduction import ForkingPickler
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from backend.workers import ReusePortSocket, reuse_port_socket
from tests.support import LiveServer, free_port, start_server, stop_server

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform != "linux", reason="reads /proc to see who accepted what"),
]
CONNECTIONS = 16  # all on one of 2 workers by chance: 2 * 2**-16


def _children(pid: int) -> set[int]:
    """The supervisor's worker processes (not multiprocessing's resource tracker)."""
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    workers = set()
    for child in text.split():
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue  # exited meanwhile
        if b"resource_tracker" not in command:
            workers.add(int(child))
    return workers


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def _inodes(port: int, state: str) -> set[str]:
    """Inodes of TCP sockets in `state` whose local port is `port`."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == state:
                inodes.add(fields[9])
    return inodes


def _established_inodes(port: int) -> set[str]:
    """The accepted side of connections to `port`."""
    return _inodes(port, "01")


def _open_keepalive_connections(port: int, count: int) -> list[socket.socket]:
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        sockets.append(sock)
    return sockets


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[LiveServer]:
    server = start_server({"LOG_LEVEL": "WARNING"}, tmp_path, workers=2, timeout=60)
    try:
        yield server
    finally:
        stop_server(server)


def _wait_for(condition: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_each_worker_listens_on_a_socket_of_its_own(two_workers: LiveServer) -> None:
    port = int(two_workers.base_url.rsplit(":", 1)[1])
    listening = _inodes(port, "0A")
    per_worker = [_socket_inodes(pid) & listening for pid in _children(two_workers.process.pid)]
    assert len(listening) == 2 and sorted(map(len, per_worker)) == [1, 1], per_worker
    assert per_worker[0] != per_worker[1]


def test_connections_are_spread_over_the_workers(two_workers: LiveServer) -> None:
    port = int(two_workers.base_url.rsplit(":", 1)[1])
    workers = _children(two_workers.process.pid)
    assert len(workers) == 2
    sockets = _open_keepalive_connections(port, CONNECTIONS)
    try:
        accepted = _established_inodes(port)
        per_worker = {pid: len(_socket_inodes(pid) & accepted) for pid in workers}
        assert sum(per_worker.values()) == CONNECTIONS
        assert all(count > 0 for count in per_worker.values()), per_worker
    finally:
        for sock in sockets:
            sock.close()


def test_sigterm_drains_every_worker_and_exits_zero(tmp_path: Path) -> None:
    server = start_server({"LOG_LEVEL": "WARNING"}, tmp_path, workers=2, timeout=60)
    workers = _children(server.process.pid)
    assert stop_server(server) == 0
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists()


def test_a_worker_that_dies_is_replaced(two_workers: LiveServer) -> None:
    """uvicorn's supervisor health-checks its workers and starts a new one in a dead one's place."""
    supervisor = two_workers.process.pid
    victim = min(_children(supervisor))
    os.kill(victim, signal.SIGKILL)
    _wait_for(lambda: victim not in _children(supervisor) and len(_children(supervisor)) == 2)
    for _ in range(10):
        assert httpx.get(f"{two_workers.base_url}/api/health", timeout=10).status_code == 200


def test_a_port_in_use_fails_at_once(tmp_path: Path) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", free_port()))
    taken.listen()
    port = taken.getsockname()[1]
    executable = Path(sys.executable).parent / "todo-api"
    try:
        done = subprocess.run(
            [str(executable), "serve", "--port", str(port), "--workers", "2"],
            cwd=tmp_path,
            env={**os.environ, "LOG_LEVEL": "INFO"},
            capture_output=True,
            timeout=60,
        )
    finally:
        taken.close()
    assert done.returncode == 1
    assert b"cannot listen on 127.0.0.1" in done.stderr


def test_a_worker_gets_a_listener_of_its_own_on_the_same_address() -> None:
    parent = reuse_port_socket("127.0.0.1", 0)
    # What uvicorn's supervisor does with the sockets it hands to a spawned worker.
    worker = ForkingPickler.loads(ForkingPickler.dumps(parent))
    try:
        assert isinstance(worker, ReusePortSocket)
        assert worker.getsockname() == parent.getsockname()
        assert os.fstat(worker.fileno()).st_ino != os.fstat(parent.fileno()).st_ino
        assert worker.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1
        assert worker.proto == socket.IPPROTO_TCP
    finally:
        worker.close()
        parent.close()


def _accepted_socket_nodelay(client: socket.socket) -> int:
    """TCP_NODELAY of the server side of `client`'s connection, found among this process's fds."""
    for entry in Path("/proc/self/fd").iterdir():
        try:
            sock = socket.socket(fileno=os.dup(int(entry.name)))
        except OSError:
            continue  # not a socket, or already closed
        with sock:
            try:
                accepted = sock.getpeername() == client.getsockname()
            except OSError:
                accepted = False  # a listening or unconnected socket
            if accepted and sock.getsockname() == client.getpeername():
                return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    raise AssertionError("the server side of the connection was not found")


async def _hello(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_accepted_connections_get_tcp_nodelay(loop: str) -> None:
    """A real uvicorn server on the listener a worker gets; TCP_NODELAY read on its side."""
    with reuse_port_socket("127.0.0.1", 0) as parent:
        listener = ForkingPickler.loads(ForkingPickler.dumps(parent))
    config = uvicorn.Config(_hello, loop=loop, lifespan="off", log_config=None, access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]})
    thread.start()
    try:
        _wait_for(lambda: server.started, timeout=10)
        with socket.create_connection(listener.getsockname(), timeout=10) as client:
            client.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            assert client.recv(4096).startswith(b"HTTP/1.1 200")
            assert _accepted_socket_nodelay(client) == 1
    finally:
        server.should_exit = True
        thread.join(10)
        listener.close()
