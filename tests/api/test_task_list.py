"""Listing tasks: every filter, every sort and direction, pages and their headers.

The expected results are computed in Python from the contract's rules and the tasks the API
returned, then compared with what the server ordered and filtered; the last tests build the same
data on SQLite and PostgreSQL and require identical answers from both.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from tests.support import User, assert_problem, create_task, parse_links, parse_utc

Row = dict[str, Any]
RANK = {"low": 1, "medium": 2, "high": 3}
DEFAULT_ORDER = {"created_at": "desc", "updated_at": "desc", "priority": "desc", "title": "asc",
                 "due_at": "asc"}  # fmt: skip
BASE = datetime.fromisoformat("2026-06-01T12:00:00+00:00")
INDIA = timezone(timedelta(hours=5, minutes=30))

# Mixed case, accents, scripts whose case mapping is not one-to-one, emoji, LIKE wildcards,
# quotes and a backslash: everything whose order or match could differ between databases.
TITLES = [
    "apple", "Banana", "APPLE", "cherry", "Äpfel", "äpfel", "Zebra", "zebra", "éclair",
    "Eclair", "ΟΔΟΣ", "οδος", "Straße", "STRASSE", "İstanbul", "istanbul", "日本語",
    "😀 party", "100% done", "100 percent", "snake_case", "snakeXcase", "it's", 'say "hi"',
    "back\\slash", "backslash", " leading space", "Apple",
]  # fmt: skip
DESCRIPTIONS = {
    1: "Peel the BANANA", 3: "Cherry pie with ΣΟΦΙΑ", 5: "straße repair",
    7: "zebra crossing 50% off", 9: "Mind the_gap", 11: "quote ' inside",
    13: 'double " quote', 15: "a \\ backslash", 17: "multi\nline notes",
}  # fmt: skip


def spec(index: int) -> Row:
    """The fields of the index-th task of the shared data set (ties in every sort key)."""
    due = None if index % 4 == 0 else BASE + timedelta(days=index % 5, hours=-(index % 3))
    tags = [tag for tag, hit in [("even", index % 2 == 0), ("three", index % 3 == 0),
                                 ("five", index % 5 == 0)] if hit]  # fmt: skip
    fields: Row = {
        "title": TITLES[index],
        "priority": ["low", "medium", "high"][index % 3],
        "completed": index % 2 == 1,
        "tags": tags,
        # An offset other than Z: the server stores and compares the UTC instant.
        "due_at": None if due is None else due.astimezone(INDIA).isoformat(),
    }
    if index in DESCRIPTIONS:
        fields["description"] = DESCRIPTIONS[index]
    return fields


async def build(client: httpx.AsyncClient, user: User) -> list[Row]:
    """Create the data set, then touch some tasks so updated_at order differs from id order."""
    created = [await create_task(client, user, **spec(index)) for index in range(len(TITLES))]
    for position in (5, 0, 17, 3, 22, 11):
        response = await client.patch(
            user.task(created[position]["id"]), json={"priority": "high"}, headers=user.headers
        )
        assert response.status_code == 200, response.text
    return await list_all(client, user)


async def list_all(client: httpx.AsyncClient, user: User, **params: Any) -> list[Row]:
    response = await client.get(user.tasks, params={"limit": 1000, **params}, headers=user.headers)
    assert response.status_code == 200, response.text
    rows: list[Row] = response.json()
    assert response.headers["x-total-count"] == str(len(rows))
    return rows


def fold(text: str) -> str:
    return text.casefold()


def sort_key(field: str) -> Callable[[Row], Any]:
    if field == "priority":
        return lambda row: RANK[row["priority"]]
    if field == "title":
        return lambda row: fold(row["title"])
    return lambda row: parse_utc(row[field])


def expected_order(rows: list[Row], field: str, order: str) -> list[int]:
    """Ids in the contract's order: by `field`, then id, same direction; null due_at last."""
    descending = order == "desc"
    present = [row for row in rows if row[field] is not None]
    missing = [row for row in rows if row[field] is None]
    key = sort_key(field)
    ordered = sorted(present, key=lambda row: (key(row), row["id"]), reverse=descending)
    ordered += sorted(missing, key=lambda row: row["id"], reverse=descending)
    return [row["id"] for row in ordered]


