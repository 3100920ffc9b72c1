"""Researchers list and download releases (API and page); admins watch exports run."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis as redis_lib
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from hedgerow.export.run import run_export
from hedgerow.models import AuditEvent, Release, ReleaseKind, ReleaseState, Role
from tests.accounts.helpers import error_code, log_in, post_form
from tests.export.conftest import Corpus
from tests.factories import api_headers, make_api_key, make_user
from tests.growth.factories import override_settings


@dataclass
class Published:
    id: int
    name: str
    root: Path

    @property
    def directory(self) -> Path:
        return self.root / self.name


@pytest.fixture(scope="module")
def published(corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> Published:
    root = tmp_path_factory.mktemp("served-releases")
    with pytest.MonkeyPatch.context() as monkeypatch:
        override_settings(monkeypatch, releases_dir=root)
        outcome = run_export(corpus.maker)
    # Something in the root but outside any release, which no URL may reach.
    (root / "secret.txt").write_text("not for download")
    return Published(outcome.release_id, outcome.name, root)


@pytest.fixture
def serving(published: Published, monkeypatch: pytest.MonkeyPatch) -> Iterator[Published]:
    override_settings(monkeypatch, releases_dir=published.root, datasets_public=False)
    yield published


def _key(db: Session, role: Role) -> dict[str, str]:
    return api_headers(make_api_key(db, make_user(db, role=role)))


def _file_url(release: Published, name: str) -> str:
    return f"/api/v1/datasets/{release.id}/files/{name}"


# --- who may download ---------------------------------------------------------------


def test_listing_needs_a_researcher_or_admin(
    client: TestClient, db: Session, serving: Published
) -> None:
    anonymous = client.get("/api/v1/datasets")
    assert anonymous.status_code == 401
    volunteer = client.get("/api/v1/datasets", headers=_key(db, Role.volunteer))
    assert volunteer.status_code == 403
    assert error_code(volunteer) == "researcher_required"
    moderator = client.get(_file_url(serving, "sft.jsonl"), headers=_key(db, Role.moderator))
    assert moderator.status_code == 403
    for role in (Role.researcher, Role.admin):
        response = client.get("/api/v1/datasets", headers=_key(db, role))
        assert response.status_code == 200
        assert [release["name"] for release in response.json()["releases"]] == [serving.name]


def test_operator_can_make_datasets_public(
    client: TestClient, serving: Published, monkeypatch: pytest.MonkeyPatch
) -> None:
    override_settings(monkeypatch, datasets_public=True)
    assert client.get("/api/v1/datasets").status_code == 200
    assert client.get(_file_url(serving, "README.md")).status_code == 200


# --- one release and its files ------------------------------------------------------


def test_release_detail_lists_files_with_sizes_checksums_and_links(
    client: TestClient, db: Session, serving: Published
) -> None:
    headers = _key(db, Role.researcher)
    body = client.get(f"/api/v1/datasets/{serving.id}", headers=headers).json()
    files = {entry["name"]: entry for entry in body["files"]}
    assert set(files) >= {"messages.parquet", "sft.jsonl", "manifest.json", "README.md"}
    for name, entry in files.items():
        content = (serving.directory / name).read_bytes()
        assert entry["size"] == len(content)
        assert entry["sha256"] == hashlib.sha256(content).hexdigest()
        assert entry["url"].endswith(_file_url(serving, name))
    assert body["counts"]["messages"] > 0
    assert body["card_url"].endswith(_file_url(serving, "README.md"))
    missing = client.get(f"/api/v1/datasets/{serving.id + 1000}", headers=headers)
    assert missing.status_code == 404


def test_download_carries_the_sha256_etag_and_honours_if_none_match(
    client: TestClient, db: Session, serving: Published
) -> None:
    headers = _key(db, Role.researcher)
    content = (serving.directory / "sft.jsonl").read_bytes()
    response = client.get(_file_url(serving, "sft.jsonl"), headers=headers)
    assert response.status_code == 200
    assert response.content == content
    assert response.headers["etag"] == f'"{hashlib.sha256(content).hexdigest()}"'
    assert response.headers["accept-ranges"] == "bytes"

    again = client.get(
        _file_url(serving, "sft.jsonl"),
        headers={**headers, "If-None-Match": response.headers["etag"]},
    )
    assert again.status_code == 304
    assert again.content == b""
    changed = client.get(
        _file_url(serving, "sft.jsonl"), headers={**headers, "If-None-Match": '"other"'}
    )
    assert changed.status_code == 200


def test_download_resumes_with_a_range(client: TestClient, db: Session, serving: Published) -> None:
    headers = _key(db, Role.researcher)
    content = (serving.directory / "messages.parquet").read_bytes()
    partial = client.get(
        _file_url(serving, "messages.parquet"), headers={**headers, "Range": "bytes=100-"}
    )
    assert partial.status_code == 206
    assert partial.content == content[100:]
    assert partial.headers["content-range"] == f"bytes 100-{len(content) - 1}/{len(content)}"
    middle = client.get(
        _file_url(serving, "messages.parquet"), headers={**headers, "Range": "bytes=4-11"}
    )
    assert middle.status_code == 206
    assert middle.content == content[4:12]
    beyond = client.get(
        _file_url(serving, "messages.parquet"),
        headers={**headers, "Range": f"bytes={len(content) + 10}-"},
    )
    assert beyond.status_code == 416


@pytest.mark.parametrize(
    "name",
    [
        "..%2Fsecret.txt",
        "%2E%2E%2Fsecret.txt",
        "..%2F..%2F..%2Fetc%2Fpasswd",
        "%2Fetc%2Fpasswd",
        "README.md%2F..%2F..%2Fsecret.txt",
        "%2E%2E",
        "secret.txt",
        "nothing.jsonl",
    ],
)
def test_no_name_reaches_outside_the_release_files(
    client: TestClient, db: Session, serving: Published, name: str
) -> None:
    response = client.get(_file_url(serving, name), headers=_key(db, Role.researcher))
    assert response.status_code == 404
    assert b"not for download" not in response.content


def test_a_file_added_to_a_release_after_publishing_is_not_served(
    client: TestClient, db: Session, serving: Published
) -> None:
    planted = serving.directory / "planted.txt"
    planted.write_text("not in the manifest")
    try:
        response = client.get(_file_url(serving, "planted.txt"), headers=_key(db, Role.researcher))
    finally:
        planted.unlink()
    assert response.status_code == 404


# --- pinning ------------------------------------------------------------------------


def test_admin_pins_a_release_and_the_change_is_audited(
    client: TestClient, db: Session, serving: Published
) -> None:
    researcher = client.post(
        f"/api/v1/datasets/{serving.id}/pin", headers=_key(db, Role.researcher)
    )
    assert researcher.status_code == 403
    admin_headers = _key(db, Role.admin)
    pinned = client.post(f"/api/v1/datasets/{serving.id}/pin", headers=admin_headers)
    assert pinned.status_code == 200
    assert pinned.json()["pinned"] is True
    assert db.get_one(Release, serving.id).pinned is True
    event = db.scalars(select(AuditEvent).where(AuditEvent.target_type == "release")).one()
    assert (event.action, event.target_id) == ("release.pin", serving.id)
    unpinned = client.post(f"/api/v1/datasets/{serving.id}/unpin", headers=admin_headers)
    assert unpinned.json()["pinned"] is False


# --- pages --------------------------------------------------------------------------


def test_datasets_page_shows_releases_with_counts_card_and_links(
    client: TestClient, db: Session, serving: Published
) -> None:
    researcher = make_user(db, role=Role.researcher)
    log_in(client, researcher.username)
    page = client.get("/datasets")
    assert page.status_code == 200
    assert serving.name in page.text
    assert f'href="{_file_url(serving, "messages.parquet")}"' in page.text
    assert "Dataset card" in page.text
    assert "Known limitations" in page.text
    assert '<a href="/datasets" aria-current="page">Datasets</a>' in page.text


def test_datasets_page_refuses_volunteers(
    client: TestClient, db: Session, serving: Published
) -> None:
    volunteer = make_user(db)
    log_in(client, volunteer.username)
    assert client.get("/datasets").status_code == 403


def test_admin_sees_a_running_export_in_a_polling_fragment(
    client: TestClient, db: Session, serving: Published
) -> None:
    running = Release(
        name="running-export",
        kind=ReleaseKind.nightly.value,
        state=ReleaseState.running.value,
        schema_version="1.0",
        filters={},
        messages_total=400,
        messages_done=150,
    )
    db.add(running)
    db.flush()
    admin = make_user(db, role=Role.admin)
    log_in(client, admin.username)

    page = client.get("/admin/exports")
    assert page.status_code == 200
    assert "<h1>Dataset exports</h1>" in page.text
    fragment = client.get("/admin/exports", headers={"HX-Request": "true"})
    assert "<h1>" not in fragment.text
    assert 'hx-trigger="every 2s"' in fragment.text
    assert '<progress max="400" value="150">' in fragment.text
    assert serving.name in fragment.text

    running.state = ReleaseState.failed.value
    db.flush()
    finished = client.get("/admin/exports", headers={"HX-Request": "true"})
    assert "hx-trigger" not in finished.text, "polling stops when nothing runs"


def test_admin_starts_an_export_which_is_queued_for_the_worker(
    client: TestClient, db: Session, redis_db: redis_lib.Redis
) -> None:
    admin = make_user(db, role=Role.admin)
    log_in(client, admin.username)
    before = redis_db.llen("default")
    response = post_form(client, "/admin/exports", {})
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/exports"
    assert redis_db.llen("default") == before + 1
    assert "export.manual_release" in redis_db.lindex("default", 0)


def test_exports_page_is_for_admins_only(client: TestClient, db: Session) -> None:
    moderator = make_user(db, role=Role.moderator)
    log_in(client, moderator.username)
    assert client.get("/admin/exports").status_code == 403
    assert post_form(client, "/admin/exports", {}).status_code == 403
