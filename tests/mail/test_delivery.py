"""Mail goes through a real SMTP server: queued in the request's transaction, enqueued
only after it commits, retried with growing waits while the server is down, and logged."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis as redis_lib
from sqlalchemy.orm import Session, sessionmaker

from hedgerow.config import get_settings
from hedgerow.mail import service
from hedgerow.mail.jobs import send_mail_job
from hedgerow.mail.mailbox import DevMailbox
from hedgerow.models import MailMessage, MailStatus
from tests.factories import make_user
from tests.growth.factories import override_settings
from tests.mail_server import Inbox


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _queue(db: Session, to: str = "ada@example.org") -> MailMessage:
    user = make_user(db)
    return service.queue_mail(
        db, user, to=to, template="sign_in_link", context={"link": "https://x/y", "minutes": 15}
    )


def test_a_queued_message_arrives_with_text_and_html_bodies_and_is_logged_sent(
    db: Session, inbox: Inbox
) -> None:
    message = _queue(db)
    assert service.deliver(db, message.id) is None
    received = inbox.last("ada@example.org")
    assert received.subject == "Your link to sign in to Hedgerow"
    assert "https://x/y" in received.body("plain")
    assert 'href="https://x/y"' in received.body("html")
    assert str(received.message["From"]) == "Hedgerow <test@hedgerow>"
    db.refresh(message)
    assert (message.status, message.attempts, message.last_error) == ("sent", 1, None)
    # The link must not stay in the database once delivered.
    assert message.body_text is None and message.body_html is None


def test_html_bodies_escape_what_users_typed(db: Session, inbox: Inbox) -> None:
    user = make_user(db)
    user.display_name = "<b>Eve</b>"
    service.queue_mail(
        db,
        user,
        to="e@example.org",
        template="sign_in_link",
        context={"link": "https://x/y", "minutes": 15},
    )
    service.deliver_queued(db)
    mail = inbox.last()
    assert "&lt;b&gt;Eve&lt;/b&gt;" in mail.body("html")
    assert "<b>Eve</b>" in mail.body("plain")


def test_smtp_down_counts_attempts_backs_off_then_gives_up(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    override_settings(
        monkeypatch,
        smtp_url=f"smtp://127.0.0.1:{_closed_port()}",
        mail_max_attempts=3,
        mail_retry_seconds=30,
    )
    message = _queue(db)
    assert service.deliver(db, message.id) == 30
    assert service.deliver(db, message.id) == 60
    db.refresh(message)
    assert message.status == "queued" and message.attempts == 2
    assert "ConnectionRefusedError" in (message.last_error or "")
    assert service.deliver(db, message.id) is None
    db.refresh(message)
    assert (message.status, message.attempts) == ("failed", 3)
    assert message.body_text is None
    # A failed message is not sent again by a late duplicate of its job.
    assert service.deliver(db, message.id) is None


def test_the_job_retries_until_the_server_answers(
    committing_sessionmaker: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """The real mail.send job (run eagerly: Celery re-runs a retried eager task at once):
    the first attempts fail against a closed port; the server comes up; the mail is sent."""
    port = _closed_port()
    override_settings(monkeypatch, smtp_url=f"smtp://127.0.0.1:{port}", mail_max_attempts=5)
    with committing_sessionmaker.begin() as db:
        message_id = _queue(db).id
    attempts_before_server = 2
    calls = {"n": 0}
    real_deliver = service.deliver
    mailbox = DevMailbox(tmp_path / "mail", port=port)

    def deliver_then_start_server(db: Session, message_id: int) -> int | None:
        calls["n"] += 1
        wait = real_deliver(db, message_id)
        if calls["n"] == attempts_before_server:
            mailbox.start()
        return wait

    monkeypatch.setattr(service, "deliver", deliver_then_start_server)
    try:
        send_mail_job.apply(args=[message_id])
    finally:
        mailbox.stop()
    with committing_sessionmaker() as db:
        message = db.get(MailMessage, message_id)
        assert message is not None
        assert (message.status, message.attempts) == ("sent", 3)
    assert len(list((tmp_path / "mail").glob("*.eml"))) == 1


def test_the_job_is_enqueued_only_after_the_transaction_commits(
    committing_sessionmaker: sessionmaker[Session], redis_db: redis_lib.Redis
) -> None:
    from hedgerow.worker import DEFAULT_QUEUE

    with committing_sessionmaker() as db:
        _queue(db)
        db.rollback()
        assert redis_db.llen(DEFAULT_QUEUE) == 0
        message = _queue(db)
        db.flush()
        assert redis_db.llen(DEFAULT_QUEUE) == 0
        db.commit()
    assert redis_db.llen(DEFAULT_QUEUE) == 1
    assert str(message.id) in str(redis_db.lrange(DEFAULT_QUEUE, 0, -1))
    with committing_sessionmaker() as db:
        logged = db.get(MailMessage, message.id)
        assert logged is not None and logged.status == MailStatus.queued.value


def test_dev_mailbox_page_lists_mail_in_development_only(
    client,
    db: Session,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    with DevMailbox(tmp_path / "mail") as mailbox:
        override_settings(monkeypatch, smtp_url=mailbox.url, data_dir=tmp_path)
        service.deliver(db, _queue(db, to="dev@example.org").id)
    override_settings(monkeypatch, environment="development")
    page = client.get("/dev/mail")
    assert page.status_code == 200 and "dev@example.org" in page.text
    name = next((tmp_path / "mail").glob("*.eml")).name
    message = client.get(f"/dev/mail/{name}")
    assert "https://x/y" in message.text
    assert client.get("/dev/mail/..%2Fsecret").status_code == 404
    override_settings(monkeypatch, environment="production")
    assert client.get("/dev/mail").status_code == 404
    assert get_settings().environment == "production"


def test_mail_whose_job_was_lost_is_found_by_the_sweep(db: Session) -> None:
    old = _queue(db)
    fresh = _queue(db)
    tried = _queue(db)
    tried.attempts = 1
    old.created_at = tried.created_at = datetime.now(UTC) - timedelta(minutes=11)
    db.flush()
    assert service.stranded_mail(db) == [old.id]
    assert fresh.id not in service.stranded_mail(db)


def test_a_password_is_never_sent_to_a_server_without_starttls(
    db: Session, inbox: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = inbox.mailbox.port
    override_settings(monkeypatch, smtp_url=f"smtp://user:secret@127.0.0.1:{port}")
    message = _queue(db)
    assert service.deliver(db, message.id) is not None
    db.refresh(message)
    assert "STARTTLS" in (message.last_error or "")
    assert inbox.messages() == []


def test_hedgerow_up_runs_the_development_mailbox_only_in_development_without_smtp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db: Session
) -> None:
    from hedgerow.mail.mailbox import development_mailbox, stored_mail

    monkeypatch.delenv("HEDGEROW_SMTP_URL", raising=False)
    production = get_settings().model_copy(update={"environment": "production"})
    with development_mailbox(production) as mailbox:
        assert mailbox is None
    development = get_settings().model_copy(
        update={"environment": "development", "smtp_url": None, "data_dir": tmp_path}
    )
    try:
        with development_mailbox(development) as mailbox:
            assert mailbox is not None
            import os

            assert os.environ["HEDGEROW_SMTP_URL"] == mailbox.url
            assert get_settings().smtp_url == mailbox.url
            service.deliver(db, _queue(db, to="dev@example.org").id)
        assert [mail.to for mail in stored_mail(tmp_path / "mail")] == ["dev@example.org"]
    finally:
        monkeypatch.delenv("HEDGEROW_SMTP_URL", raising=False)
        get_settings.cache_clear()


SPANISH = {
    "Your link to sign in to Hedgerow": "Tu enlace para iniciar sesión en Hedgerow",
    "Hello %(name)s,": "Hola, %(name)s:",
    "open this link to sign in to Hedgerow as “%(username)s”:": (
        "Abre este enlace para iniciar sesión en Hedgerow como «%(username)s»:"
    ),
    "Sign in to Hedgerow as “%(username)s”": "Iniciar sesión en Hedgerow como «%(username)s»",
    ("The link works once, for %(num)d minute.", "The link works once, for %(num)d minutes."): (
        # Spanish has three forms in CLDR: one, many (millions: "de minutos"), other.
        "El enlace funciona una vez, durante %(num)d minuto.",
        "El enlace funciona una vez, durante %(num)d de minutos.",
        "El enlace funciona una vez, durante %(num)d minutos.",
    ),
}


def _catalogs(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Spanish catalog of the sign-in mail, compiled as `make i18n-compile` does; the
    other languages have none (their mail stays English)."""
    import gettext
    import io

    from babel.messages.catalog import Catalog
    from babel.messages.mofile import write_mo

    from hedgerow.i18n import translation

    catalog = Catalog(locale="es", domain="messages")
    for message_id, text in SPANISH.items():
        catalog.add(message_id, text)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    spanish = gettext.GNUTranslations(buffer)
    monkeypatch.setattr(
        translation,
        "translations",
        lambda code: spanish if code == "es" else gettext.NullTranslations(),
    )