def matches_q(row: Row, q: str) -> bool:
    needle = fold(q)
    return needle in fold(row["title"]) or needle in fold(row["description"] or "")


@pytest.fixture
async def dataset(client: httpx.AsyncClient, alice: User, bob: User) -> list[Row]:
    await create_task(client, bob, title="apple of bob", tags=["even"], description="banana")
    return await build(client, alice)


# -- filters ----------------------------------------------------------------------------------


STATUS_FILTERS = {"all": None, "pending": False, "completed": True}
TAG_FILTERS = [["even"], ["three"], ["even", "three"], ["three", "even", "five"], ["nope"],
               ["even", "nope"]]  # fmt: skip


async def test_status_priority_and_tag_filters(
    client: httpx.AsyncClient, alice: User, dataset: list[Row]
) -> None:
    for status, completed in STATUS_FILTERS.items():
        rows = await list_all(client, alice, status=status)
        expected = [r["id"] for r in dataset if completed is None or r["completed"] is completed]
        assert sorted(row["id"] for row in rows) == sorted(expected) and expected, status
    for priority in RANK:
        rows = await list_all(client, alice, priority=priority)
        expected = [row["id"] for row in dataset if row["priority"] == priority]
        assert sorted(row["id"] for row in rows) == sorted(expected) and expected, priority
    # A repeated tag means "carries every one of them", in any order.
    for tags in TAG_FILTERS:
        rows = await list_all(client, alice, tag=tags)
        expected = [row["id"] for row in dataset if set(tags) <= set(row["tags"])]
        assert sorted(row["id"] for row in rows) == sorted(expected), tags
        assert bool(expected) is ("nope" not in tags), tags


LITERAL_QUERIES = [
    ("%", ["100% done", "zebra"]),  # zebra: description "zebra crossing 50% off"
    ("_", ["snake_case", "Eclair"]),  # Eclair: description "Mind the_gap"
    ("e_c", ["snake_case"]),  # not snakeXcase: _ is not a wildcard
    ("'", ["it's", "οδος"]),  # οδος: description "quote ' inside"
    ('"', ['say "hi"', "STRASSE"]),  # STRASSE: description 'double " quote'
    ("\\", ["back\\slash", "istanbul"]),  # istanbul: description "a \\ backslash"
    ("0%", ["100% done", "zebra"]),
    ("%%", []),
    ("a%e", []),
    ("BANANA", ["Banana"]),
    ("multi\\nline", []),
    ("xyz-nothing", []),
]
FOLDING_QUERIES = [
    ("APPLE", ["apple", "APPLE", "Apple"]),
    ("äPFEL", ["Äpfel", "äpfel"]),
    ("ÉCLAIR", ["éclair"]),
    ("οδοσ", ["ΟΔΟΣ", "οδος"]),  # final sigma folds to sigma
    ("ΟΔΟΣ", ["ΟΔΟΣ", "οδος"]),
    ("σοφια", ["cherry"]),  # description "Cherry pie with ΣΟΦΙΑ"
    ("STRASSE", ["Straße", "STRASSE", "äpfel"]),  # ß folds to ss; äpfel: "straße repair"
    ("日本", ["日本語"]),
    ("😀", ["😀 party"]),
    ("pie with σοφ", ["cherry"]),
    (" leading", [" leading space"]),
]


