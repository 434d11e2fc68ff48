"""Implements generated.handlers.TasksHandlers: thin handlers over TaskRepository."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Sequence

import orjson
from fastapi import Request, Response
from pydantic import AwareDatetime

from backend.dependencies import Caller, UnitOfWork, Work, check_path_owner
from backend.errors import IdempotencyKeyReused, ServiceUnavailable
from backend.mapping import column_values, replayed_task, to_api, to_utc_filter
from backend.metrics import IDEMPOTENT_REPLAYS
from backend.pagination import link_header, list_etag
from backend.preconditions import if_match_condition, none_match
from backend.repository import TaskQuery, TaskRepository, etag_of
from backend.responses import NotModified
from backend.settings import Settings
from backend.tables import PRIORITY_RANK
from generated.handlers import TasksHandlers
from generated.models import (
    Priority,
    SortField,
    SortOrder,
    StatusFilter,
    Task,
    TaskCompletion,
    TaskCreate,
    TaskReplace,
    TaskUpdate,
)

# Direction when `order` is omitted: newest / most important first, A-Z and soonest first.
DEFAULT_DESCENDING = {
    "created_at": True,
    "updated_at": True,
    "priority": True,
    "title": False,
    "due_at": False,
}
COMPLETED_FILTER = {"all": None, "pending": False, "completed": True}


class TaskHandlers(TasksHandlers):
    """The `tasks` operations for one authenticated owner (the path user_id already checked)."""

    def __init__(
        self,
        owner_id: str,
        work: UnitOfWork,
        request: Request,
        response: Response,
        settings: Settings,
    ) -> None:
        self._owner_id = owner_id
        self._work = work
        self._request = request
        self._response = response
        self._settings = settings

    async def _repository(self) -> TaskRepository:
        return TaskRepository(await self._work.session(), self._owner_id)

    async def list_tasks(
        self,
        *,
        user_id: str,
        status: StatusFilter,
        priority: Priority | None,
        tag: list[str] | None,
        q: str | None,
        due_before: AwareDatetime | None,
        due_after: AwareDatetime | None,
        sort: SortField,
        order: SortOrder | None,
        skip: int,
        limit: int,
        if_none_match: str | None,
    ) -> Sequence[Task]:
        query = TaskQuery(
            completed=COMPLETED_FILTER[status.value],
            priority=None if priority is None else PRIORITY_RANK[priority.value],
            tags=tuple(tag or ()),
            text=q,
            due_before=to_utc_filter(due_before, "due_before"),
            due_after=to_utc_filter(due_after, "due_after"),
            sort=sort.value,
            descending=DEFAULT_DESCENDING[sort.value] if order is None else order is SortOrder.desc,
            skip=skip,
            limit=limit,
        )
        page = await (await self._repository()).list(query)
        scope = self._request.scope  # not request.url: building the URL costs ~25 us
        etag = list_etag(page, scope["query_string"].decode("latin-1"))
        if none_match(if_none_match, etag):
            raise NotModified(etag)
        headers = self._response.headers
        headers["X-Total-Count"] = str(page.total)
        headers["ETag"] = etag
        link = link_header(
            scope["path"],
            self._request.query_params.multi_items(),
            skip,
            limit,
            page.total,
        )
        if link:
            headers["Link"] = link
        return [to_api(row) for row in page.rows]

    async def create_task(
        self, *, user_id: str, body: TaskCreate, idempotency_key: str | None
    ) -> Task:
        values = column_values(body, only_sent=False)
        request_hash = ""
        if idempotency_key is not None:
            # warnings=False: generated defaults are plain strings ('medium'), not enum members;
            # they serialize to the same JSON, but pydantic would warn on every such request.
            canonical = body.model_dump(mode="json", warnings=False)
            request_hash = hashlib.sha256(
                orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)
            ).hexdigest()
        created = await (await self._repository()).create(
            values,
            max_tasks=self._settings.max_tasks_per_user,
            key=idempotency_key,
            request_hash=request_hash,
            ttl_hours=self._settings.idempotency_ttl_hours,
        )
        if created.replay is not None:
            stored = created.replay
            if stored.request_hash != request_hash:
                raise IdempotencyKeyReused(
                    "this Idempotency-Key was already used with a different request body"
                )
            if stored.response_body is None:  # pragma: no cover - keys are written with their task
                raise ServiceUnavailable(
                    "a request with this Idempotency-Key is in progress", retry_after=1
                )
            IDEMPOTENT_REPLAYS.inc()
            task = replayed_task(stored.response_body)
            self._created_headers(task.id, f'"{task.id}.1"')  # a create makes version 1
            return task
        assert created.row is not None
        task = to_api(created.row)
        self._created_headers(task.id, etag_of(created.row))
        return task

    def _created_headers(self, task_id: int, etag: str) -> None:
        self._response.headers["Location"] = f"{self._request.scope['path'].rstrip('/')}/{task_id}"
        self._response.headers["ETag"] = etag

    async def get_task(self, *, user_id: str, task_id: int, if_none_match: str | None) -> Task:
        row = await (await self._repository()).get(task_id)
        etag = etag_of(row)
        if none_match(if_none_match, etag):
            raise NotModified(etag)
        self._response.headers["ETag"] = etag
        return to_api(row)

    async def replace_task(
        self, *, user_id: str, task_id: int, body: TaskReplace, if_match: str | None
    ) -> Task:
        return await self._update(task_id, body, if_match)

    async def update_task(
        self, *, user_id: str, task_id: int, body: TaskUpdate, if_match: str | None
    ) -> Task:
        return await self._update(task_id, body, if_match)

    async def _update(
        self, task_id: int, body: TaskReplace | TaskUpdate, if_match: str | None
    ) -> Task:
        changes = column_values(body, only_sent=True)
        row = await (await self._repository()).update(
            task_id, changes, if_match_condition(if_match, task_id)
        )
        self._response.headers["ETag"] = etag_of(row)
        return to_api(row)

    async def complete_task(
        self, *, user_id: str, task_id: int, if_match: str | None, body: TaskCompletion | None
    ) -> Task:
        completed = None if body is None else body.completed
        row = await (await self._repository()).set_completed(
            task_id, completed, if_match_condition(if_match, task_id)
        )
        self._response.headers["ETag"] = etag_of(row)
        return to_api(row)

    async def delete_task(self, *, user_id: str, task_id: int, if_match: str | None) -> None:
        repository = await self._repository()
        await repository.delete(task_id, if_match_condition(if_match, task_id))


async def task_handlers(
    caller: Caller, work: Work, request: Request, response: Response
) -> AsyncIterator[TaskHandlers]:
    """The `tasks` handlers of one request, for the path's owner (403 for anyone else)."""
    owner_id = check_path_owner(request, caller)
    yield TaskHandlers(owner_id, work, request, response, request.app.state.settings)
