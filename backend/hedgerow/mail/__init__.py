"""Email: messages rendered from templates, logged per account, sent by the ``mail.send``
job after the request commits, over the SMTP server of HEDGEROW_SMTP_URL (or the
development mailbox `hedgerow up` runs)."""