async def test_q_is_plain_case_insensitive_text_over_title_and_description(
    client: httpx.AsyncClient, alice: User, dataset: list[Row]
) -> None:
    """`%`, `_`, quotes and backslash match themselves; case folds as Unicode says."""
    for q, titles in LITERAL_QUERIES + FOLDING_QUERIES:
        rows = await list_all(client, alice, q=q)
        assert sorted(row["title"] for row in rows) == sorted(titles), q
        assert sorted(row["id"] for row in rows) == sorted(
            row["id"] for row in dataset if matches_q(row, q)
        ), q


async def test_q_finds_text_across_a_newline_in_the_description(
    client: httpx.AsyncClient, alice: User, dataset: list[Row]
) -> None:
    rows = await list_all(client, alice, q="NOTES")
    assert [row["title"] for row in rows] == ["😀 party"]
    assert rows[0]["description"] == "multi\nline notes"


DUE_FILTERS = [
    ("due_before", "2026-06-03T12:00:00Z"),
    ("due_before", "2026-06-03T17:30:00+05:30"),  # the same instant with an offset
    ("due_after", "2026-06-03T10:00:00Z"),
    ("due_after", "2026-06-01T00:00:00-14:00"),
    ("due_before", "2000-01-01T00:00:00Z"),
    ("due_after", "2100-01-01T00:00:00Z"),
]


async def test_due_filters_are_strict_and_skip_tasks_without_due_at(
    client: httpx.AsyncClient, alice: User, dataset: list[Row]
) -> None:
    for parameter, instant in DUE_FILTERS:
        rows = await list_all(client, alice, **{parameter: instant})
        bound = datetime.fromisoformat(instant)
        expected = [
            row["id"] for row in dataset if row["due_at"] is not None and (
                parse_utc(row["due_at"]) < bound if parameter == "due_before"
                else parse_utc(row["due_at"]) > bound
            )
        ]  # fmt: skip
        assert sorted(row["id"] for row in rows) == sorted(expected), (parameter, instant)
        assert 0 < len(expected) < len(dataset) or instant[:4] in ("2000", "2100")


async def test_a_due_at_equal_to_the_bound_is_excluded(
    client: httpx.AsyncClient, alice: User
) -> None:
    task = await create_task(client, alice, due_at="2026-06-03T12:00:00Z")
    for parameter in ("due_before", "due_after"):
        assert await list_all(client, alice, **{parameter: "2026-06-03T12:00:00Z"}) == []
    before = await list_all(client, alice, due_before="2026-06-03T12:00:00.000001Z")
    after = await list_all(client, alice, due_after="2026-06-03T11:59:59.999999Z")
    assert [row["id"] for row in before] == [row["id"] for row in after] == [task["id"]]


async def test_filters_combine_with_and(
    client: httpx.AsyncClient, alice: User, dataset: list[Row]
) -> None:
    params = {
        "status": "pending",
        "priority": "high",
        "tag": ["even"],
        "q": "a",
        "due_after": "2026-05-01T00:00:00Z",
        "due_before": "2026-07-01T00:00:00Z",
    }
    rows = await list_all(client, alice, **params)
    expected = [
        row["id"] for row in dataset
        if not row["completed"] and row["priority"] == "high" and "even" in row["tags"]
        and matches_q(row, "a") and row["due_at"] is not None
    ]  # fmt: skip
    assert sorted(row["id"] for row in rows) == sorted(expected) and expected


async def test_lists_only_the_users_own_tasks(
    client: httpx.AsyncClient, alice: User, bob: User, dataset: list[Row]
) -> None:
    assert all(row["user_id"] == alice.id for row in dataset)
    assert "apple of bob" not in [row["title"] for row in dataset]
    bobs = await list_all(client, bob, q="apple")
    assert [row["title"] for row in bobs] == ["apple of bob"]


# -- ordering ---------------------------------------------------------------------------------


async def test_default_order_is_newest_first(
    client: httpx.AsyncClient, alice: User, dataset: list[Row]
) -> None:
    response = await client.get(alice.tasks, headers=alice.headers)
    assert response.status_code == 200
    ids = [row["id"] for row in response.json()]
    assert ids == sorted(ids, reverse=True) == expected_order(dataset, "created_at", "desc")


