"""A campaign's assets and content rules as the checks read them, in two queries for any number of campaigns.

The rules are the template's, kept with the plan (`Timeline.content_rules`); a campaign made before there
were any, or without a plan, gets the defaults (`content_checks.ContentRules()`), which ask for no asset,
so such a campaign is held only by what is wrong with the assets it has. Archived (removed) assets are not
checked. `services.approval_stages` reads this to hold a stage, `services.assets` to answer a change, and
`services.tasks` what a task should hand over before it is done (`expected_deliverable`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Asset, AssetStatus, Task, Timeline
from services.content_checks import AssetContent, ContentRules, Finding, check, errors_of
from services.errors import InvalidInput
from services.planning.templates import ANY_DELIVERABLE
from services.refs import RefKind, format_ref

ERRORS_LISTED = 15  # in a refusal; the rest are a `/campaign checks` away


def asset_ref(asset_id: int) -> str:
    return format_ref(RefKind.ASSET, asset_id)


def content_of(asset: Asset) -> AssetContent:
    return AssetContent(ref=asset_ref(asset.id), title=asset.name, kind=asset.kind, url=asset.url,
                        subject=asset.subject, preheader=asset.preheader, body=asset.body)


@dataclass(frozen=True)
class CampaignContent:
    assets: tuple[Asset, ...]  # not archived, oldest first
    rules: ContentRules
    findings: tuple[Finding, ...]  # errors first

    def errors(self, stage: str | None = None, *, every_stage: bool = False) -> list[Finding]:
        """The errors about `stage` (None: a stage asked for ad hoc); `every_stage`: all of them."""
        return errors_of(self.findings, stage, every_stage=every_stage)

    @property
    def warnings(self) -> list[Finding]:
        return [finding for finding in self.findings if not finding.is_error]


# Built once: the App Home, the sweep and every stage read may run them.
ASSETS_OF = (select(Asset).where(Asset.campaign_id.in_(bindparam("campaign_ids", expanding=True)),
                                 Asset.status != AssetStatus.ARCHIVED).order_by(Asset.id))
RULES_OF = select(Timeline.campaign_id, Timeline.content_rules).where(
    Timeline.campaign_id.in_(bindparam("campaign_ids", expanding=True)))


async def content_of_campaigns(
    db: AsyncSession, campaign_ids: Sequence[int], *, stored_rules: dict[int, object] | None = None,
) -> dict[int, CampaignContent]:
    """Each campaign's assets, rules and findings. `stored_rules`: the snapshots of campaigns whose timeline
    the caller has read already (the App Home has), so they are not read again."""
    ids = list(dict.fromkeys(campaign_ids))
    if not ids:
        return {}
    assets: dict[int, list[Asset]] = {campaign_id: [] for campaign_id in ids}
    for asset in await db.scalars(ASSETS_OF, {"campaign_ids": ids}):
        assets[asset.campaign_id].append(asset)
    stored: dict[int, object] = dict(stored_rules or {})
    unread = [campaign_id for campaign_id in ids if campaign_id not in stored]
    if unread:
        stored.update({campaign_id: rules for campaign_id, rules in await db.execute(RULES_OF, {"campaign_ids": unread})})
    found = {}
    for campaign_id in ids:
        rules = ContentRules.from_stored(stored.get(campaign_id))
        found[campaign_id] = CampaignContent(
            assets=tuple(assets[campaign_id]), rules=rules,
            findings=check([content_of(asset) for asset in assets[campaign_id]], rules))
    return found


async def campaign_content(db: AsyncSession, campaign_id: int) -> CampaignContent:
    return (await content_of_campaigns(db, [campaign_id]))[campaign_id]


def findings_text(findings: Sequence[Finding], limit: int = ERRORS_LISTED) -> str:
    """Findings as plain lines ("• AS-3 Spring issue: The subject is empty."), as typed: callers escape."""
    lines = [f"• {finding_line(finding)}" for finding in findings[:limit]]
    if len(findings) > limit:
        lines.append(f"…and {len(findings) - limit} more")
    return "\n".join(lines)


def finding_line(finding: Finding) -> str:
    about = f"{finding.asset} {finding.title}: " if finding.asset else ""
    return about + finding.message


class ContentErrors(InvalidInput):
    """A sign-off asked for while the campaign's content checks find errors: the person sees the list."""

    def __init__(self, campaign_id: int, stage: str, errors: Sequence[Finding]):
        self.errors = list(errors)
        ref = format_ref(RefKind.CAMPAIGN, campaign_id)
        count = f"{len(errors)} error{'s' if len(errors) != 1 else ''}"
        super().__init__(f'"{stage}" can\'t be asked for yet: the content checks of {ref} found {count} to fix '
                         f"first.\n{findings_text(errors)}\nFix them and ask again; `/campaign checks {ref}` shows "
                         "every finding.")


# ---------------------------------------------------------------- deliverables


async def expected_deliverable(db: AsyncSession, task: Task) -> str | None:
    """What a task should hand over and has not: ANY_DELIVERABLE or a kind; None when nothing is missing.

    A task expects a deliverable when its template says so (`deliverable:` in the YAML, kept with the plan
    in `Timeline.content_rules`), or when someone tied an asset to it before (that asset may since have been
    removed: a removed asset keeps its task). It has one when an asset (of the kind, if one is named) that
    is not archived is tied to it."""
    tied = (await db.execute(select(Asset.kind, Asset.status).where(Asset.task_id == task.id))).all()
    expected: str | None = None
    if task.template_key:
        stored = await db.scalar(select(Timeline.content_rules).where(Timeline.campaign_id == task.campaign_id))
        deliverables = stored.get("deliverables") if isinstance(stored, dict) else None
        wanted = deliverables.get(task.template_key) if isinstance(deliverables, dict) else None
        expected = wanted if isinstance(wanted, str) and wanted else None
    if expected is None and tied:
        expected = ANY_DELIVERABLE
    if expected is None:
        return None
    live = {kind for kind, status in tied if status is not AssetStatus.ARCHIVED}
    if (expected == ANY_DELIVERABLE and live) or expected in live:
        return None
    return expected
