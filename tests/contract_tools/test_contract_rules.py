"""tools.contract_rules: which bump each kind of change needs (no Node: our rules alone).

The breaking cases are in test_contract_diff.py; these are the changes that must NOT be called
breaking, so that the gate does not push every addition to a new major version.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from tools import contract_rules

Document = dict[str, Any]
LIST = "/api/{user_id}/tasks"


def _list_get(d: Document) -> Document:
    operation: Document = d["paths"][LIST]["get"]
    return operation


def _parameter(d: Document, name: str) -> Document:
    return next(p for p in _list_get(d)["parameters"] if p.get("name") == name)


def _schemas(d: Document) -> Document:
    schemas: Document = d["components"]["schemas"]
    return schemas


def _inline_the_q_schema_as_a_component(d: Document) -> None:
    _schemas(d)["SearchText"] = _parameter(d, "q")["schema"]
    _parameter(d, "q")["schema"] = {"$ref": "#/components/schemas/SearchText"}


MINOR: dict[str, Callable[[Document], None]] = {
    "new optional query parameter": lambda d: _list_get(d)["parameters"].append(
        {"name": "project", "in": "query", "schema": {"type": "string"}}
    ),
    "new optional body field": lambda d: _schemas(d)["TaskCreate"]["properties"].__setitem__(
        "colour", {"type": "string"}
    ),
    "new response field": lambda d: _schemas(d)["Task"]["properties"].__setitem__(
        "colour", {"type": "string"}
    ),
    "new status code": lambda d: _list_get(d)["responses"].__setitem__(
        "410", {"description": "Gone."}
    ),
    "new response header": lambda d: _list_get(d)["responses"]["200"]["headers"].__setitem__(
        "X-Page-Count", {"schema": {"type": "integer"}}
    ),
    "looser request maxLength": lambda d: _parameter(d, "q")["schema"].__setitem__(
        "maxLength", 400
    ),
    "request-only enum widened": lambda d: _schemas(d)["SortOrder"]["enum"].append("random"),
    "nullable added to a request field": lambda d: _schemas(d)["TaskCreate"]["properties"][
        "completed"
    ].__setitem__("type", ["boolean", "null"]),
}


@pytest.mark.parametrize("case", list(MINOR))
def test_an_addition_needs_a_minor_version(case: str, contract: Document) -> None:
    head = copy.deepcopy(contract)
    MINOR[case](head)
    changes = contract_rules.compare(contract, head)
    assert contract_rules.required_bump(changes) == "minor", [str(c) for c in changes]


def test_a_required_parameter_made_optional_needs_a_minor_version(contract: Document) -> None:
    base = copy.deepcopy(contract)
    _list_get(base)["parameters"].append(
        {"name": "project", "in": "query", "required": True, "schema": {"type": "string"}}
    )
    head = copy.deepcopy(base)
    _parameter(head, "project")["required"] = False
    assert contract_rules.required_bump(contract_rules.compare(base, head)) == "minor"
    # ... and the other way round is breaking.
    assert contract_rules.required_bump(contract_rules.compare(head, base)) == "major"


def test_only_documentation_needs_a_patch_version(contract: Document) -> None:
    head = copy.deepcopy(contract)
    _parameter(head, "q")["description"] = "Search."
    _parameter(head, "q")["example"] = "invoice"
    _list_get(head)["summary"] = "List tasks"
    # A property called `description` is a field, not documentation: it is still compared.
    assert "description" in _schemas(head)["Task"]["properties"]
    changes = contract_rules.compare(contract, head)
    assert [c.kind for c in changes] == ["patch"]


def test_moving_a_schema_into_components_changes_nothing_a_client_sees(
    contract: Document,
) -> None:
    head = copy.deepcopy(contract)
    _inline_the_q_schema_as_a_component(head)
    assert contract_rules.required_bump(contract_rules.compare(contract, head)) == "patch"


def test_the_same_document_has_no_changes(contract: Document) -> None:
    assert contract_rules.compare(contract, copy.deepcopy(contract)) == []


def test_a_removed_documented_field_is_still_a_breaking_change(contract: Document) -> None:
    head = copy.deepcopy(contract)
    del _schemas(head)["Task"]["properties"]["description"]
    changes = contract_rules.compare(contract, head)
    assert contract_rules.required_bump(changes) == "major"
    assert any("field 'description' was removed" in c.message for c in changes)
