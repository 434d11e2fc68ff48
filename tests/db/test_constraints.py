"""The rules live in the database too: raw SQL that breaks them fails on SQLite and PostgreSQL.

The API validates first; these constraints are the last line for anything that bypasses it
(a script, a future endpoint, a bug). Each case changes one column of a row that is otherwise
valid, and the valid row itself is inserted first to prove the statement is sound.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from backend.db import sync_url
from backend.migrate import upgrade_to_head

COLUMNS = ["user_id", "title", "title_key", "description", "description_key", "completed",
           "priority", "due_at", "tags", "version", "created_at", "updated_at"]  # fmt: skip
INSERT = sa.text(
    f"INSERT INTO tasks ({', '.join(COLUMNS)}) "  # noqa: S608 - fixed column names
    f"VALUES ({', '.join(':' + column for column in COLUMNS)})"
)
STAMP = "2026-01-01 00:00:00"
VALID: dict[str, Any] = {
    "user_id": "alice",
    "title": "A valid title",
    "title_key": "a valid title",
    "description": None,
    "description_key": None,
    "completed": False,
    "priority": 2,
    "due_at": None,
    "tags": "[]",
    "version": 1,
    "created_at": STAMP,
    "updated_at": STAMP,
}
# Either database's wording for a NOT NULL violation.
NOT_NULL = r"not.null"

# (the one change to a valid row, what the error must mention)
VIOLATIONS: list[tuple[dict[str, Any], str]] = [
    ({"title": "x" * 201}, r"title_length|too long"),
    ({"title": ""}, r"title_length"),
    ({"title": None}, NOT_NULL),
    ({"title_key": None}, NOT_NULL),
    ({"description": "d" * 1001}, r"description_length|too long"),
    ({"user_id": ""}, r"user_id_length"),
    ({"user_id": "u" * 129}, r"user_id_length|too long"),
    ({"user_id": None}, NOT_NULL),
    ({"priority": 4}, r"priority_rank"),
    ({"priority": 0}, r"priority_rank"),
    ({"priority": None}, NOT_NULL),
    ({"completed": None}, NOT_NULL),
    ({"tags": None}, NOT_NULL),
    ({"version": 0}, r"version_positive"),
    ({"created_at": None}, NOT_NULL),
    ({"updated_at": None}, NOT_NULL),
]


@pytest.fixture
def engine(scratch_url: str) -> Iterator[sa.Engine]:
    upgrade_to_head(scratch_url)
    engine = sa.create_engine(sync_url(scratch_url), poolclass=sa.NullPool)
    try:
        yield engine
    finally:
        engine.dispose()


def insert(engine: sa.Engine, **changes: Any) -> None:
    with engine.begin() as connection:
        connection.execute(INSERT, {**VALID, **changes})


def count(engine: sa.Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(sa.text("SELECT count(*) FROM tasks")).scalar_one())


def test_a_valid_row_and_the_limits_are_accepted(engine: sa.Engine) -> None:
    insert(engine)
    insert(engine, title="x" * 200, description="d" * 1000, user_id="u" * 128, priority=3)
    insert(engine, priority=1, version=2**62, completed=True)
    assert count(engine) == 3


@pytest.mark.parametrize(("changes", "message"), VIOLATIONS, ids=lambda v: str(v)[:40])
def test_a_row_breaking_a_rule_is_refused(
    engine: sa.Engine, changes: dict[str, Any], message: str
) -> None:
    insert(engine)  # the statement is sound
    with pytest.raises((sa.exc.IntegrityError, sa.exc.DataError)) as refused:
        insert(engine, **changes)
    assert re.search(message, str(refused.value.orig), re.IGNORECASE), refused.value.orig
    assert count(engine) == 1


def test_an_update_breaking_a_rule_is_refused(engine: sa.Engine) -> None:
    insert(engine)
    for statement in ("UPDATE tasks SET priority = 7", "UPDATE tasks SET title = ''",
                      "UPDATE tasks SET title = NULL", "UPDATE tasks SET version = 0"):  # fmt: skip
        with pytest.raises((sa.exc.IntegrityError, sa.exc.DataError)), engine.begin() as conn:
            conn.execute(sa.text(statement))
    with engine.connect() as connection:
        row = connection.execute(sa.text("SELECT title, priority, version FROM tasks")).one()
    assert tuple(row) == ("A valid title", 2, 1)


def test_an_idempotency_key_is_unique_per_user(engine: sa.Engine) -> None:
    statement = sa.text(
        "INSERT INTO idempotency_keys (user_id, key, request_hash, created_at, expires_at) "
        "VALUES (:user, :key, 'h', :stamp, :stamp)"
    )
    with engine.begin() as connection:
        connection.execute(statement, {"user": "alice", "key": "k1", "stamp": STAMP})
        connection.execute(statement, {"user": "bob", "key": "k1", "stamp": STAMP})
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
        connection.execute(statement, {"user": "alice", "key": "k1", "stamp": STAMP})
