"""A template's sign-off is a step of the plan: the work after it waits for the real sign-off, not for a
fixed lag. An early sign-off lets that work start at once; a rejection sends it back for a new round,
which the re-plan counts as a slip (buffer used, the owner told), like a late task.

The plan is test_plans.small_template() plus a "Copy sign-off" (role editor, 4h) after copy: brief 8h ->
copy 16h -(4h: the sign-off)-> review 4h -> launch, and brief -> design 8h -> review, with an 8h buffer.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime

from sqlalchemy import select

from models import Approval, Notification
from services import approvals, authz, team
from services.planning.templates import ApprovalStage, Template
from services.tasks import Context, complete
from tests.test_plans import BERLIN, Sessions, act, add_member, load, new_campaign, small_template, wall

EDITOR = "U0EDITOR"
LAUNCH = date(2027, 6, 16)  # Wed: deadline 64 from Mon 7 09:00; the work takes 32 + 8 buffer


def template_with_signoff() -> Template:
    stage = ApprovalStage(name="Copy sign-off", approver_role="editor", rule="any", allowed_hours=4.0, after_task="copy")
    return replace(small_template(), approvals=(stage,))


async def signed_off_campaign(sessions: Sessions) -> int:
    async with sessions.begin() as db:
        editor = await add_member(db, EDITOR)
        editor.role = "editor"
    return await new_campaign(sessions, launch=LAUNCH, template=template_with_signoff())


async def decide(sessions: Sessions, *, now: datetime, reject: str | None = None) -> None:
    async with sessions.begin() as db:
        approval_id = await db.scalar(select(Approval.id))
        member = await team.find_member(db=db, slack_user_id=EDITOR)
        assert approval_id is not None and member is not None
        ctx = Context(actor=authz.Actor(member=member), now=now)
        if reject is None:
            await approvals.approve(db=db, ctx=ctx, approval_id=approval_id)
        else:
            await approvals.reject(db=db, ctx=ctx, approval_id=approval_id, reason=reject)


async def test_the_plan_is_unchanged_while_nothing_is_decided(sessions: Sessions) -> None:
    with_stage = await signed_off_campaign(sessions)
    without = await new_campaign(sessions, launch=LAUNCH, owner="U0OTHER")
    (_, gated), (_, plain) = await load(sessions, with_stage), await load(sessions, without)
    for key in ("brief", "copy", "design", "review", "launch"):
        assert (gated[key].earliest_start_at, gated[key].due_at) == (plain[key].earliest_start_at, plain[key].due_at)


async def test_an_early_sign_off_lets_the_work_after_it_start_at_once(sessions: Sessions) -> None:
    campaign_id = await signed_off_campaign(sessions)
    # brief and design done, then copy on Wed 9 11:00. The sign-off opens, due 4h later (Wed 15:00):
    # review waits for it.
    await done_before_copy(sessions, campaign_id)
    done = datetime(2027, 6, 9, 11, tzinfo=BERLIN)
    await act(sessions, campaign_id, "copy", complete, now=done)
    _, task = await load(sessions, campaign_id)
    assert wall(task["review"].earliest_start_at) == datetime(2027, 6, 9, 15)
    # Signed off at 11:30: review may start at 11:30, not at 15:00 as a fixed 4h lag would have it.
    await decide(sessions, now=datetime(2027, 6, 9, 11, 30, tzinfo=BERLIN))
    _, task = await load(sessions, campaign_id)
    assert wall(task["review"].earliest_start_at) == datetime(2027, 6, 9, 11, 30)


async def test_a_rejection_is_a_slip_the_re_plan_counts(sessions: Sessions) -> None:
    # A tight launch: Mon 14 Jun, deadline 40 = 32h of work + 8h buffer, no float on the chain.
    async with sessions.begin() as db:
        (await add_member(db, EDITOR)).role = "editor"
    campaign_id = await new_campaign(sessions, launch=date(2027, 6, 14), template=template_with_signoff())
    await done_before_copy(sessions, campaign_id)
    # copy done on time, Wed 9 17:00: the sign-off is due Thu 13:00, review 13:00-17:00, the buffer whole.
    await act(sessions, campaign_id, "copy", complete, now=datetime(2027, 6, 9, 17, tzinfo=BERLIN))
    plan, task = await load(sessions, campaign_id)
    assert wall(task["review"].earliest_start_at) == datetime(2027, 6, 10, 13)
    assert plan.timeline.buffer_consumed_pct == 0
    # Rejected Thu 12:00: another round of 4h before review can start. From Thu 12:00 (13h to the launch):
    # new round 0-4, review 4-8, + 8 buffer = 16: 3h of the buffer gone. (A fixed 4h lag after copy would
    # have let review start at 13:00 and seen nothing.)
    await decide(sessions, now=datetime(2027, 6, 10, 12, tzinfo=BERLIN), reject="Tone is off")
    plan, task = await load(sessions, campaign_id)
    assert wall(task["review"].earliest_start_at) == datetime(2027, 6, 10, 16)
    assert plan.timeline.buffer_consumed_pct == 37.5
    # Resubmitted Fri 11 09:00: the new round is due 13:00, review 13:00-17:00, and the launch Monday 09:00
    # has no buffer left.
    async with sessions.begin() as db:
        owner = await team.find_member(db=db, slack_user_id="U0OWNER")
        assert owner is not None
        ctx = Context(actor=authz.Actor(member=owner), now=datetime(2027, 6, 11, 9, tzinfo=BERLIN))
        await approvals.resubmit(db=db, ctx=ctx, campaign_id=campaign_id, stage_name="Copy sign-off")
    plan, task = await load(sessions, campaign_id)
    assert wall(task["review"].earliest_start_at) == datetime(2027, 6, 11, 13)
    assert plan.timeline.buffer_consumed_pct == 100
    async with sessions() as db:
        alerts = list(await db.scalars(select(Notification.payload).where(Notification.kind == "plan_alert")))
    assert any("100% of the buffer" in " ".join(alert["alerts"]) for alert in alerts)


async def done_before_copy(sessions: Sessions, campaign_id: int) -> None:
    """brief on Mon 7 17:00 and design on Tue 8 17:00, both on time: only copy and its sign-off remain ahead."""
    await act(sessions, campaign_id, "brief", complete, now=datetime(2027, 6, 7, 17, tzinfo=BERLIN))
    await act(sessions, campaign_id, "design", complete, now=datetime(2027, 6, 8, 17, tzinfo=BERLIN))
