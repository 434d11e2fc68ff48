"""What the operations tests share besides fixtures: metric samples, Redis, the builder type."""

from __future__ import annotations

import socket
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import httpx
from fastapi import FastAPI
from prometheus_client import REGISTRY

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
AppClient = Callable[..., AbstractAsyncContextManager[tuple[FastAPI, httpx.AsyncClient]]]


def sample(name: str, **labels: str) -> float:
    """A metric's current value in this process (0 when it was never touched)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def redis_reachable() -> bool:
    try:
        with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=1.0):
            return True
    except OSError:
        return False
