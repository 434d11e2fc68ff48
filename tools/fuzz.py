"""Fuzz a live `todo-api serve` with schemathesis, against the approved contract.

    python -m tools.fuzz [--max-examples N] [--max-time S] [--seed S] [--port N]
                         [--operation OPERATION_ID ...] [-- extra schemathesis args]

Starts the real server (uvicorn, real HTTP on 127.0.0.1, a free port unless --port) on
PostgreSQL from DATABASE_URL (migrated first with `todo-api migrate`) or on a temporary SQLite
file, with a generated BETTER_AUTH_SECRET; mints a token for a fresh user; runs `schemathesis run
specs/api/openapi.yaml` (the approved file, not the server's /openapi.json) with every check
and every phase (only the operations named by --operation, if any); writes a JUnit report
under reports/fuzz/; stops the server; prints the operations the report covers; and exits with
schemathesis's status (non-zero on any failure, or when a named operation was not run).
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import yaml

from backend.auth import mint_token
from tools.live_server import LiveServer, ServerFailed, executable, start_server, stop_server

ROOT = Path(__file__).resolve().parent.parent
CONTRACT = ROOT / "specs" / "api" / "openapi.yaml"
CONFIG = ROOT / "tools" / "schemathesis.toml"
DEFAULT_REPORT_DIR = ROOT / "reports" / "fuzz"
DEFAULT_SEED = 20261120
DEFAULT_MAX_EXAMPLES = 30
DEFAULT_MAX_TIME = 180
PHASES = "examples,coverage,fuzzing,stateful"
STARTUP_TIMEOUT_SECONDS = 30.0


def _migrate(env: dict[str, str]) -> None:
    result = subprocess.run(
        [executable("todo-api"), "migrate"], env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        sys.exit(f"fuzz: `todo-api migrate` failed:\n{result.stdout}{result.stderr}")


def contract_operations(contract: Path = CONTRACT) -> dict[str, str]:
    """Every operationId of the contract with its `METHOD /path`, in contract order."""
    document: dict[str, Any] = yaml.safe_load(contract.read_text(encoding="utf-8"))
    return {
        operation["operationId"]: f"{method.upper()} {path}"
        for path, item in document.get("paths", {}).items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "operationId" in operation
    }


def covered_operations(junit: Path) -> tuple[list[str], list[str]]:
    """The `METHOD /path` of the operations the JUnit report ran, and of those it skipped."""
    if not junit.exists():
        return [], []
    root = ET.parse(junit).getroot()  # noqa: S314 - written by schemathesis in this run
    ran: set[str] = set()
    skipped: set[str] = set()
    for case in root.iter("testcase"):
        name = case.attrib.get("name", "")
        (skipped if case.find("skipped") is not None else ran).add(name)
    return sorted(ran), sorted(skipped - ran)


def _start(env: dict[str, str], workdir: Path, log_path: Path, port: int | None) -> LiveServer:
    """The server under fuzzing, with exactly `env` (variables removed from it stay removed)."""
    try:
        return start_server(
            env,
            workdir,
            port=port,
            log_path=log_path,
            inherit_environ=False,
            timeout=STARTUP_TIMEOUT_SECONDS,
        )
    except ServerFailed:
        sys.exit(f"fuzz: the server did not start; see {log_path}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tools.fuzz",
        description="Fuzz a live todo-api server with schemathesis (all checks, all phases).",
        epilog="Arguments after `--` go to `schemathesis run` unchanged.",
    )
    parser.add_argument(
        "--max-examples",
        type=int,
        default=DEFAULT_MAX_EXAMPLES,
        help=f"test cases per operation and phase (default {DEFAULT_MAX_EXAMPLES})",
    )
    parser.add_argument(
        "--max-time",
        type=int,
        default=DEFAULT_MAX_TIME,
        help=(
            "time budget in seconds: fuzzing and stateful testing repeat until it is spent; "
            f"0 = no budget, stop after --max-examples (default {DEFAULT_MAX_TIME})"
        ),
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        help=f"random seed; the same seed replays the same run (default {DEFAULT_SEED})",
    )
    parser.add_argument(
        "--workers", default="1", help="concurrent schemathesis workers (default 1)"
    )
    parser.add_argument(
        "--phases", default=PHASES, help=f"comma-separated phases (default {PHASES})"
    )
    parser.add_argument("--checks", default="all", help="comma-separated checks (default all)")
    parser.add_argument(
        "--user-id",
        default=None,
        help="subject of the minted token (default: a fresh fuzz-<hex> per run)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=None,
        help="serve on this 127.0.0.1 port (default: a free one)",
    )
    parser.add_argument(
        "--operation",
        action="append",
        default=[],
        metavar="OPERATION_ID",
        help="fuzz only this operation (repeatable; default: every operation)",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL") or None,
        help="database to fuzz against, migrated first (default $DATABASE_URL; unset: temp SQLite)",
    )
    parser.add_argument(
        "--report-dir",
        type=Path,
        default=DEFAULT_REPORT_DIR,
        help="where the JUnit report and the server log go (default reports/fuzz)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    extra: list[str] = []
    if "--" in argv:
        split = argv.index("--")
        argv, extra = argv[:split], argv[split + 1 :]
    parser = build_parser()
    args = parser.parse_args(argv)
    known = contract_operations()
    unknown = [name for name in args.operation if name not in known]
    if unknown:
        parser.error(
            f"unknown operationId {', '.join(unknown)}; the contract has {', '.join(known)}"
        )
    if args.port is not None and not 0 < args.port < 65536:
        parser.error(f"--port {args.port} is not a TCP port")

    report_dir: Path = args.report_dir.resolve()
    report_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    user_id = args.user_id or f"fuzz-{secrets.token_hex(4)}"
    # Outlives the run (schemathesis may overrun --max-time while it shrinks a failure).
    token = mint_token(secret.encode(), user_id, ttl_seconds=max(args.max_time, 3600) + 3600)

    with tempfile.TemporaryDirectory(prefix="todo-fuzz-") as workdir:
        database_url = args.database_url or f"sqlite:///{Path(workdir) / 'fuzz.db'}"
        server_env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "BETTER_AUTH_SECRET": secret,
            "TODO_ENV": "production",
            "LOG_LEVEL": "WARNING",
        }
        for name in (
            "BETTER_AUTH_URL",
            "JWT_JWKS_URL",
            "JWT_ISSUER",
            "JWT_AUDIENCE",
            "CORS_ORIGINS",
        ):
            server_env.pop(name, None)
        if args.database_url:
            _migrate(server_env)

        log_path = report_dir / "server.log"
        server = _start(server_env, Path(workdir), log_path, args.port)
        try:
            command = [
                executable("schemathesis"),
                "--config-file",
                str(CONFIG),
                "run",
                str(CONTRACT),
                "--url",
                server.base_url,
                "--checks",
                args.checks,
                "--phases",
                args.phases,
                "--max-examples",
                str(args.max_examples),
                *(["--max-time", str(args.max_time)] if args.max_time > 0 else []),
                "--seed",
                str(args.seed),
                "--workers",
                str(args.workers),
                "--report",
                "junit",
                "--report-junit-path",
                str(report_dir / "junit.xml"),
                *(f"--include-operation-id={name}" for name in args.operation),
                *extra,
            ]
            fuzz_env = {
                **os.environ,
                "TODO_FUZZ_TOKEN": token,
                "TODO_FUZZ_USER_ID": user_id,
                "SCHEMATHESIS_HOOKS": "tools.fuzz_hooks",
                "PYTHONPATH": os.pathsep.join(
                    filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])
                ),
            }
            where = (
                database_url.split(":", 1)[0] if args.database_url else "a temporary SQLite file"
            )
            print(
                f"fuzz: server {server.base_url} on {where}; user {user_id}; seed {args.seed}",
                flush=True,
            )
            started = time.monotonic()
            status = subprocess.run(command, env=fuzz_env, cwd=ROOT, check=False).returncode
            elapsed = time.monotonic() - started
        finally:
            stop_server(server)
    junit = report_dir / "junit.xml"
    print(
        f"fuzz: schemathesis exited with {status} after {elapsed:.0f} s; "
        f"JUnit report {junit}; server log {log_path}",
        flush=True,
    )
    status = report_coverage(junit, known, args.operation, status)
    if status != 0:
        print(
            f"fuzz: to reproduce, rerun with --seed {args.seed}, or replay one case as user "
            f'{user_id} against your own server (README.md, "Reproducing a failure")',
            flush=True,
        )
    return status


def report_coverage(junit: Path, known: dict[str, str], asked: list[str], status: int) -> int:
    """Print the operations the run covered; a named operation that did not run is a failure."""
    by_route = {route: name for name, route in known.items()}
    ran, skipped = covered_operations(junit)
    covered = [route for route in ran if route in by_route]
    print(f"fuzz: covered {len(covered)} of {len(known)} operations:", flush=True)
    for route in covered:
        print(f"  {by_route[route]}: {route}", flush=True)
    for route in skipped:
        print(f"  skipped by schemathesis: {by_route.get(route, '?')}: {route}", flush=True)
    missing = [name for name in asked if known[name] not in covered]
    if missing:
        print(f"fuzz: not covered although asked for: {', '.join(missing)}", flush=True)
        return status or 1
    return status


if __name__ == "__main__":
    sys.exit(main())
