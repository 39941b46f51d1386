"""Email out through SMTP (aiosmtplib): the delivery's mail transport, and the facts of a refusal.

What a refusal means (retry or fail) is `services.delivery.mail_fault`'s to say; this module only reads
the reply codes off aiosmtplib's exceptions.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage

import aiosmtplib

from services.delivery import Fault, mail_fault
from services.mailer import SmtpConfig

SEND_TIMEOUT = 15  # seconds; well inside the delivery claim's lease
SEND_ERRORS: tuple[type[Exception], ...] = (aiosmtplib.SMTPException, OSError, TimeoutError)


@dataclass(frozen=True)
class Mailer:
    """What delivery needs to send an email: the server and the From address."""

    config: SmtpConfig
    sender: str

    async def send(self, message: EmailMessage) -> None:
        if "From" not in message:
            message["From"] = self.sender
        await aiosmtplib.send(
            message, hostname=self.config.hostname, port=self.config.port, username=self.config.username,
            password=self.config.password, use_tls=self.config.use_tls, start_tls=self.config.start_tls,
            timeout=SEND_TIMEOUT,
        )


def mailer_from(smtp_url: str | None, sender: str) -> Mailer | None:
    """The mailer `SMTP_URL` names; None when it is unset (email-preferring members get Slack)."""
    return Mailer(SmtpConfig.from_url(smtp_url), sender) if smtp_url else None


def fault_of(error: Exception) -> Fault:
    """One of SEND_ERRORS as plain facts (the server's reply codes, if it answered) for the policy."""
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused) and error.recipients:
        first = error.recipients[0]
        return mail_fault(codes=[refused.code for refused in error.recipients],
                          reason=f"smtp {first.code}: {first.message}")
    if isinstance(error, aiosmtplib.SMTPResponseException):
        return mail_fault(codes=[error.code], reason=f"smtp {error.code}: {error.message}")
    return mail_fault(codes=[], reason=f"{type(error).__name__}: {error}")


__all__ = ["SEND_ERRORS", "Mailer", "fault_of", "mailer_from"]
