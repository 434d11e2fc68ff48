"""Reading a server's log."""

from __future__ import annotations

from collections.abc import Iterator


def iter_lines(text: str) -> Iterator[str]:
    """The non-blank lines of a log."""
    yield from (line for line in text.splitlines() if line.strip())
