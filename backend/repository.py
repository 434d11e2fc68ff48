"""Task storage for one owner: every statement is scoped to that owner by construction."""

from __future__ import annotations

import builtins
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from backend.db import Session
from backend.errors import NotFound, PreconditionFailed, ServiceUnavailable, TaskQuotaExceeded
from backend.preconditions import ETagCondition
from backend.tables import IdempotencyKey, Task, TaskCount, fold_case

# Not a backslash: how a backslash is spelled in the compiled `ESCAPE '...'` literal depends on
# the SQLAlchemy version and the server's standard_conforming_strings (SQLAlchemy 2.0 writes
# '\\', which PostgreSQL refuses as two characters); "!" is spelled the same everywhere.
LIKE_ESCAPE = "!"


# A stored task as the handlers read it: a row of `tasks` in the table's column order (`SELECT
# tasks.*`, `RETURNING tasks.*`), read by position; list rows carry the total after those columns.
# Plain driver rows: building ORM objects cost more than the rest of a request.
TaskRecord = Sequence[Any]


@dataclass(frozen=True, slots=True)
class TaskQuery:
    """A validated list request: filters, order and page."""

    completed: bool | None = None
    priority: int | None = None
    tags: Sequence[str] = ()
    text: str | None = None
    due_before: datetime | None = None
    due_after: datetime | None = None
    sort: str = "created_at"
    descending: bool = True
    skip: int = 0
    limit: int = 100


@dataclass(frozen=True, slots=True)
class TaskPage:
    """A page and the list's total. Rows of lists whose total comes from task_counts carry it
    as one more column after the table's own; positional readers use the table's columns."""

    rows: Sequence[TaskRecord]
    total: int


@dataclass(frozen=True, slots=True)
class StoredKey:
    """An unexpired Idempotency-Key: the request it was used with and the row it created."""

    request_hash: str
    response_body: str | None


@dataclass(frozen=True, slots=True)
class Created:
    """A create's outcome: the new row, or (a replayed key) the stored snapshot of the first."""

    row: TaskRecord | None = None
    replay: StoredKey | None = None


def _like_pattern(text: str) -> str:
    """`text` as a LIKE pattern over the case-folded keys, with its wildcards made literal."""
    escaped = (
        fold_case(text)
        .replace(LIKE_ESCAPE, LIKE_ESCAPE * 2)
        .replace("%", LIKE_ESCAPE + "%")
        .replace("_", LIKE_ESCAPE + "_")
    )
    return f"%{escaped}%"


def _now() -> datetime:
    return datetime.now(UTC)


_TASKS: sa.Table = Task.__table__  # type: ignore[attr-defined]
_COUNTS: sa.Table = TaskCount.__table__  # type: ignore[attr-defined]
_KEYS: sa.Table = IdempotencyKey.__table__  # type: ignore[attr-defined]
# The column order of every task row here (`SELECT tasks.*`, `RETURNING tasks.*`).
TASK_COLUMNS: tuple[str, ...] = tuple(_TASKS.c.keys())
_ID, _VERSION = TASK_COLUMNS.index("id"), TASK_COLUMNS.index("version")
MAX_KEY_ATTEMPTS = 5


# Every statement is built once per shape and dialect (module constants or lru_caches): building
# one costs about as much as running it, and backend.db compiles each for psycopg only once.
def _owned_task(dialect: str, versions_checked: bool) -> list[ColumnElement[bool]]:
    """WHERE of one task: owner, id and (for If-Match on a write) the accepted versions."""
    where = [_TASKS.c.user_id == sa.bindparam("owner_id"), _TASKS.c.id == sa.bindparam("task_id")]
    if versions_checked:
        if dialect == "postgresql":  # one array parameter: one prepared statement for any count
            versions = sa.bindparam("versions", type_=postgresql.ARRAY(sa.BigInteger()))
            where.append(_TASKS.c.version == sa.any_(versions))
        else:
            where.append(_TASKS.c.version.in_(sa.bindparam("versions", expanding=True)))
    return where


