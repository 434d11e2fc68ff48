"""`python -m tools.lint_contract`: the contract passes, and each of our rules catches its case."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tools import lint_contract

pytestmark = pytest.mark.usefixtures("node_tools")

Document = dict[str, Any]
LIST = "/api/{user_id}/tasks"
ITEM = "/api/{user_id}/tasks/{task_id}"


def _drop_operation_id(d: Document) -> None:
    del d["paths"][LIST]["get"]["operationId"]


def _drop_summary(d: Document) -> None:
    del d["paths"][ITEM]["delete"]["summary"]


def _drop_tags(d: Document) -> None:
    del d["paths"][ITEM]["get"]["tags"]


def _drop_request_example(d: Document) -> None:
    del d["paths"][LIST]["post"]["requestBody"]["content"]["application/json"]["examples"]


def _drop_success_example(d: Document) -> None:
    del d["paths"][LIST]["get"]["responses"]["200"]["content"]["application/json"]["examples"]


def _json_error(d: Document) -> None:
    content = d["components"]["responses"]["NotFound"]["content"]
    content["application/json"] = content.pop("application/problem+json")


def _inline_error_schema(d: Document) -> None:
    media = d["components"]["responses"]["Forbidden"]["content"]["application/problem+json"]
    media["schema"] = {"type": "object", "properties": {"message": {"type": "string"}}}


def _error_without_body(d: Document) -> None:
    d["paths"][ITEM]["get"]["responses"]["409"] = {"description": "Conflict"}


def _unused_component(d: Document) -> None:
    d["components"]["schemas"]["Leftover"] = {"type": "string"}


def _not_openapi(d: Document) -> None:
    d["paths"][LIST]["get"]["responses"] = "none"


CASES: dict[str, tuple[Callable[[Document], None], str]] = {
    "missing operationId": (_drop_operation_id, "operation-operationId"),
    "missing summary": (_drop_summary, "operation-summary"),
    "missing tag": (_drop_tags, "rule/operation-has-tag"),
    "request body without example": (_drop_request_example, "rule/request-body-examples"),
    "success response without example": (_drop_success_example, "rule/success-response-examples"),
    "error as application/json": (_json_error, "rule/error-response-media-type"),
    "error not the Problem schema": (_inline_error_schema, "rule/error-response-problem-schema"),
    "error without a body": (_error_without_body, "rule/error-response-has-body"),
    "unused component": (_unused_component, "no-unused-components"),
    "invalid OpenAPI structure": (_not_openapi, "struct"),
}


def test_the_contract_has_no_findings(capsys: pytest.CaptureFixture[str]) -> None:
    assert lint_contract.main([]) == 0, capsys.readouterr().err


@pytest.mark.parametrize("case", list(CASES))
def test_each_rule_catches_its_case(
    case: str, contract: Document, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mutate, rule = CASES[case]
    document = copy.deepcopy(contract)
    mutate(document)
    spec = tmp_path / "openapi.yaml"
    spec.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")

    assert lint_contract.main([str(spec)]) == 1
    assert f"[{rule}]" in capsys.readouterr().err
