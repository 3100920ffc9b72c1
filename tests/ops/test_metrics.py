"""/metrics: counts and latency by route template, for admins and the scraper only."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.orm import Session

from hedgerow.metrics import route_label
from hedgerow.models import Role
from tests.factories import api_headers, make_api_key, make_user
from tests.growth.factories import override_settings

SCRAPER_TOKEN = "scraper-token-0123456789abcdef"


def scrape(client: TestClient, headers: dict[str, str]) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[tuple[str, tuple], float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def requests_counted(
    samples: dict[tuple[str, tuple], float], method: str, route: str, status: str
) -> float:
    labels = tuple(sorted({"method": method, "route": route, "status": status}.items()))
    return samples.get(("hedgerow_http_requests_total", labels), 0.0)


@pytest.fixture
def admin_headers(db: Session) -> dict[str, str]:
    return api_headers(make_api_key(db, make_user(db, role=Role.admin)))


def test_nobody_without_credentials_reads_the_metrics(client: TestClient) -> None:
    response = client.get("/metrics")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_a_volunteer_or_moderator_may_not_read_the_metrics(client: TestClient, db: Session) -> None:
    for role in (Role.volunteer, Role.moderator):
        response = client.get(
            "/metrics", headers=api_headers(make_api_key(db, make_user(db, role=role)))
        )
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "forbidden"


def test_the_scraper_token_reads_them_and_a_wrong_token_does_not(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    override_settings(monkeypatch, metrics_token=SCRAPER_TOKEN)
    assert (
        client.get("/metrics", headers={"Authorization": f"Bearer {SCRAPER_TOKEN}"}).status_code
        == 200
    )
    wrong = client.get("/metrics", headers={"Authorization": "Bearer not-the-token"})
    assert wrong.status_code == 401
    override_settings(monkeypatch, metrics_token=None)  # no token set: no token works
    assert (
        client.get("/metrics", headers={"Authorization": f"Bearer {SCRAPER_TOKEN}"}).status_code
        == 401
    )


def test_requests_are_counted_and_timed_by_route_template(
    client: TestClient, db: Session, admin_headers: dict[str, str]
) -> None:
    volunteer = api_headers(make_api_key(db, make_user(db)))
    before = scrape(client, admin_headers)
    for _ in range(3):
        response = client.post("/api/v1/tasks", json={"kind": "review_prompt"}, headers=volunteer)
        assert response.status_code == 404  # nothing to review in an empty corpus
    client.get("/trees/123456789", headers=volunteer)
    client.get("/no/such/path/at-all")
    after = scrape(client, admin_headers)

    assert (
        requests_counted(after, "POST", "/api/v1/tasks", "404")
        - requests_counted(before, "POST", "/api/v1/tasks", "404")
        == 3
    )
    # One label per route template, not per id or per made-up path.
    assert (
        requests_counted(after, "GET", "/trees/{tree_id}", "404")
        - requests_counted(before, "GET", "/trees/{tree_id}", "404")
        == 1
    )
    assert (
        requests_counted(after, "GET", "unmatched", "404")
        - requests_counted(before, "GET", "unmatched", "404")
        == 1
    )
    assert not any("123456789" in str(labels) or "at-all" in str(labels) for _, labels in after)
    count_key = (
        "hedgerow_http_request_duration_seconds_count",
        (("method", "POST"), ("route", "/api/v1/tasks")),
    )
    assert after[count_key] - before.get(count_key, 0.0) == 3
    assert ("hedgerow_db_pool_connections_in_use", ()) in after
    assert ("hedgerow_http_requests_in_flight", ()) in after


@pytest.mark.parametrize(
    ("path", "params", "label"),
    [
        ("/api/v1/tasks/123/submit", {"task_id": 123}, "/api/v1/tasks/{task_id}/submit"),
        (
            "/api/v1/chats/12/messages/123",
            {"chat_id": 12, "message_id": 123},
            "/api/v1/chats/{chat_id}/messages/{message_id}",
        ),
        ("/static/css/app.css", {"path": "css/app.css"}, "/static/{path}"),
        ("/api/v1/tasks", {}, "/api/v1/tasks"),
    ],
)
def test_the_route_label_puts_each_parameter_back_as_its_name(
    path: str, params: dict[str, object], label: str
) -> None:
    assert route_label({"route": object(), "path": path, "path_params": params}) == label
    assert route_label({"path": path}) == "unmatched"
