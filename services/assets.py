"""A campaign's assets: add a link, a file or an email draft, change a draft, tie one to a task, remove one.

Who: the campaign's team, as for adding tasks (`tasks.require_team`: the owner, anyone with a task in it,
admins). Every change takes the campaign's row first (`campaigns.lock_campaign`), then, in the same
transaction, runs what the content checks decide (`_after_change`): a held sign-off stage whose errors are
gone opens (`signoffs.open_ready`, which also tells the owner what new errors hold one), and the sent copies
of the stages already open are brought up to date (`approval_notices.refresh_copies`): their approvers see
the new findings. A stage already open stays open whatever the checks find.

Adding the same link to a campaign twice, or the same draft, gives back the asset already there
(`AssetChange.repeated`): a retried command or a form sent twice adds one.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from models import Asset, AssetStatus, Campaign, Task, TaskStatus
from services import approval_notices, audit, plan_alerts, plans, signoffs
from services.approval_stages import campaign_stages
from services.campaign_content import CampaignContent, asset_ref, campaign_content
from services.campaigns import FINAL_STATUSES, lock_campaign
from services.content_checks import EMAIL, LINK, normalize_kind, url_problem, valid_kind
from services.errors import InvalidInput, NotFound
from services.fields import InvalidField
from services.refs import RefKind, format_ref, parse_ref
from services.tasks import Context, require_team, task_ref

MAX_ASSETS = 50  # per campaign, not archived: the checks read them all whenever a stage is due
MAX_TITLE = 300  # the columns' lengths
MAX_SUBJECT = 300
MAX_URL = 2000
MAX_BODY = 100_000  # an email's HTML; a Slack form holds 3,000 characters
FILE = "file"
IMAGE = "image"
# Words taken as the kind when they follow the address in `/campaign asset add`; any other kind is `kind=`.
KNOWN_KINDS = (LINK, FILE, EMAIL, IMAGE, "document", "video", "landing_page", "social", "ad", "deck")
# Fields, by the names a form's blocks use (`services.fields.InvalidField`).
URL, KIND, TITLE, SUBJECT, PREHEADER, BODY, DELIVERABLE, CAMPAIGN = (
    "url", "kind", "title", "subject", "preheader", "body", "deliverable", "campaign")


@dataclass
class NewAsset:
    """What a person asked for, as typed; `add_asset` checks every field and names the one that is wrong."""

    campaign_id: int
    url: str = ""
    kind: str = ""  # empty: guessed (an email draft when it has a subject or a body, a Slack file, else a link)
    title: str = ""
    subject: str = ""
    preheader: str = ""
    body: str = ""
    deliverable: str = ""  # a task ref, "T-12"
    source: str | None = None  # the Slack message it came from (a permalink)


@dataclass
class DraftChange:
    """A new version of an asset's fields (an email draft's, mostly): every field as the form shows it."""

    title: str = ""
    url: str = ""
    subject: str = ""
    preheader: str = ""
    body: str = ""
    deliverable: str = ""


@dataclass(frozen=True)
class AssetChange:
    """What a change did: the asset, the campaign's checks after it, the stages it opened."""

    asset: Asset
    campaign: Campaign
    content: CampaignContent
    opened: tuple[str, ...] = ()
    deliverable: Task | None = None  # the task it is tied to
    repeated: bool = False  # the same asset was there already: nothing was added
    removed: bool = False


@dataclass(frozen=True)
class AssetList:
    campaign: Campaign
    content: CampaignContent
    tasks: dict[int, Task]  # the tasks the assets are tied to, by id


# ---------------------------------------------------------------- reading


async def get_asset(*, db: AsyncSession, asset_id: int) -> Asset:
    asset = await db.get(Asset, asset_id)
    if asset is None or asset.status is AssetStatus.ARCHIVED:
        raise NotFound(f"There is no asset {asset_ref(asset_id)}" + (" any more; it was removed." if asset else "."))
    return asset


