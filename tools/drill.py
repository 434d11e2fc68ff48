"""Fault drill: the production shape on loopback, broken on purpose under load.

`python -m tools.drill [--database-url URL]` starts 3 `todo-api serve` instances over PgBouncer
(transaction mode) behind HAProxy, with configurations rendered from deploy/ on free ports,
runs a bounded mixed load from many users, and meanwhile kills one instance (SIGKILL), drains
another (SIGTERM) and starts both again, and restarts PgBouncer. Then it checks what clients
were promised against what the database holds, and prints `N passed, N failed` (exit 1 on any
failure). The database must be a PostgreSQL the drill may write to; it is migrated first.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import pwd
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
POOLED_DATABASE = "todo"
SERVER_OS_USER = "postgres"  # PgBouncer refuses to run as root

# -- configurations rendered from deploy/ ------------------------------------------------------


def _set_ini(text: str, key: str, value: str) -> str:
    pattern = re.compile(rf"^{re.escape(key)}\s*=.*$", re.MULTILINE)
    assert pattern.search(text), f"{key} not found in the PgBouncer template"
    return pattern.sub(lambda _: f"{key} = {value}", text, count=1)


def render_pgbouncer(template: str, *, listen_port: int, database_url: str, workdir: Path) -> str:
    """deploy/pgbouncer.ini with this run's port, server, files, and trust auth (loopback)."""
    url = make_url(database_url)
    server = f"host={url.host or '127.0.0.1'} port={url.port or 5432} dbname={url.database}"
    text = _set_ini(template, POOLED_DATABASE, server)
    text = _set_ini(text, "listen_port", str(listen_port))
    text = _set_ini(text, "auth_type", "trust")
    text = _set_ini(text, "auth_file", str(workdir / "userlist.txt"))
    text = _set_ini(text, "pidfile", str(workdir / "pgbouncer.pid"))
    return _set_ini(text, "logfile", str(workdir / "pgbouncer.log"))


