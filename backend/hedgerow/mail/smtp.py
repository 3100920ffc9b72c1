"""Handing one message to the SMTP server named by HEDGEROW_SMTP_URL."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

# Submission: the port where servers expect STARTTLS before a login.
SUBMISSION_PORT = 587


class MailConfigError(ValueError):
    """HEDGEROW_SMTP_URL cannot be used as it is written."""


def send_email(smtp_url: str, message: EmailMessage, *, timeout: float) -> None:
    """Deliver `message`; raises smtplib.SMTPException or OSError when the server cannot be
    reached or refuses it (the caller retries), MailConfigError for a URL we cannot use.

    smtps:// speaks TLS from the first byte. smtp:// upgrades with STARTTLS whenever the
    server offers it, and insists on it when a password would cross the wire or the port
    is 587 (``?starttls=false`` says a local relay has none)."""
    parts = urlsplit(smtp_url)
    host = parts.hostname or "localhost"
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    query = parse_qs(parts.query)
    context = ssl.create_default_context()
    smtp: smtplib.SMTP
    if parts.scheme == "smtps":
        smtp = smtplib.SMTP_SSL(host, parts.port or 465, timeout=timeout, context=context)
    elif parts.scheme == "smtp":
        port = parts.port or 25
        smtp = smtplib.SMTP(host, port, timeout=timeout)
    else:
        raise MailConfigError(
            f"HEDGEROW_SMTP_URL must start with smtp:// or smtps://: {parts.scheme}"
        )
    with smtp:
        if parts.scheme == "smtp":
            smtp.ehlo()
            starttls = query.get("starttls", [""])[0].lower()
            required = starttls != "false" and (password is not None or port == SUBMISSION_PORT)
            if smtp.has_extn("starttls") and starttls != "false":
                smtp.starttls(context=context)
                smtp.ehlo()
            elif required:
                raise smtplib.SMTPNotSupportedError(
                    "the SMTP server offers no STARTTLS; refusing to send the password "
                    "or the mail in clear (add ?starttls=false for a local relay)"
                )
        if username is not None:
            smtp.login(username, password or "")
        smtp.send_message(message)
