"""Database access: statements built with SQLAlchemy Core, run by the fastest honest driver path.

PostgreSQL: psycopg's own async connections from a `psycopg_pool.AsyncConnectionPool`, in
autocommit, each statement compiled once by SQLAlchemy's psycopg dialect. Every request is one
statement (one round trip), atomic by itself, triggers included. SQLAlchemy's async engine on
each statement cost about as much CPU as the framework (specs/database/schema.md, "Execution").

SQLite (the zero-setup default): SQLAlchemy's async engine over aiosqlite, one transaction per
request, `BEGIN IMMEDIATE` for writes so writers queue instead of failing.

Both sides offer the same small interface (`Session.fetch`), so the repository runs the same
Core statements on either database.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Coroutine, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import orjson
import psycopg
import psycopg_pool
import sqlalchemy as sa
from psycopg.types.json import Jsonb, set_json_dumps, set_json_loads
from sqlalchemy import event
from sqlalchemy.dialects import postgresql
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
PG_DIALECT: sa.Dialect = postgresql.psycopg.dialect()  # type: ignore[no-untyped-call]

Row = Sequence[Any]
T = TypeVar("T")
KEEPALIVES_INTERVAL_SECONDS = 5
KEEPALIVES_COUNT = 3


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


def libpq_conninfo(raw_url: str) -> str:
    """The URL as libpq reads it (no SQLAlchemy driver suffix)."""
    url = _with_driver(raw_url, ASYNC_DRIVERS).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def is_postgres(settings: Settings) -> bool:
    return async_url(settings.database_url).get_backend_name() == "postgresql"


# -- the interface the repository runs statements through --------------------------------------


class Session(Protocol):
    """One request's database access: run a Core statement, get its rows (positional)."""

    @property
    def dialect(self) -> str: ...

    async def fetch(self, statement: sa.Executable, parameters: Mapping[str, Any]) -> list[Row]:
        """Run `statement` with `parameters` and return its rows (DML: give it RETURNING)."""
        ...


class _Compiled:
    """A statement as psycopg runs it: SQL text, the values of its literals (SQLAlchemy binds
    them as parameters too) and the names of its JSON parameters."""

    __slots__ = ("json_names", "literals", "sql")

    def __init__(self, statement: sa.ClauseElement) -> None:
        compiled = statement.compile(dialect=PG_DIALECT)
        self.sql = str(compiled)
        self.literals = {
            name: value for name, value in compiled.params.items() if value is not None
        }
        self.json_names = tuple(
            name
            for name, bind in getattr(compiled, "binds", {}).items()
            if isinstance(bind.type, sa.JSON)
        )


# Keyed by the statement object: every statement is built once and kept (module constants or
# lru_caches in backend.repository), so this holds one entry per statement shape. Bounded all
# the same: a shape evicted from its lru_cache comes back as a new object.
_COMPILED: dict[int, tuple[sa.Executable, _Compiled]] = {}
_COMPILED_MAX = 4096


def compiled_for_postgres(statement: sa.Executable) -> _Compiled:
    entry = _COMPILED.get(id(statement))
    if entry is None or entry[0] is not statement:
        if len(_COMPILED) >= _COMPILED_MAX:
            _COMPILED.clear()
        assert isinstance(statement, sa.ClauseElement)
        entry = (statement, _Compiled(statement))
        _COMPILED[id(statement)] = entry
    return entry[1]


class DeadlineExceeded(TimeoutError):
    """The database did not answer within the request's deadline (503, like an outage)."""


