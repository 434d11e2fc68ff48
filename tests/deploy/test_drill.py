"""`python -m tools.drill` passes: the production shape survives its faults."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.support import PG_SKIP_REASON, ROOT


@pytest.mark.slow
def test_fault_drill_passes(migrated_postgres: str | None) -> None:
    if migrated_postgres is None:
        pytest.skip(PG_SKIP_REASON)
    missing = [tool for tool in ("haproxy", "pgbouncer") if shutil.which(tool) is None]
    if missing and os.path.exists("/usr/sbin/haproxy") and os.path.exists("/usr/sbin/pgbouncer"):
        missing = []
    if missing:
        pytest.skip(f"{' and '.join(missing)} not installed (apt-get install -y haproxy pgbouncer)")
    done = subprocess.run(
        [sys.executable, "-m", "tools.drill", "--database-url", migrated_postgres],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1] == "6 passed, 0 failed", done.stdout
