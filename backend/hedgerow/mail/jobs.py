"""Celery jobs of the mail domain."""

from __future__ import annotations

from celery import Task, shared_task

from hedgerow.db import get_sessionmaker
from hedgerow.mail import service


@shared_task(name=service.SEND_JOB, bind=True, acks_late=True)
def send_mail_job(self: Task, message_id: int) -> str:
    """Send one message of the mail log; on failure try again later, the waits doubling,
    until HEDGEROW_MAIL_MAX_ATTEMPTS (the attempts are counted on the row, so a retry
    delivered twice does not try more often)."""
    with get_sessionmaker().begin() as db:
        wait = service.deliver(db, message_id)
    if wait is not None:
        raise self.retry(countdown=wait, max_retries=None)
    return "done"


@shared_task(name="mail.enqueue_stranded")
def enqueue_stranded_mail_job() -> list[int]:
    """Enqueue ``mail.send`` again for messages still untried well after they were queued
    (their job was lost); a message whose job was only slow is not sent twice, as
    ``deliver`` skips anything no longer queued or locked by another delivery."""
    with get_sessionmaker().begin() as db:
        stranded = service.stranded_mail(db)
    for message_id in stranded:
        send_mail_job.delay(message_id)
    return stranded
