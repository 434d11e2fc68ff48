"""What a handler may return besides a model: early bodiless answers and pre-rendered JSON."""

from __future__ import annotations

from abc import ABC, abstractmethod


class NotModified(Exception):
    """The client's cached representation (If-None-Match) is current: answer 304."""

    def __init__(self, etag: str) -> None:
        super().__init__(etag)
        self.etag = etag


class RendersJson(ABC):
    """A return value that renders its own response body (backend.routing sends it as is).

    For large values whose JSON can be written straight from stored data, byte for byte what
    the response model's serializer would give; each implementation proves that in its tests.
    """

    __slots__ = ()

    @abstractmethod
    def render_json(self) -> bytes:
        """The response body: the JSON the declared response model would serialize to."""
