"""The OpenAPI document declares every status an operation can answer with.

A client (or a fuzzer) reads the document to learn what can come back; an undeclared 404
or 409 is a surprise to it. Most error statuses follow from the shape of the route, so they
are derived here rather than written on each route: credentials (401, 403), the CSRF check
on unsafe requests (403), path ids (404), parameters and bodies (400 for a body that is not
JSON, 422 for one that does not validate), the body limits of RequestBodyMiddleware (408,
413). What only a route's own rules can produce (409 for a conflict, 429 for a rate limit,
502/503/504 from the model server) the route declares with `responses=error_responses(...)`.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from pydantic import BaseModel

from hedgerow.accounts.security import get_current_user, verify_csrf


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: dict[str, Any] | None = None


class ErrorBody(BaseModel):
    """Every error answer of the JSON API (hedgerow.error_handlers.render_error)."""

    error: ErrorDetail


# What each status means here, with the machine codes it carries most often.
STATUS_DESCRIPTIONS: dict[int, str] = {
    400: "The request is malformed (a body that is not JSON, or not UTF-8).",
    401: "not_authenticated: log in or send a valid API key.",
    403: "forbidden, tos_required, session_required, account_disabled or csrf_failed.",
    404: "not_found: no such object, or not one of yours.",
    408: "request_timeout: the body did not arrive in time.",
    409: "The object is not in a state that allows this (the code says which).",
    413: "payload_too_large: the body is over the limit.",
    422: "invalid_request (the details name each field) or a domain rule's code.",
    429: "rate_limited: too many requests; Retry-After says when to try again.",
    502: "model_error or model_unavailable: the model server failed.",
    503: "The server is busy (task slots, model server); try again shortly.",
    504: "model_timeout: the model server did not answer in time.",
}
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route's own error statuses, each with the error body's schema."""
    return {
        status: {"model": ErrorBody, "description": STATUS_DESCRIPTIONS[status]}
        for status in statuses
    }


def _calls(dependant: Dependant) -> set[Any]:
    found = set()
    for dependency in dependant.dependencies:
        found.add(dependency.call)
        found |= _calls(dependency)
    return found


def _has_parameters(dependant: Dependant) -> bool:
    return bool(
        dependant.path_params
        or dependant.query_params
        or dependant.header_params
        or dependant.cookie_params
        or dependant.body_params
    ) or any(_has_parameters(dependency) for dependency in dependant.dependencies)


def derived_error_statuses(route: RouteContext) -> set[int]:
    """The error statuses that follow from the route's dependencies and parameters."""
    methods = route.methods or set()
    calls = _calls(route.dependant)
    statuses: set[int] = set()
    if get_current_user in calls:
        statuses |= {401, 403}
    if verify_csrf in calls and UNSAFE_METHODS & methods:
        statuses.add(403)
    if route.dependant.path_params:
        statuses.add(404)
    if _has_parameters(route.dependant):
        statuses |= {400, 422}
    if UNSAFE_METHODS & methods:
        # Any request may carry a body, and RequestBodyMiddleware limits every one.
        statuses |= {400, 408, 413}
    return statuses


def build_openapi(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document with the derived error statuses added."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    body_schema = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in body_schema.pop("$defs", {}).items():
        components.setdefault(name, definition)
    components.setdefault("ErrorBody", body_schema)
    # FastAPI declares its own 422 body ({"detail": [...]}); ours is the error body.
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    error_body = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    for route in iter_route_contexts(app.routes):
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        operations = schema["paths"].get(route.path_format, {})
        for method in route.methods or ():
            operation = operations.get(method.lower())
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            if "HTTPValidationError" in str(responses.get("422")):
                del responses["422"]
            for status in sorted(derived_error_statuses(route)):
                responses.setdefault(
                    str(status),
                    {"description": STATUS_DESCRIPTIONS[status], "content": error_body},
                )
    app.openapi_schema = schema
    return schema
