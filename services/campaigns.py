"""Campaigns: create, find and list. Callers own the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from models import Campaign, CampaignStatus, TeamMember
from services import audit
from services.errors import InvalidInput, NotFound
from services.planning.templates import Template
from services.plans import PlanSummary, create_plan
from services.refs import RefKind, format_ref

MAX_NAME_LENGTH = 200
MAX_HORIZON_DAYS = 3 * 365
OPEN_STATUSES = (CampaignStatus.PLANNING, CampaignStatus.ACTIVE, CampaignStatus.PAUSED)


def campaign_ref(campaign: Campaign) -> str:
    return format_ref(RefKind.CAMPAIGN, campaign.id)


async def create_campaign(
    *,
    db: AsyncSession,
    name: str,
    template: Template,
    launch_date: date,
    owner: TeamMember,
    now: datetime,
    holidays: frozenset[date] = frozenset(),
    channel_id: str | None = None,
) -> PlanSummary:
    """Create the campaign and its plan from the template, working back from the launch date."""
    clean_name = _clean_name(name)
    today = now.astimezone(ZoneInfo(owner.timezone)).date()
    if launch_date < today:
        raise InvalidInput(f"The launch date {launch_date.isoformat()} is in the past; pick today or later.")
    if launch_date > today + timedelta(days=MAX_HORIZON_DAYS):
        raise InvalidInput(f"The launch date {launch_date.isoformat()} is more than {MAX_HORIZON_DAYS // 365} years away.")
    campaign = Campaign(
        name=clean_name,
        template=template.name,
        launch_date=launch_date,
        owner_id=owner.id,
        channel_id=channel_id,
    )
    campaign.owner = owner
    db.add(campaign)
    await db.flush()
    audit.record(
        db=db,
        actor=owner.slack_user_id,
        action="campaign.created",
        entity_type="campaign",
        entity_id=campaign.id,
        name=clean_name,
        template=template.name,
        launch_date=launch_date.isoformat(),
    )
    return await create_plan(db=db, campaign=campaign, template=template, now=now, holidays=holidays)


async def get_campaign(*, db: AsyncSession, campaign_id: int) -> Campaign:
    campaign = await db.scalar(
        select(Campaign).where(Campaign.id == campaign_id).options(selectinload(Campaign.owner))
    )
    if campaign is None:
        raise NotFound(f"There is no campaign {format_ref(RefKind.CAMPAIGN, campaign_id)}.")
    return campaign


@dataclass(frozen=True)
class CampaignPage:
    campaigns: Sequence[Campaign]
    total: int


async def list_campaigns(
    *,
    db: AsyncSession,
    statuses: Sequence[CampaignStatus] = OPEN_STATUSES,
    owner: TeamMember | None = None,
    limit: int = 20,
) -> CampaignPage:
    """Campaigns in the given states (and of one owner, if given), soonest launch first."""
    where: ColumnElement[bool] = Campaign.status.in_(statuses)
    if owner is not None:
        where = and_(where, Campaign.owner_id == owner.id)
    total = await db.scalar(select(func.count()).select_from(Campaign).where(where)) or 0
    rows = await db.scalars(
        select(Campaign)
        .where(where)
        .options(selectinload(Campaign.owner))
        .order_by(Campaign.launch_date, Campaign.id)
        .limit(limit)
    )
    return CampaignPage(campaigns=rows.all(), total=total)


def parse_status_filter(text: str) -> tuple[CampaignStatus, ...]:
    """`open` (default), `all`, or one status name."""
    word = text.strip().lower()
    if word in ("", "open"):
        return OPEN_STATUSES
    if word == "all":
        return tuple(CampaignStatus)
    try:
        return (CampaignStatus(word),)
    except ValueError:
        names = ", ".join(f"`{status.value}`" for status in CampaignStatus)
        raise InvalidInput(f"Unknown status. Use `open`, `all` or one of: {names}.") from None


def _clean_name(name: str) -> str:
    # Collapse newlines and runs of spaces: a name is one line wherever it is shown.
    clean = " ".join(name.split())
    if not clean:
        raise InvalidInput("The campaign needs a name.")
    if len(clean) > MAX_NAME_LENGTH:
        raise InvalidInput(f"The name is {len(clean)} characters long; keep it under {MAX_NAME_LENGTH + 1}.")
    return clean
