"""The JSON log formatter and the one place logging is configured."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from datetime import UTC, datetime

from hypothesis import example, given
from hypothesis import strategies as st

from backend.logs import JsonFormatter, UtcTimestamps

LATEST = datetime(9999, 12, 30, tzinfo=UTC).timestamp()


@given(st.floats(min_value=0, max_value=LATEST))
@example(1_700_000_000.9999995)  # rounds up into the next second
@example(1_700_000_000.0004999)
@example(1_700_000_000.0005)
@example(0.0)
def test_timestamp_is_isoformat_in_milliseconds(created: float) -> None:
    expected = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
    assert UtcTimestamps()(created) == expected


def test_cached_second_is_not_reused_for_another_second() -> None:
    timestamps = UtcTimestamps()
    for created in (1_700_000_000.5, 1_700_000_001.25, 1_700_000_000.75, 1_600_000_000.0):
        expected = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
        assert timestamps(created) == expected


def test_record_becomes_one_json_object_with_its_extra_fields_in_order() -> None:
    record = logging.makeLogRecord(
        {"name": "todo_api.access", "levelno": logging.INFO, "levelname": "INFO", "msg": "request"}
    )
    record.created = 1_700_000_000.25
    record.request_id, record.status = "abc", 200
    line = JsonFormatter().format(record)
    assert json.loads(line) == {
        "time": "2023-11-14T22:13:20.250+00:00",
        "level": "info",
        "logger": "todo_api.access",
        "message": "request",
        "request_id": "abc",
        "status": 200,
    }
    assert list(json.loads(line))[-2:] == ["request_id", "status"]


def _run(code: str) -> subprocess.CompletedProcess[str]:
    """`code` in a fresh interpreter: logging's state is process-wide."""
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )


def test_importing_the_module_changes_no_logging_setting() -> None:
    done = _run(
        "import logging\n"
        "before = (logging._srcfile, logging.logThreads, logging.logProcesses,\n"
        "          logging.logMultiprocessing, logging.root.handlers[:], logging.root.level)\n"
        "import backend.logs\n"
        "after = (logging._srcfile, logging.logThreads, logging.logProcesses,\n"
        "         logging.logMultiprocessing, logging.root.handlers[:], logging.root.level)\n"
        "print(before == after)\n"
    )
    assert done.stdout.strip() == "True"


def test_every_logger_and_python_warnings_go_through_one_json_handler_at_the_level() -> None:
    done = _run(
        "import logging, warnings\n"
        "from backend.logs import configure_logging\n"
        "logging.getLogger('uvicorn.error').addHandler(logging.StreamHandler())\n"
        "configure_logging('warning')\n"
        "logging.getLogger('backend.auth.jwks').warning('JWKS fetch from %s failed', 'here')\n"
        "logging.getLogger('backend.auth.dev_secret').info('below the level')\n"
        "logging.getLogger('uvicorn.error').error('from uvicorn')\n"
        "print(logging.getLogger('uvicorn.access').hasHandlers())\n"
        "logging.getLogger('httpx').info('HTTP Request: GET http://u:p@h/jwks?x=1')\n"
        "warnings.warn('a library warning')\n"
    )
    entries = [json.loads(line) for line in done.stderr.splitlines()]
    assert [(e["logger"], e["level"]) for e in entries] == [
        ("backend.auth.jwks", "warning"),
        ("uvicorn.error", "error"),
        ("py.warnings", "warning"),
    ]
    assert entries[0]["message"] == "JWKS fetch from here failed"
    assert "a library warning" in entries[2]["message"]
    # uvicorn writes its own access line only when that logger reaches a handler: ours replaces it.
    assert done.stdout.strip() == "False"
