"""The OpenAPI document is complete: every operation declares the error answers it can
give, each with the error body the API really sends."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from hedgerow.accounts.security import get_current_user
from hedgerow.openapi import ErrorBody, _calls, error_responses

ERROR_BODY_REF = "#/components/schemas/ErrorBody"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    from hedgerow.app import create_app

    return create_app().openapi()


@pytest.fixture(scope="module")
def plain_app() -> FastAPI:
    from hedgerow.app import create_app

    return create_app()


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    ]


def test_every_error_answer_is_declared_with_the_error_body(document: dict[str, Any]) -> None:
    problems = []
    for method, path, operation in _operations(document):
        for status, response in operation["responses"].items():
            if int(status) < 400:
                continue
            schema = response.get("content", {}).get("application/json", {}).get("schema", {})
            if schema.get("$ref") != ERROR_BODY_REF:
                problems.append(f"{method} {path} {status}: {schema}")
    assert not problems, problems
    # FastAPI's own 422 body ({"detail": [...]}) is not what the API sends.
    assert "HTTPValidationError" not in document["components"]["schemas"]
    assert document["components"]["schemas"]["ErrorBody"]["required"] == ["error"]


def test_operations_declare_what_their_credentials_parameters_and_bodies_can_cause(
    plain_app: FastAPI, document: dict[str, Any]
) -> None:
    problems = []
    for route in iter_route_contexts(plain_app.routes):
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        for method in route.methods or ():
            operation = document["paths"][route.path_format][method.lower()]
            declared = {int(status) for status in operation["responses"]}
            wanted = set()
            if get_current_user in _calls(route.dependant):
                wanted |= {401, 403}  # no or a bad credential; a role or the Terms missing
            if method in {"POST", "PUT", "PATCH", "DELETE"}:
                wanted |= {403, 408, 413}  # CSRF; a slow or a too large body
            if route.dependant.path_params:
                wanted |= {404, 422}
            if route.dependant.query_params or route.dependant.body_params:
                wanted.add(422)
            if missing := wanted - declared:
                problems.append(f"{method} {route.path_format} lacks {sorted(missing)}")
    assert not problems, "\n".join(problems)


def test_every_operation_is_documented_for_people(document: dict[str, Any]) -> None:
    # Every operation has a success answer and a summary a reader of /api/docs can scan.
    for method, path, operation in _operations(document):
        assert any(int(status) < 400 for status in operation["responses"]), (method, path)
        assert operation.get("summary"), (method, path)


def test_error_responses_builds_the_declaration_from_statuses() -> None:
    declared = error_responses(404, 409)
    assert set(declared) == {404, 409}
    assert all(entry["model"] is ErrorBody for entry in declared.values())
    assert "not_found" in declared[404]["description"]
    with pytest.raises(KeyError):
        error_responses(418)  # a status the API never answers with has no description