async def list_assets(*, db: AsyncSession, campaign: Campaign) -> AssetList:
    """The campaign's assets (not archived) with their findings and the tasks they are tied to."""
    content = await campaign_content(db, campaign.id)
    task_ids = {asset.task_id for asset in content.assets if asset.task_id is not None}
    tasks = {task.id: task for task in await db.scalars(select(Task).where(Task.id.in_(task_ids)))} if task_ids else {}
    return AssetList(campaign=campaign, content=content, tasks=tasks)


# ---------------------------------------------------------------- changing


async def add_asset(*, db: AsyncSession, ctx: Context, new: NewAsset) -> AssetChange:
    """Attach a link, a file or an email draft to a campaign; the checks run again."""
    campaign = await _open_campaign(db, ctx, new.campaign_id, "add assets to it")
    url = clean_url(new.url)
    subject, preheader = _line(new.subject, MAX_SUBJECT, SUBJECT), _line(new.preheader, MAX_SUBJECT, PREHEADER)
    body = _text(new.body, MAX_BODY, BODY)
    kind = _kind(new.kind) if new.kind.strip() else guess_kind(url, subject=subject, body=body)
    if kind != EMAIL and not url:
        raise InvalidField(URL, "Give the asset's address: a link to the page, the file or the draft.")
    if kind != EMAIL and (subject or body or preheader):
        raise InvalidField(KIND, f"A subject, a preheader and a body belong to an email draft, not a {kind}.")
    title = _line(new.title, MAX_TITLE, TITLE) or default_title(url, subject=subject, kind=kind)
    task = await _deliverable(db, campaign, new.deliverable)
    same = await _same_asset(db, campaign.id, url=url, kind=kind, title=title, subject=subject, body=body)
    if same is not None:
        content = await campaign_content(db, campaign.id)
        tied = await db.get(Task, same.task_id) if same.task_id else None
        return AssetChange(asset=same, campaign=campaign, content=content, deliverable=tied, repeated=True)
    count = await db.scalar(select(func.count()).select_from(Asset).where(
        Asset.campaign_id == campaign.id, Asset.status != AssetStatus.ARCHIVED))
    if (count or 0) >= MAX_ASSETS:
        raise InvalidInput(f"{_ref(campaign)} has {MAX_ASSETS} assets already; remove one first "
                           f"(`/campaign asset list {_ref(campaign)}` shows them).")
    asset = Asset(campaign_id=campaign.id, task_id=task.id if task else None, name=title, kind=kind, url=url or None,
                  subject=subject or None, preheader=preheader or None, body=body or None,
                  source=(new.source or "")[:MAX_URL] or None, created_by_id=ctx.actor.member.id,
                  status=AssetStatus.DRAFT)
    db.add(asset)
    await db.flush()
    _audit(db, ctx, asset, "asset.added", kind=kind, task=task_ref(task) if task else None)
    content, opened = await _after_change(db, ctx, campaign, f"{asset_ref(asset.id)} added")
    return AssetChange(asset=asset, campaign=campaign, content=content, opened=opened, deliverable=task)


async def update_draft(*, db: AsyncSession, ctx: Context, asset_id: int, change: DraftChange) -> AssetChange:
    """Change an asset's title, address, subject, preheader, body and task at once (the draft form's fields)."""
    found = await get_asset(db=db, asset_id=asset_id)
    campaign = await _open_campaign(db, ctx, found.campaign_id, "change its assets")
    asset = await get_asset(db=db, asset_id=asset_id)  # again, now that the campaign is ours
    url = clean_url(change.url)
    subject, preheader = _line(change.subject, MAX_SUBJECT, SUBJECT), _line(change.preheader, MAX_SUBJECT, PREHEADER)
    body = _text(change.body, MAX_BODY, BODY)
    if asset.kind != EMAIL and not url:
        raise InvalidField(URL, "Give the asset's address: a link to the page, the file or the draft.")
    if asset.kind != EMAIL and (subject or body or preheader):
        raise InvalidField(SUBJECT, f"A subject, a preheader and a body belong to an email draft, not a {asset.kind}.")
    task = await _deliverable(db, campaign, change.deliverable)
    asset.name = _line(change.title, MAX_TITLE, TITLE) or default_title(url, subject=subject, kind=asset.kind)
    asset.url, asset.subject, asset.preheader, asset.body = url or None, subject or None, preheader or None, body or None
    asset.task_id = task.id if task else None
    await db.flush()
    _audit(db, ctx, asset, "asset.changed", task=task_ref(task) if task else None)
    content, opened = await _after_change(db, ctx, campaign, f"{asset_ref(asset.id)} changed")
    return AssetChange(asset=asset, campaign=campaign, content=content, opened=opened, deliverable=task)


