"""What a handler may raise instead of returning a model: an early bodiless answer."""

from __future__ import annotations


class NotModified(Exception):
    """The client's cached representation (If-None-Match) is current: answer 304."""

    def __init__(self, etag: str) -> None:
        super().__init__(etag)
        self.etag = etag
