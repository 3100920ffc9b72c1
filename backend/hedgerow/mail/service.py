"""Queueing mail for an account, and delivering one queued message.

A message is a row of the account's mail log, written in the request's transaction; the
``mail.send`` job is enqueued only once that transaction commits (a rolled-back request
sends nothing, and the job never looks for a row that is not there yet).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from jinja2_fragments import render_block
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from hedgerow.config import Settings, get_settings
from hedgerow.i18n import translation
from hedgerow.i18n.locales import SOURCE_LANGUAGE
from hedgerow.i18n.negotiation import match, user_setting
from hedgerow.mail.smtp import send_email
from hedgerow.models import MailMessage, MailStatus, User
from hedgerow.templating import TEMPLATE_DIR

log = logging.getLogger(__name__)

SEND_JOB = "mail.send"
# Ids of messages this session queued, enqueued after it commits.
PENDING_KEY = "hedgerow.mail.pending"
# The most of an SMTP error the log keeps.
ERROR_MAX_LENGTH = 500

# Text bodies must not be HTML-escaped; HTML bodies must.
mail_templates = Environment(
    loader=FileSystemLoader(str(TEMPLATE_DIR)),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
    extensions=["jinja2.ext.i18n"],
)
# One template per mail, its sentences from the catalog of the language being spoken.
mail_templates.install_gettext_callables(  # type: ignore[attr-defined]
    translation.translate, translation.translate_plural, newstyle=True
)
mail_templates.globals["current_locale"] = translation.current_locale
mail_templates.globals["text_direction"] = translation.text_direction


def mail_language(user: User) -> str:
    """The language a person reads their mail in: their interface language, else the
    language they contribute in when the interface ships it, else the server default.
    (Not the language of whoever's request sends it: a reset link may be asked for from
    any browser.)"""
    setting = user_setting(user.interface_language, user.language)
    return setting or match(get_settings().default_language) or SOURCE_LANGUAGE


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    text: str
    html: str


def render_mail(
    name: str, context: dict[str, Any], language: str = SOURCE_LANGUAGE
) -> RenderedMail:
    context = {"site_url": get_settings().base_url.rstrip("/"), **context}
    text_template = f"mail/{name}.txt"
    with translation.in_language(language):
        subject = render_block(mail_templates, text_template, "subject", **context)
        text = render_block(mail_templates, text_template, "body", **context)
        html = mail_templates.get_template(f"mail/{name}.html").render(context)
    return RenderedMail(subject=" ".join(subject.split()), text=text.strip() + "\n", html=html)


def queue_mail(
    db: Session, user: User, *, to: str, template: str, context: dict[str, Any]
) -> MailMessage:
    """Log a message for `user` and have it sent once the transaction commits."""
    rendered = render_mail(template, {"user": user, **context}, mail_language(user))
    message = MailMessage(
        user_id=user.id,
        template=template,
        to_address=to,
        subject=rendered.subject,
        body_text=rendered.text,
        body_html=rendered.html,
    )
    db.add(message)
    db.flush()
    db.info.setdefault(PENDING_KEY, []).append(message.id)
    return message


@event.listens_for(Session, "after_commit")
def _enqueue_after_commit(session: Session) -> None:
    pending = session.info.pop(PENDING_KEY, None)
    if not pending:
        return
    # The configured app by name: the web process never imports the jobs, and a shared
    # task's .delay() there would reach for Celery's default broker instead of ours.
    from hedgerow.worker import celery_app

    for message_id in pending:
        try:
            celery_app.send_task(SEND_JOB, args=[message_id])
        except Exception:
            # The request already committed; the row stays queued in the mail log.
            log.exception("could not enqueue mail message %s", message_id)


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop(PENDING_KEY, None)


def retry_delay(attempts: int, settings: Settings) -> int:
    """Seconds before the next attempt after `attempts` failed ones: doubling, capped."""
    return int(min(settings.mail_retry_seconds * 2 ** min(attempts - 1, 16), 6 * 3600))


def build_email(message: MailMessage, settings: Settings) -> EmailMessage:
    email = EmailMessage()
    email["Subject"] = message.subject
    email["From"] = settings.mail_from
    email["To"] = message.to_address
    email["Message-ID"] = make_msgid(domain="hedgerow")
    email.set_content(message.body_text or "")
    if message.body_html:
        email.add_alternative(message.body_html, subtype="html")
    return email


def deliver(db: Session, message_id: int, settings: Settings | None = None) -> int | None:
    """Send one queued message and log the outcome; returns the seconds to wait before
    trying again, or None when there is nothing more to do (sent, given up, gone).

    The row stays locked while the server is spoken to (a bounded timeout): a second
    delivery of the same job skips it instead of sending the mail twice."""
    settings = settings or get_settings()
    message = db.scalar(
        select(MailMessage)
        .where(MailMessage.id == message_id, MailMessage.status == MailStatus.queued.value)
        .with_for_update(skip_locked=True)
    )
    if message is None:
        return None
    message.attempts += 1
    try:
        if not settings.smtp_url:
            raise RuntimeError("no SMTP server is configured (HEDGEROW_SMTP_URL)")
        send_email(
            settings.smtp_url, build_email(message, settings), timeout=settings.smtp_timeout_seconds
        )
    except Exception as exc:  # any failure is logged on the message and retried
        message.last_error = f"{type(exc).__name__}: {exc}"[:ERROR_MAX_LENGTH]
        log.warning("mail %s attempt %s failed: %s", message.id, message.attempts, exc)
        if message.attempts < settings.mail_max_attempts:
            db.flush()
            return retry_delay(message.attempts, settings)
        message.status = MailStatus.failed.value
    else:
        message.status = MailStatus.sent.value
        message.sent_at = datetime.now(UTC)
        message.last_error = None
    # Delivered or given up: the links in the bodies must not outlive the delivery here.
    message.body_text = None
    message.body_html = None
    db.flush()
    return None


def deliver_queued(db: Session, settings: Settings | None = None) -> list[int]:
    """Try every queued message once, oldest first (tests and the development CLI, where
    no worker runs); returns the ids tried."""
    ids = list(
        db.scalars(
            select(MailMessage.id)
            .where(MailMessage.status == MailStatus.queued.value)
            .order_by(MailMessage.id)
        )
    )
    for message_id in ids:
        deliver(db, message_id, settings)
    return ids


def mail_log(db: Session, user_id: int, limit: int = 10) -> list[MailMessage]:
    """The account's latest messages, newest first (ix_mail_message_user_id)."""
    return list(
        db.scalars(
            select(MailMessage)
            .where(MailMessage.user_id == user_id)
            .order_by(MailMessage.id.desc())
            .limit(limit)
        )
    )


def delivery_delayed(db: Session) -> bool:
    """Whether mail is failing to go out now: a message queued in the last hour already
    failed an attempt. Pages that promise a mail say it may be late."""
    return (
        db.scalar(
            select(MailMessage.id)
            .where(
                MailMessage.status == MailStatus.queued.value,
                MailMessage.attempts > 0,
                MailMessage.created_at > func.now() - timedelta(hours=1),
            )
            .limit(1)
        )
        is not None
    )


# Mail never tried this long after it was queued lost its job (a worker is never this late
# with a first attempt unless the job never reached the broker).
STRANDED_AFTER = timedelta(minutes=10)
# Enough for any honest backlog; the next sweep takes the rest.
STRANDED_BATCH = 500


def stranded_mail(db: Session) -> list[int]:
    return list(
        db.scalars(
            select(MailMessage.id)
            .where(
                MailMessage.status == MailStatus.queued.value,
                MailMessage.attempts == 0,
                MailMessage.created_at < func.now() - STRANDED_AFTER,
            )
            .order_by(MailMessage.id)
            .limit(STRANDED_BATCH)
        )
    )
