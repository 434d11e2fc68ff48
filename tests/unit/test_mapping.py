"""backend.mapping: rows to Task models (to_api) and Idempotency-Key snapshots back to tasks."""

from __future__ import annotations

from collections import namedtuple
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from backend.mapping import replayed_task, to_api
from backend.repository import row_snapshot
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


def test_a_row_that_breaks_the_contract_is_refused() -> None:
    """to_api validates: a stored value outside the contract fails here, not in a client."""
    with pytest.raises(ValidationError):
        to_api(_row(title=""))


@pytest.mark.parametrize(
    "overrides",
    [{}, {"description": "d", "due_at": CREATED.replace(microsecond=0), "completed": True}],
)
def test_a_replayed_snapshot_is_the_created_task(overrides: dict[str, object]) -> None:
    row = _row(**overrides)
    assert replayed_task(row_snapshot(row)) == to_api(row)


def test_a_postgres_row_to_json_snapshot_is_read_back() -> None:
    """The text PostgreSQL's row_to_json writes (times with +00:00 and 1-6 fraction digits)."""
    snapshot = (
        '{"id":7,"user_id":"alice","title":"Buy milk","title_key":"buy milk",'
        '"description":null,"description_key":null,"completed":false,"priority":3,'
        '"due_at":"2026-01-02T03:04:05+00:00","tags":["home","shop"],"version":1,'
        '"created_at":"2026-01-02T03:04:05.678+00:00","updated_at":"2026-01-02T03:04:05.678+00:00"}'
    )
    task = replayed_task(snapshot)
    assert task == to_api(_row(version=1, due_at=CREATED.replace(microsecond=0)))


def test_a_stored_response_body_is_read_back() -> None:
    """Keys written before snapshots were rows hold the response body itself."""
    task = to_api(_row())
    assert replayed_task(task.model_dump_json()) == task
