"""Entity tags and HTTP preconditions (RFC 9110 section 13): If-Match, If-None-Match."""

from __future__ import annotations

import re
from dataclasses import dataclass

_ENTITY_TAG = re.compile(r'\s*(W/)?"([\x21\x23-\x7E]*)"\s*(?:,|$)')


def parse_entity_tags(header: str) -> tuple[bool, list[tuple[bool, str]]] | None:
    """(is_wildcard, [(weak, opaque)]) or None when the header is not a valid list."""
    if header.strip() == "*":
        return True, []
    tags: list[tuple[bool, str]] = []
    position = 0
    while position < len(header):
        match = _ENTITY_TAG.match(header, position)
        if match is None:
            return None
        tags.append((match.group(1) is not None, match.group(2)))
        position = match.end()
    return (False, tags) if tags else None


@dataclass(frozen=True, slots=True)
class ETagCondition:
    """If-Match, evaluated inside the UPDATE/DELETE itself so check and write are atomic.

    `versions` is None for `*` (any current version), else the versions whose strong ETag was
    given for this task; an empty set never matches (malformed header, weak or foreign tags).
    """

    versions: frozenset[int] | None

    @property
    def can_match(self) -> bool:
        """False when no current version can satisfy it: the write need not be sent at all."""
        return self.versions is None or bool(self.versions)


def if_match_condition(header: str | None, task_id: int) -> ETagCondition | None:
    if header is None:
        return None
    parsed = parse_entity_tags(header)
    if parsed is None:
        return ETagCondition(frozenset())
    wildcard, tags = parsed
    if wildcard:
        return ETagCondition(None)
    versions = set()
    prefix = f"{task_id}."
    for weak, opaque in tags:
        if weak or not opaque.startswith(prefix):
            continue  # If-Match uses strong comparison
        version = opaque[len(prefix) :]
        if version.isdigit() and len(version) < 19:
            versions.add(int(version))
    return ETagCondition(frozenset(versions))


def none_match(header: str | None, current_etag: str) -> bool:
    """True when If-None-Match says the client already has `current_etag` (weak comparison)."""
    if header is None:
        return False
    parsed = parse_entity_tags(header)
    if parsed is None:
        return False
    wildcard, tags = parsed
    if wildcard:
        return True
    current = current_etag.removeprefix("W/").strip('"')
    return any(opaque == current for _, opaque in tags)
