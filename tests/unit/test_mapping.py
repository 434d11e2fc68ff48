"""backend.mapping.to_api builds Task models without validation: prove it builds valid ones."""

from __future__ import annotations

from collections import namedtuple
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import TypeAdapter

from backend.mapping import TaskList, to_api
from backend.tables import Task as TaskTable
from generated.models import Task

CREATED = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
# Like a Core row of `SELECT tasks.*`: positional, in the table's column order, and by name.
Row = namedtuple("Row", TaskTable.__table__.c.keys())  # type: ignore[misc,attr-defined]


def _row(**overrides: object) -> Any:
    values: dict[str, object] = {
        "id": 7,
        "user_id": "alice",
        "title": "Buy milk",
        "description": None,
        "completed": False,
        "priority": 3,
        "due_at": None,
        "title_key": "buy milk",
        "description_key": None,
        "tags": ["home", "shop"],
        "version": 2,
        "created_at": CREATED,
        "updated_at": CREATED,
    }
    values.update(overrides)
    return Row(**values)


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"description": "two litres\nsemi-skimmed", "due_at": CREATED, "completed": True},
        {"priority": 1, "tags": []},
    ],
)
def test_to_api_equals_a_validated_model(overrides: dict[str, object]) -> None:
    """Same JSON, same equality and same fields-set as pydantic's own validated model."""
    built = to_api(_row(**overrides))
    validated = Task.model_validate_json(built.model_dump_json())
    assert built == validated
    assert built.model_dump_json() == validated.model_dump_json()
    assert built.model_fields_set == validated.model_fields_set


def test_models_do_not_share_mutable_state() -> None:
    first, second = to_api(_row()), to_api(_row())
    first.title = "changed"
    assert second.title == "Buy milk"
    assert first.model_fields_set is not second.model_fields_set
    assert first.tags is not second.tags


# What the columns can hold: text without lone surrogates (UTF-8 on both databases), UTC times
# at any microsecond in the years datetime can express.
_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
_utc_times = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
)
_rows = st.builds(
    _row,
    id=st.integers(min_value=1, max_value=2**63 - 1),
    user_id=_text,
    title=_text,
    description=st.none() | _text,
    completed=st.booleans(),
    priority=st.sampled_from([1, 2, 3]),
    due_at=st.none() | _utc_times,
    tags=st.lists(_text, max_size=10),
    created_at=_utc_times,
    updated_at=_utc_times,
)
TASKS_JSON = TypeAdapter(list[Task])


@given(st.lists(_rows, max_size=5))
@example([_row(), _row(due_at=CREATED.replace(microsecond=0), description='x\n\t"\\é\u2028')])
def test_task_list_renders_what_pydantic_serializes(rows: list[Any]) -> None:
    rendered = TaskList(rows).render_json()
    assert rendered == TASKS_JSON.dump_json([to_api(row) for row in rows], warnings="error")


def test_task_list_is_a_sequence_of_task_models() -> None:
    rows = [_row(id=1), _row(id=2, title="Walk"), _row(id=3, tags=[])]
    tasks = TaskList(rows)
    assert len(tasks) == 3
    assert tasks[1] == to_api(rows[1]) and tasks[-1] == to_api(rows[2])
    assert list(tasks[:2]) == [to_api(rows[0]), to_api(rows[1])]
    assert [task.id for task in tasks] == [1, 2, 3]
    assert isinstance(tasks[0], Task)
    with pytest.raises(IndexError):
        tasks[3]