_GET_ONE = sa.select(_TASKS).where(*_owned_task("any", versions_checked=False))


def _versions_checked(condition: ETagCondition | None) -> bool:
    return condition is not None and condition.versions is not None


def _where_parameters(
    owner_id: str, task_id: int, condition: ETagCondition | None
) -> dict[str, Any]:
    parameters: dict[str, Any] = {"owner_id": owner_id, "task_id": task_id}
    if condition is not None and condition.versions is not None:
        parameters["versions"] = sorted(condition.versions)
    return parameters


@functools.lru_cache(maxsize=1024)
def _update_statement(
    dialect: str, columns: tuple[str, ...], versions_checked: bool, toggle: bool
) -> sa.Executable:
    """UPDATE of these columns (values bound as new_<column>) ... RETURNING the row.

    The columns come from the body models' fields, never from the client's keys, so there are
    few variants (subsets of the writable columns).
    """
    values: dict[str, Any] = {
        name: sa.bindparam(f"new_{name}", type_=_TASKS.c[name].type) for name in columns
    }
    if toggle:
        values["completed"] = sa.not_(_TASKS.c.completed)
    values["version"] = _TASKS.c.version + 1
    values["updated_at"] = sa.bindparam("now", type_=_TASKS.c.updated_at.type)
    return (
        sa.update(_TASKS)
        .where(*_owned_task(dialect, versions_checked))
        .values(values)
        .returning(*_TASKS.c)
    )


@functools.lru_cache(maxsize=4)
def _delete_statement(dialect: str, versions_checked: bool) -> sa.Executable:
    return sa.delete(_TASKS).where(*_owned_task(dialect, versions_checked)).returning(_TASKS.c.id)


@dataclass(frozen=True, slots=True)
class ListShape:
    """What a list statement's SQL depends on; the values themselves are bound parameters."""

    dialect: str
    completed: bool
    priority: bool
    due_before: bool
    due_after: bool
    text: bool
    tags: int
    sort: str
    descending: bool


def _has_all_tags(dialect: str, count: int) -> ColumnElement[bool]:
    tags_column: Any = _TASKS.c.tags
    if dialect == "postgresql":
        # jsonb @> is served by the GIN (jsonb_path_ops) index ix_tasks_tags.
        contains: ColumnElement[bool] = tags_column.op("@>")(
            sa.bindparam("tags", type_=postgresql.JSONB)
        )
        return contains
    conditions = []
    for index in range(count):
        each = sa.func.json_each(tags_column).table_valued("value").alias()
        conditions.append(
            sa.select(sa.literal(1))
            .select_from(each)
            .where(each.c.value == sa.bindparam(f"tag_{index}"))
            .exists()
        )
    return sa.and_(*conditions)


def _filters(shape: ListShape) -> list[ColumnElement[bool]]:
    columns = _TASKS.c
    filters: list[ColumnElement[bool]] = [columns.user_id == sa.bindparam("owner_id")]
    if shape.completed:
        filters.append(columns.completed == sa.bindparam("completed"))
    if shape.priority:
        filters.append(columns.priority == sa.bindparam("priority"))
    if shape.due_before:
        filters.append(columns.due_at < sa.bindparam("due_before"))
    if shape.due_after:
        filters.append(columns.due_at > sa.bindparam("due_after"))
    if shape.text:
        pattern: sa.BindParameter[str] = sa.bindparam("pattern", type_=sa.String())
        filters.append(
            sa.or_(
                columns.title_key.like(pattern, escape=LIKE_ESCAPE),
                columns.description_key.like(pattern, escape=LIKE_ESCAPE),
            )
        )
    if shape.tags:
        filters.append(_has_all_tags(shape.dialect, shape.tags))
    return filters


