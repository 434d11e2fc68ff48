"""The front end end to end, in a real browser: `python -m tools.e2e [--report-dir DIR]`.

Builds the client package (clients/typescript) and the reference web client (examples/web),
then starts, each on a free loopback port: the page's own server with a real Better Auth
(examples/web/server.mjs: SQLite through better-sqlite3, the JWT plugin with EdDSA keys) and
`todo-api serve` in JWKS mode (`BETTER_AUTH_URL` = that server, `CORS_ORIGINS` = the page's
origin, so the API is another origin). tests/frontend/e2e.mjs then drives the page in headless
Debian Chromium through playwright-core and prints what it saw; screenshots go to
reports/e2e/. The pytest suite runs the same thing (tests/frontend/test_e2e.py).

`--build-only` builds and stops. Node.js 20 with npm and Chromium (`/usr/bin/chromium`) are
needed; `unavailable_reason()` says which is missing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tools import node_env

ROOT = node_env.ROOT
CLIENT = ROOT / "clients" / "typescript"
WEB = ROOT / "examples" / "web"
DRIVER = ROOT / "tests" / "frontend" / "e2e.mjs"
REPORT_DIR = ROOT / "reports" / "e2e"
CHROMIUM_HINT = "apt-get update && apt-get install -y chromium"
# The page renews its token this long before `exp`. A negative margin is a page whose clock runs
# behind the API's: it sends tokens the API already counts as expired, so the end-to-end run
# exercises the 401 path (fresh token, one retry), on top of the short token lifetime.
E2E_RENEWAL_MARGIN_SECONDS = "-30"
E2E_JWT_EXPIRATION = "12s"


class Unavailable(RuntimeError):
    """Node.js, npm or Chromium is missing; the message says what to install."""


def chromium_path() -> str | None:
    found = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium")
    if found is None and Path("/usr/bin/chromium").exists():
        found = "/usr/bin/chromium"
    return found


def unavailable_reason() -> str | None:
    """Why the browser test cannot run here (no Node.js/npm, no Chromium), or None."""
    if node_env.node() is None or node_env.npm() is None:
        return "Node.js/npm not found on PATH (install Node.js 20 and npm)"
    if chromium_path() is None:
        return f"Chromium not found (/usr/bin/chromium); install it: {CHROMIUM_HINT}"
    return None


def _run(command: list[str], *, cwd: Path = ROOT, timeout: float = 600) -> str:
    result = subprocess.run(
        command,
        cwd=cwd,
        env=node_env.quiet_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
    return result.stdout


def link_node_modules() -> None:
    """Point clients/typescript and examples/web at tools/node_modules (the one pinned install)."""
    for folder in (CLIENT, WEB):
        link = folder / "node_modules"
        target = os.path.relpath(node_env.NODE_MODULES, folder)
        if link.is_symlink() and os.readlink(link) == target:
            continue
        if link.is_symlink() or link.is_file():
            link.unlink()
        elif link.exists():
            shutil.rmtree(link)
        link.symlink_to(target, target_is_directory=True)


def _native_cache(package: Path, node: Path) -> Path:
    """Where a compiled better-sqlite3 is kept between installs: per its version and Node's ABI."""
    version = json.loads((package / "package.json").read_text(encoding="utf-8"))["version"]
    abi = _run([str(node), "-p", "process.versions.modules + '-' + process.arch"]).strip()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "todo-api" / f"better_sqlite3-{version}-node{abi}.node"


