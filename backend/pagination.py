"""Link (RFC 8288) and ETag headers for a page of tasks."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from urllib.parse import urlencode

from backend.repository import TaskPage


def _page_url(path: str, params: Sequence[tuple[str, str]], skip: int, limit: int) -> str:
    kept = [(key, value) for key, value in params if key not in ("skip", "limit")]
    return f"{path}?{urlencode([*kept, ('skip', str(skip)), ('limit', str(limit))])}"


def link_header(
    path: str, params: Sequence[tuple[str, str]], skip: int, limit: int, total: int
) -> str:
    """first/prev/next/last links; prev and next only where such a page exists."""
    links = [(_page_url(path, params, 0, limit), "first")]
    if skip > 0:
        links.append((_page_url(path, params, max(0, skip - limit), limit), "prev"))
    if skip + limit < total:
        links.append((_page_url(path, params, skip + limit, limit), "next"))
    last = max(0, (total - 1) // limit * limit) if total else 0
    links.append((_page_url(path, params, last, limit), "last"))
    return ", ".join(f'<{url}>; rel="{rel}"' for url, rel in links)


def list_etag(page: TaskPage, query_string: str) -> str:
    """Weak ETag of a page: changes when any listed task, the total or the query changes."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(query_string.encode())
    digest.update(f"|{page.total}|".encode())
    for row in page.rows:
        digest.update(f"{row.id}.{row.version};".encode())
    return f'W/"{digest.hexdigest()}"'