async def test_every_sort_orders_by_field_then_id(
    client: httpx.AsyncClient, alice: User, dataset: list[Row]
) -> None:
    for field in DEFAULT_ORDER:
        for order in ("asc", "desc", None):
            params = {"sort": field} if order is None else {"sort": field, "order": order}
            rows = await list_all(client, alice, **params)
            assert [row["id"] for row in rows] == expected_order(
                dataset, field, order or DEFAULT_ORDER[field]
            ), params
            if field == "due_at":  # tasks without a due date come last in both directions
                dues = [row["due_at"] for row in rows]
                assert dues.count(None) == 7 and all(due is None for due in dues[-7:]), params


async def test_updated_at_order_differs_from_creation_order(
    client: httpx.AsyncClient, alice: User, dataset: list[Row]
) -> None:
    """Guards the sort tests above: the data set must not make updated_at == created_at order."""
    assert expected_order(dataset, "updated_at", "desc") != expected_order(
        dataset, "created_at", "desc"
    )


async def test_equal_keys_are_ordered_by_id_in_the_sort_direction(
    client: httpx.AsyncClient, alice: User
) -> None:
    ids = [(await create_task(client, alice, title="Same", priority="low"))["id"] for _ in range(5)]
    for field in ("title", "priority"):
        ascending = await list_all(client, alice, sort=field, order="asc")
        descending = await list_all(client, alice, sort=field, order="desc")
        assert [row["id"] for row in ascending] == ids
        assert [row["id"] for row in descending] == ids[::-1]


# -- pages ------------------------------------------------------------------------------------


async def test_pages_walk_the_whole_list_with_links_and_total(
    client: httpx.AsyncClient, alice: User, dataset: list[Row]
) -> None:
    params = {"status": "all", "sort": "title", "tag": "even"}
    everything = await list_all(client, alice, **params)
    total = len(everything)
    assert total == 14
    seen: list[Row] = []
    for skip in range(0, total + 5, 5):
        response = await client.get(
            alice.tasks, params={**params, "skip": skip, "limit": 5}, headers=alice.headers
        )
        assert response.status_code == 200, response.text
        assert response.headers["x-total-count"] == str(total)
        page = response.json()
        assert page == everything[skip : skip + 5]
        seen += page
        links = parse_links(response.headers["link"])
        expected_rels = (
            {"first", "last"}
            | ({"prev"} if skip else set())
            | ({"next"} if skip + 5 < total else set())
        )
        assert set(links) == expected_rels
        for rel, url in links.items():
            assert url.path == alice.tasks
            assert url.params.get_list("tag") == ["even"] and url.params["sort"] == "title"
            assert url.params["limit"] == "5"
            expected_skip = {"first": 0, "last": 10, "prev": max(0, skip - 5),
                             "next": skip + 5}[rel]  # fmt: skip
            assert url.params["skip"] == str(expected_skip), (rel, url)
    assert seen == everything


async def test_following_next_links_reaches_every_task_once(
    client: httpx.AsyncClient, alice: User, dataset: list[Row]
) -> None:
    url: str | None = f"{alice.tasks}?limit=4&sort=priority&q=e"
    seen: list[int] = []
    while url is not None:
        response = await client.get(url, headers=alice.headers)
        assert response.status_code == 200
        seen += [row["id"] for row in response.json()]
        next_link = parse_links(response.headers["link"]).get("next")
        url = None if next_link is None else str(next_link)
    expected = [row_id for row_id in expected_order(dataset, "priority", "desc")
                if matches_q(next(r for r in dataset if r["id"] == row_id), "e")]  # fmt: skip
    assert seen == expected and len(seen) > 4


