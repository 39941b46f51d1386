"""The dashboard's campaign list: filtered by status, owner, template, launch month and health, a page at a time.

Status, owner, template and month are conditions in SQL; health is the plan's verdict, computed from each
campaign's timeline in Python (`services.dashboard.campaign_card`), so with a health filter the matching
campaigns are read whole and paged here. An owner is matched by Slack id or by whole name, compared in
Python like `services.team` does (SQLite's lower() folds only ASCII); nobody by that name matches nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

from sqlalchemy import ColumnElement, and_, false, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from models import Campaign, TeamMember
from services.dashboard import CampaignCard, Health, Person, campaign_card, cards, within
from services.dashboard_params import StatusFilter

PAGE_SIZE = 50


@dataclass(frozen=True)
class CampaignFilters:
    status: StatusFilter
    owner: str | None = None  # a Slack id or a name, as typed
    template: str | None = None  # a normalized template name
    month: date | None = None  # the first day of the launch month
    health: Health | None = None
    page: int = 1


@dataclass(frozen=True)
class CampaignList:
    campaigns: list[CampaignCard]
    total: int  # matching the filters, on every page
    page: int
    pages: int
    owners: list[Person]  # everyone who owns a campaign the link opens, for the filter form
    templates: list[str]  # the templates those campaigns use


async def campaign_list(*, db: AsyncSession, campaign_id: int | None, filters: CampaignFilters) -> CampaignList:
    owners = await _owners(db, campaign_id)
    templates = list(await db.scalars(
        within(select(Campaign.template).distinct(), campaign_id).order_by(Campaign.template)))
    where = and_(Campaign.status.in_(filters.status.statuses), _owner_condition(owners, filters.owner),
                 _month_condition(filters.month))
    if filters.template is not None:
        where = and_(where, Campaign.template == filters.template)
    ordered = within(cards().where(where), campaign_id).order_by(Campaign.launch_date, Campaign.id)
    if filters.health is None:
        total = await db.scalar(within(select(func.count()).select_from(Campaign).where(where), campaign_id)) or 0
        rows = await db.execute(ordered.offset((filters.page - 1) * PAGE_SIZE).limit(PAGE_SIZE))
        shown = [campaign_card(row) for row in rows]
    else:
        matching = [card for card in map(campaign_card, await db.execute(ordered)) if card.health is filters.health]
        total = len(matching)
        shown = matching[(filters.page - 1) * PAGE_SIZE: filters.page * PAGE_SIZE]
    return CampaignList(
        campaigns=shown, total=total, page=filters.page, pages=max(1, math.ceil(total / PAGE_SIZE)),
        owners=[Person(slack_user_id=slack_id, name=name) for _, slack_id, name in owners], templates=templates,
    )


async def _owners(db: AsyncSession, campaign_id: int | None) -> list[tuple[int, str, str]]:
    """(member id, Slack id, name) of everyone who owns a campaign in scope, by name."""
    owner_ids = within(select(Campaign.owner_id), campaign_id)
    rows = await db.execute(select(TeamMember.id, TeamMember.slack_user_id, TeamMember.name)
                            .where(TeamMember.id.in_(owner_ids)).order_by(TeamMember.name, TeamMember.id))
    return [(member_id, slack_id, name) for member_id, slack_id, name in rows]


def _owner_condition(owners: list[tuple[int, str, str]], wanted: str | None) -> ColumnElement[bool]:
    if wanted is None:
        return true()
    folded = wanted.casefold()
    ids = [member_id for member_id, slack_id, name in owners
           if slack_id.casefold() == folded or " ".join(name.split()).casefold() == folded]
    return Campaign.owner_id.in_(ids) if ids else false()


def _month_condition(month: date | None) -> ColumnElement[bool]:
    if month is None:
        return true()
    following = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return and_(Campaign.launch_date >= month, Campaign.launch_date < following)
