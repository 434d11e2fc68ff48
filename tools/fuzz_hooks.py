"""schemathesis hooks for `python -m tools.fuzz` (via SCHEMATHESIS_HOOKS) and tests/contract.

Each hook corrects the fuzzer where it cannot know what the contract says; none of them hides
a server answer. Registered globally on import, which is how schemathesis loads a hooks module.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import schemathesis
from schemathesis import Case as GenericCase
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation.meta import CoveragePhaseData

Case = GenericCase[Any]

# Pinned to the token's subject by `[parameters]` in tools/schemathesis.toml.
PINNED_PATH_PARAMETERS = frozenset({"user_id"})
IDEMPOTENCY_HEADER = "Idempotency-Key"
# The contract's IdempotencyKey schema: 1..255 visible ASCII characters.
_KEY_RE = re.compile(r"[\x21-\x7E]{1,255}")
_DIGEST_CHARS = 16


@schemathesis.hook
def filter_case(context: schemathesis.HookContext, case: Case) -> bool:
    """Drop coverage cases that only negate a pinned path parameter.

    The coverage phase builds "invalid user_id" cases and then the configured pin overwrites the
    value with the token's subject, so the request that is sent is valid, yet its metadata still
    says it must be rejected. There is nothing to test in it: the pin makes it a positive case.
    """
    meta = case.meta
    if meta is None or not isinstance(meta.phase.data, CoveragePhaseData):
        return True
    data = meta.phase.data
    targets: set[tuple[ParameterLocation | None, str | None]] = {
        (m.parameter_location, m.parameter) for m in data.mutations
    } or {(data.parameter_location, data.parameter)}
    return not all(
        location == ParameterLocation.PATH and name in PINNED_PATH_PARAMETERS
        for location, name in targets
    )


@schemathesis.hook
def map_case(context: schemathesis.HookContext, case: Case) -> Case:
    """Make every valid Idempotency-Key specific to its request body (generated cases).

    The contract answers 422 (`idempotency-key-reused`) when a key comes back with a different
    body, as the IETF Idempotency-Key draft says. Generated valid requests reuse the example key
    with arbitrary bodies, which the fuzzer would then report as "valid data rejected"; a key
    derived from the body keeps the request valid and still exercises the replay path whenever
    a key and body recur. Invalid keys are left alone: rejecting them is what is under test.
    """
    meta = case.meta
    if meta is None or not meta.is_negative_at(ParameterLocation.HEADER):
        _bind_key_to_body(case)
    return case


@schemathesis.hook
def before_add_examples(context: schemathesis.HookContext, examples: list[Case]) -> None:
    """The same for the examples phase, whose cases (all valid) bypass `map_case`."""
    for case in examples:
        _bind_key_to_body(case)


def _bind_key_to_body(case: Case) -> None:
    headers = case.headers
    if not headers:
        return
    name = next((key for key in headers if key.lower() == IDEMPOTENCY_HEADER.lower()), None)
    if name is None or not isinstance(headers[name], str) or not _KEY_RE.fullmatch(headers[name]):
        return
    body = json.dumps(case.body, sort_keys=True, default=str, ensure_ascii=True)
    digest = hashlib.sha256(body.encode()).hexdigest()[:_DIGEST_CHARS]
    headers[name] = f"{headers[name][: 255 - _DIGEST_CHARS - 1]}.{digest}"