def ensure_better_sqlite3() -> None:
    """Compile better-sqlite3's native module (tools/.npmrc keeps install scripts off).

    Its install script would download a prebuilt binary; node-gyp builds it from the bundled
    SQLite instead, against the installed Node.js headers (no download either). That takes about
    two minutes on two cores, so the result is also kept in ~/.cache/todo-api for the next
    `npm ci`.
    """
    package = node_env.NODE_MODULES / "better-sqlite3"
    built = package / "build" / "Release" / "better_sqlite3.node"
    if built.exists():
        return
    node = Path(str(node_env.node())).resolve()
    cached = _native_cache(package, node)
    if cached.exists():
        built.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(cached, built)
        return
    npm = Path(str(node_env.npm())).resolve()
    gyp = npm.parent.parent / "node_modules" / "node-gyp" / "bin" / "node-gyp.js"
    nodedir = node.parent.parent
    if not gyp.exists() or not (nodedir / "include" / "node" / "common.gypi").exists():
        raise Unavailable(
            f"cannot build better-sqlite3: node-gyp ({gyp}) or the Node.js headers "
            f"({nodedir}/include/node) are missing"
        )
    print("building better-sqlite3 (once per install; about two minutes)", flush=True)
    _run(
        [str(node), str(gyp), "rebuild", "--release", f"--nodedir={nodedir}", "--jobs=2"],
        cwd=package,
        timeout=900,
    )
    with contextlib.suppress(OSError):
        cached.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built, cached)


def esbuild(entry: Path, outfile: Path, *, platform: str) -> None:
    """Bundle `entry` with the pinned esbuild, resolving @todo-api/client to the built package."""
    _run(
        [
            str(node_env.executable("esbuild")),
            str(entry),
            "--bundle",
            "--format=esm",
            "--target=es2022",
            f"--platform={platform}",
            f"--outfile={outfile}",
            f"--alias:@todo-api/client={CLIENT / 'dist' / 'index.js'}",
            "--log-level=warning",
        ]
    )


def build_client() -> None:
    """Copy the contract's types into the package, check its version, compile it (strict tsc)."""
    link_node_modules()
    _run([str(node_env.node()), str(CLIENT / "scripts" / "build.mjs")])


def typecheck(project: Path) -> None:
    _run([str(node_env.executable("tsc")), "-p", str(project), "--noEmit"])


