"""Where the Node-based contract tools live, and how to run them quietly and offline.

Everything Node-based is installed by `npm ci --prefix tools` from tools/package-lock.json
(exact versions; tools/.npmrc turns install scripts off, so nothing downloads a binary). The
Python wrappers (lint_contract, contract_diff, ts_types, docs_html) call the installed
executables directly, never `npx`, so a missing install is an error and never a download.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / "tools"
NODE_MODULES = TOOLS / "node_modules"
LOCK = TOOLS / "package-lock.json"
# npm writes this copy of the lock into node_modules on every install.
INSTALLED_LOCK = NODE_MODULES / ".package-lock.json"
INSTALL_HINT = "npm ci --prefix tools"

# Telemetry, update checks and colour codes off: the tools must not call out, and their output
# is parsed or shown in test failures.
QUIET_ENV = {
    "REDOCLY_TELEMETRY": "off",
    "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true",
    "OPTIC_TELEMETRY_LEVEL": "off",
    "NO_UPDATE_NOTIFIER": "1",
    "NO_COLOR": "1",
    "FORCE_COLOR": "0",
    "npm_config_update_notifier": "false",
}


class NodeToolsMissing(RuntimeError):
    """Node.js, npm or the installed tools are not there; the message says what to do."""


def node() -> str | None:
    return shutil.which("node")


def npm() -> str | None:
    return shutil.which("npm")


def installed() -> bool:
    """True when tools/node_modules holds an install of the current lock file."""
    return INSTALLED_LOCK.exists() and INSTALLED_LOCK.stat().st_mtime >= LOCK.stat().st_mtime


def missing_reason() -> str | None:
    """Why the Node tools cannot run here, or None when they can."""
    if node() is None or npm() is None:
        return "Node.js/npm not found on PATH (install Node.js 20 and npm)"
    if not installed():
        return f"the contract tools are not installed (or older than the lock): `{INSTALL_HINT}`"
    return None


def ensure_installed() -> None:
    """Run `npm ci --prefix tools` when tools/node_modules is absent or stale."""
    npm_path = npm()
    if node() is None or npm_path is None:
        raise NodeToolsMissing("Node.js/npm not found on PATH (install Node.js 20 and npm)")
    if installed():
        return
    result = subprocess.run(
        [npm_path, "ci", "--prefix", str(TOOLS), "--no-audit", "--no-fund"],
        cwd=ROOT,
        env=quiet_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0 or not installed():
        raise NodeToolsMissing(
            f"`{INSTALL_HINT}` failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )


def executable(name: str) -> Path:
    """Path of an installed tool's executable, e.g. `redocly`; raises when it cannot run."""
    reason = missing_reason()
    if reason is not None:
        raise NodeToolsMissing(reason)
    path = NODE_MODULES / ".bin" / name
    if not path.exists():
        raise NodeToolsMissing(f"{path} is missing: run `{INSTALL_HINT}`")
    return path


def without_banners(text: str) -> str:
    """Drop boxed notices (Redocly's Node.js 20 deprecation box) from tool output."""
    return "\n".join(
        line for line in text.splitlines() if line.strip() and not any(c in line for c in "║╔╚")
    )


def quiet_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {**os.environ, **QUIET_ENV, **(extra or {})}


def run(
    tool: str, *args: str, timeout: float = 300, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    """Run an installed tool with telemetry off, capturing its output (whatever its exit code)."""
    return subprocess.run(
        [str(executable(tool)), *args],
        cwd=cwd,
        env=quiet_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
