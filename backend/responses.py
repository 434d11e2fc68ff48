"""Non-error control flow that ends a request early with a bodiless response."""

from __future__ import annotations


class NotModified(Exception):
    """The client's cached representation (If-None-Match) is current: answer 304."""

    def __init__(self, etag: str) -> None:
        super().__init__(etag)
        self.etag = etag
