"""`todo-api`: serve, migrate, token."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from pydantic import ValidationError

from backend.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

logger = logging.getLogger("todo_api")
MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


def _invalid(exc: ValidationError) -> str:
    """What is wrong with the configuration, without the values given (they may be secrets)."""
    problems = [
        f"{'.'.join(map(str, error['loc'])) or 'settings'}: {error['msg']}"
        for error in exc.errors(include_url=False, include_input=False)
    ]
    return "invalid configuration: " + "; ".join(problems)


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        sys.exit(f"todo-api: {_invalid(exc)}")


def _announce_dev_secret(settings: Settings) -> None:
    from backend.auth import resolve_hs_secret

    _, generated = resolve_hs_secret(settings)
    if generated is None:
        return
    logger.warning(
        "no authentication is configured (BETTER_AUTH_SECRET, BETTER_AUTH_URL or JWT_JWKS_URL). "
        f"For local development only, tokens are signed with a generated secret kept in "
        f"{generated}. Get a token with `todo-api token USER_ID` and send it as "
        "`Authorization: Bearer <token>`. This mode is refused when TODO_ENV=production.",
        extra={"secret_file": str(generated)},
    )


def _exit_cleanly(_signum: int, _frame: FrameType | None) -> None:
    """SIGTERM handler that uvicorn restores and re-raises once it has drained in-flight requests.

    Without it the process would end *by* SIGTERM (status -15/143), which supervisors read as
    a crash; a drained shutdown exits 0. Before uvicorn takes over, it simply exits.
    """
    raise SystemExit(0)


def served_app() -> FastAPI:
    """The app factory `serve` gives uvicorn: each worker process sets up its logging first."""
    from uvicorn.config import STARTUP_FAILURE

    from backend.app import create_app
    from backend.logs import configure_logging

    settings = Settings()
    configure_logging(settings.log_level)
    try:
        return create_app(settings)
    except Exception:
        # uvicorn's supervisor stops on this exit status; on any other it starts the worker
        # again, and an app that cannot be built would be rebuilt in a loop forever.
        logger.exception("the app cannot be built")
        sys.exit(STARTUP_FAILURE)


def _metrics_directory() -> tuple[Path, bool]:
    """Where the workers write their metric values: PROMETHEUS_MULTIPROC_DIR emptied, or a new
    temporary directory (True: ours to remove). Set before prometheus-client is first imported,
    in this process and in every worker it starts, so all of them write there."""
    given = os.environ.get(MULTIPROC_DIR_ENV)
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for file in path.glob("*.db"):  # a previous run's counters would be summed in
            file.unlink(missing_ok=True)
        return path, False
    path = Path(tempfile.mkdtemp(prefix="todo-api-metrics-"))
    os.environ[MULTIPROC_DIR_ENV] = str(path)
    return path, True


def serve(args: argparse.Namespace) -> int:
    from backend.logs import configure_logging

    try:
        settings = Settings()
    except ValidationError as exc:
        configure_logging("INFO")  # LOG_LEVEL itself may be what is invalid
        logger.error(_invalid(exc))
        return 1
    configure_logging(settings.log_level)
    if args.metrics_port is not None:
        settings = settings.model_copy(update={"metrics_port": args.metrics_port})
        os.environ["METRICS_PORT"] = str(args.metrics_port)  # the workers read their own
    if settings.metrics_port is None:
        return _serve(args, settings)
    directory, owned = _metrics_directory()
    try:
        return _serve_with_metrics(args, settings, str(directory))
    finally:
        if owned:
            shutil.rmtree(directory, ignore_errors=True)


def _serve_with_metrics(args: argparse.Namespace, settings: Settings, directory: str) -> int:
    from backend.metrics import start_metrics_server

    assert settings.metrics_port is not None
    try:
        server, _ = start_metrics_server(settings.metrics_host, settings.metrics_port, directory)
    except OSError as exc:
        logger.error(
            "cannot serve metrics on %s:%d: %s",
            settings.metrics_host,
            settings.metrics_port,
            exc.strerror,
        )
        return 1
    logger.info("metrics on http://%s:%d/metrics", settings.metrics_host, settings.metrics_port)
    try:
        return _serve(args, settings)
    finally:
        server.shutdown()
        server.server_close()


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE

    from backend.migrate import is_at_head, upgrade_to_head

    if settings.is_sqlite:
        upgrade_to_head(settings.database_url)
    elif not is_at_head(settings.database_url):
        logger.error("the database schema is not at the latest migration; run `todo-api migrate`")
        return 1
    _announce_dev_secret(settings)
    config = uvicorn.Config(
        "backend.cli:served_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop="uvloop",
        http="httptools",
        access_log=False,  # ours is backend.middleware's JSON line
        log_config=None,  # configure_logging, in this process and in each worker
        timeout_graceful_shutdown=args.graceful_timeout,
        server_header=False,
    )
    if args.workers > 1:
        from backend.workers import serve_workers

        return serve_workers(config)
    signal.signal(signal.SIGTERM, _exit_cleanly)
    server = uvicorn.Server(config)
    server.run()
    return 0 if server.started else STARTUP_FAILURE


def migrate(_: argparse.Namespace) -> int:
    from backend.migrate import upgrade_to_head

    settings = _settings()
    upgrade_to_head(settings.database_url)
    print("database is at the latest migration")
    return 0


def token(args: argparse.Namespace) -> int:
    from backend.auth import mint_token, resolve_hs_secret

    settings = _settings()
    secret, _ = resolve_hs_secret(settings)
    if secret is None:
        print(
            "todo-api: tokens can only be minted with a shared secret (BETTER_AUTH_SECRET); "
            "this server verifies JWKS-signed tokens from Better Auth",
            file=sys.stderr,
        )
        return 1
    try:
        minted = mint_token(
            secret,
            args.user_id,
            ttl_seconds=args.ttl,
            issuer=settings.expected_issuer,
            audience=settings.expected_audience,
        )
    except ValueError as exc:
        print(f"todo-api: cannot mint a token: {exc}", file=sys.stderr)
        return 2
    print(minted)
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="todo-api", description="Multi-user Todo REST API")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser(
        "serve", help="run the API (SQLite file by default, migrated on start)"
    )
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=8000)
    run.add_argument(
        "--workers",
        type=_positive,
        default=1,
        help="worker processes, each listening on the port through SO_REUSEPORT (default 1)",
    )
    run.add_argument(
        "--graceful-timeout",
        type=int,
        default=15,
        help="seconds to finish in-flight requests after SIGTERM",
    )
    run.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="serve Prometheus metrics on METRICS_HOST (127.0.0.1) at this port "
        "(default: METRICS_PORT; off when neither is set)",
    )
    run.set_defaults(handler=serve)

    up = commands.add_parser("migrate", help="upgrade DATABASE_URL to the latest schema")
    up.set_defaults(handler=migrate)

    mint = commands.add_parser(
        "token", help="mint a development HS256 token with the configured secret"
    )
    mint.add_argument("user_id")
    mint.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds (default 3600)")
    mint.set_defaults(handler=token)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
