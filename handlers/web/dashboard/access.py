"""What a dashboard link opens: its token checked on every request, never trusted from the page.

The token comes in the path (`/dashboard/<token>/...`) or, for clients that cannot keep a path such as
calendar apps, as `?token=`. A token that is malformed, forged, expired, revoked or asks for more than
it opens is refused with `Refused` (401 or 403), which `render` turns into a plain page that says how to
get a fresh link, and never into data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.links import secret_of
from handlers.web import DEPS_KEY
from services import dashboard_links
from services.dashboard_links import LinkRefused, Refusal

TOKEN_PARAM = "token"
INVALID = "This link is not valid."


@dataclass(frozen=True)
class Access:
    """What one request may read: every campaign (`campaign_id` None) or one."""

    token: str  # as given, to build the links of the page
    scope: str
    campaign_id: int | None
    link_id: int | None = None  # the stored link it was issued as

    def allows(self, campaign_id: int) -> bool:
        return self.campaign_id is None or self.campaign_id == campaign_id

    def require(self, campaign_id: int) -> None:
        """Refuse a campaign outside the link's scope (403): the link is good, the ask is not."""
        if not self.allows(campaign_id):
            raise Refused(403, "This link opens another campaign's dashboard.")


class Refused(Exception):
    """A request the link does not allow: `status` 401 (no good link) or 403 (good link, not for this)."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def reading_sessions(request: web.Request) -> async_sessionmaker[AsyncSession]:
    """Sessions for the dashboard's reads: on SQLite they do not queue for the write lock."""
    deps = request.app[DEPS_KEY]
    return deps.reading_sessions or deps.sessions


def token_of(request: web.Request) -> str:
    return request.match_info.get(TOKEN_PARAM) or request.query.get(TOKEN_PARAM) or ""


async def access_of(request: web.Request) -> Access:
    """The request's access, or `Refused`. The link's stored row is read on every request
    (`services.dashboard_links.check`): a revoked link stops working at once."""
    deps = request.app[DEPS_KEY]
    token = token_of(request)
    secret = secret_of(deps.settings)
    if secret is None:
        raise Refused(401, "The dashboard is not configured on this server.")
    if not token:
        raise Refused(401, INVALID)
    try:
        async with reading_sessions(request).begin() as db:
            link = await dashboard_links.check(db=db, secret=secret, token=token, now=datetime.now(UTC))
    except LinkRefused as refused:
        raise Refused(401, _reason(refused)) from None
    return Access(token=token, scope=link.scope, campaign_id=link.campaign_id, link_id=link.link_id)


def _reason(refused: LinkRefused) -> str:
    """Why, in a line; the page adds how to get a fresh link (`render.refusal`)."""
    when = f" on {refused.when:%d %b %Y at %H:%M} UTC" if refused.when else ""
    if refused.refusal is Refusal.EXPIRED:
        return f"This link expired{when}."
    if refused.refusal is Refusal.REVOKED:
        return f"This link was revoked{when}."
    return INVALID
