"""A private, throw-away PostgreSQL cluster that a test may stop and start at will.

Never the machine's shared server: initdb into a temporary directory, listen on a free
loopback port, run as the `postgres` user (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from tests.support import free_port

SERVER_OS_USER = "postgres"


def _bindir() -> Path | None:
    pg_config = shutil.which("pg_config")
    if pg_config is None:
        return None
    out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
    bindir = Path(out.stdout.strip())
    return bindir if (bindir / "initdb").exists() and (bindir / "pg_ctl").exists() else None


def unavailable_reason() -> str | None:
    """Why a private cluster cannot be run here, or None when it can."""
    if _bindir() is None:
        return "initdb/pg_ctl not found (pg_config --bindir); install the PostgreSQL server package"
    if shutil.which("runuser") is None or os.geteuid() != 0:
        return "a private cluster needs root and runuser to start PostgreSQL as the postgres user"
    try:
        pwd.getpwnam(SERVER_OS_USER)
    except KeyError:
        return f"no {SERVER_OS_USER!r} OS user to run a private PostgreSQL cluster"
    return None


@dataclass
class PrivateCluster:
    root: Path
    port: int
    bindir: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "postgres.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, timeout: float = 60.0) -> None:
        subprocess.run(
            ["runuser", "-u", SERVER_OS_USER, "--", str(self.bindir / args[0]), *args[1:]],
            check=True,
            capture_output=True,
            timeout=timeout,
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run("pg_ctl", "start", "-w", "-t", "30", "-D", str(self.data), "-l", str(self.log),
                  "-o", options)  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "stop", "-w", "-t", "30", "-m", mode, "-D", str(self.data))

    def is_running(self) -> bool:
        status = subprocess.run(
            ["runuser", "-u", SERVER_OS_USER, "--", str(self.bindir / "pg_ctl"), "status",
             "-D", str(self.data)],
            capture_output=True,
            check=False,
        )  # fmt: skip
        return status.returncode == 0

    def processes(self) -> list[int]:
        """The postmaster and every process it started (backends, checkpointer, ...)."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        children = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # pid (comm) state ppid ...: comm may hold spaces, so split after its ")".
            if int(stat.rsplit(")", 1)[1].split()[1]) == postmaster:
                children.append(int(entry.name))
        return [postmaster, *children]

    def freeze(self) -> None:
        """SIGSTOP the whole server: connections stay open, nothing answers (a frozen host)."""
        for pid in self.processes():
            os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        for pid in self.processes():
            os.kill(pid, signal.SIGCONT)

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def destroy(self) -> None:
        if self.data.exists() and self.is_running():
            self.thaw()
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def create_cluster() -> PrivateCluster:
    """initdb a new cluster in a temporary directory owned by the postgres user, and start it."""
    bindir = _bindir()
    assert bindir is not None
    root = Path(tempfile.mkdtemp(prefix="todo-api-pg-"))
    user = pwd.getpwnam(SERVER_OS_USER)
    os.chown(root, user.pw_uid, user.pw_gid)
    root.chmod(0o700)
    cluster = PrivateCluster(root=root, port=free_port(), bindir=bindir)
    try:
        cluster._run("initdb", "-D", str(cluster.data), "-U", "postgres", "--auth=trust",
                     "-E", "UTF8", "--no-sync", "--no-instructions")  # fmt: skip
        cluster.start()
    except BaseException:
        cluster.destroy()
        raise
    return cluster
