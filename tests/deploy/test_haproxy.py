"""deploy/haproxy.cfg on a real HAProxy: which requests it replays on another instance.

Two stand-in instances pass the readiness check and then drop every other request without an
answer (as an instance killed mid-request does). HAProxy must replay only what a replay cannot
apply twice: idempotent methods, POSTs with an Idempotency-Key, PATCHes with If-Match.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tools.drill import DEPLOY, HAProxy

pytestmark = pytest.mark.skipif(
    shutil.which("haproxy") is None, reason="haproxy is not installed (apt-get install haproxy)"
)
READY = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class Dropper:
    """Answers the readiness check; reads any other request and closes without a response."""

    def __init__(self) -> None:
        self.dropped: list[str] = []
        self.server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        request_line = head.split(b"\r\n", 1)[0].decode()
        if " /api/health/ready " in request_line:
            writer.write(READY)
        else:
            self.dropped.append(request_line.split(" ")[0])
        await writer.drain()
        writer.close()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])


@pytest.fixture
async def balancer() -> AsyncIterator[tuple[HAProxy, list[Dropper]]]:
    droppers = [Dropper(), Dropper()]
    ports = [await d.start() for d in droppers]
    workdir = Path(tempfile.mkdtemp(prefix="todo-haproxy-"))
    haproxy = HAProxy(ports, workdir)
    await asyncio.to_thread(haproxy.start)
    try:
        yield haproxy, droppers
    finally:
        haproxy.stop()
        for dropper in droppers:
            assert dropper.server is not None
            dropper.server.close()
        shutil.rmtree(workdir, ignore_errors=True)


def test_the_shipped_configuration_is_valid() -> None:
    checked = subprocess.run(
        ["haproxy", "-c", "-f", str(DEPLOY / "haproxy.cfg")], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize(
    ("method", "headers", "replayed"),
    [
        ("GET", {}, True),
        ("PUT", {}, True),
        ("DELETE", {}, True),
        ("POST", {"Idempotency-Key": "k1"}, True),
        ("PATCH", {"If-Match": '"1"'}, True),
        ("POST", {}, False),
        ("PATCH", {}, False),
    ],
)
async def test_only_requests_safe_to_replay_are_retried_on_another_instance(
    balancer: tuple[HAProxy, list[Dropper]], method: str, headers: dict[str, str], replayed: bool
) -> None:
    haproxy, droppers = balancer
    body = None if method in ("GET", "DELETE") else b'{"title": "x"}'
    async with httpx.AsyncClient(base_url=haproxy.base_url, timeout=10.0) as http:
        response = await http.request(method, "/api/u/tasks/1", headers=headers, content=body)
    attempts = sum(len(d.dropped) for d in droppers)
    assert response.status_code == 502
    if replayed:
        assert attempts == 3  # the first try and `retries 2`, redispatched
        assert all(d.dropped for d in droppers), "the replay did not go to the other instance"
    else:
        assert attempts == 1, "a request that is not safe to replay was sent twice"
