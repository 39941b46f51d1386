"""Signed read-only links: a token that names a stored dashboard link, and proves we made it.

A token is `<payload>.<signature>`, both base64url without padding. The payload, in the clear, is
`<link id>/<scope>/<expiry as Unix seconds>` (scope `all` or `campaign:3`); the signature is HMAC-SHA256
over it under the dashboard secret, with a fixed context string so the same secret could sign other kinds
of token without one passing for another. Checking compares in constant time and accepts only the
canonical encoding and the canonical payload, so a token has exactly one spelling.

A good signature is not enough: the link it names must still be stored, not revoked and not expired
(`services.dashboard_links.check`, on every request). The scope and expiry ride along so that a token
can be refused without a database read once its time is up, and so that a stored row can only be opened
by a token issued for exactly that row. Tokens of the first version (a scope, no expiry, no stored link)
are refused like any other malformed token. Changing DASHBOARD_SECRET (or, when it is unset,
SLACK_SIGNING_SECRET) still revokes every link at once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import AppSecret
from models.upsert import insert_ignore

SCOPE_ALL = "all"
_SCOPE = re.compile(r"all|campaign:[1-9][0-9]{0,9}")
# id / scope / expiry; numbers without leading zeros, so each payload has one spelling.
_PAYLOAD = re.compile(r"([1-9][0-9]{0,17})/(all|campaign:[1-9][0-9]{0,9})/([1-9][0-9]{0,11})")
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")  # fullmatch: `$` would let a trailing newline in
_CONTEXT = b"campaign-manager/dashboard-link/v2\x00"
# The key that signs links when no DASHBOARD_SECRET is set is derived from the Slack signing secret
# under this label: a different key, so a link never reveals anything about the signing secret.
_DERIVATION_LABEL = b"campaign-manager/dashboard-secret/v1"
MAX_TOKEN_LENGTH = 200


@dataclass(frozen=True)
class Claim:
    """What a well-signed token says; whether the link it names still holds is the store's to say."""

    link_id: int
    scope: str
    expires_at: datetime  # whole seconds, UTC

    @property
    def campaign_id(self) -> int | None:
        return campaign_id_of(self.scope)


def campaign_scope(campaign_id: int) -> str:
    return f"campaign:{campaign_id}"


def campaign_id_of(scope: str) -> int | None:
    """The campaign a scope opens, or None for `all`."""
    kind, _, number = scope.partition(":")
    return int(number) if kind == "campaign" else None


def is_scope(scope: str) -> bool:
    return bool(_SCOPE.fullmatch(scope))


def link_secret(*, dashboard_secret: str | None, signing_secret: str | None) -> bytes | None:
    """The key for dashboard links: DASHBOARD_SECRET, else one derived from the Slack signing secret.

    None when neither is set: then the app uses a key of its own, kept in the database (`stored_secret`).
    """
    if dashboard_secret:
        return dashboard_secret.encode()
    if signing_secret:
        return hmac.new(signing_secret.encode(), _DERIVATION_LABEL, hashlib.sha256).digest()
    return None


def sign(secret: str | bytes, *, link_id: int, scope: str, expires_at: datetime) -> str:
    """The token of stored link `link_id`. `expires_at` must be whole seconds (as `dashboard_links` stores it)."""
    if not is_scope(scope):
        raise ValueError(f"not a dashboard scope: {scope!r}")
    if link_id < 1 or expires_at.tzinfo is None or expires_at.microsecond:
        raise ValueError("a link needs a positive id and an aware expiry in whole seconds")
    payload = f"{link_id}/{scope}/{int(expires_at.timestamp())}".encode()
    if not _PAYLOAD.fullmatch(payload.decode()):
        raise ValueError("link id or expiry out of range")
    return f"{_encode(payload)}.{_encode(_signature(secret, payload))}"


def verify(secret: str | bytes, token: str) -> Claim | None:
    """What a token says, or None if it is not one we signed with this secret (or is malformed)."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        return None
    payload, dot, signature = token.partition(".")
    payload_bytes, given = _decode(payload), _decode(signature)
    if not dot or payload_bytes is None or given is None:
        return None
    if not hmac.compare_digest(given, _signature(secret, payload_bytes)):
        return None
    match = _PAYLOAD.fullmatch(payload_bytes.decode("ascii", errors="replace"))
    if match is None:
        return None
    link_id, scope, expires = match.groups()
    return Claim(link_id=int(link_id), scope=scope, expires_at=datetime.fromtimestamp(int(expires), UTC))


def dashboard_url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/dashboard/{token}"


def _signature(secret: str | bytes, payload: bytes) -> bytes:
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, _CONTEXT + payload, hashlib.sha256).digest()


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _decode(text: str) -> bytes | None:
    """Strict base64url: the alphabet only, no padding, and the one canonical spelling of the bytes."""
    if not _BASE64URL.fullmatch(text) or len(text) % 4 == 1:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    return raw if _encode(raw) == text else None


STORED_SECRET_NAME = "dashboard_links"


async def stored_secret(*, db: AsyncSession) -> str:
    """The dashboard links' key this database keeps for when nothing configures one: made by the first
    process that asks (of several starting at once, one insert wins and all read the same value)."""
    await insert_ignore(db, AppSecret, {"name": STORED_SECRET_NAME, "value": secrets.token_urlsafe(48)},
                        conflict=["name"])
    value = await db.scalar(select(AppSecret.value).where(AppSecret.name == STORED_SECRET_NAME))
    assert value is not None
    return value