class PostgresSession:
    """A pooled psycopg connection in autocommit: each `fetch` is one statement, one round trip.

    Every statement runs against the request's deadline. One that overruns is abandoned: it
    goes on in a task of its own (psycopg cancels it on the server, and gives up on a server
    that does not answer) and the connection is handed back only when that task ends, so the
    pool sees it ACTIVE or broken and discards it instead of lending it out mid-statement.
    """

    __slots__ = ("abandoned", "connection", "deadline")
    dialect = "postgresql"

    def __init__(self, connection: psycopg.AsyncConnection[Any], deadline: float) -> None:
        self.connection = connection
        self.deadline = deadline  # on the event loop's clock
        self.abandoned: asyncio.Task[Any] | None = None

    async def run(self, operation: Coroutine[Any, Any, T]) -> T:
        """`operation` on this connection, or DeadlineExceeded once the deadline passes."""
        # A task, a future and a timer: about half what asyncio.timeout + asyncio.shield cost
        # (measured), and it runs on every statement.
        loop = asyncio.get_running_loop()
        task = loop.create_task(operation)
        waiter: asyncio.Future[None] = loop.create_future()

        def wake(_: object = None) -> None:
            if not waiter.done():
                waiter.set_result(None)

        task.add_done_callback(wake)
        timer = loop.call_at(self.deadline, wake)
        try:
            await waiter
        except BaseException:
            self._abandon(task)  # the request itself was cancelled (client gone, shutdown)
            raise
        finally:
            timer.cancel()
            task.remove_done_callback(wake)
        if not task.done():
            self._abandon(task)
            raise DeadlineExceeded("the database did not answer before the deadline")
        return task.result()

    async def fetch(self, statement: sa.Executable, parameters: Mapping[str, Any]) -> list[Row]:
        compiled = compiled_for_postgres(statement)
        if compiled.literals:
            parameters = {**compiled.literals, **parameters}
        if compiled.json_names:
            parameters = dict(parameters)
            for name in compiled.json_names:
                if name in parameters:
                    parameters[name] = Jsonb(parameters[name])
        return await self.run(self._fetch(compiled.sql, parameters))

    async def _fetch(self, sql: str, parameters: Mapping[str, Any]) -> list[Row]:
        cursor = await self.connection.execute(sql, parameters)
        # Every statement the repository runs returns rows (DML with RETURNING). Not checking
        # `cursor.description` first: building it cost ~30 us per statement (a Column per column).
        return await cursor.fetchall()

    def _abandon(self, task: asyncio.Task[Any]) -> None:
        if task.done():
            if not task.cancelled():
                task.exception()  # retrieved: its outcome no longer has anyone to go to
            return
        task.cancel()
        self.abandoned = task


class EngineSession:
    """An SQLAlchemy async connection inside the request's transaction (SQLite)."""

    __slots__ = ("connection",)

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    @property
    def dialect(self) -> str:
        return self.connection.dialect.name

    async def fetch(self, statement: sa.Executable, parameters: Mapping[str, Any]) -> list[Row]:
        result = await self.connection.execute(statement, dict(parameters))
        return list(result.all()) if result.returns_rows else []


# -- SQLite: SQLAlchemy's async engine ---------------------------------------------------------


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
    if not settings.db_session_setup:
        return

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
    """SQLAlchemy's engine: the request path on SQLite; on PostgreSQL only maintenance (the key
    sweep) and tools use it, and its pool opens a connection only when one is asked for."""
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
            **connection_parameters(settings),
            "prepare_threshold": settings.db_prepare_threshold,
        },
        json_deserializer=orjson.loads,
        json_serializer=orjson.dumps,
    )
    install_postgres_hooks(engine.sync_engine, settings)
    return engine


def read_only_engine(engine: AsyncEngine) -> AsyncEngine:
    """The same engine and pool for GET on SQLite: a deferred BEGIN instead of BEGIN IMMEDIATE,
    so readers do not queue for the write lock."""
    if engine.dialect.name == "sqlite":
        return engine.execution_options(**{READ_ONLY_OPTION: True})
    return engine.execution_options(isolation_level="AUTOCOMMIT")


