"""Who calls: the bearer token checked on every request (`services.api_tokens.authenticate`), the member
it acts as turned into the same `authz.Actor` Slack uses, and its scope held against the route's.

No token or a refused one is a 401 with `WWW-Authenticate: Bearer`; a read token on a write route is a
403. Then the per-token rate limit (`limits`): over it, a 429 with `Retry-After`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import web

from handlers.web import DEPS_KEY
from handlers.web.api_v1.errors import ApiError
from handlers.web.api_v1.limits import RateLimiter
from models import TeamMember
from services import api_tokens, authz, transactions

LIMITER_KEY = web.AppKey("api_v1_limiter", RateLimiter)
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="campaign-manager"'}
MAX_TOKEN = 200


@dataclass(frozen=True)
class Caller:
    token_id: int
    member: TeamMember
    scope: str
    is_admin: bool

    @property
    def actor(self) -> authz.Actor:
        return authz.Actor(member=self.member, is_admin=self.is_admin)


def bearer_token(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    kind, _, token = header.partition(" ")
    token = token.strip()
    if kind.lower() != "bearer" or not token:
        raise ApiError(401, "unauthorized", "Send an API token: `Authorization: Bearer cm_...`.", headers=CHALLENGE)
    if len(token) > MAX_TOKEN:
        raise ApiError(401, "unauthorized", "This API token is not valid.", headers=CHALLENGE)
    return token


async def caller_of(request: web.Request, *, scope: str) -> Caller:
    deps = request.app[DEPS_KEY]
    token = bearer_token(request)
    sessions = deps.reading_sessions or deps.sessions

    async def once() -> api_tokens.ApiCaller:
        # A reading session (on SQLite it does not queue for the write lock): authenticate writes only
        # the token's last use, at most once a minute, and a lock conflict then runs it again.
        async with sessions.begin() as db:
            return await api_tokens.authenticate(db=db, token=token, now=datetime.now(UTC))

    try:
        found = await transactions.retrying(once)
    except api_tokens.TokenRefused as refused:
        raise ApiError(401, "unauthorized", _refusal(refused), headers=CHALLENGE) from None
    caller = Caller(token_id=found.token_id, member=found.member, scope=found.scope,
                    is_admin=found.member.slack_user_id in deps.settings.admin_user_ids)
    verdict = await request.app[LIMITER_KEY].hit(caller.token_id)
    if not verdict.allowed:
        raise ApiError(429, "rate_limited", f"Too many requests with this token; try again in {verdict.retry_after} s.",
                       headers={"Retry-After": str(verdict.retry_after)})
    if scope == "write" and caller.scope != "write":
        raise ApiError(403, "forbidden", "This token may only read; ask an admin for a token with scope=write.")
    return caller


def _refusal(refused: Exception) -> str:
    reason = str(refused).strip()
    return reason if reason else "This API token is not valid."