def _order(shape: ListShape, columns: Any) -> list[Any]:
    column = {
        "created_at": columns.created_at,
        "updated_at": columns.updated_at,
        "due_at": columns.due_at,
        "priority": columns.priority,
        "title": columns.title_key,
    }[shape.sort]
    primary = column.desc() if shape.descending else column.asc()
    if shape.sort == "due_at":
        primary = primary.nulls_last()
    tie_break = columns.id.desc() if shape.descending else columns.id.asc()
    return [primary, tie_break]


def _counts_tasks(shape: ListShape) -> bool:
    """Whether the total must count the matching tasks (q, tag, due range): no task_counts row
    holds it."""
    return bool(shape.text or shape.tags or shape.due_before or shape.due_after)


def _count_statement(shape: ListShape, filters: list[ColumnElement[bool]]) -> sa.Select[Any]:
    """The total of a list: from task_counts when it filters by status/priority alone.

    Those totals sum at most six trigger-maintained rows, whatever the number of tasks; any
    other filter (q, tag, due range) needs the matching tasks counted.
    """
    if _counts_tasks(shape):
        return sa.select(sa.func.count()).select_from(_TASKS).where(*filters)
    counts = _COUNTS.c
    where: list[ColumnElement[bool]] = [counts.user_id == sa.bindparam("owner_id")]
    if shape.completed:
        where.append(counts.completed == sa.bindparam("completed"))
    if shape.priority:
        where.append(counts.priority == sa.bindparam("priority"))
    return sa.select(sa.func.sum(counts.n)).where(*where)


@functools.lru_cache(maxsize=512)
def _list_statement(shape: ListShape) -> sa.Select[Any]:
    """A page and its total in one statement: one round trip, one snapshot, on every page.

    The page is a CTE; a one-row `totals` is LEFT JOINed with it, so an empty page (a user
    without tasks, a page beyond the end) still returns one row that carries the total, with
    NULL task columns. A task_counts total sums at most six rows. A count(*) total (q, tag, due
    range) is needed only when the page does not tell it: a short page that holds rows, or
    starts at 0, has `skip + rows` matches. The count sits in the CASE's ELSE as an uncorrelated
    subquery, which both databases evaluate only when that branch is taken (PostgreSQL's
    InitPlan shows `never executed` for a short page; see specs/database/schema.md).
    """
    filters = _filters(shape)
    skip = sa.bindparam("skip", type_=sa.Integer())
    limit = sa.bindparam("limit", type_=sa.Integer())
    page = (
        sa.select(_TASKS)
        .where(*filters)
        .order_by(*_order(shape, _TASKS.c))
        .offset(skip)
        .limit(limit)
        .cte("page")
    )
    counted = sa.func.coalesce(_count_statement(shape, filters).scalar_subquery(), 0)
    if _counts_tasks(shape):
        size = sa.select(sa.func.count().label("n")).select_from(page).subquery("page_size")
        total: ColumnElement[Any] = sa.case(
            (sa.and_(size.c.n < limit, sa.or_(size.c.n > 0, skip == 0)), skip + size.c.n),
            else_=counted,
        )
        totals = sa.select(total.label("total")).select_from(size).subquery("totals")
    else:
        totals = sa.select(counted.label("total")).subquery("totals")
    return (
        sa.select(*page.c, totals.c.total)
        .select_from(totals.outerjoin(page, sa.true()))
        .order_by(*_order(shape, page.c))
    )


# -- create: one INSERT that also enforces the per-user quota -------------------------------------

_INSERTED_COLUMNS = [name for name in TASK_COLUMNS if name != "id"]
_KEY_COLUMNS = ["user_id", "key", "request_hash", "task_id", "response_body", "created_at"]
_KEY_COLUMNS.append("expires_at")
# The user's task count as the triggers keep it (at most six rows), read in the INSERT itself.
_TASK_COUNT = sa.select(sa.func.coalesce(sa.func.sum(_COUNTS.c.n), 0)).where(
    _COUNTS.c.user_id == sa.bindparam("user_id")
)


