"""Structured JSON logs: one object per line, never a token or secret."""

from __future__ import annotations

import logging
import logging.config
import time
from typing import Any

import orjson

# color_message: uvicorn's copy of the message with ANSI colour codes, noise in a JSON line.
_STANDARD = frozenset(vars(logging.makeLogRecord({})).keys()) | {
    "message",
    "asctime",
    "color_message",
}
LOGGERS = ("todo_api", "uvicorn", "uvicorn.error")

# Our JSON lines carry no caller, thread or process fields; logging gathers them for every
# record unless told not to (the logging HOWTO's "Optimization" section). The access log
# writes a record per request: this was about half of its cost (callgrind).
logging._srcfile = None
logging.logThreads = False
logging.logProcesses = False
logging.logMultiprocessing = False


class UtcTimestamps:
    """`2026-11-26T13:59:51.635+00:00` for a record's time, formatted once per second.

    What `datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")` gives, at a
    fraction of its cost: that call was a fifth of the access log's time per request.
    """

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self, created: float) -> str:
        second = int(created)
        micros = round((created - second) * 1_000_000)  # fromtimestamp rounds to microseconds
        if micros == 1_000_000:
            second, micros = second + 1, 0
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._prefix}.{micros // 1000:03d}+00:00"


class JsonFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__()
        self._timestamp = UtcTimestamps()

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self._timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({key: value for key, value in vars(record).items() if key not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def logging_config(level: str) -> dict[str, Any]:
    """Our loggers and uvicorn's through one JSON handler on stderr, as a dictConfig.

    Given to uvicorn as `log_config`, so each `--workers` process (spawned, with fresh
    logging) applies it too; otherwise workers would drop every access-log line.
    """
    logger = {"handlers": ["json"], "level": level.upper(), "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "backend.logs.JsonFormatter"}},
        "handlers": {
            "json": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {name: dict(logger) for name in LOGGERS},
    }


def configure_logging(level: str) -> None:
    """Apply `logging_config` in this process."""
    logging.config.dictConfig(logging_config(level))
