"""A mock of the contract for front-end work: `python -m tools.mock [--port N] [--dynamic]`.

Starts Prism (`@stoplight/prism-cli`, pinned in tools/package.json) on specs/api/openapi.yaml.
It answers every operation with the contract's examples (`--dynamic`: with data generated from
the schemas), validates each request against the contract (a bad body or parameter gets the
contract's 422 problem), answers 401 when the bearer token is missing, and sends permissive CORS
headers, so a page on any origin can call it. `Prefer: code=412` (or any status the operation
declares) picks that response. It prints where it listens and runs until interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tools import node_env

CONTRACT = node_env.ROOT / "specs" / "api" / "openapi.yaml"
DEFAULT_PORT = 4010


@dataclass
class Mock:
    url: str
    process: subprocess.Popen[str]


def command(port: int, host: str, dynamic: bool, contract: Path = CONTRACT) -> list[str]:
    args = [str(node_env.executable("prism")), "mock", str(contract), "--port", str(port)]
    args += ["--host", host]
    if dynamic:
        args.append("--dynamic")
    return args


def wait_ready(mock: Mock, timeout: float = 60) -> None:
    """Wait until the mock answers the health probe (Prism parses the contract first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if mock.process.poll() is not None:
            output = mock.process.stdout.read() if mock.process.stdout else ""
            raise RuntimeError(f"prism exited {mock.process.returncode}:\n{output}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{mock.url}/api/health", timeout=1.0).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"prism did not answer on {mock.url} within {timeout:.0f}s")


@contextlib.contextmanager
def running(
    port: int, *, host: str = "127.0.0.1", dynamic: bool = False, log: Path | None = None
) -> Iterator[Mock]:
    """A mock for the duration of the block (used by the tests); its output goes to `log`."""
    sink = log.open("w") if log is not None else subprocess.DEVNULL
    try:
        process = subprocess.Popen(
            command(port, host, dynamic),
            cwd=node_env.ROOT,
            env=node_env.quiet_env(),
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
        )
        mock = Mock(f"http://{host}:{port}", process)
        try:
            wait_ready(mock)
            yield mock
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    finally:
        if log is not None and not isinstance(sink, int):
            sink.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="default %(default)s")
    parser.add_argument("--host", default="127.0.0.1", help="default %(default)s")
    parser.add_argument(
        "--dynamic", action="store_true", help="generate responses from the schemas"
    )
    args = parser.parse_args(argv)
    try:
        node_env.ensure_installed()
        argv_prism = command(args.port, args.host, args.dynamic)
    except node_env.NodeToolsMissing as exc:
        print(f"mock: cannot run: {exc}", file=sys.stderr)
        return 2
    # SIGTERM unwinds like Ctrl-C, so Prism is stopped with us rather than left running.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    process = subprocess.Popen(argv_prism, cwd=node_env.ROOT, env=node_env.quiet_env(), text=True)
    mock = Mock(f"http://{args.host}:{args.port}", process)
    try:
        wait_ready(mock)
        mode = "dynamic data from the schemas" if args.dynamic else "the contract's examples"
        print(
            f"mock of {CONTRACT.relative_to(node_env.ROOT)} listening on {mock.url} "
            f"(answers with {mode}; Ctrl-C stops it)",
            flush=True,
        )
        return process.wait()
    except KeyboardInterrupt:
        return 0
    except RuntimeError as exc:
        print(f"mock: {exc}", file=sys.stderr)
        return 1
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


if __name__ == "__main__":
    sys.exit(main())