def _sign_in_mail(db: Session, **user_fields: str | None) -> MailMessage:
    user = make_user(db)
    for name, value in user_fields.items():
        setattr(user, name, value)
    return service.queue_mail(
        db,
        user,
        to="a@example.org",
        template="sign_in_link",
        context={"link": "https://x/y", "minutes": 15},
    )


def test_mail_comes_in_the_recipients_interface_language_from_the_catalog(
    db: Session, inbox: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hedgerow.i18n import translation

    _catalogs(monkeypatch)
    # Whoever's request sends it (a German browser asking for a link, say), the mail is
    # written in the recipient's language, and the request keeps its own.
    with translation.in_language("de"):
        message = _sign_in_mail(db, interface_language="es", language="en")
        assert translation.current_locale() == "de"
    service.deliver(db, message.id)
    received = inbox.last("a@example.org")
    assert received.subject == "Tu enlace para iniciar sesión en Hedgerow"
    plain = received.body("plain")
    assert "Abre este enlace para iniciar sesión en Hedgerow como «" in plain
    assert "El enlace funciona una vez, durante 15 minutos." in plain
    html = received.body("html")
    assert '<html lang="es"' in html and "Iniciar sesión en Hedgerow como «" in html


def test_mail_language_falls_back_to_the_contribution_language_then_the_default(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    _catalogs(monkeypatch)
    # No interface language set: the language they contribute in, as the interface ships it.
    spanish = _sign_in_mail(db, interface_language=None, language="es")
    assert spanish.subject == "Tu enlace para iniciar sesión en Hedgerow"
    # An interface language set wins over the contribution language.
    english = _sign_in_mail(db, interface_language="en", language="es")
    assert english.subject == "Your link to sign in to Hedgerow"
    # A contribution language the interface does not ship: the server's default.
    override_settings(monkeypatch, default_language="es")
    italian = _sign_in_mail(db, interface_language=None, language="it")
    assert italian.subject == "Tu enlace para iniciar sesión en Hedgerow"
    assert "durante 15 minutos" in (italian.body_text or "")
