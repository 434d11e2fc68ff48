"""Async engine, per-request connection (one unit of work) and database-fault mapping."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from typing import Any

import orjson
import sqlalchemy as sa
from fastapi import Request
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from backend.settings import Settings

ASYNC_DRIVERS = {
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "sqlite": "sqlite+aiosqlite",
}
SYNC_DRIVERS = {
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "sqlite": "sqlite",
}
READ_ONLY_METHODS = frozenset({"GET", "HEAD"})
READ_ONLY_OPTION = "todo_api_read_only"


def _with_driver(raw_url: str, drivers: dict[str, str]) -> URL:
    url = make_url(raw_url)
    backend = url.get_backend_name()
    if backend not in drivers:
        raise ValueError(
            f"unsupported DATABASE_URL scheme {url.drivername!r}: use postgresql:// or sqlite://"
        )
    return url.set(drivername=drivers[backend])


def async_url(raw_url: str) -> URL:
    """`postgresql://...` (as Neon gives it) or `sqlite:///file` -> the async driver's URL."""
    return _with_driver(raw_url, ASYNC_DRIVERS)


def sync_url(raw_url: str) -> URL:
    """The same database through a synchronous driver, for Alembic."""
    return _with_driver(raw_url, SYNC_DRIVERS)


def _sqlite_lower(value: str | None) -> str | None:
    return None if value is None else value.lower()


def install_sqlite_hooks(sync_engine: sa.Engine) -> None:
    """WAL, a busy timeout, Unicode-aware lower(), and BEGIN IMMEDIATE for every transaction.

    BEGIN IMMEDIATE takes the write lock up front, so two concurrent writers queue on the busy
    timeout instead of failing with SQLITE_BUSY when a read transaction upgrades to a write.
    """

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        dbapi_connection.create_function("lower", 1, _sqlite_lower, deterministic=True)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        # Reads (see read_only_engine) take a deferred, shared BEGIN: no queue for the write lock.
        read_only = connection.get_execution_options().get(READ_ONLY_OPTION, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def install_postgres_hooks(sync_engine: sa.Engine, settings: Settings) -> None:
    """Per-connection statement timeout (SET, not a startup option, so poolers accept it)."""
    timeout_ms = settings.db_statement_timeout_ms

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        autocommit = dbapi_connection.autocommit
        dbapi_connection.autocommit = True
        cursor = dbapi_connection.cursor()
        cursor.execute(f"SET statement_timeout = {int(timeout_ms)}")
        cursor.execute("SET TIME ZONE 'UTC'")
        cursor.close()
        dbapi_connection.autocommit = autocommit


def create_engine(settings: Settings) -> AsyncEngine:
    """One engine per process, with a pool sized from configuration."""
    url = async_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        engine = create_async_engine(
            url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout_seconds,
            connect_args={"timeout": settings.db_pool_timeout_seconds},
            json_deserializer=orjson.loads,
        )
        install_sqlite_hooks(engine.sync_engine)
        return engine
    engine = create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
        pool_recycle=1800,
        connect_args={
            "connect_timeout": max(1, round(settings.db_connect_timeout_seconds)),
            "prepare_threshold": settings.db_prepare_threshold,
        },
        json_deserializer=orjson.loads,  # tags (jsonb) of every listed row: a few us each saved
        # Tags written by create/PUT: orjson's bytes go to psycopg as they are (the stdlib
        # encoder was ~3% of a create's CPU); jsonb normalizes the text either way.
        json_serializer=orjson.dumps,
    )
    install_postgres_hooks(engine.sync_engine, settings)
    return engine


def read_only_engine(engine: AsyncEngine) -> AsyncEngine:
    """The same engine and pool, for requests that only read (GET): no BEGIN/COMMIT round trips.

    On PostgreSQL each statement runs in autocommit: at READ COMMITTED a statement sees the
    same snapshot it would see inside a transaction (each statement takes its own), and a
    one-query request needs one round trip instead of three. On SQLite the transaction stays,
    with a deferred BEGIN instead of BEGIN IMMEDIATE, so readers do not queue for the write lock.
    """
    if engine.dialect.name == "sqlite":
        return engine.execution_options(**{READ_ONLY_OPTION: True})
    return engine.execution_options(isolation_level="AUTOCOMMIT")


class ConnectionGate:
    """First come, first served admission to the connection pool.

    SQLAlchemy's async pool hands a returned connection to whichever coroutine asks next, not
    to the one that waited longest (its queue lets a newcomer take an idle connection before a
    woken waiter runs), so under saturation a few unlucky requests waited up to the pool
    timeout: p99 0.5-1 s at 64 connections against a p50 of 40 ms. asyncio.Semaphore hands a
    released permit to its oldest waiter. One permit per pooled connection; a request that
    waits longer than the pool timeout gets the pool's own TimeoutError (503).
    """

    def __init__(self, capacity: int, timeout_seconds: float) -> None:
        self._permits = asyncio.Semaphore(capacity)
        self._timeout = timeout_seconds

    async def acquire(self) -> None:
        if not self._permits.locked():
            # A free permit and nobody queued (locked() counts waiters): taken at once, so no
            # timer is armed; most requests go this way, and a timeout context costs ~5 us.
            await self._permits.acquire()
            return
        try:
            async with asyncio.timeout(self._timeout):
                await self._permits.acquire()
        except TimeoutError:
            raise sa.exc.TimeoutError(
                f"no database connection became free within {self._timeout:g} s"
            ) from None

    def release(self) -> None:
        self._permits.release()


@contextlib.asynccontextmanager
async def unit_of_work(request: Request) -> AsyncIterator[AsyncConnection]:
    """The request's unit of work: commit on success, roll back on any exception.

    A Core connection, not an ORM session: every statement is Core, and a session's
    bookkeeping cost about 60 us per request. Entered inside the route, so the commit happens
    before the response is sent and a failed commit becomes an error response instead of a lost
    write. GET requests get a connection of `read_only_engine` (app.state.read_engine).
    """
    state = request.app.state
    gate: ConnectionGate = state.connection_gate
    await gate.acquire()
    try:
        if request.method in READ_ONLY_METHODS:
            # Nothing to commit: closing ends the read (a no-op in autocommit). Skipping the
            # COMMIT call saves a trip through SQLAlchemy's greenlet bridge (~35 us per GET).
            async with state.read_engine.connect() as connection:
                yield connection
            return
        async with state.engine.connect() as connection:
            try:
                yield connection
            except BaseException:
                await connection.rollback()
                raise
            await connection.commit()
    finally:
        gate.release()


def is_database_unavailable(exc: BaseException) -> bool:
    """True for errors that mean "the database cannot answer now" (503), not a bug (500)."""
    if isinstance(exc, sa.exc.TimeoutError):  # pool exhausted
        return True
    if isinstance(exc, sa.exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        orig = exc.orig
        if isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError)):
            return True
        if isinstance(orig, sqlite3.OperationalError):
            return True
        sqlstate = getattr(orig, "sqlstate", None) or ""
        # 08: connection exception, 53: insufficient resources, 57: operator intervention
        # (admin shutdown, statement timeout = 57014), 40001/40P01: serialization/deadlock.
        return sqlstate[:2] in {"08", "53", "57"} or sqlstate in {"40001", "40P01"}
    return isinstance(exc, (ConnectionError, OSError, TimeoutError))