class ConnectionGate:
    """First come, first served admission to SQLAlchemy's pool (the SQLite path).

    SQLAlchemy's async pool hands a returned connection to whichever coroutine asks next, not
    to the one that waited longest, so under saturation a few unlucky requests waited up to the
    pool timeout. asyncio.Semaphore hands a released permit to its oldest waiter. One permit per
    pooled connection; a request that waits longer than the pool timeout gets the pool's own
    TimeoutError (503). psycopg_pool needs no gate: it hands a returned connection to its
    oldest waiter, and a newcomer queues behind existing waiters.
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


# -- PostgreSQL: psycopg's pool ----------------------------------------------------------------


def connection_parameters(settings: Settings) -> dict[str, Any]:
    """libpq parameters: connect timeout, TCP keepalives and tcp_user_timeout, so a peer that
    vanishes without closing (a stalled network) is noticed by the kernel, not never."""
    parameters: dict[str, Any] = {
        "connect_timeout": max(1, round(settings.db_connect_timeout_seconds)),
        "keepalives": 1,
        "keepalives_idle": settings.db_keepalives_idle_seconds,
        "keepalives_interval": KEEPALIVES_INTERVAL_SECONDS,
        "keepalives_count": KEEPALIVES_COUNT,
    }
    if settings.db_tcp_user_timeout_ms:
        parameters["tcp_user_timeout"] = settings.db_tcp_user_timeout_ms
    return parameters


def create_pool(settings: Settings) -> psycopg_pool.AsyncConnectionPool[Any]:
    """The request path's pool (opened by `open_database`): autocommit connections with the
    statement timeout, UTC, orjson for jsonb and server-side prepared statements as configured."""
    timeout_ms = int(settings.db_statement_timeout_ms)

    async def configure(connection: psycopg.AsyncConnection[Any]) -> None:
        set_json_loads(orjson.loads, connection)
        set_json_dumps(orjson.dumps, connection)  # bytes are accepted as they are
        connection.prepare_threshold = settings.db_prepare_threshold
        if not settings.db_session_setup:
            return  # behind a transaction pooler these are the role's settings
        # SET, not a startup option, so poolers (PgBouncer) accept it; one round trip per new
        # connection, none per request.
        await connection.execute(f"SET statement_timeout = {timeout_ms}")
        await connection.execute("SET TIME ZONE 'UTC'")

    return psycopg_pool.AsyncConnectionPool(
        libpq_conninfo(settings.database_url),
        min_size=settings.db_pool_size,
        max_size=settings.db_pool_size + settings.db_max_overflow,
        timeout=settings.db_pool_timeout_seconds,
        max_lifetime=1800,
        kwargs={"autocommit": True, **connection_parameters(settings)},
        configure=configure,
        open=False,
    )


async def open_database(settings: Settings, state: Any) -> None:
    """Set up `state.engine` (+ `read_engine`, `connection_gate`) and, on PostgreSQL, `state.pool`.

    The pool opens without waiting for its connections: a server started while the database is
    down answers 503 until it is back, like one whose database went away.
    """
    engine = create_engine(settings)
    state.engine = engine
    state.read_engine = read_only_engine(engine)
    state.connection_gate = ConnectionGate(
        settings.db_pool_size + settings.db_max_overflow, settings.db_pool_timeout_seconds
    )
    state.pool = None
    if engine.dialect.name == "postgresql":
        pool = create_pool(settings)
        await pool.open(wait=False)
        state.pool = pool


async def close_database(state: Any) -> None:
    if state.pool is not None:
        await state.pool.close()
    await state.engine.dispose()


@contextlib.asynccontextmanager
async def unit_of_work(state: Any, method: str) -> AsyncIterator[Session]:
    """The request's unit of work: all of it or none of it.

    PostgreSQL: a pooled connection in autocommit; every repository operation is one statement,
    atomic by itself, so there is nothing to commit or roll back. SQLite: one transaction,
    committed on success and rolled back on any exception (deferred BEGIN for GET).
    """
    pool: psycopg_pool.AsyncConnectionPool[Any] | None = state.pool
    if pool is not None:
        async with postgres_session(state, state.settings.db_request_deadline_seconds) as session:
            yield session
        return
    gate: ConnectionGate = state.connection_gate
    await gate.acquire()
    try:
        if method in READ_ONLY_METHODS:
            async with state.read_engine.connect() as connection:
                yield EngineSession(connection)
            return
        async with state.engine.connect() as connection:
            try:
                yield EngineSession(connection)
            except BaseException:
                await connection.rollback()
                raise
            await connection.commit()
    finally:
        gate.release()


_RELEASES: set[asyncio.Task[None]] = set()


@contextlib.asynccontextmanager
async def postgres_session(state: Any, seconds: float) -> AsyncIterator[PostgresSession]:
    """A pooled connection whose statements must all finish within `seconds` from now."""
    pool: psycopg_pool.AsyncConnectionPool[Any] = state.pool
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    wait = min(state.settings.db_pool_timeout_seconds, seconds)
    connection = await pool.getconn(timeout=wait)
    session = PostgresSession(connection, deadline)
    try:
        yield session
    finally:
        if session.abandoned is None:
            await pool.putconn(connection)
        else:
            # Handed back when the abandoned statement ends; the request answers now.
            release = asyncio.create_task(_release_after(pool, connection, session.abandoned))
            _RELEASES.add(release)
            release.add_done_callback(_RELEASES.discard)


async def _release_after(
    pool: psycopg_pool.AsyncConnectionPool[Any],
    connection: psycopg.AsyncConnection[Any],
    abandoned: asyncio.Task[Any],
) -> None:
    await asyncio.wait([abandoned])
    if not abandoned.cancelled():
        abandoned.exception()  # retrieved: nobody is waiting for its outcome any more
    with contextlib.suppress(Exception):
        await pool.putconn(connection)  # the pool discards it unless it is idle and sound


async def ping(state: Any, seconds: float) -> None:
    """One trivial statement through the request path's own pool (readiness), within `seconds`."""
    if state.pool is not None:
        async with postgres_session(state, seconds) as session:
            await session.run(session.connection.execute("SELECT 1"))
        return
    async with state.engine.connect() as connection:
        await connection.execute(sa.text("SELECT 1"))


