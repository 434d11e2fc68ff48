"""Task storage for one owner: every statement is scoped to that owner by construction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from backend.errors import NotFound, PreconditionFailed
from backend.preconditions import ETagCondition
from backend.tables import IdempotencyKey, Task, fold_case

LIKE_ESCAPE = "\\"


class TaskRecord(Protocol):
    """A stored task as the handlers read it: a Core row of `tasks` or an ORM `Task`.

    Reads return Core rows: building ORM objects (identity map, instrumentation) cost more
    than the rest of a list request, and nothing here changes a task through the ORM.
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
# Built once: constructing a statement costs about as much as running it on a warm connection.
_GET_ONE = sa.select(_TASKS).where(
    _TASKS.c.user_id == sa.bindparam("owner_id"), _TASKS.c.id == sa.bindparam("task_id")
)


class TaskRepository:
    """Reads and writes the tasks of `owner_id` only; may flush, never commits."""

    def __init__(self, session: AsyncSession, owner_id: str) -> None:
        self._session = session
        self._owner_id = owner_id

    @property
    def _dialect(self) -> str:
        return self._session.get_bind().dialect.name

    def _owned(self) -> ColumnElement[bool]:
        return Task.__table__.c.user_id == self._owner_id  # type: ignore[attr-defined,no-any-return]

    # -- reads -------------------------------------------------------------------------------

    async def get(self, task_id: int) -> TaskRecord:
        parameters = {"owner_id": self._owner_id, "task_id": task_id}
        row = (await self._session.execute(_GET_ONE, parameters)).first()
        if row is None:
            raise NotFound(f"task {task_id} not found")
        return cast(TaskRecord, row)

    def _filters(self, query: TaskQuery) -> list[ColumnElement[bool]]:
        filters: list[ColumnElement[bool]] = [self._owned()]
        if query.completed is not None:
            filters.append(Task.completed == query.completed)  # type: ignore[arg-type]
        if query.priority is not None:
            filters.append(Task.priority == query.priority)  # type: ignore[arg-type]
        if query.due_before is not None:
            filters.append(Task.due_at < query.due_before)  # type: ignore[arg-type,operator]
        if query.due_after is not None:
            filters.append(Task.due_at > query.due_after)  # type: ignore[arg-type,operator]
        if query.text is not None:
            pattern = _like_pattern(query.text)
            filters.append(
                sa.or_(
                    Task.__table__.c.title_key.like(  # type: ignore[attr-defined]
                        pattern, escape=LIKE_ESCAPE
                    ),
                    Task.__table__.c.description_key.like(  # type: ignore[attr-defined]
                        pattern, escape=LIKE_ESCAPE
                    ),
                )
            )
        if query.tags:
            filters.append(self._has_all_tags(sorted(set(query.tags))))
        return filters

    def _has_all_tags(self, tags: list[str]) -> ColumnElement[bool]:
        tags_column: Any = Task.__table__.c.tags  # type: ignore[attr-defined]
        if self._dialect == "postgresql":
            # jsonb @> is served by the GIN (jsonb_path_ops) index ix_tasks_tags.
            contains: ColumnElement[bool] = tags_column.op("@>")(
                sa.cast(sa.literal(tags, postgresql.JSONB), postgresql.JSONB)
            )
            return contains
        conditions = []
        for tag in tags:
            each = sa.func.json_each(tags_column).table_valued("value").alias()
            conditions.append(
                sa.select(sa.literal(1)).select_from(each).where(each.c.value == tag).exists()
            )
        return sa.and_(*conditions)

    def _order(self, query: TaskQuery) -> list[Any]:
        table = Task.__table__.c  # type: ignore[attr-defined]
        column = {
            "created_at": table.created_at,
            "updated_at": table.updated_at,
            "due_at": table.due_at,
            "priority": table.priority,
            "title": table.title_key,
        }[query.sort]
        primary = column.desc() if query.descending else column.asc()
        if query.sort == "due_at":
            primary = primary.nulls_last()
        tie_break = table.id.desc() if query.descending else table.id.asc()
        return [primary, tie_break]

    async def list(self, query: TaskQuery) -> TaskPage:
        filters = self._filters(query)
        statement = (
            sa.select(Task.__table__)  # type: ignore[attr-defined]
            .where(*filters)
            .order_by(*self._order(query))
            .offset(query.skip)
            .limit(query.limit)
        )
        rows = cast(list[TaskRecord], (await self._session.execute(statement)).all())
        # A short page that starts at the beginning or holds rows tells the total for free.
        if len(rows) < query.limit and (rows or query.skip == 0):
            return TaskPage(rows=rows, total=query.skip + len(rows))
        total = await self._session.scalar(
            sa.select(sa.func.count()).select_from(Task).where(*filters)
        )
        return TaskPage(rows=rows, total=int(total or 0))

    # -- writes ------------------------------------------------------------------------------

    async def create(self, values: dict[str, Any]) -> Task:
        now = _now()
        row = Task(**values, user_id=self._owner_id, version=1, created_at=now, updated_at=now)
        self._session.add(row)
        await self._session.flush()
        return row

    async def _update_where(
        self, task_id: int, condition: ETagCondition | None, changes: dict[str, Any]
    ) -> TaskRecord:
        table = Task.__table__  # type: ignore[attr-defined]
        where = [table.c.user_id == self._owner_id, table.c.id == task_id]
        if condition is not None:
            where.append(condition.sql(table))
        statement = (
            sa.update(table)
            .where(*where)
            .values(**changes, version=table.c.version + 1, updated_at=_now())
            .returning(*table.c)
        )
        result = (await self._session.execute(statement)).first()
        if result is None:
            await self._raise_missing_or_stale(task_id, condition)
        assert result is not None
        return cast(TaskRecord, result)

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
        table = Task.__table__  # type: ignore[attr-defined]
        value = sa.not_(table.c.completed) if completed is None else completed
        return await self._update_where(task_id, condition, {"completed": value})

    async def delete(self, task_id: int, condition: ETagCondition | None) -> None:
        table = Task.__table__  # type: ignore[attr-defined]
        where = [table.c.user_id == self._owner_id, table.c.id == task_id]
        if condition is not None:
            where.append(condition.sql(table))
        result = await self._session.execute(sa.delete(table).where(*where).returning(table.c.id))
        if result.first() is None:
            await self._raise_missing_or_stale(task_id, condition)

    # -- idempotency keys --------------------------------------------------------------------

    async def claim_key(self, key: str, request_hash: str, ttl_hours: int) -> StoredKey | None:
        """Claim `key` for this request; if an unexpired claim exists, return it instead.

        The primary key makes concurrent duplicates wait for the first claim's transaction:
        PostgreSQL's ON CONFLICT blocks on the conflicting row, SQLite runs writers one at a time.
        """
        table = IdempotencyKey.__table__  # type: ignore[attr-defined]
        now = _now()
        await self._session.execute(
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
        if (await self._session.execute(statement)).first() is not None:
            return None
        stored = (
            await self._session.execute(
                sa.select(table.c.request_hash, table.c.response_body).where(
                    table.c.user_id == self._owner_id, table.c.key == key
                )
            )
        ).first()
        assert stored is not None
        return StoredKey(request_hash=stored.request_hash, response_body=stored.response_body)

    async def record_key_response(self, key: str, task_id: int, response_body: str) -> None:
        table = IdempotencyKey.__table__  # type: ignore[attr-defined]
        await self._session.execute(
            sa.update(table)
            .where(table.c.user_id == self._owner_id, table.c.key == key)
            .values(task_id=task_id, response_body=response_body)
        )


def etag_of(row: TaskRecord) -> str:
    """Strong entity tag of a task: changes on every write (version is bumped atomically)."""
    return f'"{row.id}.{row.version}"'


async def delete_expired_keys(session: AsyncSession, limit: int = 1000) -> int:
    """Remove expired idempotency keys, a bounded batch at a time (any instance may run it)."""
    table = IdempotencyKey.__table__  # type: ignore[attr-defined]
    expired = (
        sa.select(table.c.user_id, table.c.key).where(table.c.expires_at <= _now()).limit(limit)
    ).subquery()
    result = await session.execute(
        sa.delete(table).where(
            sa.tuple_(table.c.user_id, table.c.key).in_(sa.select(expired.c.user_id, expired.c.key))
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
