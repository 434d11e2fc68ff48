"""Link (RFC 8288) and ETag headers for a page of tasks."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from urllib.parse import urlencode

from backend.repository import TASK_COLUMNS, TaskPage

ID, VERSION = TASK_COLUMNS.index("id"), TASK_COLUMNS.index("version")


def link_header(
    path: str, params: Sequence[tuple[str, str]], skip: int, limit: int, total: int
) -> str:
    """first/prev/next/last links; prev and next only where such a page exists."""
    kept = urlencode([(key, value) for key, value in params if key not in ("skip", "limit")])
    base = f"{path}?{kept}&" if kept else f"{path}?"

    def page(start: int) -> str:  # what urlencode gives for the kept params + skip + limit
        return f"{base}skip={start}&limit={limit}"

    links = [f'<{page(0)}>; rel="first"']
    if skip > 0:
        links.append(f'<{page(max(0, skip - limit))}>; rel="prev"')
    if skip + limit < total:
        links.append(f'<{page(skip + limit)}>; rel="next"')
    last = max(0, (total - 1) // limit * limit) if total else 0
    links.append(f'<{page(last)}>; rel="last"')
    return ", ".join(links)


def list_etag(page: TaskPage, query_string: str) -> str:
    """Weak ETag of a page: changes when any listed task, the total or the query changes."""
    digest = hashlib.blake2b(f"{query_string}|{page.total}|".encode(), digest_size=16)
    digest.update("".join([f"{row[ID]}.{row[VERSION]};" for row in page.rows]).encode())
    return f'W/"{digest.hexdigest()}"'
