"""API tokens: issue one, list them, revoke one, and tell whose a presented token is.

A token is `cm_<id>_<secret>`: the id names its row (`models.ApiToken`), the secret proves it. The secret
is shown once, when the token is issued, and only its SHA-256 is stored, so neither a copy of the database
nor a log of it opens anything. A token acts as one member and carries a scope (`read` or `write`);
whatever it does goes through the same services and `services.authz` rules as that member in Slack.

Only admins issue, list and revoke tokens (`authz.can_manage_api_tokens`). `authenticate` runs on every
API request: one indexed read, and a write of `last_used_at` at most once a minute per token (a write per
request would queue every API read behind SQLite's one write lock).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models import ApiToken, TeamMember
from models.api_token import MAX_LABEL
from services import authz
from services.errors import DomainError, InvalidInput, NotFound


class Scope(enum.StrEnum):
    READ = "read"
    WRITE = "write"


PREFIX = "cm_"
SECRET_BYTES = 32  # token_urlsafe(32): 43 characters, 256 bits
LAST_USED_EVERY = timedelta(minutes=1)  # last_used_at is written at most this often per token
LISTED = 40  # `tokens` lists at most this many (a Slack message holds 50 blocks)
MAX_ID = 2**31 - 1  # an INTEGER column: a bigger id in a token is malformed, not a database error
# The whole token: `cm_`, the id (no leading zero), `_`, then the secret (which may contain `_` and `-`).
_TOKEN = re.compile(r"cm_([1-9][0-9]{0,9})_([A-Za-z0-9_-]{43})", re.ASCII)
NOT_ADMIN = "Only an admin can issue, list or revoke API tokens."


class Refusal(enum.StrEnum):
    """Why a presented token opens nothing."""

    MALFORMED = "malformed"  # not shaped like one of our tokens at all
    UNKNOWN = "unknown"  # no token has that id
    WRONG_SECRET = "wrong_secret"  # the id exists, the secret is not its secret
    REVOKED = "revoked"  # the right token, ended by an admin


_REFUSAL_WORDS = {
    Refusal.MALFORMED: "This is not an API token.",
    Refusal.UNKNOWN: "This API token is not valid.",
    Refusal.WRONG_SECRET: "This API token is not valid.",  # the same words as unknown: nothing to learn from it
    Refusal.REVOKED: "This API token was revoked.",
}


class TokenRefused(DomainError):
    """A presented token opens nothing; `str()` is safe to show the caller, `reason` says why."""

    def __init__(self, reason: Refusal):
        super().__init__(_REFUSAL_WORDS[reason])
        self.reason = reason


@dataclass(frozen=True)
class IssuedToken:
    token_id: int
    token: str  # the full text, shown once and never again
    label: str
    scope: str
    acting_as: str  # the Slack user id of the member it acts as


@dataclass(frozen=True)
class ApiCaller:
    """Who is behind an API request: the token and the member it acts as."""

    token_id: int
    member: TeamMember
    scope: str

    @property
    def may_write(self) -> bool:
        return self.scope == Scope.WRITE


def require_manager(actor: authz.Actor) -> None:
    authz.require(authz.can_manage_api_tokens(actor), NOT_ADMIN)


def parse_scope(text: str) -> Scope:
    try:
        return Scope(text.strip().lower())
    except ValueError:
        raise InvalidInput("A token's scope is `read` or `write`.") from None


def clean_label(label: str) -> str:
    """What the token is for, in one line: required, at most MAX_LABEL characters."""
    text = " ".join(label.split())
    if not text:
        raise InvalidInput('Say what the token is for, in quotes: `/api token new "CRM sync" scope=read`.')
    if len(text) > MAX_LABEL:
        raise InvalidInput(f"A token's label is at most {MAX_LABEL} characters.")
    return text


def token_id_of(text: str) -> int | None:
    """The id a pasted token names (whether or not its secret is right), None if it is not shaped like one."""
    match = _TOKEN.fullmatch(text.strip())
    if match is None or int(match.group(1)) > MAX_ID:
        return None
    return int(match.group(1))


async def issue(
    *, db: AsyncSession, created_by: TeamMember, acting_as: TeamMember, label: str, scope: str, now: datetime
) -> IssuedToken:
    """A new token acting as `acting_as`. The caller has checked `require_manager` for `created_by`."""
    checked_scope, checked_label = parse_scope(scope), clean_label(label)
    secret = secrets.token_urlsafe(SECRET_BYTES)
    row = ApiToken(label=checked_label, scope=checked_scope.value, member_id=acting_as.id,
                   created_by_id=created_by.id, secret_hash=_hash(secret), created_at=now)
    db.add(row)
    await db.flush()
    return IssuedToken(token_id=row.id, token=f"{PREFIX}{row.id}_{secret}", label=checked_label,
                       scope=checked_scope.value, acting_as=acting_as.slack_user_id)


async def tokens(*, db: AsyncSession, limit: int = LISTED) -> list[ApiToken]:
    """Tokens for the admins' list: working ones first, then revoked ones; newest first within each."""
    rows = await db.scalars(
        select(ApiToken).order_by(ApiToken.revoked_at.is_not(None), ApiToken.id.desc()).limit(limit)
    )
    return list(rows)