def build(*, page: bool = True) -> None:
    """Everything the front-end checks need: tools installed, the package, the page."""
    node_env.ensure_installed()
    build_client()
    if page:
        typecheck(WEB)
        esbuild(WEB / "main.ts", WEB / "dist" / "app.js", platform="browser")
        ensure_better_sqlite3()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Service:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _wait_until(service: Service, ready_path: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise RuntimeError(
                f"{service.name} exited {service.process.returncode}:\n{service.log()}"
            )
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(service.url + ready_path, timeout=1.0).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(
        f"{service.name} did not answer {ready_path} in {timeout:.0f}s:\n{service.log()}"
    )


def _start(name: str, command: list[str], env: dict[str, str], port: int, workdir: Path) -> Service:
    log_path = workdir / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    return Service(name, f"http://127.0.0.1:{port}", process, log_path)


def stop(service: Service) -> int:
    if service.process.poll() is None:
        service.process.terminate()
        try:
            service.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            service.process.kill()
            service.process.wait()
    return service.process.returncode


@dataclass
class Stack:
    """The page with Better Auth on one origin, the API on another."""

    web: Service
    api: Service


@contextlib.contextmanager
def running_stack(
    workdir: Path,
    *,
    jwt_expiration: str | None = E2E_JWT_EXPIRATION,
    token_margin_seconds: str = E2E_RENEWAL_MARGIN_SECONDS,
    api_env: dict[str, str] | None = None,
) -> Iterator[Stack]:
    """Start Better Auth + page and the API (JWKS mode, CORS for the page); stop both after."""
    web_port, api_port = free_port(), free_port()
    web_url, api_url = f"http://127.0.0.1:{web_port}", f"http://127.0.0.1:{api_port}"
    web_env = node_env.quiet_env(
        {
            "PORT": str(web_port),
            "HOST": "127.0.0.1",
            "BETTER_AUTH_URL": web_url,
            "BETTER_AUTH_SECRET": secrets.token_urlsafe(48),
            "AUTH_DB": str(workdir / "auth.db"),
            "TODO_API_URL": api_url,
            "TOKEN_MARGIN_SECONDS": token_margin_seconds,
        }
    )
    if jwt_expiration:
        web_env["JWT_EXPIRATION"] = jwt_expiration
    web = _start("web", [str(node_env.node()), str(WEB / "server.mjs")], web_env, web_port, workdir)
    api: Service | None = None
    try:
        _wait_until(web, "/api/auth/jwks", 60)
        executable = shutil.which("todo-api", path=str(Path(sys.executable).parent)) or "todo-api"
        env = {
            **os.environ,
            "TODO_ENV": "test",
            "DATABASE_URL": f"sqlite:///{workdir / 'todo.db'}",
            "BETTER_AUTH_URL": web_url,
            "BETTER_AUTH_SECRET": "",
            "JWT_JWKS_URL": "",
            "JWT_ISSUER": "",
            "JWT_AUDIENCE": "",
            "JWT_LEEWAY_SECONDS": "0",
            "CORS_ORIGINS": web_url,
            "LOG_LEVEL": "INFO",
            **(api_env or {}),
        }
        command = [executable, "serve", "--host", "127.0.0.1", "--port", str(api_port)]
        api = _start("api", command, env, api_port, workdir)
        _wait_until(api, "/api/health", 60)
        yield Stack(web=web, api=api)
    finally:
        if api is not None:
            stop(api)
        stop(web)


def run(report_dir: Path = REPORT_DIR) -> dict[str, Any]:
    """Build, start the stack, drive the browser; the driver's report (with `error` on failure)."""
    reason = unavailable_reason()
    if reason is not None:
        raise Unavailable(reason)
    build()
    report_dir.mkdir(parents=True, exist_ok=True)
    for old in report_dir.glob("*.png"):
        old.unlink()
    with tempfile.TemporaryDirectory(prefix="todo-e2e-") as tmp:
        workdir = Path(tmp)
        (workdir / "profiles").mkdir()
        with running_stack(workdir) as stack:
            port = stack.web.url.rsplit(":", 1)[1]
            config = {
                "pageUrl": f"{stack.web.url}/?pageSize=3",
                "apiUrl": stack.api.url,
                # Same server, another origin (localhost is not 127.0.0.1): not in CORS_ORIGINS.
                "foreignUrl": f"http://localhost:{port}/config.json",
                "shots": str(report_dir),
                "chromium": chromium_path(),
                "profiles": str(workdir / "profiles"),
            }
            result = subprocess.run(
                [str(node_env.node()), str(DRIVER)],
                cwd=ROOT,
                env=node_env.quiet_env({"E2E_CONFIG": json.dumps(config)}),
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            logs = {"web": stack.web.log(), "api": stack.api.log()}
        try:
            report: dict[str, Any] = json.loads(result.stdout)
        except json.JSONDecodeError:
            report = {"error": f"the driver exited {result.returncode}: {result.stderr[-4000:]}"}
        report["config"] = config
        report["driverStderr"] = result.stderr[-4000:]
        report["logs"] = {name: text[-20000:] for name, text in logs.items()}
        (report_dir / "report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
        return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--report-dir", type=Path, default=REPORT_DIR, help="screenshots, report.json"
    )
    parser.add_argument("--build-only", action="store_true", help="build the package and the page")
    args = parser.parse_args(argv)
    try:
        if args.build_only:
            build()
            print(f"built {CLIENT / 'dist'} and {WEB / 'dist' / 'app.js'}")
            return 0
        report = run(args.report_dir)
    except (Unavailable, node_env.NodeToolsMissing) as exc:
        print(f"e2e: cannot run: {exc}", file=sys.stderr)
        return 2
    for name, value in report.get("steps", {}).items():
        print(f"{name}: {json.dumps(value)[:300]}")
    print(f"screenshots and report.json in {args.report_dir}")
    if "error" in report:
        print(f"FAILED: {report['error']}", file=sys.stderr)
        return 1
    print("e2e passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
