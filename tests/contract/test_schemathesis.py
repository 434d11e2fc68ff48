"""The contract, fuzzed in-process: every operation (examples, coverage, fuzzing) and the links.

A small, fixed-seed slice of `python -m tools.fuzz`, so that a contract break fails the normal
test command; the live fuzzer (real HTTP, bigger budget) stays the thorough run.
"""

from __future__ import annotations

from typing import Any

import hypothesis
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck
from schemathesis import Case

from tests.contract.helpers import contract_config
from tests.support import CONTRACT

# Per operation and phase; about a minute for both databases on a 2-core machine.
MAX_EXAMPLES = 8
STATEFUL_SCENARIOS = 10
SETTINGS = hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)

schema = schemathesis.openapi.from_path(CONTRACT, config=contract_config())


@schema.parametrize()
@SETTINGS
def test_operation_honours_the_contract(case: Case[Any], contract_app: FastAPI) -> None:
    """Every check, configured as in tools/schemathesis.toml (statuses, schemas, headers, auth)."""
    # The app exists per test (per database), the schema per module: bind it to both the
    # operation and its schema, since checks such as ignored_auth send their own probes.
    case.operation.app = case.operation.schema.app = contract_app
    case.call_and_validate()


def test_linked_operations_honour_the_contract(contract_app: FastAPI) -> None:
    """Stateful: create a task, then follow the contract's links to read, change, delete it."""
    schema.app = contract_app
    schema.as_state_machine().run(
        settings=hypothesis.settings(
            SETTINGS, max_examples=STATEFUL_SCENARIOS, stateful_step_count=6
        )
    )