async def people_of(*, db: AsyncSession, rows: list[ApiToken]) -> dict[int, str]:
    """Member id -> Slack user id for everyone `rows` name (whom each acts as, who made it)."""
    ids = {row.member_id for row in rows} | {row.created_by_id for row in rows if row.created_by_id is not None}
    if not ids:
        return {}
    found = await db.execute(select(TeamMember.id, TeamMember.slack_user_id).where(TeamMember.id.in_(sorted(ids))))
    return {member_id: slack_user_id for member_id, slack_user_id in found.all()}


async def revoke(*, db: AsyncSession, actor: authz.Actor, token_id: int, now: datetime) -> ApiToken:
    """End token `token_id` now (admins only). A token revoked already stays as it was: compare its
    `revoked_at` with `now` to tell whether this call ended it."""
    require_manager(actor)
    row = await db.get(ApiToken, token_id, with_for_update=True) if 0 < token_id <= MAX_ID else None
    if row is None:
        raise NotFound(f"There is no API token {token_id}. `/api token list` lists them.")
    if row.revoked_at is None:
        row.revoked_at, row.revoked_by_id = now, actor.member.id
        await db.flush()
    return row


async def authenticate(*, db: AsyncSession, token: str, now: datetime) -> ApiCaller:
    """Whose `token` is, or TokenRefused. A malformed token costs no database read.

    Writes `last_used_at` when it is more than LAST_USED_EVERY old: run this in a unit of work that is
    retried (`services.transactions.retrying`), as any reading unit of work that may write.
    """
    match = _TOKEN.fullmatch(token.strip()) if len(token) < 128 else None
    if match is None or int(match.group(1)) > MAX_ID:
        raise TokenRefused(Refusal.MALFORMED)
    token_id, presented = int(match.group(1)), _hash(match.group(2))
    found = (await db.execute(
        select(ApiToken, TeamMember).join(TeamMember, TeamMember.id == ApiToken.member_id).where(ApiToken.id == token_id)
    )).one_or_none()
    if found is None:
        raise TokenRefused(Refusal.UNKNOWN)
    row, member = found
    if not hmac.compare_digest(presented, row.secret_hash):
        raise TokenRefused(Refusal.WRONG_SECRET)
    if row.revoked_at is not None:  # told only to the holder of the right secret
        raise TokenRefused(Refusal.REVOKED)
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_EVERY:
        await _touch(db, token_id, now)
    return ApiCaller(token_id=token_id, member=member, scope=row.scope)


async def _touch(db: AsyncSession, token_id: int, now: datetime) -> None:
    # Conditional, so two requests in the same minute write once between them; not through the ORM
    # object, so a caller's later flush has nothing of ours to write.
    await db.execute(
        update(ApiToken)
        .where(ApiToken.id == token_id,
               or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at <= now - LAST_USED_EVERY))
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)
    )


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
