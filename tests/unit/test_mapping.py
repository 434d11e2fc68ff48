"""backend.mapping.to_api builds Task models without validation: prove it builds valid ones."""

from __future__ import annotations

from collections import namedtuple
from datetime import UTC, datetime
from typing import Any

import pytest

from backend.mapping import to_api
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
