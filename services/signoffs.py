"""Template sign-off stages open by themselves: when their task is done and the stages before them passed.

A template names its stages (`approvals:` in the YAML) with a role, a rule, the time allowed and the
task they review. They are kept with the plan (`Timeline.approval_stages`) and have no approval rows
until they open. Whatever may open one calls `open_ready` in the same transaction, after its change:
a task done, a stage decided or skipped, a stage requested or resubmitted. It gives every ready stage
its approvers (the active members with the stage's role), starts the time allowed, writes the requests
of the stages that are open now and were not before (outbox rows, `services.approval_notices`), and
returns those stages' names. Every way a stage opens passes here, so every opened stage is asked for once.

A stage nobody can approve (nobody has the role) stays `unstaffed`; the owner hears once, through the
outbox, with the command that names approvers instead. They also hear once when the campaign is
created, so there is time to fix it before the stage is due.

A stage that is due to open while the campaign's content checks find errors about it is held
(`approval_stages.hold`): no approvers, no requests. The owner hears once, through the outbox, with every
error listed (`ContentHeld`); they hear again only when something new holds it (a new error, or another
stage). Whatever changes an asset calls `open_ready` too, so the stage opens once the errors are gone.

Callers lock the campaign first (`campaigns.lock_campaign`): two changes that finish tasks of one
campaign at once must not both staff the same stage.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Approval, ApprovalStatus, Campaign, Notification, TeamMember, Urgency
from services import approval_notices, audit, notifications, plans
from services.approval_stages import CampaignStages, StageState, TemplateStage, campaign_stages
from services.campaign_content import findings_text
from services.content_checks import Finding
from services.kinds import Kind
from services.refs import RefKind, format_ref

MAX_APPROVERS = 10


@dataclass(frozen=True)
class StageUnstaffed:
    """The payload of a STAGE_UNSTAFFED row, the owner's notice that nobody has the role a stage asks for.

    `opening`: the stage is due to open now (else the campaign was just created and it will need approvers).
    Names are as typed; the renderers escape them. `summary` and `text` are kept in the payload for the
    in-app inbox and for readers that know no better."""

    campaign_id: int
    campaign_name: str
    stage: str
    role: str
    opening: bool = False

    @property
    def ref(self) -> str:
        return format_ref(RefKind.CAMPAIGN, self.campaign_id)

    @property
    def summary(self) -> str:
        return f'{self.ref} {self.campaign_name}: nobody can approve "{self.stage}"'

    @property
    def request_command(self) -> str:
        return f'/approval request {self.ref} "{self.stage}" @dana'

    @property
    def role_command(self) -> str:
        return f"/team add @dana role={self.role}"

    @property
    def text(self) -> str:
        when = "is due to open" if self.opening else "will need approvers"
        return (f'"{self.stage}" {when}, and nobody on the team has the role "{self.role}". '
                f"Name the approvers: `{self.request_command}`, or give someone the role: `{self.role_command}`.")

    def to_payload(self) -> dict[str, Any]:
        return {"campaign_id": self.campaign_id, "campaign_name": self.campaign_name, "stage": self.stage,
                "role": self.role, "opening": self.opening, "summary": self.summary, "text": self.text}

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> StageUnstaffed:
        return cls(campaign_id=int(payload["campaign_id"]), campaign_name=str(payload.get("campaign_name") or ""),
                   stage=str(payload["stage"]), role=str(payload.get("role") or "approver"),
                   opening=bool(payload.get("opening")))


@dataclass(frozen=True)
class ContentHeld:
    """The payload of a CONTENT_CHECKS_FAILED row: the owner's notice that content errors hold sign-off stages.

    `errors` are every error that holds one of `stages`, as the checks found them (typed parts unescaped:
    the renderers escape). `summary` and `text` are kept for the in-app inbox."""

    campaign_id: int
    campaign_name: str
    stages: tuple[str, ...]
    errors: tuple[Finding, ...]

    @property
    def ref(self) -> str:
        return format_ref(RefKind.CAMPAIGN, self.campaign_id)

    @property
    def summary(self) -> str:
        count = f"{len(self.errors)} content error{'s' if len(self.errors) != 1 else ''}"
        held = ", ".join(f'"{stage}"' for stage in self.stages)
        return f"{self.ref} {self.campaign_name}: {count} {'holds' if len(self.errors) == 1 else 'hold'} {held}"

    @property
    def text(self) -> str:
        return (f"Fix them and the stage opens by itself:\n{findings_text(self.errors)}\n"
                f"`/campaign checks {self.ref}` shows every finding.")

    def told(self) -> set[str]:
        """What this notice told: the stages and the errors, each by a key (`Finding.key`)."""
        return {f"stage|{stage}" for stage in self.stages} | {error.key for error in self.errors}

    def to_payload(self) -> dict[str, Any]:
        return {"campaign_id": self.campaign_id, "campaign_name": self.campaign_name, "stages": list(self.stages),
                "errors": [error.to_payload() for error in self.errors], "summary": self.summary, "text": self.text}

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> ContentHeld:
        errors = [Finding.from_payload(item) for item in payload.get("errors") or () if isinstance(item, Mapping)]
        return cls(campaign_id=int(payload["campaign_id"]), campaign_name=str(payload.get("campaign_name") or ""),
                   stages=tuple(str(stage) for stage in payload.get("stages") or ()),
                   errors=tuple(error for error in errors if error is not None))


async def members_with_role(db: AsyncSession, role: str) -> list[TeamMember]:
    """Active members whose role is `role` (case and spacing aside), oldest first, at most MAX_APPROVERS."""
    wanted = " ".join(role.split()).casefold()
    if not wanted:
        return []
    members = await db.scalars(select(TeamMember).where(TeamMember.is_active.is_(True), TeamMember.role.is_not(None))
                               .order_by(TeamMember.id))
    return [member for member in members if " ".join((member.role or "").split()).casefold() == wanted][:MAX_APPROVERS]


async def open_ready(
    *, db: AsyncSession, campaign: Campaign, before: set[str], now: datetime, holidays: frozenset[date],
    actor_slack_id: str,
) -> tuple[str, ...]:
    """Staff the template stages that are due to open; return the stages open now that were not in `before`.

    `campaign.owner` must be loaded: deadlines run in the owner's working calendar.
    """
    await db.flush()
    stages = await campaign_stages(db, campaign.id)
    staffed = False
    for template_stage in stages.template:
        if stages.states[template_stage.name].state is StageState.UNSTAFFED:
            staffed |= await _staff(db, campaign, template_stage, now=now, actor_slack_id=actor_slack_id)
    if staffed:  # new rows: read the states again
        await db.flush()
        stages = await campaign_stages(db, campaign.id)
    running = list(stages.states)
    opened = sorted(stages.open_names() - before, key=running.index)
    calendar = plans.campaign_calendar(campaign.owner, holidays)
    for name in opened:
        spec = stages.spec(name)
        if spec is None or spec.allowed_hours <= 0:
            continue  # an ad hoc stage has the deadline it was asked with, or none
        deadline = calendar.add_working_hours(now, spec.allowed_hours)
        for row in stages.rows:
            if row.stage == name and row.deadline is None:
                row.deadline = deadline
    await db.flush()
    await approval_notices.request_stages(db=db, campaign=campaign, rows=stages.rows, stages=opened, now=now)
    if stages.held_names():
        await _tell_held(db, campaign, stages, now=now)
    return tuple(opened)


async def _tell_held(db: AsyncSession, campaign: Campaign, stages: CampaignStages, *, now: datetime) -> None:
    """Tell the owner what holds the held stages, unless the last such notice told them all of it already."""
    assert stages.content is not None  # `hold` read it
    held = stages.held_names()
    errors = _unique(error for name in held for error in stages.content.errors(name))
    notice = ContentHeld(campaign_id=campaign.id, campaign_name=campaign.name, stages=tuple(held), errors=errors)
    last = await db.scalar(select(Notification.payload).where(
        Notification.campaign_id == campaign.id, Notification.kind == Kind.CONTENT_CHECKS_FAILED,
        Notification.recipient_id == campaign.owner_id).order_by(Notification.id.desc()).limit(1))
    if isinstance(last, dict) and notice.told() <= ContentHeld.from_payload(last).told():
        return
    digest = hashlib.sha256("\n".join(sorted(notice.told())).encode()).hexdigest()[:24]
    await notifications.notify(
        db=db, dedupe_key=f"content-held:{campaign.id}:{digest}", kind=Kind.CONTENT_CHECKS_FAILED,
        payload=notice.to_payload(), recipient_id=campaign.owner_id, campaign_id=campaign.id, urgency=Urgency.HIGH,
        now=now)


def _unique(errors: Iterable[Finding]) -> tuple[Finding, ...]:
    return tuple(dict.fromkeys(errors))


async def _staff(db: AsyncSession, campaign: Campaign, spec: TemplateStage, *, now: datetime, actor_slack_id: str) -> bool:
    """Give the stage its approvers by role; False (and the owner told once) when nobody has the role."""
    people = await members_with_role(db, spec.approver_role)
    if not people:
        await _tell_unstaffed(db, campaign, spec, now=now, moment="open")
        return False
    rows = [Approval(campaign_id=campaign.id, stage=spec.name, stage_order=spec.order, approver_id=person.id,
                     rule=spec.rule, requested_by_id=campaign.owner_id, status=ApprovalStatus.PENDING, round=1)
            for person in people]
    db.add_all(rows)
    await db.flush()
    for row, person in zip(rows, people, strict=True):
        audit.record(db=db, actor=actor_slack_id, action="approval.requested", entity_type="approval",
                     entity_id=row.id, campaign_id=campaign.id, stage=spec.name, approver=person.slack_user_id,
                     rule=row.rule.value, by="template", role=spec.approver_role)
    return True


async def warn_unstaffed(*, db: AsyncSession, campaign: Campaign, now: datetime) -> list[str]:
    """At creation: tell the owner once about each template stage that nobody could approve today."""
    stages = await campaign_stages(db, campaign.id)
    unstaffed = []
    for spec in stages.template:
        if not await members_with_role(db, spec.approver_role):
            await _tell_unstaffed(db, campaign, spec, now=now, moment="created")
            unstaffed.append(spec.name)
    return unstaffed


async def _tell_unstaffed(db: AsyncSession, campaign: Campaign, spec: TemplateStage, *, now: datetime, moment: str) -> None:
    notice = StageUnstaffed(campaign_id=campaign.id, campaign_name=campaign.name, stage=spec.name,
                            role=spec.approver_role or "approver", opening=moment == "open")
    await notifications.notify(
        db=db, dedupe_key=f"stage-unstaffed:{campaign.id}:{moment}:{spec.name.casefold()}",
        kind=Kind.STAGE_UNSTAFFED, payload=notice.to_payload(), recipient_id=campaign.owner_id,
        campaign_id=campaign.id, urgency=Urgency.HIGH if moment == "open" else Urgency.NORMAL, now=now,
    )
