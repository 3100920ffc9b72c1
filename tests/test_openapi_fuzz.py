"""Schemathesis fuzzes every operation of the OpenAPI document against a real server.

Whatever it sends (valid input, invalid input, odd values at every boundary), the server
answers without a 5xx, with a status the document declares for that operation, and with a
body that matches the declared schema. Requests come both with an API key and with a
browser session (cookie plus CSRF token), as an admin, who may reach every route.

The mechanism is generic: a new route is fuzzed as soon as it is in the document, with
nothing to list here.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from typing import Any

import hypothesis
import hypothesis.errors
import hypothesis.strategies as st
import pytest
import schemathesis
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from hedgerow.inputs import MAX_ID
from tests.live_server import REPO_ROOT, live_uvicorn
from tests.ops.databases import create_empty_database, drop_database

# Examples per operation and mode (valid, invalid input): about 60 operations x 2 modes x
# this many requests keeps the test near two minutes on 2 busy cores.
MAX_EXAMPLES = 6
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
# Schema-valid input is accepted (any answer but a 422), except where a route applies a
# rule that JSON Schema cannot state; each such rule answers with its own code, named here
# with the reason. (Not schemathesis' positive_data_acceptance: that cannot tell these
# from a schema that promises too much.)
RULES_A_SCHEMA_CANNOT_STATE = {
    # "Printable": Unicode categories (format characters, unassigned code points), which
    # a JSON Schema pattern cannot name.
    "invalid_display_name": "printable characters",
    "invalid_key_name": "printable characters",
    # A NUL inside a free-form JSON object (a draft): its nested strings have no schema to
    # forbid it. (Every Text field's pattern forbids NUL, so only those objects reach this.)
    "invalid_text": "a NUL in a free-form JSON object",
    # What a submission must hold depends on the kind of the task held (a reply needs a
    # text, a ranking a ranking); one operation's schema serves every kind.
    "empty_text": "the parts a submission needs depend on the task's kind",
}
# Ids the fuzzer is unlikely to guess, so that it does not take away its own credentials
# (anonymise, disable or demote itself, revoke its key) with a lucky small number.
FIRST_ID = 1_000_000_007


@pytest.fixture(scope="module")
def fuzz_database() -> Iterator[str]:
    from hedgerow import migrate

    url = create_empty_database("fuzz")
    migrate.upgrade(url)
    yield url
    drop_database("fuzz")


@pytest.fixture(scope="module")
def fuzz_engine(fuzz_database: str) -> Iterator[Engine]:
    from hedgerow.db import make_engine

    engine = make_engine(fuzz_database)
    with engine.begin() as conn:
        for table in ('"user"', "api_key", "user_session"):
            conn.execute(
                text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {FIRST_ID})")
            )
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def fuzz_server(fuzz_database: str) -> Iterator[str]:
    env = {**os.environ, "DATABASE_URL": fuzz_database, "HEDGEROW_ENVIRONMENT": "test"}
    artifacts = REPO_ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    with live_uvicorn(env, artifacts / f"fuzz-server-{worker}.log") as base_url:
        yield base_url


class Credentials:
    """An admin with an API key, and fresh browser sessions for them on demand."""

    def __init__(self, maker: sessionmaker[Session]) -> None:
        from hedgerow.models import Role
        from tests.factories import make_api_key, make_user

        self.maker = maker
        with maker.begin() as db:
            admin = make_user(db, username="fuzzing-admin", role=Role.admin)
            self.api_key = make_api_key(db, admin, "schemathesis")
            self.admin_id = admin.id

    def api_key_headers(self) -> dict[str, str]:
        from tests.factories import api_headers

        return api_headers(self.api_key)

    def session_headers(self) -> dict[str, str]:
        """A new session per request: a fuzzed request may end the one it was sent with
        (logging out, logging out other sessions), and the next must still be logged in."""
        from hedgerow.accounts.security import (
            CSRF_COOKIE,
            SESSION_COOKIE,
            create_user_session,
            new_csrf_token,
        )
        from hedgerow.models import User

        with self.maker.begin() as db:
            admin = db.get(User, self.admin_id)
            assert admin is not None
            token = create_user_session(db, admin, "schemathesis")
        csrf = new_csrf_token()
        return {"Cookie": f"{SESSION_COOKIE}={token}; {CSRF_COOKIE}={csrf}", "X-CSRF-Token": csrf}


@pytest.fixture(scope="module")
def credentials(fuzz_engine: Engine) -> Credentials:
    return Credentials(sessionmaker(bind=fuzz_engine, expire_on_commit=False))


# A body over the request body limit gets 413 whatever it holds: a long enough valid
# text is refused for its size (the limit is in bytes on the wire, which a JSON schema
# cannot state), and so is a long invalid one, before anything reads it.
CONFIG = schemathesis.Config.from_dict(
    {
        "checks": {
            "negative_data_rejection": {
                "expected-statuses": [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429]
            },
        }
    }
)


@pytest.fixture(scope="module")
def api_schema(fuzz_server: str) -> Any:
    return schemathesis.openapi.from_url(f"{fuzz_server}/api/openapi.json", config=CONFIG)


SETTINGS = hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,  # the same cases on every run: a failure here is reproducible
    suppress_health_check=list(hypothesis.HealthCheck),
    database=None,
    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
)


def _past_float_precision(error: dict[str, Any]) -> bool:
    """Whether the input was refused only for an integer past the largest id, which the
    generator sent as valid: it compares integers with the schema's maximum (2**63-1) as a
    float, which rounds it up to 2**63."""
    problems = error.get("details", {}).get("problems", [])
    return bool(problems) and all(
        problem["code"] == "less_than_equal" and str(MAX_ID) in problem["message"]
        for problem in problems
    )


def _fuzz(
    schema: Any, base_url: str, headers: Callable[[], dict[str, str]], mode: GenerationMode
) -> list[str]:
    """Every operation, valid and invalid input: the first problem of each kind per
    operation (a failing case is reported as it is, not shrunk: each shrinking step would
    be another request)."""
    problems: dict[tuple[str, str], str] = {}

    def check(case: Case, mode: GenerationMode) -> None:
        response = case.call(base_url=base_url, headers=headers(), timeout=30)
        if mode == GenerationMode.POSITIVE and response.status_code == 422:
            error = response.json()["error"]
            if error["code"] not in RULES_A_SCHEMA_CANNOT_STATE and not _past_float_precision(
                error
            ):
                problems.setdefault(
                    (case.operation.label, "valid input refused"),
                    f"{case.operation.label}: schema-valid input refused: {response.text}"
                    f"\n    {case.as_curl_command()}",
                )
        try:
            case.validate_response(response, checks=CHECKS)
        except (Failure, FailureGroup) as error:
            failures = error.exceptions if isinstance(error, FailureGroup) else (error,)
            for failure in failures:
                problems.setdefault(
                    (case.operation.label, failure.title),
                    f"{case.operation.label} [{mode}]: {failure.title} - "
                    f"{failure.message.strip()}\n    {case.as_curl_command()}",
                )

    for result in schema.get_all_operations():
        operation = result.ok()
        run = SETTINGS(
            hypothesis.given(case=operation.as_strategy(generation_mode=mode), mode=st.just(mode))(
                check
            )
        )
        try:
            run()
        except hypothesis.errors.Unsatisfiable:
            # Nothing to make invalid: an operation without parameters or a body.
            assert mode == GenerationMode.NEGATIVE, operation.label
    return sorted(problems.values())


# Valid and invalid input in separate tests, so that pytest-xdist runs them side by side.
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_every_operation_answers_only_as_the_document_declares(
    mode: GenerationMode, api_schema: Any, fuzz_server: str, credentials: Credentials
) -> None:
    # API key and session in turn, so each operation is reached both ways.
    turns = itertools.cycle((credentials.api_key_headers, credentials.session_headers))
    problems = _fuzz(api_schema, fuzz_server, lambda: next(turns)(), mode)
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)