async def test_empty_list_and_a_skip_past_the_end(
    client: httpx.AsyncClient, alice: User, bob: User
) -> None:
    empty = await client.get(alice.tasks, headers=alice.headers)
    assert empty.status_code == 200 and empty.json() == []
    assert empty.headers["x-total-count"] == "0"
    assert set(parse_links(empty.headers["link"])) == {"first", "last"}
    for _ in range(3):
        await create_task(client, alice)
    past = await client.get(alice.tasks, params={"skip": 10, "limit": 2}, headers=alice.headers)
    assert past.status_code == 200 and past.json() == []
    assert past.headers["x-total-count"] == "3"
    links = parse_links(past.headers["link"])
    assert links["last"].params["skip"] == "2" and "next" not in links


async def test_list_rejects_out_of_range_pages(client: httpx.AsyncClient, alice: User) -> None:
    for params in ({"limit": 0}, {"limit": 1001}, {"skip": -1}, {"skip": 10**9 + 1},
                   {"limit": "ten"}):  # fmt: skip
        assert_problem(await client.get(alice.tasks, params=params, headers=alice.headers), 422)


# -- the same answers on SQLite and PostgreSQL ------------------------------------------------

QUERIES: list[dict[str, Any]] = [
    *({"sort": field, "order": order} for field in DEFAULT_ORDER for order in ("asc", "desc")),
    *({"sort": field} for field in DEFAULT_ORDER),
    {},
    {"q": "ΟΔΟΣ"}, {"q": "strasse"}, {"q": "İ"}, {"q": "i"}, {"q": "%"}, {"q": "_"},
    {"q": "\\"}, {"q": "'"}, {"q": "Ä"}, {"q": "a", "sort": "title", "skip": 3, "limit": 7},
    {"tag": ["even", "three"]}, {"tag": "five", "sort": "due_at", "order": "desc"},
    {"status": "pending", "priority": "high"}, {"due_before": "2026-06-03T00:00:00+01:00"},
    {"due_after": "2026-06-02T00:00:00Z", "sort": "due_at"},
]  # fmt: skip


async def test_sqlite_and_postgres_give_identical_results(
    both_clients: dict[str, httpx.AsyncClient], alice: User
) -> None:
    datasets = {name: await build(client, alice) for name, client in both_clients.items()}

    # Same ids, titles and fields (timestamps differ: they were written at different moments).
    def stable(rows: list[Row]) -> list[tuple[Any, ...]]:
        return [(r["id"], r["title"], r["description"], r["priority"], r["completed"],
                 r["due_at"], r["tags"]) for r in rows]  # fmt: skip

    assert stable(datasets["sqlite"]) == stable(datasets["postgres"])
    for params in QUERIES:
        answers = {}
        for name, client in both_clients.items():
            response = await client.get(alice.tasks, params=params, headers=alice.headers)
            assert response.status_code == 200, (name, params, response.text)
            answers[name] = (response.headers["x-total-count"], stable(response.json()))
        assert answers["sqlite"] == answers["postgres"], params
    # And the shared answer is the contract's, not a shared mistake.
    for field in DEFAULT_ORDER:
        for order in ("asc", "desc"):
            rows = await list_all(both_clients["postgres"], alice, sort=field, order=order)
            assert [row["id"] for row in rows] == expected_order(
                datasets["postgres"], field, order
            ), (field, order)


async def test_non_ascii_tags_are_stored_and_filtered_as_sent(
    client: httpx.AsyncClient, alice: User
) -> None:
    """Tags reach the database as JSON text (orjson's UTF-8 on PostgreSQL) and match exactly."""
    tags = ["café", "日本語", "emoji 😀", 'quote " and \\']
    task = await create_task(client, alice, title="Unicode tags", tags=tags)
    assert task["tags"] == tags
    for tag in tags:
        rows = await list_all(client, alice, tag=[tag])
        assert [row["id"] for row in rows] == [task["id"]], tag
    assert await list_all(client, alice, tag=["cafe"]) == []
