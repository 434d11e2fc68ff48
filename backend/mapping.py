"""The one place where API schemas (generated/) and table rows (backend/tables.py) meet."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, overload

import orjson
from pydantic import BaseModel

from backend.errors import ValidationFailed
from backend.repository import TASK_COLUMNS, TaskRecord
from backend.responses import RendersJson
from backend.tables import PRIORITY_NAME, PRIORITY_RANK, fold_case
from generated.models import Priority, Tag, Task

# Fields the contract allows to be null; any other field sent as null is a validation error.
NULLABLE_FIELDS = frozenset({"description", "due_at"})
_PRIORITY = {name: Priority(name) for name in PRIORITY_NAME.values()}


@functools.lru_cache(maxsize=4096)
def _tag(value: str) -> Tag:
    """One shared (never mutated) model per distinct tag: a list page repeats the same few."""
    return Tag.model_construct(root=value)


_TASK_FIELDS = frozenset(Task.model_fields)
# Positions in a `tasks` row: every task row is `SELECT tasks.*` or `RETURNING tasks.*`, in the
# table's column order. Unpacking a row is ~25x cheaper than reading its attributes by name.
(_ID, _USER_ID, _TITLE, _DESCRIPTION, _COMPLETED, _PRIORITY_RANK, _DUE_AT, _TAGS, _CREATED_AT,
 _UPDATED_AT) = (
    TASK_COLUMNS.index(name)
    for name in (
        "id", "user_id", "title", "description", "completed", "priority", "due_at", "tags",
        "created_at", "updated_at",
    )
)  # fmt: skip
_new_task = Task.__new__
_set = object.__setattr__


def _fields(row: TaskRecord) -> dict[str, Any]:
    """A row as the contract's Task fields, in the model's order: priority by name, tags as text.

    The JSON of a Task as it is; `to_api` swaps in the enum and Tag models.
    """
    values = tuple(row)
    return {
        "id": values[_ID],
        "user_id": values[_USER_ID],
        "title": values[_TITLE],
        "description": values[_DESCRIPTION],
        "completed": values[_COMPLETED],
        "priority": PRIORITY_NAME[values[_PRIORITY_RANK]],
        "due_at": values[_DUE_AT],
        "tags": values[_TAGS],
        "created_at": values[_CREATED_AT],
        "updated_at": values[_UPDATED_AT],
    }


def to_api(row: TaskRecord) -> Task:
    """Build the response model without re-validating what the database constraints guarantee.

    What `Task.model_construct` does, minus its per-field default handling: every field comes
    from the row. A page of 20 tasks is built in a fraction of model_construct's time.
    """
    fields = _fields(row)
    fields["priority"] = _PRIORITY[fields["priority"]]
    fields["tags"] = [_tag(tag) for tag in fields["tags"]]
    task = _new_task(Task)
    _set(task, "__dict__", fields)
    _set(task, "__pydantic_fields_set__", set(_TASK_FIELDS))
    _set(task, "__pydantic_extra__", None)
    _set(task, "__pydantic_private__", None)
    return task


class TaskList(Sequence[Task], RendersJson):
    """A page of task rows as a sequence of Task models, built only when an item is read.

    The response body is written by orjson straight from the rows: the same bytes as
    pydantic's serializer gives for `[to_api(row) for row in rows]` (a property test holds
    the two together), at about a quarter of the cost of building the models and serializing
    them, which was a tenth of a list request's CPU.
    """

    __slots__ = ("_rows",)

    def __init__(self, rows: Sequence[TaskRecord]) -> None:
        self._rows = rows

    def __len__(self) -> int:
        return len(self._rows)

    @overload
    def __getitem__(self, index: int) -> Task: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Task]: ...

    def __getitem__(self, index: int | slice) -> Task | Sequence[Task]:
        if isinstance(index, slice):
            return [to_api(row) for row in self._rows[index]]
        return to_api(self._rows[index])

    def render_json(self) -> bytes:
        # OPT_UTC_Z: "Z" for UTC, as pydantic writes it; every stored time is UTC.
        return orjson.dumps([_fields(row) for row in self._rows], option=orjson.OPT_UTC_Z)


def _utc(value: datetime, field: str) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValidationFailed(
            f"body.{field}: the date-time is out of range once converted to UTC",
            errors=[
                {
                    "location": "body",
                    "field": field,
                    "type": "datetime_out_of_range",
                    "message": "the date-time is out of range once converted to UTC",
                }
            ],
        ) from None


def _check_tags(tags: list[str]) -> list[str]:
    seen: set[str] = set()
    for index, tag in enumerate(tags):
        if tag in seen:
            raise ValidationFailed(
                f"body.tags.{index}: duplicate tag {tag!r}; tags must be distinct",
                errors=[
                    {
                        "location": "body",
                        "field": f"tags.{index}",
                        "type": "duplicate_tag",
                        "message": "tags must be distinct",
                    }
                ],
            )
        seen.add(tag)
    return tags


def column_values(body: BaseModel, *, only_sent: bool) -> dict[str, Any]:
    """Column values from a create/replace/update body.

    With `only_sent`, fields the client left out are omitted (PUT and PATCH keep them), and an
    explicit null is accepted only where the contract marks the field nullable.
    """
    sent: Mapping[str, Any] = (
        {name: getattr(body, name) for name in body.model_fields_set}
        if only_sent
        else {name: getattr(body, name) for name in type(body).model_fields}
    )
    values: dict[str, Any] = {}
    for name, value in sent.items():
        if value is None and name not in NULLABLE_FIELDS:
            raise ValidationFailed(
                f"body.{name}: may not be null",
                errors=[
                    {
                        "location": "body",
                        "field": name,
                        "type": "null_not_allowed",
                        "message": "may not be null",
                    }
                ],
            )
        if name == "title":
            values["title"] = value
            values["title_key"] = fold_case(value)
        elif name == "priority":
            values["priority"] = PRIORITY_RANK[str(value)]
        elif name == "tags":
            values["tags"] = _check_tags([tag.root for tag in value])
        elif name == "description":
            values["description"] = value
            values["description_key"] = None if value is None else fold_case(value)
        elif name == "due_at":
            values["due_at"] = None if value is None else _utc(value, name)
        else:
            values[name] = value
    return values


def to_utc_filter(value: datetime | None, parameter: str) -> datetime | None:
    """A date-time query parameter in UTC, or a 422 naming the parameter if it cannot be."""
    if value is None:
        return None
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValidationFailed(
            f"query.{parameter}: the date-time is out of range once converted to UTC",
            errors=[
                {
                    "location": "query",
                    "field": parameter,
                    "type": "datetime_out_of_range",
                    "message": "the date-time is out of range once converted to UTC",
                }
            ],
        ) from None
