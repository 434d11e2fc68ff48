"""Link headers: every page URL is the request's own query (minus skip/limit), URL-encoded."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from backend.pagination import link_header

PARAMS = [
    [],
    [("status", "pending"), ("sort", "due_at")],
    [("q", "milk & honey = 100%"), ("tag", "home"), ("tag", "Straße"), ("skip", "7")],
    [("limit", "5"), ("q", "<>\"';,")],
]


def _links(header: str) -> dict[str, str]:
    links = {}
    for part in header.split(", <"):
        url, rel = part.lstrip("<").split('>; rel="')
        links[rel.rstrip('"')] = url
    return links


@pytest.mark.parametrize("params", PARAMS)
@pytest.mark.parametrize(("skip", "limit", "total"), [(0, 100, 20), (10, 5, 23), (20, 5, 23)])
def test_links_keep_the_query_and_move_skip(
    params: list[tuple[str, str]], skip: int, limit: int, total: int
) -> None:
    links = _links(link_header("/api/alice/tasks", params, skip, limit, total))
    kept = [(key, value) for key, value in params if key not in ("skip", "limit")]
    expected_skips = {"first": 0, "last": (total - 1) // limit * limit}
    if skip > 0:
        expected_skips["prev"] = max(0, skip - limit)
    if skip + limit < total:
        expected_skips["next"] = skip + limit
    assert set(links) == set(expected_skips)
    for rel, url in links.items():
        parts = urlsplit(url)
        assert parts.path == "/api/alice/tasks"
        assert parse_qsl(parts.query) == [
            *kept,
            ("skip", str(expected_skips[rel])),
            ("limit", str(limit)),
        ]
        assert " " not in url and "<" not in url and ">" not in url and '"' not in url