_UNAVAILABLE_SQLSTATE_CLASSES = frozenset({"08", "53", "57"})
_UNAVAILABLE_SQLSTATES = frozenset({"40001", "40P01"})


def _unavailable_sqlstate(sqlstate: str | None) -> bool:
    # 08: connection exception, 53: insufficient resources, 57: operator intervention
    # (admin shutdown, statement timeout = 57014), 40001/40P01: serialization/deadlock.
    sqlstate = sqlstate or ""
    return sqlstate[:2] in _UNAVAILABLE_SQLSTATE_CLASSES or sqlstate in _UNAVAILABLE_SQLSTATES


def is_database_unavailable(exc: BaseException) -> bool:
    """True for errors that mean "the database cannot answer now" (503), not a bug (500)."""
    if isinstance(exc, sa.exc.TimeoutError):  # SQLAlchemy pool exhausted
        return True
    if isinstance(exc, psycopg.Error):
        # OperationalError covers a lost connection and psycopg_pool's PoolTimeout and
        # TooManyRequests; InterfaceError a connection already closed.
        if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)):
            return True
        return _unavailable_sqlstate(exc.sqlstate)
    if isinstance(exc, sa.exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        orig = exc.orig
        if isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError)):
            return True
        if isinstance(orig, sqlite3.OperationalError):
            return True
        return _unavailable_sqlstate(getattr(orig, "sqlstate", None))
    return isinstance(exc, (ConnectionError, OSError, TimeoutError))


def is_rejected_value(exc: BaseException) -> bool:
    """True for a value the database refused as data (422), e.g. out of a column type's range."""
    return isinstance(exc, (sa.exc.DataError, psycopg.DataError))


DATABASE_ERRORS: tuple[type[Exception], ...] = (sa.exc.SQLAlchemyError, psycopg.Error, OSError)
