"""Stored dashboard links: issue one, list the ones a person made, revoke one, and check a token.

A link is a row (`models.DashboardLink`) and a token (`services.links`) that names it. The token alone is
never enough: `check` reads the row on every request, so a revoked link stops working at once, and an
expired one too, whatever the token says. People make links with `/dashboard` and the App Home's button;
the app makes its own for the weekly status (`created_by` None), which only an admin can revoke.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Campaign, DashboardLink, TeamMember
from models.dashboard_link import MAX_LABEL
from services import authz, links
from services.errors import InvalidInput, NotFound
from services.refs import RefKind, format_ref

MAX_DAYS = 365  # bounds DASHBOARD_LINK_DAYS too: a link that outlives a year is a link nobody remembers
RECENTLY_ENDED = timedelta(days=7)  # `mine` still shows a link this long after it expired or was revoked
MINE_SHOWN = 20


class LinkState(enum.StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


class Refusal(enum.StrEnum):
    """Why a token opens nothing. INVALID covers malformed, forged, truncated and unknown alike: the
    person holding it can do nothing different about any of them."""

    INVALID = "invalid"
    EXPIRED = "expired"
    REVOKED = "revoked"


class LinkRefused(Exception):
    def __init__(self, refusal: Refusal, *, when: datetime | None = None):
        super().__init__(refusal.value)
        self.refusal = refusal
        self.when = when  # when it expired or was revoked, if it is known


@dataclass(frozen=True)
class CheckedLink:
    """A token that holds now: what it opens."""

    link_id: int
    scope: str
    campaign_id: int | None  # None: every campaign
    expires_at: datetime


@dataclass(frozen=True)
class LinkRequest:
    """One link to issue among many (`issue_many`)."""

    scope: str
    expires_at: datetime
    label: str = ""
    created_by_id: int | None = None


@dataclass(frozen=True)
class IssuedLink:
    link_id: int
    scope: str
    expires_at: datetime
    token: str


def state_of(link: DashboardLink, now: datetime) -> LinkState:
    if link.revoked_at is not None:
        return LinkState.REVOKED
    return LinkState.EXPIRED if link.expires_at <= now else LinkState.ACTIVE


def scope_words(scope: str) -> str:
    """`every campaign` or `CM-12`: what a scope opens, for people."""
    campaign_id = links.campaign_id_of(scope)
    return "every campaign" if campaign_id is None else format_ref(RefKind.CAMPAIGN, campaign_id)


async def issue(
    *, db: AsyncSession, created_by: TeamMember | None, scope: str, days: int, now: datetime, secret: bytes,
    label: str = "", valid_from: datetime | None = None,
) -> tuple[DashboardLink, str]:
    """A new link and its token, good for `days` days from `valid_from` (default `now`).

    A campaign scope needs its campaign (NotFound otherwise); the caller usually has it loaded already.
    """
    expires_at = expiry(valid_from or now, days)
    campaign_id = await _campaign_of(db, scope)
    link = DashboardLink(scope=scope, campaign_id=campaign_id, created_by_id=created_by.id if created_by else None,
                         created_at=now, expires_at=expires_at, label=_label(label, scope))
    db.add(link)
    await db.flush()
    return link, links.sign(secret, link_id=link.id, scope=scope, expires_at=expires_at)


async def issue_many(
    *, db: AsyncSession, requests: Sequence[LinkRequest], now: datetime, secret: bytes
) -> list[IssuedLink]:
    """Many links in one multi-row INSERT (the sweep's weekly status links), in the order asked.

    The caller vouches that each campaign exists (it just read them): a missing one fails the insert.
    """
    if not requests:
        return []
    for request in requests:
        if not links.is_scope(request.scope) or request.expires_at.microsecond:
            raise ValueError(f"not a link to issue: {request!r}")
    rows = [{"scope": r.scope, "campaign_id": links.campaign_id_of(r.scope), "created_by_id": r.created_by_id,
             "created_at": now, "expires_at": r.expires_at, "label": _label(r.label, r.scope)} for r in requests]
    statement = insert(DashboardLink).returning(DashboardLink.id, sort_by_parameter_order=True)
    ids = list((await db.scalars(statement, rows)).all())
    return [IssuedLink(link_id=link_id, scope=r.scope, expires_at=r.expires_at,
                       token=links.sign(secret, link_id=link_id, scope=r.scope, expires_at=r.expires_at))
            for link_id, r in zip(ids, requests, strict=True)]


async def mine(*, db: AsyncSession, member: TeamMember, now: datetime) -> list[DashboardLink]:
    """The links `member` made that still work or ended in the last week, newest first (at most MINE_SHOWN)."""
    since = now - RECENTLY_ENDED
    rows = await db.scalars(
        select(DashboardLink)
        .where(DashboardLink.created_by_id == member.id,
               or_(and_(DashboardLink.revoked_at.is_(None), DashboardLink.expires_at > since),
                   DashboardLink.revoked_at > since))
        .order_by(DashboardLink.created_at.desc(), DashboardLink.id.desc())
        .limit(MINE_SHOWN)
    )
    return list(rows)


async def revoke(*, db: AsyncSession, actor: authz.Actor, link_id: int, now: datetime) -> tuple[DashboardLink, bool]:
    """End link `link_id` now: its maker or an admin. Returns the link and whether this call ended it
    (False: it was revoked already, and stays as it was)."""
    link = await db.get(DashboardLink, link_id, with_for_update=True)
    if link is None:
        raise NotFound(f"There is no dashboard link {link_id}. `/dashboard links` lists yours.")
    authz.require(authz.can_revoke_dashboard_link(actor, link),
                  "Only the person who made a dashboard link or an admin can revoke it.")
    if link.revoked_at is not None:
        return link, False
    link.revoked_at, link.revoked_by_id = now, actor.member.id
    await db.flush()
    return link, True


async def check(*, db: AsyncSession, secret: bytes, token: str, now: datetime) -> CheckedLink:
    """What `token` opens now, or `LinkRefused`. A malformed or forged token costs no database read."""
    claim = links.verify(secret, token)
    if claim is None:
        raise LinkRefused(Refusal.INVALID)
    row = (await db.execute(
        select(DashboardLink.scope, DashboardLink.expires_at, DashboardLink.revoked_at)
        .where(DashboardLink.id == claim.link_id)
    )).one_or_none()
    # Gone (its campaign was deleted) or not the row this token was issued for: as good as forged.
    if row is None or row.scope != claim.scope or row.expires_at != claim.expires_at:
        raise LinkRefused(Refusal.INVALID)
    if row.revoked_at is not None:
        raise LinkRefused(Refusal.REVOKED, when=row.revoked_at)
    if row.expires_at <= now:
        raise LinkRefused(Refusal.EXPIRED, when=row.expires_at)
    return CheckedLink(link_id=claim.link_id, scope=claim.scope, campaign_id=claim.campaign_id,
                       expires_at=claim.expires_at)


def expiry(valid_from: datetime, days: int) -> datetime:
    """When a link made for `days` from `valid_from` ends: whole seconds, as tokens carry it."""
    if not 1 <= days <= MAX_DAYS:
        raise InvalidInput(f"A dashboard link lasts 1 to {MAX_DAYS} days.")
    return (valid_from + timedelta(days=days)).replace(microsecond=0)


async def _campaign_of(db: AsyncSession, scope: str) -> int | None:
    if not links.is_scope(scope):
        raise ValueError(f"not a dashboard scope: {scope!r}")
    campaign_id = links.campaign_id_of(scope)
    if campaign_id is not None and await db.get(Campaign, campaign_id) is None:
        raise NotFound(f"There is no campaign {format_ref(RefKind.CAMPAIGN, campaign_id)}.")
    return campaign_id


def _label(label: str, scope: str) -> str:
    text = " ".join(label.split()) or scope_words(scope)
    return text if len(text) <= MAX_LABEL else text[:MAX_LABEL - 1] + "…"