def render_haproxy(
    template: str, *, bind_port: int, server_ports: list[int], socket_path: Path
) -> str:
    """deploy/haproxy.cfg with this run's port, instances and an admin socket (drains, stats)."""
    lines = [line for line in template.splitlines() if not re.match(r"\s*server api\d+\s", line)]
    text = "\n".join(lines) + "\n"
    text = re.sub(r"bind 127\.0\.0\.1:\d+", f"bind 127.0.0.1:{bind_port}", text)
    text = text.replace(
        "global\n", f"global\n    stats socket {socket_path} mode 600 level admin\n", 1
    )
    servers = "".join(
        f"    server api{i} 127.0.0.1:{port}\n" for i, port in enumerate(server_ports, 1)
    )
    return text + servers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pooled_url(database_url: str, port: int) -> str:
    """The same user, through PgBouncer on `port`."""
    url = make_url(database_url).set(
        drivername="postgresql", host="127.0.0.1", port=port, database=POOLED_DATABASE
    )
    return url.render_as_string(hide_password=False)


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _wait_port(port: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {seconds:g} s")


# -- processes ---------------------------------------------------------------------------------


class PgBouncer:
    """PgBouncer from deploy/pgbouncer.ini, in transaction mode, in front of `database_url`."""

    def __init__(self, database_url: str, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = pooled_url(database_url, self.port)
        user = make_url(database_url).username or "postgres"
        self.config = workdir / "pgbouncer.ini"
        self.config.write_text(
            render_pgbouncer(
                (DEPLOY / "pgbouncer.ini").read_text(),
                listen_port=self.port,
                database_url=database_url,
                workdir=workdir,
            )
        )
        (workdir / "userlist.txt").write_text(f'"{user}" ""\n')
        self.process: subprocess.Popen[bytes] | None = None
        if os.geteuid() == 0:
            account = pwd.getpwnam(SERVER_OS_USER)
            for path in (workdir, self.config, workdir / "userlist.txt"):
                os.chown(path, account.pw_uid, account.pw_gid)

    def start(self) -> None:
        binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
        command = [binary, str(self.config)]
        if os.geteuid() == 0:
            command = [binary, "-u", SERVER_OS_USER, str(self.config)]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        _wait_port(self.port, 10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # immediate shutdown: clients cut off
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def restart(self) -> None:
        self.stop()
        self.start()


class HAProxy:
    """HAProxy from deploy/haproxy.cfg in front of `server_ports`."""

    def __init__(self, server_ports: list[int], workdir: Path) -> None:
        self.port = free_port()
        self.socket_path = workdir / "haproxy.sock"
        self.config = workdir / "haproxy.cfg"
        self.config.write_text(
            render_haproxy(
                (DEPLOY / "haproxy.cfg").read_text(),
                bind_port=self.port,
                server_ports=server_ports,
                socket_path=self.socket_path,
            )
        )
        self.log = workdir / "haproxy.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [binary, "-db", "-f", str(self.config)], stdout=log, stderr=subprocess.STDOUT
            )
        _wait_port(self.port, 10)

    def command(self, line: str) -> str:
        """One line on HAProxy's admin socket (e.g. `set server api/api2 state maint`)."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(str(self.socket_path))
            sock.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def server_states(self) -> dict[str, str]:
        """Each server's check status as HAProxy sees it (UP, DOWN, MAINT...)."""
        states = {}
        for line in self.command("show stat").splitlines():
            fields = line.split(",")
            if len(fields) > 17 and fields[0] == "api" and fields[1].startswith("api"):
                states[fields[1]] = fields[17]
        return states

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


@dataclass
class Instance:
    """One `todo-api serve` with one worker."""

    name: str
    port: int
    env: dict[str, str]
    workdir: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        executable = shutil.which("todo-api", path=str(Path(sys.executable).parent)) or "todo-api"
        self.starts += 1
        log = (self.workdir / f"{self.name}-{self.starts}.log").open("wb")
        self.process = subprocess.Popen(
            [executable, "serve", "--host", "127.0.0.1", "--port", str(self.port),
             "--workers", "1", "--graceful-timeout", "5"],
            env={**os.environ, **self.env},
            cwd=self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def wait(self, seconds: float) -> int:
        assert self.process is not None
        return self.process.wait(seconds)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


async def wait_ready(base_url: str, seconds: float) -> bool:
    """True once `/api/health/ready` answers 200 within `seconds`."""
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(timeout=2.0) as http:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(f"{base_url}/api/health/ready")).status_code == 200:
                    return True
            await asyncio.sleep(0.1)
    return False


def migrate(database_url: str) -> None:
    executable = shutil.which("todo-api", path=str(Path(sys.executable).parent)) or "todo-api"
    subprocess.run(
        [executable, "migrate"],
        env={**os.environ, "DATABASE_URL": database_url},
        check=True,
        capture_output=True,
        timeout=120,
    )


@contextlib.contextmanager
def production_shape(
    database_url: str, count: int, secret: str, extra_env: dict[str, str] | None = None
) -> Iterator[Stack]:
    """PgBouncer, `count` instances through it and HAProxy in front, all torn down after."""
    workdir = Path(tempfile.mkdtemp(prefix="todo-drill-"))
    workdir.chmod(0o755)
    pgbouncer = PgBouncer(database_url, workdir)
    env = {
        "DATABASE_URL": pgbouncer.url,
        "DB_PREPARE_THRESHOLD": "",  # PgBouncer 1.18, transaction mode
        "DB_SESSION_SETUP": "false",
        "DB_POOL_SIZE": "5",
        "DB_MAX_OVERFLOW": "5",
        "DB_POOL_TIMEOUT_SECONDS": "3",
        "DB_CONNECT_TIMEOUT_SECONDS": "2",
        "DB_REQUEST_DEADLINE_SECONDS": "5",
        "BETTER_AUTH_SECRET": secret,
        "BETTER_AUTH_URL": "",
        "JWT_JWKS_URL": "",
        "TODO_ENV": "test",
        "LOG_LEVEL": "ERROR",
        **(extra_env or {}),
    }
    instances = [
        Instance(f"api{i}", free_port(), {**env, "METRICS_PORT": str(free_port())}, workdir)
        for i in range(1, count + 1)
    ]
    haproxy = HAProxy([i.port for i in instances], workdir)
    stack = Stack(workdir, pgbouncer, haproxy, instances)
    try:
        pgbouncer.start()
        for instance in instances:
            instance.start()
        haproxy.start()
        yield stack
    finally:
        haproxy.stop()
        for instance in instances:
            instance.stop()
        pgbouncer.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class Stack:
    workdir: Path
    pgbouncer: PgBouncer
    haproxy: HAProxy
    instances: list[Instance]


# -- the load ----------------------------------------------------------------------------------

RETRYABLE = frozenset({502, 503, 504})
# 3 instances against 1, reads/s. On 2 shared cores the instances compete for the same CPUs
# and a ratio near 1 is all there is (measured between 0.68 and 0.92 here, with other work
# on the machine); the check catches a collapse (traffic piling onto one instance, instances
# serialised behind the pooler), not a failure to scale.
MIN_SCALING = 0.6


@dataclass
class Tally:
    """What the clients saw."""

    requests: int = 0
    first_attempt_failures: int = 0  # 5xx or transport errors before the client's retry
    retries: int = 0
    gave_up: list[str] = field(default_factory=list)  # idempotent requests that never succeeded
    created: dict[tuple[str, str], int] = field(default_factory=dict)  # acknowledged creates
    unacknowledged: set[tuple[str, str]] = field(default_factory=set)
    acknowledged_updates: dict[str, int] = field(default_factory=dict)
    statuses: dict[int | str, int] = field(default_factory=dict)
    transport_errors: list[str] = field(default_factory=list)


class Client:
    """One user's HTTP client through HAProxy; retries what is safe to retry, as a client should."""

    ATTEMPTS = 25  # with the pauses below: about 15 s of trying before giving up

    def __init__(self, http: httpx.AsyncClient, user: str, token: str, tally: Tally) -> None:
        self.http = http
        self.user = user
        self.headers = {"Authorization": f"Bearer {token}"}
        self.tally = tally

    async def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response | None:
        """The request, retried on 502/503/504 and transport errors; None if it never got through.

        Only called for requests a replay cannot apply twice (idempotent, keyed or conditional).
        """
        headers = {**self.headers, **kwargs.pop("headers", {})}
        for attempt in range(self.ATTEMPTS):
            self.tally.requests += 1
            response: httpx.Response | None = None
            try:
                response = await self.http.request(method, path, headers=headers, **kwargs)
            except httpx.HTTPError as exc:
                status: int | str = type(exc).__name__
                moment = time.strftime("%H:%M:%S")
                self.tally.transport_errors.append(f"{moment} {method} {path}: {exc!r}")
            else:
                status = response.status_code
            self.tally.statuses[status] = self.tally.statuses.get(status, 0) + 1
            if response is not None and response.status_code not in RETRYABLE:
                return response
            if attempt == 0:
                self.tally.first_attempt_failures += 1
            self.tally.retries += 1
            await asyncio.sleep(min(1.0, 0.1 * (attempt + 1)) * random.uniform(0.5, 1.5))
        self.tally.gave_up.append(f"{method} {path}")
        return None

    async def create(self, title: str) -> None:
        key = secrets.token_hex(8)
        response = await self.send(
            "POST", f"/api/{self.user}/tasks", json={"title": title},
            headers={"Idempotency-Key": key},
        )  # fmt: skip
        if response is not None and response.status_code == 201:
            self.tally.created[(self.user, title)] = response.json()["id"]
        else:
            self.tally.unacknowledged.add((self.user, title))

    async def read(self) -> None:
        await self.send("GET", f"/api/{self.user}/tasks", params={"limit": 20})

    async def increment(self, task_id: int) -> None:
        """counter=N -> counter=N+1 with If-Match; a 412 or an unknown outcome means re-read."""
        path = f"/api/{self.user}/tasks/{task_id}"
        while True:
            current = await self.send("GET", path)
            if current is None or current.status_code != 200:
                return
            value = int(current.json()["title"].removeprefix("counter="))
            if self.tally.acknowledged_updates.get(self.user, 0) < value:
                # The previous attempt was applied though its answer was lost: now we know.
                self.tally.acknowledged_updates[self.user] = value
                return
            response = await self.send(
                "PATCH", path, json={"title": f"counter={value + 1}"},
                headers={"If-Match": current.headers["etag"]},
            )  # fmt: skip
            if response is not None and response.status_code == 200:
                self.tally.acknowledged_updates[self.user] = value + 1
                return
            if response is None:
                return
            # 412: changed since our read (the toucher, or a replay of our own PATCH): read
            # again.

    async def touch(self, task_id: int, finished: asyncio.Event) -> None:
        """Change the counter task's priority now and then (If-Match too), so increments meet
        412s; the counter in the title is the increments' alone."""
        path = f"/api/{self.user}/tasks/{task_id}"
        while not finished.is_set():
            current = await self.send("GET", path)
            if current is None or current.status_code != 200:
                return
            priority = random.choice(["low", "medium", "high"])
            await self.send(
                "PATCH", path, json={"priority": priority},
                headers={"If-Match": current.headers["etag"]},
            )  # fmt: skip
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(finished.wait(), 0.2)


async def user_load(
    base_url: str, user: str, token: str, tally: Tally, operations: int, until: float
) -> None:
    """One user's mixed load: reads, keyed creates with unique titles, If-Match increments."""
    async with httpx.AsyncClient(base_url=base_url, timeout=15.0) as http:
        client = Client(http, user, token, tally)
        counter = await client.send(
            "POST", f"/api/{user}/tasks", json={"title": "counter=0"},
            headers={"Idempotency-Key": f"counter-{user}"},
        )  # fmt: skip
        if counter is None or counter.status_code != 201:
            tally.gave_up.append(f"counter task of {user}")
            return
        counter_id = counter.json()["id"]
        tally.acknowledged_updates[user] = 0
        finished = asyncio.Event()
        toucher = asyncio.create_task(client.touch(counter_id, finished))
        for n in range(operations):
            if time.monotonic() > until:
                break
            roll = random.random()
            if roll < 0.5:
                await client.read()
            elif roll < 0.8:
                await client.create(f"drill {user} {n}")
            else:
                await client.increment(counter_id)
        finished.set()
        await toucher


async def throughput(base_url: str, tokens: dict[str, str], seconds: float) -> float:
    """Reads per second through HAProxy: wrk if installed (so the client is not the bottleneck),
    else 16 concurrent httpx clients."""
    user, token = next(iter(tokens.items()))
    wrk = shutil.which("wrk")
    if wrk is not None:
        done = await asyncio.to_thread(
            subprocess.run,
            [wrk, "-t", "1", "-c", "16", "-d", f"{max(1, round(seconds))}s", "-H",
             f"Authorization: Bearer {token}", f"{base_url}/api/{user}/tasks"],
            capture_output=True, text=True, timeout=seconds + 30, check=True,
        )  # fmt: skip
        if "Non-2xx" in done.stdout:
            raise RuntimeError(f"wrk saw failures:\n{done.stdout}")
        match = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
        assert match is not None, done.stdout
        return float(match.group(1))
    count = 0
    until = time.monotonic() + seconds
    headers = {"Authorization": f"Bearer {token}"}

    async def loop() -> None:
        nonlocal count
        async with httpx.AsyncClient(base_url=base_url, timeout=10.0) as http:
            while time.monotonic() < until:
                if (await http.get(f"/api/{user}/tasks", headers=headers)).status_code == 200:
                    count += 1

    started = time.monotonic()
    await asyncio.gather(*(loop() for _ in range(16)))
    return count / (time.monotonic() - started)


async def compare_throughput(stack: Stack, tokens: dict[str, str]) -> tuple[float, float]:
    """Reads/s through HAProxy with 1 instance (the others running, in maintenance) and with
    all 3, three times each, interleaved, best of each: the machine is shared, so one sample
    is noise."""
    one = three = 0.0
    others = stack.instances[1:]
    for _ in range(3):
        for other in others:
            stack.haproxy.command(f"set server api/{other.name} state maint")
        await throughput(stack.haproxy.base_url, tokens, 1.0)  # warm-up
        one = max(one, await throughput(stack.haproxy.base_url, tokens, 2.0))
        for other in others:
            stack.haproxy.command(f"set server api/{other.name} state ready")
        await throughput(stack.haproxy.base_url, tokens, 1.0)
        three = max(three, await throughput(stack.haproxy.base_url, tokens, 2.0))
    return one, three


# -- the drill ---------------------------------------------------------------------------------


@dataclass
class Report:
    results: list[tuple[bool, str, str]] = field(default_factory=list)

    def check(self, ok: bool, name: str, detail: str) -> None:
        self.results.append((ok, name, detail))
        print(f"{'PASS' if ok else 'FAIL'} {name}: {detail}", flush=True)

    @property
    def failed(self) -> int:
        return sum(1 for ok, _, _ in self.results if not ok)


async def faults(stack: Stack, log: list[str]) -> None:
    """SIGKILL one instance, SIGTERM (drain) another, restart PgBouncer; bring all back."""
    started = time.monotonic()

    def note(what: str) -> None:
        log.append(f"{time.monotonic() - started:5.1f}s {what}")

    killed, drained = stack.instances[0], stack.instances[1]
    await asyncio.sleep(2.0)
    killed.signal(signal.SIGKILL)
    await asyncio.to_thread(killed.wait, 10)
    note(f"{killed.name} killed (SIGKILL)")
    await asyncio.sleep(2.0)
    killed.start()
    note(f"{killed.name} started again")
    await asyncio.sleep(2.0)
    drained.signal(signal.SIGTERM)
    code = await asyncio.to_thread(drained.wait, 15)
    note(f"{drained.name} drained (SIGTERM), exit status {code}")
    drained.start()
    note(f"{drained.name} started again")
    await asyncio.sleep(3.0)
    await asyncio.to_thread(stack.pgbouncer.restart)
    note("PgBouncer restarted")


def stored_tasks(database_url: str, users: list[str]) -> dict[tuple[str, str], int]:
    with psycopg.connect(_libpq(database_url), autocommit=True) as connection:
        rows = connection.execute(
            "SELECT user_id, title, count(*) FROM tasks WHERE user_id = ANY(%s) "
            "GROUP BY user_id, title",
            (users,),
        ).fetchall()
    return {(user, title): count for user, title, count in rows}


async def drill(database_url: str, users: int, operations: int, load_seconds: float) -> int:
    from backend.auth import mint_token

    migrate(database_url)
    secret = secrets.token_hex(32)
    run = secrets.token_hex(3)
    names = [f"drill-{run}-{i}" for i in range(users)]
    tokens = {u: mint_token(secret.encode(), u, ttl_seconds=3600) for u in names}
    report = Report()
    tally = Tally()
    fault_log: list[str] = []
    started = time.monotonic()
    with production_shape(database_url, 3, secret) as stack:
        ready = await asyncio.gather(*(wait_ready(i.base_url, 30) for i in stack.instances))
        if not all(ready):
            report.check(False, "start", "not every instance became ready within 30 s")
            return _summary(report)
        await wait_ready(stack.haproxy.base_url, 10)
        until = time.monotonic() + load_seconds
        load = [
            user_load(stack.haproxy.base_url, u, tokens[u], tally, operations, until) for u in names
        ]
        await asyncio.gather(faults(stack, fault_log), *load)
        for line in fault_log:
            print(f"fault  {line}")
        for line in tally.transport_errors[:5]:
            print(f"error  {line}")
        print(
            f"load   {tally.requests} requests in {time.monotonic() - started:.1f} s; "
            f"first attempts failed {tally.first_attempt_failures}, client retries "
            f"{tally.retries}; If-Match conflicts (412) {tally.statuses.get(412, 0)}; "
            f"statuses {dict(sorted(tally.statuses.items(), key=str))}",
            flush=True,
        )

        for line in await scrape_metrics(stack.instances):
            print(f"metric {line}", flush=True)
        back = await asyncio.gather(*(wait_ready(i.base_url, 20) for i in stack.instances))
        deadline = time.monotonic() + 10
        states = stack.haproxy.server_states()
        while set(states.values()) != {"UP"} and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            states = stack.haproxy.server_states()

        report.check(
            not tally.gave_up,
            "no idempotent request failed",
            f"{len(tally.gave_up)} gave up after retries"
            + (f" (first: {tally.gave_up[:3]})" if tally.gave_up else ""),
        )
        stored = stored_tasks(database_url, names)
        missing = [k for k in tally.created if stored.get(k, 0) != 1]
        doubled = [k for k in tally.unacknowledged if stored.get(k, 0) > 1]
        report.check(
            not missing and not doubled,
            "every acknowledged create exists exactly once",
            f"{len(tally.created)} acknowledged, {len(missing)} missing or duplicated, "
            f"{len(tally.unacknowledged)} unacknowledged ({len(doubled)} duplicated)",
        )
        counters = {
            user: int(title.removeprefix("counter="))
            for (user, title), _ in stored.items()
            if title.startswith("counter=")
        }
        lost = {
            u: (n, counters.get(u)) for u, n in tally.acknowledged_updates.items()
            if counters.get(u) != n
        }  # fmt: skip
        report.check(
            not lost and len(counters) == len(tally.acknowledged_updates),
            "no update lost",
            f"{sum(tally.acknowledged_updates.values())} acknowledged increments over "
            f"{len(counters)} counters; mismatches {lost}",
        )
        report.check(
            all(back) and set(states.values()) == {"UP"},
            "every instance came back to ready",
            f"ready {dict(zip((i.name for i in stack.instances), back, strict=True))}, "
            f"HAProxy {states}",
        )

        try:
            one, three = await compare_throughput(stack, tokens)
        except (RuntimeError, subprocess.SubprocessError, httpx.HTTPError) as exc:
            report.check(False, "3 instances are not much slower than 1", f"not measured: {exc}")
        else:
            ratio = three / one if one else 0.0
            report.check(
                ratio >= MIN_SCALING,
                "3 instances are not much slower than 1",
                f"{one:.0f} req/s with 1, {three:.0f} req/s with 3: {ratio:.2f}x "
                f"({os.cpu_count()} CPUs)",
            )
    limited = f"drill-{run}-limited"
    token = mint_token(secret.encode(), limited, ttl_seconds=3600)
    problem = await rate_limit_holds(database_url, secret, limited, token)
    report.check(
        problem is None,
        "the per-user rate limit holds across 3 instances (Redis)",
        problem
        or f"{RATE_LIMIT} of {RATE_LIMIT + RATE_LIMIT_EXTRA} served in one window through "
        f"HAProxy and 3 instances, {RATE_LIMIT_EXTRA} refused with 429 and Retry-After",
    )
    return _summary(report)


# What each instance's /metrics says about the faults (counters restart with a killed instance).
DRILL_METRICS = (
    "todo_db_unavailable_total",
    "todo_idempotent_replays_total",
    "todo_http_requests_total",
    "todo_db_pool_requests_waiting",
)


async def scrape_metrics(instances: list[Instance]) -> list[str]:
    """Per instance: the drill's metrics, 5xx requests summed by operation and status."""
    lines = []
    async with httpx.AsyncClient(timeout=5) as http:
        for instance in instances:
            port = instance.env["METRICS_PORT"]
            try:
                text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
            except httpx.HTTPError as exc:
                lines.append(f"{instance.name}: /metrics not answering ({type(exc).__name__})")
                continue
            values: dict[str, float] = {}
            for line in text.splitlines():
                name = line.split("{", 1)[0].split(" ", 1)[0]
                if line.startswith("#") or name not in DRILL_METRICS:
                    continue
                if name == "todo_http_requests_total" and 'status="5' not in line:
                    continue
                key = line.rsplit(" ", 1)[0]
                values[key] = values.get(key, 0.0) + float(line.rsplit(" ", 1)[1])
            shown = ", ".join(f"{k} = {v:g}" for k, v in sorted(values.items()) if v) or "no faults"
            lines.append(f"{instance.name} (started {instance.starts}x): {shown}")
    return lines


RATE_LIMIT = 30  # per user and minute, for the rate-limit phase only
RATE_LIMIT_EXTRA = 12  # requests sent beyond it


async def rate_limit_holds(database_url: str, secret: str, user: str, token: str) -> str | None:
    """The per-user limit, counted in Redis, holds across 3 instances behind HAProxy.

    None when it held (exactly RATE_LIMIT requests served in one window, the rest 429 with
    Retry-After), else what went wrong. Skipped (a message) when Redis is not running.
    """
    prefix = f"todo-drill-{secrets.token_hex(4)}:"
    env = {
        "RATE_LIMIT_PER_MINUTE": str(RATE_LIMIT),
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "REDIS_KEY_PREFIX": prefix,
    }
    with production_shape(database_url, 3, secret, env) as stack:
        ready = await asyncio.gather(*(wait_ready(i.base_url, 30) for i in stack.instances))
        if not all(ready) or not await wait_ready(stack.haproxy.base_url, 10):
            return "the rate-limited instances did not become ready"
        left = 60 - time.time() % 60
        if left < 15:  # one window for the whole burst: the counters are per minute
            await asyncio.sleep(left + 0.5)
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=stack.haproxy.base_url, timeout=10) as http:
            answers = [
                await http.get(f"/api/{user}/tasks", headers=headers)
                for _ in range(RATE_LIMIT + RATE_LIMIT_EXTRA)
            ]
    served = [a for a in answers if a.status_code == 200]
    refused = [a for a in answers if a.status_code == 429]
    if "ratelimit" not in answers[0].headers:
        return f"no RateLimit header: is Redis running at 127.0.0.1:6379? ({answers[0].headers})"
    if len(served) != RATE_LIMIT or len(refused) != RATE_LIMIT_EXTRA:
        return f"{len(served)} served and {len(refused)} refused of {len(answers)}"
    if not all(a.headers.get("retry-after", "").isdigit() for a in refused):
        return "a 429 without Retry-After"
    return None


def _summary(report: Report) -> int:
    passed = len(report.results) - report.failed
    print(f"{passed} passed, {report.failed} failed", flush=True)
    return 1 if report.failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL"),
        help="a PostgreSQL database the drill may write to (default: $DATABASE_URL)",
    )
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--operations", type=int, default=200, help="per user, at most")
    parser.add_argument("--seconds", type=float, default=25.0, help="load phase, at most")
    args = parser.parse_args(argv)
    if not args.database_url or not args.database_url.startswith("postgres"):
        parser.error("--database-url (or DATABASE_URL) must name a PostgreSQL database")
    for tool in ("pgbouncer", "haproxy"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            parser.error(f"{tool} is not installed (apt-get install -y haproxy pgbouncer)")
    return asyncio.run(drill(args.database_url, args.users, args.operations, args.seconds))


if __name__ == "__main__":
    sys.exit(main())
