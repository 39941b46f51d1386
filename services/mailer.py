"""Where email goes out: the SMTP server `SMTP_URL` names. Parsing only: the delivery job sends
(`handlers.jobs.mail`), since no service calls out.

`SMTP_URL` reads `smtp://user:pass@host:587?starttls=1` (STARTTLS required), `?starttls=0` (never), no
`starttls` (upgrade when the server offers it) or `smtps://host:465` (TLS from the first byte).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

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


__all__ = ["SmtpConfig"]
