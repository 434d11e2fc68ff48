"""The JSON log formatter: cached per-second timestamps equal datetime's own formatting."""

from __future__ import annotations

import json
import logging
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