@functools.lru_cache(maxsize=2)
def _insert_statement(dialect: str) -> sa.Insert:
    """INSERT ... SELECT <values> WHERE <the owner has fewer than max_tasks> RETURNING the row.

    PostgreSQL: `task_quota_allows` (revision 0005) serialises one user's checks on an advisory
    lock and counts with a fresh snapshot, so concurrent creates cannot overshoot. SQLite: the
    write lock (BEGIN IMMEDIATE) already runs creates one at a time.
    """
    max_tasks = sa.bindparam("max_tasks", type_=sa.Integer())
    if dialect == "postgresql":
        allowed: ColumnElement[bool] = sa.func.task_quota_allows(
            sa.bindparam("user_id", type_=_TASKS.c.user_id.type), max_tasks, type_=sa.Boolean()
        )
    else:
        allowed = _TASK_COUNT.scalar_subquery() < max_tasks
    values = sa.select(
        *(sa.bindparam(name, type_=_TASKS.c[name].type) for name in _INSERTED_COLUMNS)
    ).where(allowed)
    return sa.insert(_TASKS).from_select(_INSERTED_COLUMNS, values).returning(*_TASKS.c)


def _insert_with_key() -> sa.Select[Any]:
    """PostgreSQL: the task and its Idempotency-Key row in one statement (data-modifying CTEs).

    The key row keeps a snapshot of the created row (`row_to_json`) for replays. A concurrent
    request with the same key waits on the key's primary key until this one commits, then
    fails as a whole (unique violation, its task insert undone with it).
    """
    new_task = _insert_statement("postgresql").cte("new_task")
    snapshot = sa.cast(sa.func.row_to_json(new_task.table_valued()), sa.Text())
    key_values = sa.select(
        sa.bindparam("user_id", type_=_KEYS.c.user_id.type),
        sa.bindparam("key", type_=_KEYS.c.key.type),
        sa.bindparam("request_hash", type_=_KEYS.c.request_hash.type),
        new_task.c.id,
        snapshot,
        sa.bindparam("created_at", type_=_KEYS.c.created_at.type),
        sa.bindparam("expires_at", type_=_KEYS.c.expires_at.type),
    ).select_from(new_task)
    new_key = (
        sa.insert(_KEYS).from_select(_KEY_COLUMNS, key_values).returning(_KEYS.c.key).cte("new_key")
    )
    return sa.select(*new_task.c).add_cte(new_key)


_INSERT_WITH_KEY = _insert_with_key()
_FIND_KEY = sa.select(
    _KEYS.c.request_hash,
    _KEYS.c.response_body,
    (_KEYS.c.expires_at > sa.bindparam("now", type_=_KEYS.c.expires_at.type)).label("live"),
).where(_KEYS.c.user_id == sa.bindparam("user_id"), _KEYS.c.key == sa.bindparam("key"))
_DROP_EXPIRED_KEY = (
    sa.delete(_KEYS)
    .where(
        _KEYS.c.user_id == sa.bindparam("user_id"),
        _KEYS.c.key == sa.bindparam("key"),
        _KEYS.c.expires_at <= sa.bindparam("now", type_=_KEYS.c.expires_at.type),
    )
    .returning(_KEYS.c.key)
)
_INSERT_KEY = (
    sa.insert(_KEYS)
    .values({name: sa.bindparam(name, type_=_KEYS.c[name].type) for name in _KEY_COLUMNS})
    .returning(_KEYS.c.key)
)


def row_snapshot(row: TaskRecord) -> str:
    """A task row as JSON, as PostgreSQL's row_to_json writes it (column name -> value)."""
    return orjson.dumps(dict(zip(TASK_COLUMNS, row, strict=False))).decode()


