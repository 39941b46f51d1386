"""Email out through SMTP (aiosmtplib): where to connect, how to send, and which failures are for good.

`SMTP_URL` reads `smtp://user:pass@host:587?starttls=1` (STARTTLS required), `?starttls=0` (never), no
`starttls` (upgrade when the server offers it) or `smtps://host:465` (TLS from the first byte).
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

SEND_TIMEOUT = 15  # seconds; well inside the delivery claim's lease
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


@dataclass(frozen=True)
class SmtpConfig:
    hostname: str
    port: int
    username: str | None = None
    password: str | None = None
    use_tls: bool = False
    start_tls: bool | None = None  # None: upgrade if the server offers STARTTLS

    @classmethod
    def from_url(cls, url: str) -> SmtpConfig:
        """Parse `SMTP_URL`; a ValueError says what is wrong (without echoing a password)."""
        parts = urlsplit(url.strip())
        if parts.scheme not in ("smtp", "smtps"):
            raise ValueError("must start with smtp:// or smtps://")
        if not parts.hostname:
            raise ValueError("needs a host, like smtp://mail.example.com:587")
        try:
            port = parts.port
        except ValueError:
            raise ValueError("has a port that is not a number from 1 to 65535") from None
        query = {key.lower(): values[-1].lower() for key, values in parse_qs(parts.query).items()}
        unknown = set(query) - {"starttls"}
        if unknown:
            raise ValueError(f"has an option I do not know: {', '.join(sorted(unknown))} (only starttls)")
        start_tls: bool | None = None
        if "starttls" in query:
            if query["starttls"] not in _TRUE + _FALSE:
                raise ValueError("starttls must be 1 or 0")
            start_tls = query["starttls"] in _TRUE
        use_tls = parts.scheme == "smtps"
        if use_tls and start_tls:
            raise ValueError("smtps:// is TLS already; drop starttls=1")
        return cls(
            hostname=parts.hostname, port=port or (465 if use_tls else 587),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            use_tls=use_tls, start_tls=False if use_tls else start_tls,
        )


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
    return Mailer(SmtpConfig.from_url(smtp_url), sender) if smtp_url else None


def is_permanent(error: Exception) -> bool:
    """A 5xx reply (550 mailbox unavailable, 553 bad address...) will not change on retry; 4xx, a dropped
    connection or a timeout might."""
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        codes = [refused.code for refused in error.recipients]
        return bool(codes) and all(code >= 500 for code in codes)
    if isinstance(error, aiosmtplib.SMTPResponseException):
        return error.code >= 500
    return False


def describe(error: Exception) -> str:
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused) and error.recipients:
        first = error.recipients[0]
        return f"smtp {first.code}: {first.message}"
    if isinstance(error, aiosmtplib.SMTPResponseException):
        return f"smtp {error.code}: {error.message}"
    return f"{type(error).__name__}: {error}"


SEND_ERRORS: tuple[type[Exception], ...] = (aiosmtplib.SMTPException, OSError, TimeoutError)

__all__ = ["SEND_ERRORS", "Mailer", "SmtpConfig", "describe", "is_permanent", "mailer_from"]
