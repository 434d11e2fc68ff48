"""Task storage for one owner: every statement is scoped to that owner by construction."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from backend.errors import NotFound, PreconditionFailed
from backend.preconditions import ETagCondition
from backend.tables import IdempotencyKey, Task, TaskCount, fold_case

LIKE_ESCAPE = "\\"


class TaskRecord(Protocol):
    """A stored task as the handlers read it: a Core row of `tasks`, in the table's column order.

    Reads and writes return Core rows: building ORM objects (identity map, instrumentation,
    unit-of-work flush) cost more than the rest of a request, and nothing here needs them.
    """

    @property
    def id(self) -> int | None: ...
    @property
    def user_id(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def description(self) -> str | None: ...
    @property
    def completed(self) -> bool: ...
    @property
    def priority(self) -> int: ...
    @property
    def due_at(self) -> datetime | None: ...
    @property
    def tags(self) -> list[str]: ...
    @property
    def version(self) -> int: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def updated_at(self) -> datetime: ...
    def __iter__(self) -> Iterator[Any]: ...
    def __getitem__(self, index: int) -> Any: ...


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
    request_hash: str
    response_body: str | None


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
# The column order of every task row here (`SELECT tasks.*`, `RETURNING tasks.*`).
TASK_COLUMNS: tuple[str, ...] = tuple(_TASKS.c.keys())


# Built once: constructing a statement costs about as much as running it on a warm connection.
def _owned_task(versions_checked: bool) -> list[ColumnElement[bool]]:
    """WHERE of one task: owner, id and (for If-Match on a write) the accepted versions."""
    where = [_TASKS.c.user_id == sa.bindparam("owner_id"), _TASKS.c.id == sa.bindparam("task_id")]
    if versions_checked:
        where.append(_TASKS.c.version.in_(sa.bindparam("versions", expanding=True)))
    return where


_GET_ONE = sa.select(_TASKS).where(*_owned_task(versions_checked=False))


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
    columns: tuple[str, ...], versions_checked: bool, toggle: bool
) -> sa.Executable:
    """UPDATE of these columns (values bound as new_<column>), built once per shape.

    Building an UPDATE per request (and SQLAlchemy's cache key for it) cost about as much as
    running it. The columns come from the body models' fields, never from the client's keys,
    so there are few variants (subsets of the writable columns).
    """
    values: dict[str, Any] = {
        name: sa.bindparam(f"new_{name}", type_=_TASKS.c[name].type) for name in columns
    }
    if toggle:
        values["completed"] = sa.not_(_TASKS.c.completed)
    values["version"] = _TASKS.c.version + 1
    values["updated_at"] = sa.bindparam("now", type_=_TASKS.c.updated_at.type)
    return (
        sa.update(_TASKS).where(*_owned_task(versions_checked)).values(values).returning(*_TASKS.c)
    )


@functools.lru_cache(maxsize=2)
def _delete_statement(versions_checked: bool) -> sa.Executable:
    return sa.delete(_TASKS).where(*_owned_task(versions_checked)).returning(_TASKS.c.id)


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


def _order(shape: ListShape) -> list[Any]:
    columns = _TASKS.c
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


@functools.lru_cache(maxsize=512)
def _list_statements(shape: ListShape) -> tuple[sa.Select[Any], sa.Select[Any]]:
    """The page and count statements of one shape, built once: building one costs as much as
    running it. Bounded: the tag count is capped by the contract and the rest are flags.

    A total read from task_counts (at most six rows) rides in the page as an extra last column,
    an uncorrelated scalar subquery that PostgreSQL runs once as an InitPlan (SQLite once too):
    one round trip, and page and total from one snapshot. A count(*) total is left out of the
    page: it would read every matching task on each request, where a short page (most of them)
    tells its total for free; it runs alone when the page is full.
    """
    filters = _filters(shape)
    count = _count_statement(shape, filters)
    columns: list[Any] = [_TASKS]
    if not _counts_tasks(shape):
        columns.append(count.scalar_subquery().label("total"))
    page = (
        sa.select(*columns)
        .where(*filters)
        .order_by(*_order(shape))
        .offset(sa.bindparam("skip", type_=sa.Integer()))
        .limit(sa.bindparam("limit", type_=sa.Integer()))
    )
    return page, count


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
    return sa.select(sa.func.sum(counts.n)).where(*where)  # NULL without rows: 0 in list()


_INSERT = sa.insert(_TASKS).returning(*_TASKS.c)


class TaskRepository:
    """Reads and writes the tasks of `owner_id` only; never commits (the unit of work does)."""

    def __init__(self, connection: AsyncConnection, owner_id: str) -> None:
        self._connection = connection
        self._owner_id = owner_id

    @property
    def _dialect(self) -> str:
        return self._connection.dialect.name

    # -- reads -------------------------------------------------------------------------------

    async def get(self, task_id: int) -> TaskRecord:
        parameters = {"owner_id": self._owner_id, "task_id": task_id}
        row = (await self._connection.execute(_GET_ONE, parameters)).first()
        if row is None:
            raise NotFound(f"task {task_id} not found")
        return cast(TaskRecord, row)

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
        page_statement, count_statement = _list_statements(shape)
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
        rows = cast(
            list[TaskRecord], (await self._connection.execute(page_statement, parameters)).all()
        )
        if rows and not _counts_tasks(shape):  # the total is each row's last column
            return TaskPage(rows=rows, total=rows[0][-1])
        # A short page that starts at the beginning or holds rows tells the total for free;
        # only a full page of a q/tag/due list, or one beyond the end, asks for it.
        if len(rows) < query.limit and (rows or query.skip == 0):
            return TaskPage(rows=rows, total=query.skip + len(rows))
        total = await self._connection.scalar(count_statement, parameters)
        return TaskPage(rows=rows, total=int(total or 0))

    # -- writes ------------------------------------------------------------------------------

    async def create(self, values: dict[str, Any]) -> TaskRecord:
        now = _now()
        parameters = {
            **values,
            "user_id": self._owner_id,
            "version": 1,
            "created_at": now,
            "updated_at": now,
        }
        return cast(TaskRecord, (await self._connection.execute(_INSERT, parameters)).one())

    async def _update_where(
        self,
        task_id: int,
        condition: ETagCondition | None,
        changes: dict[str, Any],
        *,
        toggle: bool = False,
    ) -> TaskRecord:
        """UPDATE ... RETURNING the row; `toggle` flips `completed` in the statement itself."""
        row = None
        if condition is None or condition.can_match:
            statement = _update_statement(tuple(changes), _versions_checked(condition), toggle)
            parameters = _where_parameters(self._owner_id, task_id, condition)
            parameters.update({f"new_{name}": value for name, value in changes.items()})
            parameters["now"] = _now()
            row = (await self._connection.execute(statement, parameters)).first()
        if row is None:
            await self._raise_missing_or_stale(task_id, condition)
        assert row is not None
        return cast(TaskRecord, row)

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
        deleted = None
        if condition is None or condition.can_match:
            statement = _delete_statement(_versions_checked(condition))
            parameters = _where_parameters(self._owner_id, task_id, condition)
            deleted = (await self._connection.execute(statement, parameters)).first()
        if deleted is None:
            await self._raise_missing_or_stale(task_id, condition)

    # -- idempotency keys --------------------------------------------------------------------

    async def claim_key(self, key: str, request_hash: str, ttl_hours: int) -> StoredKey | None:
        """Claim `key` for this request; if an unexpired claim exists, return it instead.

        The primary key makes concurrent duplicates wait for the first claim's transaction:
        PostgreSQL's ON CONFLICT blocks on the conflicting row, SQLite runs writers one at a time.
        """
        table = IdempotencyKey.__table__  # type: ignore[attr-defined]
        now = _now()
        await self._connection.execute(
            sa.delete(table).where(
                table.c.user_id == self._owner_id, table.c.key == key, table.c.expires_at <= now
            )
        )
        insert = postgresql.insert if self._dialect == "postgresql" else sqlite.insert
        statement = (
            insert(table)
            .values(
                user_id=self._owner_id,
                key=key,
                request_hash=request_hash,
                created_at=now,
                expires_at=now + timedelta(hours=ttl_hours),
            )
            .on_conflict_do_nothing(index_elements=["user_id", "key"])
            .returning(table.c.key)
        )
        if (await self._connection.execute(statement)).first() is not None:
            return None
        stored = (
            await self._connection.execute(
                sa.select(table.c.request_hash, table.c.response_body).where(
                    table.c.user_id == self._owner_id, table.c.key == key
                )
            )
        ).first()
        assert stored is not None
        return StoredKey(request_hash=stored.request_hash, response_body=stored.response_body)

    async def record_key_response(self, key: str, task_id: int, response_body: str) -> None:
        table = IdempotencyKey.__table__  # type: ignore[attr-defined]
        await self._connection.execute(
            sa.update(table)
            .where(table.c.user_id == self._owner_id, table.c.key == key)
            .values(task_id=task_id, response_body=response_body)
        )


def etag_of(row: TaskRecord) -> str:
    """Strong entity tag of a task: changes on every write (version is bumped atomically)."""
    return f'"{row.id}.{row.version}"'


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
