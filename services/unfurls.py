"""Dashboard links pasted into Slack unfold into a short summary card, through the outbox.

Slack tells us a message (or a message being written) holds links to our host (`link_shared`). The
listener checks each link's token (`dashboard_links.check`) and, for those that open something, writes one
Kind.LINK_UNFURL row in its transaction: where the links are and which stored link each one is. The
card is rendered when the row goes out, from the plan as it is then, and only for links still active (a
link revoked meanwhile unfolds into nothing). It goes by `chat.unfurl` from the delivery job, like every
other call that says something in Slack.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from models import Campaign, DashboardLink, Task
from services import notifications
from services.campaigns import OPEN_STATUSES
from services.dashboard_links import LinkState, state_of
from services.kinds import Kind
from services.notifications import Draft
from services.plans import PlanSummary
from services.team import ACTIVE_TASK_STATUSES

MAX_LINKS = 5  # cards per message: Slack shows a few; a message pasting fifty gets the first few


@dataclass(frozen=True)
class SharedLink:
    """A link in a message that opens something: its URL as pasted, and the stored link it is."""

    url: str
    link_id: int


@dataclass(frozen=True)
class UnfurlRequest:
    """The payload of a Kind.LINK_UNFURL row: where the message is (channel and ts, or Slack's unfurl id
    and source for a message still being written) and its links."""

    channel: str
    ts: str | None
    unfurl_id: str | None
    source: str | None
    links: tuple[SharedLink, ...]

    def payload(self) -> dict[str, Any]:
        return {"channel": self.channel, "ts": self.ts, "unfurl_id": self.unfurl_id, "source": self.source,
                "links": [{"url": link.url, "link_id": link.link_id} for link in self.links]}

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> UnfurlRequest:
        return cls(channel=str(payload["channel"]), ts=payload.get("ts") or None,
                   unfurl_id=payload.get("unfurl_id") or None, source=payload.get("source") or None,
                   links=tuple(SharedLink(str(link["url"]), int(link["link_id"])) for link in payload["links"]))


async def request(*, db: AsyncSession, unfurl: UnfurlRequest, now: datetime) -> list[int]:
    """Write the unfurl of a message's links (once per message: Slack may tell us twice)."""
    if not unfurl.links:
        return []
    where = unfurl.unfurl_id or f"{unfurl.channel}:{unfurl.ts}"
    draft = Draft(dedupe_key=f"unfurl:{where}", kind=Kind.LINK_UNFURL,
                  payload=UnfurlRequest(unfurl.channel, unfurl.ts, unfurl.unfurl_id, unfurl.source,
                                        unfurl.links[:MAX_LINKS]).payload(),
                  recipient_channel=unfurl.channel)
    return await notifications.notify_many(db=db, drafts=[draft], now=now)


@dataclass(frozen=True)
class CampaignCard:
    ref_id: int
    name: str
    status: str
    launch_date: date
    projected_launch: date | None
    risk: str | None
    progress_pct: float | None
    buffer_left_pct: float | None


@dataclass(frozen=True)
class WorkspaceCard:
    open_campaigns: int
    at_risk: int
    late: int
    next_launch: tuple[str, date] | None  # (name, day)
    open_tasks: int


Card = CampaignCard | WorkspaceCard


async def cards(*, db: AsyncSession, unfurl: UnfurlRequest, now: datetime) -> dict[str, Card]:
    """The card of each link that still opens something, by URL, as the plan is now."""
    ids = [link.link_id for link in unfurl.links]
    stored = {link.id: link for link in await db.scalars(select(DashboardLink).where(DashboardLink.id.in_(ids)))}
    active = [(link.url, stored[link.link_id]) for link in unfurl.links
              if link.link_id in stored and state_of(stored[link.link_id], now) is LinkState.ACTIVE]
    found: dict[str, Card] = {}
    workspace: WorkspaceCard | None = None
    for url, link in active:
        if link.campaign_id is not None:
            card = await _campaign_card(db, link.campaign_id)
            if card is not None:
                found[url] = card
        else:
            workspace = workspace or await _workspace_card(db, now.date())
            found[url] = workspace
    return found


async def _campaign_card(db: AsyncSession, campaign_id: int) -> CampaignCard | None:
    campaign = await db.scalar(select(Campaign).where(Campaign.id == campaign_id)
                               .options(joinedload(Campaign.timeline)))
    if campaign is None:
        return None
    timeline = campaign.timeline
    plan = PlanSummary(campaign=campaign, timeline=timeline, tasks=[]) if timeline is not None else None
    return CampaignCard(ref_id=campaign.id, name=campaign.name, status=str(campaign.status.value),
                        launch_date=campaign.launch_date,
                        projected_launch=timeline.projected_launch if timeline is not None else None,
                        risk=plan.risk if plan is not None else None,
                        progress_pct=timeline.progress_pct if timeline is not None else None,
                        buffer_left_pct=plan.buffer_left_pct if plan is not None else None)


async def _workspace_card(db: AsyncSession, today: date) -> WorkspaceCard:
    campaigns = list(await db.scalars(select(Campaign).where(Campaign.status.in_(OPEN_STATUSES))
                                      .options(joinedload(Campaign.timeline))))
    risks = [PlanSummary(campaign=c, timeline=c.timeline, tasks=[]).risk for c in campaigns if c.timeline is not None]
    upcoming = sorted((c.launch_date, c.name) for c in campaigns if c.launch_date >= today)
    open_tasks = await db.scalar(select(func.count()).select_from(Task).join(Campaign)
                                 .where(Campaign.status.in_(OPEN_STATUSES), Task.status.in_(ACTIVE_TASK_STATUSES))) or 0
    return WorkspaceCard(open_campaigns=len(campaigns), at_risk=risks.count("at risk"), late=risks.count("late"),
                         next_launch=(upcoming[0][1], upcoming[0][0]) if upcoming else None,
                         open_tasks=int(open_tasks))


def shared_links(urls: Sequence[tuple[str, int]]) -> tuple[SharedLink, ...]:
    """(url, link id) pairs as the payload keeps them, without repeats, at most MAX_LINKS."""
    unique = dict.fromkeys(urls)
    return tuple(SharedLink(url, link_id) for url, link_id in list(unique)[:MAX_LINKS])