class TaskRepository:
    """Reads and writes the tasks of `owner_id` only; never commits (the unit of work does).

    Each operation is one statement on its success path (on PostgreSQL: one round trip in
    autocommit); a miss of a write by id takes a second to tell 404 from 412.
    """

    def __init__(self, session: Session, owner_id: str) -> None:
        self._session = session
        self._owner_id = owner_id
        self._dialect = session.dialect

    # -- reads -------------------------------------------------------------------------------

    async def get(self, task_id: int) -> TaskRecord:
        rows = await self._session.fetch(_GET_ONE, {"owner_id": self._owner_id, "task_id": task_id})
        if not rows:
            raise NotFound(f"task {task_id} not found")
        return rows[0]

    async def list(self, query: TaskQuery) -> TaskPage:
        tags = sorted(set(query.tags))
        shape = ListShape(
            dialect=self._dialect,
            completed=query.completed is not None,
            priority=query.priority is not None,
            due_before=query.due_before is not None,
            due_after=query.due_after is not None,
            text=query.text is not None,
            tags=len(tags),
            sort=query.sort,
            descending=query.descending,
        )
        parameters: dict[str, Any] = {
            "owner_id": self._owner_id,
            "completed": query.completed,
            "priority": query.priority,
            "due_before": query.due_before,
            "due_after": query.due_after,
            "pattern": None if query.text is None else _like_pattern(query.text),
            "skip": query.skip,
            "limit": query.limit,
        }
        if self._dialect == "postgresql":
            parameters["tags"] = tags
        else:
            parameters.update({f"tag_{index}": tag for index, tag in enumerate(tags)})
        rows = await self._session.fetch(_list_statement(shape), parameters)
        total = int(rows[0][-1])  # always one row at least: totals LEFT JOIN page
        if rows[0][_ID] is None:  # the page is empty
            return TaskPage(rows=[], total=total)
        return TaskPage(rows=rows, total=total)

    # -- writes ------------------------------------------------------------------------------

    def _create_parameters(self, values: dict[str, Any], max_tasks: int) -> dict[str, Any]:
        now = _now()
        parameters: dict[str, Any] = dict.fromkeys(_INSERTED_COLUMNS)
        parameters.update(completed=False, priority=2, tags=[])  # the columns' defaults
        parameters.update(values)
        parameters.update(
            user_id=self._owner_id, version=1, created_at=now, updated_at=now, max_tasks=max_tasks
        )
        return parameters

    async def create(
        self,
        values: dict[str, Any],
        *,
        max_tasks: int,
        key: str | None = None,
        request_hash: str = "",
        ttl_hours: int = 24,
    ) -> Created:
        """Insert a task unless the owner already has `max_tasks` (409), in one statement.

        With an Idempotency-Key: an unexpired key replays (the caller compares the request
        hash); otherwise the task and the key are written together. On PostgreSQL that is one
        lookup and one statement; a concurrent duplicate that loses the race on the key's primary
        key fails as a whole and looks the key up again, finding the winner's.
        """
        parameters = self._create_parameters(values, max_tasks)
        if key is None:
            rows = await self._session.fetch(_insert_statement(self._dialect), parameters)
            return Created(row=self._created(rows, max_tasks))
        parameters.update(
            key=key,
            request_hash=request_hash,
            expires_at=parameters["created_at"] + timedelta(hours=ttl_hours),
            now=parameters["created_at"],
        )
        for _ in range(MAX_KEY_ATTEMPTS):
            found = await self._session.fetch(_FIND_KEY, parameters)
            if found and found[0][2]:
                stored = StoredKey(request_hash=found[0][0], response_body=found[0][1])
                return Created(replay=stored)
            if found:  # expired: the key may be used again
                await self._session.fetch(_DROP_EXPIRED_KEY, parameters)
            if self._dialect != "postgresql":
                # SQLite: the request's transaction holds the write lock (BEGIN IMMEDIATE), so
                # nothing can claim the key between the lookup and these two statements.
                inserted = await self._session.fetch(_insert_statement(self._dialect), parameters)
                row = self._created(inserted, max_tasks)
                key_row = {**parameters, "task_id": row[_ID], "response_body": row_snapshot(row)}
                await self._session.fetch(_INSERT_KEY, key_row)
                return Created(row=row)
            try:
                rows = await self._session.fetch(_INSERT_WITH_KEY, parameters)
            except psycopg.errors.UniqueViolation:
                continue  # a concurrent request with this key committed first: replay it
            return Created(row=self._created(rows, max_tasks))
        raise ServiceUnavailable(
            "requests with this Idempotency-Key keep colliding; retry", retry_after=1
        )

    @staticmethod
    def _created(rows: builtins.list[TaskRecord], max_tasks: int) -> TaskRecord:
        if not rows:  # the INSERT's quota condition selected nothing
            raise TaskQuotaExceeded(
                f"this user already has {max_tasks} tasks, the limit per user "
                "(MAX_TASKS_PER_USER); delete some before creating more"
            )
        return rows[0]

    async def _update_where(
        self,
        task_id: int,
        condition: ETagCondition | None,
        changes: dict[str, Any],
        *,
        toggle: bool = False,
    ) -> TaskRecord:
        """UPDATE ... RETURNING the row; `toggle` flips `completed` in the statement itself."""
        rows: builtins.list[TaskRecord] = []
        if condition is None or condition.can_match:
            statement = _update_statement(
                self._dialect, tuple(changes), _versions_checked(condition), toggle
            )
            parameters = _where_parameters(self._owner_id, task_id, condition)
            parameters.update({f"new_{name}": value for name, value in changes.items()})
            parameters["now"] = _now()
            rows = await self._session.fetch(statement, parameters)
        if not rows:
            await self._raise_missing_or_stale(task_id, condition)
        return rows[0]

    async def _raise_missing_or_stale(self, task_id: int, condition: ETagCondition | None) -> None:
        current = await self.get(task_id)  # raises NotFound
        assert condition is not None
        raise PreconditionFailed(
            "the task has changed since the ETag given in If-Match",
            headers={"ETag": etag_of(current)},
        )

    async def update(
        self, task_id: int, changes: dict[str, Any], condition: ETagCondition | None
    ) -> TaskRecord:
        return await self._update_where(task_id, condition, changes)

    async def set_completed(
        self, task_id: int, completed: bool | None, condition: ETagCondition | None
    ) -> TaskRecord:
        """Set, or (with None) flip, in one atomic UPDATE: concurrent toggles are never lost."""
        if completed is None:
            return await self._update_where(task_id, condition, {}, toggle=True)
        return await self._update_where(task_id, condition, {"completed": completed})

    async def delete(self, task_id: int, condition: ETagCondition | None) -> None:
        deleted: builtins.list[TaskRecord] = []
        if condition is None or condition.can_match:
            statement = _delete_statement(self._dialect, _versions_checked(condition))
            parameters = _where_parameters(self._owner_id, task_id, condition)
            deleted = await self._session.fetch(statement, parameters)
        if not deleted:
            await self._raise_missing_or_stale(task_id, condition)


def etag_of(row: TaskRecord) -> str:
    """Strong entity tag of a task: changes on every write (version is bumped atomically)."""
    return f'"{row[_ID]}.{row[_VERSION]}"'


async def delete_expired_keys(connection: AsyncConnection, limit: int = 1000) -> int:
    """Remove expired idempotency keys, a bounded batch at a time (any instance may run it)."""
    table = IdempotencyKey.__table__  # type: ignore[attr-defined]
    expired = (
        sa.select(table.c.user_id, table.c.key).where(table.c.expires_at <= _now()).limit(limit)
    ).subquery()
    result = await connection.execute(
        sa.delete(table).where(
            sa.tuple_(table.c.user_id, table.c.key).in_(sa.select(expired.c.user_id, expired.c.key))
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