async def tie(*, db: AsyncSession, ctx: Context, asset_id: int, task_text: str) -> AssetChange:
    """Tie the asset to a task of its campaign as that task's deliverable (`none`: untie it)."""
    found = await get_asset(db=db, asset_id=asset_id)
    campaign = await _open_campaign(db, ctx, found.campaign_id, "change its assets")
    asset = await get_asset(db=db, asset_id=asset_id)
    task = await _deliverable(db, campaign, "" if task_text.strip().lower() in ("none", "off", "-") else task_text,
                              required=task_text.strip().lower() not in ("none", "off", "-"))
    asset.task_id = task.id if task else None
    await db.flush()
    _audit(db, ctx, asset, "asset.tied", task=task_ref(task) if task else None)
    content = await campaign_content(db, campaign.id)
    return AssetChange(asset=asset, campaign=campaign, content=content, deliverable=task)


async def remove_asset(*, db: AsyncSession, ctx: Context, asset_id: int) -> AssetChange:
    """Archive the asset: the checks and the listings leave it out; a task it was tied to still expects one."""
    found = await get_asset(db=db, asset_id=asset_id)
    campaign = await _open_campaign(db, ctx, found.campaign_id, "remove its assets")
    asset = await get_asset(db=db, asset_id=asset_id)
    asset.status = AssetStatus.ARCHIVED
    await db.flush()
    _audit(db, ctx, asset, "asset.removed")
    content, opened = await _after_change(db, ctx, campaign, f"{asset_ref(asset.id)} removed")
    return AssetChange(asset=asset, campaign=campaign, content=content, opened=opened, removed=True)


async def _after_change(db: AsyncSession, ctx: Context, campaign: Campaign, because: str) -> tuple[CampaignContent, tuple[str, ...]]:
    """What the checks decide now: held stages open once their errors are gone (the owner hears of new
    errors that hold one), and the copies of the stages open already show the new findings."""
    open_before = (await campaign_stages(db, campaign.id)).open_names()  # an asset change moves no approval row
    opened = await signoffs.open_ready(db=db, campaign=campaign, before=open_before, now=ctx.now,
                                       holidays=ctx.holidays, actor_slack_id=ctx.actor.member.slack_user_id)
    for stage in sorted(open_before):
        await approval_notices.refresh_copies(db=db, campaign_id=campaign.id, stage=stage, now=ctx.now)
    if opened:  # the work that waits for the sign-off moves with it
        plan = await plans.replan(db=db, campaign=campaign, now=ctx.now, reason=because, holidays=ctx.holidays)
        await plan_alerts.write(db=db, plan=plan, because=because, now=ctx.now)
    return await campaign_content(db, campaign.id), opened


async def _open_campaign(db: AsyncSession, ctx: Context, campaign_id: int, doing: str) -> Campaign:
    campaign = await lock_campaign(db, campaign_id)
    await require_team(db, ctx.actor, campaign, doing)
    if campaign.status in FINAL_STATUSES:
        raise InvalidInput(f"{_ref(campaign)} is {campaign.status.value}; its assets can't change any more.")
    return campaign


