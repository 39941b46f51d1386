"""Signed read-only links: a token that says which part of the dashboard it opens, and proves we made it.

A token is `<scope>.<signature>`, both base64url without padding: the scope in the clear (`all`, or
`campaign:3`) and HMAC-SHA256 over it under the dashboard secret, with a fixed context string so the same
secret could sign other kinds of token without one passing for another. Checking compares in constant
time and accepts only the canonical encoding, so a token has exactly one spelling.

The links do not expire: whoever holds one can read what it opens until the secret changes. Changing
DASHBOARD_SECRET (or, when it is unset, SLACK_SIGNING_SECRET) revokes every link at once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re

SCOPE_ALL = "all"
_SCOPE = re.compile(r"^(?:all|campaign:[1-9][0-9]{0,9})$")
_BASE64URL = re.compile(r"^[A-Za-z0-9_-]+$")
_CONTEXT = b"campaign-manager/dashboard-link/v1\x00"
# The key that signs links when no DASHBOARD_SECRET is set is derived from the Slack signing secret
# under this label: a different key, so a link never reveals anything about the signing secret.
_DERIVATION_LABEL = b"campaign-manager/dashboard-secret/v1"
MAX_TOKEN_LENGTH = 200


def campaign_scope(campaign_id: int) -> str:
    return f"campaign:{campaign_id}"


def campaign_id_of(scope: str) -> int | None:
    """The campaign a scope opens, or None for `all`."""
    kind, _, number = scope.partition(":")
    return int(number) if kind == "campaign" else None


def link_secret(*, dashboard_secret: str | None, signing_secret: str | None) -> bytes | None:
    """The key for dashboard links: DASHBOARD_SECRET, else one derived from the Slack signing secret.

    None when neither is set (a local console without Slack): then there is nothing to sign with.
    """
    if dashboard_secret:
        return dashboard_secret.encode()
    if signing_secret:
        return hmac.new(signing_secret.encode(), _DERIVATION_LABEL, hashlib.sha256).digest()
    return None


def dashboard_token(secret: str | bytes, scope: str) -> str:
    if not _SCOPE.match(scope):
        raise ValueError(f"not a dashboard scope: {scope!r}")
    return f"{_encode(scope.encode())}.{_encode(_signature(secret, scope.encode()))}"


def verify(secret: str | bytes, token: str) -> str | None:
    """The scope a token opens, or None if it is not one we signed with this secret (or is malformed)."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        return None
    payload, dot, signature = token.partition(".")
    scope_bytes, given = _decode(payload), _decode(signature)
    if not dot or scope_bytes is None or given is None:
        return None
    if not hmac.compare_digest(given, _signature(secret, scope_bytes)):
        return None
    scope = scope_bytes.decode("ascii", errors="replace")
    return scope if _SCOPE.match(scope) else None


def dashboard_url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/dashboard/{token}"


def _signature(secret: str | bytes, scope: bytes) -> bytes:
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, _CONTEXT + scope, hashlib.sha256).digest()


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _decode(text: str) -> bytes | None:
    """Strict base64url: the alphabet only, no padding, and the one canonical spelling of the bytes."""
    if not _BASE64URL.match(text) or len(text) % 4 == 1:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    return raw if _encode(raw) == text else None
