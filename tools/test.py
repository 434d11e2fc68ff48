"""Run every check and test: `python3 -m tools.test` (README's test command).

Needs only Python 3.11+ to start: it creates `.venv` when missing, installs exactly the versions
in uv.lock (the project with its `dev` extra, through the pinned uv), installs the contract
tools from tools/package-lock.json when Node.js is present,
then runs the drift gate, the static checks, the contract checks and pytest. Every step runs
even after a failure, so one run shows everything that is wrong; the exit status is non-zero
if any step failed. Extra arguments go to pytest (e.g. `python3 -m tools.test -k crud`);
`python3 -m tools.test --setup` only installs (a backend developer's one set-up command).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import venv
from pathlib import Path

from tools import node_env

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
PYTHON = VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
TOOLS = ROOT / "tools"
UV_VERSION = "0.13.8"  # the uv that wrote uv.lock; docs/contract-workflow.md and CI name it too


def _run(title: str, command: list[str], results: list[tuple[str, int, float]]) -> int:
    print(f"\n=== {title}: {' '.join(command)}", flush=True)
    started = time.monotonic()
    code = subprocess.call(command, cwd=ROOT)
    results.append((title, code, time.monotonic() - started))
    return code


def ensure_environment(results: list[tuple[str, int, float]]) -> bool:
    """Create the virtualenv and install everything the checks need; False if that failed."""
    if not PYTHON.exists():
        print(f"creating virtualenv in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    uv = VENV / "bin" / "uv"
    if _run("uv", [str(PYTHON), "-m", "pip", "install", "--quiet", f"uv=={UV_VERSION}"], results):
        return False
    # The locked versions, into this same .venv (uv's project environment).
    locked = [str(uv), "sync", "--locked", "--inexact", "--extra", "dev", "--quiet"]
    if _run("install (uv.lock)", locked, results):
        return False
    if (TOOLS / "package-lock.json").exists():
        if node_env.node() is None or node_env.npm() is None:
            print(
                "SKIPPING the contract tools (lint, breaking-change gate, TypeScript, browser "
                "checks): Node.js/npm not found on PATH (install Node.js 20 and npm)",
                flush=True,
            )
        elif not node_env.installed():
            npm = str(node_env.npm())
            if _run(
                "npm ci", [npm, "ci", "--prefix", str(TOOLS), "--no-audit", "--no-fund"], results
            ):
                return False
    return True


def static_checks(python: str, bin_dir: Path) -> list[tuple[str, list[str]]]:
    """The checks that need no services; .pre-commit-config.yaml runs the very same commands."""
    code = ["backend", "tools", "tests"]  # generated/ is formatted by the generator's black
    return [
        ("drift gate", [python, "-m", "tools.regen", "--check"]),
        ("ruff", [python, "-m", "ruff", "check", *code]),
        ("ruff format", [python, "-m", "ruff", "format", "--check", *code]),
        ("mypy", [python, "-m", "mypy"]),
        ("import contracts", [str(bin_dir / "lint-imports")]),
    ]


def main(argv: list[str]) -> int:
    results: list[tuple[str, int, float]] = []
    if argv[:1] in (["-h"], ["--help"]):
        print(__doc__)
        return 0
    if argv[:1] == ["--setup"]:
        ready = ensure_environment(results)
        print("set up: .venv (uv.lock) and tools/node_modules" if ready else "set-up failed")
        return 0 if ready else 1
    if ensure_environment(results):
        python = str(PYTHON)
        for title, command in static_checks(python, VENV / "bin"):
            _run(title, command, results)
        if node_env.missing_reason() is None:
            _run("contract lint", [python, "-m", "tools.lint_contract"], results)
            _run("breaking-change gate", [python, "-m", "tools.contract_diff"], results)
        else:
            print(f"SKIPPED contract lint and breaking-change gate: {node_env.missing_reason()}")
        _run("pytest", [python, "-m", "pytest", *argv], results)
    print("\n=== summary", flush=True)
    for title, code, seconds in results:
        print(f"{'ok  ' if code == 0 else 'FAIL'} {title} ({seconds:.1f}s)")
    failed = [title for title, code, _ in results if code != 0]
    print("all checks passed" if not failed else f"failed: {', '.join(failed)}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