async def _deliverable(db: AsyncSession, campaign: Campaign, text: str, *, required: bool = False) -> Task | None:
    """The task of `campaign` a ref names, open or done (not cancelled); None for nothing typed."""
    typed = text.strip().removeprefix("deliverable=").strip()
    if not typed:
        if required:
            raise InvalidField(DELIVERABLE, "Which task? `/campaign asset tie AS-4 T-12` (or `none`).")
        return None
    try:
        task_id = parse_ref(typed, RefKind.TASK)
    except (InvalidInput, NotFound) as error:
        raise InvalidField(DELIVERABLE, str(error)) from None
    task = await db.scalar(select(Task).where(Task.id == task_id).options(joinedload(Task.assignee)))
    if task is None or task.campaign_id != campaign.id:
        raise InvalidField(DELIVERABLE, f"{format_ref(RefKind.TASK, task_id)} is not a task of {_ref(campaign)}.")
    if task.status is TaskStatus.CANCELLED:
        raise InvalidField(DELIVERABLE, f"{task_ref(task)} was cancelled; it hands over nothing.")
    return task


async def _same_asset(db: AsyncSession, campaign_id: int, *, url: str, kind: str, title: str, subject: str,
                      body: str) -> Asset | None:
    """The asset this one repeats: the same address, or (an email draft without one) the same draft."""
    query = select(Asset).where(Asset.campaign_id == campaign_id, Asset.status != AssetStatus.ARCHIVED)
    if url:
        query = query.where(Asset.url == url)
    elif kind == EMAIL:
        query = query.where(Asset.kind == EMAIL, Asset.url.is_(None), Asset.name == title,
                            Asset.subject == (subject or None), Asset.body == (body or None))
    else:
        return None
    return await db.scalar(query.order_by(Asset.id).limit(1))


# ---------------------------------------------------------------- typed values


def clean_url(typed: str) -> str:
    """A web address as typed or as Slack sends it (`<https://x|label>`), checked; "" for none."""
    text = typed.replace("\x00", "").strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1].split("|", 1)[0].strip()
    if not text:
        return ""
    problem = url_problem(text)
    if problem:
        raise InvalidField(URL, f"That is not a web address: {problem}.")
    return text


def guess_kind(url: str, *, subject: str = "", body: str = "") -> str:
    if subject or body:
        return EMAIL
    if url and is_slack_file(url):
        return FILE
    return LINK


def is_slack_file(url: str) -> bool:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    return host == "files.slack.com" or (host.endswith(".slack.com") and parts.path.startswith("/files/"))


def default_title(url: str, *, subject: str = "", kind: str = LINK) -> str:
    """A title when none was typed: the subject, a file's name, or the address without its scheme."""
    if subject:
        return subject[:MAX_TITLE]
    if not url:
        return "Email draft" if kind == EMAIL else "Untitled"
    parts = urlsplit(url)
    name = unquote(parts.path.rstrip("/").rsplit("/", 1)[-1]) if is_slack_file(url) else ""
    shown = name or (parts.hostname or "") + parts.path.rstrip("/")
    return " ".join(shown.split())[:MAX_TITLE] or url[:MAX_TITLE]


def _kind(typed: str) -> str:
    kind = normalize_kind(typed.replace("\x00", ""))
    if not valid_kind(kind):
        raise InvalidField(KIND, "A kind is a short word: link, file, email, image, document, landing_page…")
    return kind


def _line(typed: str, limit: int, field: str) -> str:
    text = " ".join(typed.replace("\x00", "").split())
    if len(text) > limit:
        raise InvalidField(field, f"Keep it to {limit} characters; this has {len(text):,}.")
    return text


def _text(typed: str, limit: int, field: str) -> str:
    text = typed.replace("\x00", "").strip()
    if len(text) > limit:
        raise InvalidField(field, f"Keep it to {limit:,} characters; this has {len(text):,}.")
    return text


def _ref(campaign: Campaign) -> str:
    return format_ref(RefKind.CAMPAIGN, campaign.id)


def _audit(db: AsyncSession, ctx: Context, asset: Asset, action: str, **details: object) -> None:
    audit.record(db=db, actor=ctx.actor.member.slack_user_id, action=action, entity_type="asset", entity_id=asset.id,
                 campaign_id=asset.campaign_id, asset=asset_ref(asset.id), **details)
