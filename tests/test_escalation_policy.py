"""A campaign's escalation policy: parsing what people type, storing it (owner or admin only), describing it,
and the sweep honouring `contact_after_hours`."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from blocks.escalation import duration, escalation_policy
from models import AuditEntry, Campaign, CampaignStatus, Task, TeamMember
from services import authz
from services.errors import InvalidInput, NotAllowed
from services.escalation_policy import KEEP, EffectivePolicy, Keep, describe, parse_change, set_policy
from services.reminders import Policy
from tests.test_blocks import assert_valid
from tests.test_reminders import D, H, change, run, world

Sessions = async_sessionmaker[AsyncSession]
SECOND = timedelta(seconds=1)


# ---------------------------------------------------------------- parsing (no database)


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("reminders=24h,2h", {"reminder_offsets_hours": [24.0, 2.0]}),
        ("reminders=2h,1d,30m", {"reminder_offsets_hours": [24.0, 2.0, 0.5]}),  # latest first
        ("reminders=24h, 2h", {"reminder_offsets_hours": [24.0, 2.0]}),  # a space after the comma
        ("reminders=4", {"reminder_offsets_hours": [4.0]}),
        ("grace=1d", {"task_grace_hours": 24.0}),
        ("grace=0", {"task_grace_hours": 0.0}),
        ("GRACE=30d", {"task_grace_hours": 720.0}),
        ("critical=1.5h", {"critical_grace_hours": 1.5}),
        ("critical=90m", {"critical_grace_hours": 1.5}),
        ("contact-after=12", {"contact_after_hours": 12.0}),
        ("approval-reminder=30m", {"approval_reminder_hours": 0.5}),
        ("approval-grace=12h", {"approval_grace_hours": 12.0}),
    ],
)
def test_each_key_is_parsed_into_hours(typed: str, stored: dict[str, Any]) -> None:
    change_ = parse_change(typed.split(" "))
    assert change_.values == stored
    assert not change_.reset and isinstance(change_.contact, Keep)


def test_reset_and_contact_words() -> None:
    assert parse_change(["reset"]).reset and parse_change(["reset"]).values == {}
    assert parse_change(["contact=none"]).contact is None
    assert parse_change(["contact=<@U0DANA|dana", "smith>"]).contact == "<@U0DANA|dana smith>"
    assert parse_change([]).is_empty and not parse_change(["reset"]).is_empty


@pytest.mark.parametrize(
    ("typed", "names"),
    [
        ("grace=soon", "`grace=`: `soon` is not a duration (write it like 30m, 4h or 1d; 2d = 48 hours"),
        ("critical=-1h", "`critical=`: `-1h` is negative"),
        ("grace=1w", "`grace=`: `1w` is not a duration"),
        ("grace=nan", "`grace=`: `nan` is not a duration"),
        ("grace=", "`grace=`: `` is not a duration"),
        ("grace=31d", "`grace=` must be between 0 and 30 days"),
        ("contact-after=721h", "`contact-after=` must be between 0 and 30 days"),
        ("approval-grace=1000", "`approval-grace=` must be between 0 and 30 days"),
        ("reminders=0", "`reminders=` must be more than 0"),
        ("reminders=31d", "`reminders=` must be more than 0 and at most 30 days"),
        ("reminders=1h,2h,3h,4h,5h,6h", "`reminders=` takes 1 to 5"),
        ("reminders=", "`reminders=` takes 1 to 5"),
        ("approval-reminder=0", "`approval-reminder=` must be more than 0"),
        ("snooze=1h", "`snooze=` is not something I can set"),
        ("grace=1h grace=2h", "`grace=` is given twice"),
        ("soon", "I don't know what `soon` means here"),
        ("contact=", "`contact=` needs a person"),
    ],
)
def test_bad_input_names_the_key(typed: str, names: str) -> None:
    with pytest.raises(InvalidInput) as error:
        parse_change(typed.split(" "))
    assert names in str(error.value)


def test_unreadable_stored_contact_after_falls_back_to_the_grace() -> None:
    assert Policy.of({}).contact_after is None
    assert Policy.of({"contact_after_hours": "soon"}).contact_after is None
    assert Policy.of({"contact_after_hours": 6}).contact_delay(timedelta(hours=4)) == 6 * H
    assert Policy.of({}).contact_delay(timedelta(hours=4)) == 4 * H


# ---------------------------------------------------------------- storing (both backends)


async def setup(sessions: Sessions, *, status: CampaignStatus = CampaignStatus.ACTIVE) -> dict[str, int]:
    """Owner UOWNER, a colleague UOTHER, a future contact UDANA, a deactivated UGONE; campaign with no policy."""
    async with sessions.begin() as db:
        ids = {}
        for slack_id, active in (("UOWNER", True), ("UOTHER", True), ("UDANA", True), ("UGONE", False)):
            member = TeamMember(slack_user_id=slack_id, name=slack_id.lower()[1:], is_active=active)
            db.add(member)
            await db.flush()
            ids[slack_id] = member.id
        campaign = Campaign(name="Spring", template="small", launch_date=date(2027, 5, 1), status=status,
                            owner_id=ids["UOWNER"])
        db.add(campaign)
        await db.flush()
        ids["campaign"] = campaign.id
    return ids


async def apply(sessions: Sessions, campaign_id: int, typed: str, *, by: str = "UOWNER", admin: bool = False,
                contact: str | None | Keep = KEEP) -> list[str]:
    async with sessions.begin() as db:
        campaign = await db.get_one(Campaign, campaign_id)
        actor = (await db.scalars(select(TeamMember).where(TeamMember.slack_user_id == by))).one()
        return await set_policy(db=db, campaign=campaign, change=parse_change(typed.split()), contact_user_id=contact,
                                actor=authz.Actor(member=actor, is_admin=admin))


async def stored(sessions: Sessions, campaign_id: int) -> tuple[dict[str, Any], int | None, int]:
    async with sessions() as db:
        campaign = await db.get_one(Campaign, campaign_id)
        audits = await db.scalar(select(func.count()).select_from(AuditEntry)) or 0
        return campaign.escalation_policy, campaign.escalation_contact_id, audits


async def effective(sessions: Sessions, campaign_id: int) -> EffectivePolicy:
    from services.campaigns import get_campaign

    async with sessions() as db:
        return await describe(db=db, campaign=await get_campaign(db=db, campaign_id=campaign_id))


async def test_every_key_is_stored_audited_and_described(sessions: Sessions) -> None:
    ids = await setup(sessions)
    changed = await apply(sessions, ids["campaign"], "reminders=48h,1h grace=1d critical=2h contact-after=6h "
                          "approval-reminder=12h approval-grace=30m", contact="UDANA")
    assert changed == ["reminders", "grace", "critical", "contact-after", "approval-reminder", "approval-grace",
                       "contact"]
    policy, contact, audits = await stored(sessions, ids["campaign"])
    assert policy == {"reminder_offsets_hours": [48.0, 1.0], "task_grace_hours": 24.0, "critical_grace_hours": 2.0,
                      "contact_after_hours": 6.0, "approval_reminder_hours": 12.0, "approval_grace_hours": 0.5}
    assert contact == ids["UDANA"] and audits == 1
    async with sessions() as db:
        entry = (await db.scalars(select(AuditEntry))).one()
    assert (entry.action, entry.actor, entry.entity_id) == ("campaign.escalation_set", "UOWNER", ids["campaign"])
    assert entry.details["policy"] == policy and entry.details["contact_id"] == ids["UDANA"]

    view = await effective(sessions, ids["campaign"])
    assert view.set_keys == {"reminders", "grace", "critical", "contact-after", "approval-reminder", "approval-grace"}
    assert (view.policy.offsets, view.policy.task_grace, view.policy.contact_after) == ((1.0, 48.0), 24 * H, 6 * H)
    assert view.level_two is not None and view.level_two.slack_user_id == "UDANA"


async def test_a_partial_change_keeps_the_rest(sessions: Sessions) -> None:
    ids = await setup(sessions)
    await apply(sessions, ids["campaign"], "grace=12h critical=1h")
    assert await apply(sessions, ids["campaign"], "critical=3h") == ["critical"]
    assert (await stored(sessions, ids["campaign"]))[0] == {"task_grace_hours": 12.0, "critical_grace_hours": 3.0}
    assert await apply(sessions, ids["campaign"], "critical=3h") == []  # the same again: nothing, no audit
    assert (await stored(sessions, ids["campaign"]))[2] == 2
    view = await effective(sessions, ids["campaign"])
    assert view.set_keys == {"grace", "critical"} and view.policy.offsets == (2.0, 24.0)  # reminders: default


async def test_reset_restores_the_defaults_and_keeps_the_contact(sessions: Sessions) -> None:
    ids = await setup(sessions)
    await apply(sessions, ids["campaign"], "grace=2h reminders=1h", contact="UDANA")
    assert await apply(sessions, ids["campaign"], "reset") == ["reminders", "grace"]
    assert (await stored(sessions, ids["campaign"]))[:2] == ({}, ids["UDANA"])
    view = await effective(sessions, ids["campaign"])
    assert view.set_keys == frozenset() and view.policy == Policy.of({})
    await apply(sessions, ids["campaign"], "grace=2h reminders=1h")
    await apply(sessions, ids["campaign"], "reset critical=1h")  # reset, then what follows
    assert (await stored(sessions, ids["campaign"]))[0] == {"critical_grace_hours": 1.0}
    async with sessions.begin() as db:  # a key some older version stored: reset drops it too
        (await db.get_one(Campaign, ids["campaign"])).escalation_policy = {"critical_grace_hours": 1.0, "old": 1}
    assert await apply(sessions, ids["campaign"], "reset critical=1h") == ["old"]
    assert (await stored(sessions, ids["campaign"]))[0] == {"critical_grace_hours": 1.0}


async def test_contact_is_set_and_cleared(sessions: Sessions) -> None:
    ids = await setup(sessions)
    assert await apply(sessions, ids["campaign"], "contact=<@UDANA>", contact="UDANA") == ["contact"]
    assert (await stored(sessions, ids["campaign"]))[1] == ids["UDANA"]
    assert await apply(sessions, ids["campaign"], "contact=none", contact=None) == ["contact"]
    assert (await stored(sessions, ids["campaign"]))[1] is None
    view = await effective(sessions, ids["campaign"])
    assert view.contact is None and view.level_two is None


@pytest.mark.parametrize(
    ("contact", "explains"),
    [("UNOBODY", "not on the team"), ("UGONE", "is deactivated"), ("UOWNER", "owns CM-1")],
)
async def test_a_bad_contact_stores_nothing(sessions: Sessions, contact: str, explains: str) -> None:
    ids = await setup(sessions)
    await apply(sessions, ids["campaign"], "grace=2h", contact="UDANA")
    before = await stored(sessions, ids["campaign"])
    with pytest.raises(InvalidInput) as error:
        await apply(sessions, ids["campaign"], "grace=9h critical=1h", contact=contact)
    assert "`contact=`" in str(error.value) and explains in str(error.value)
    assert await stored(sessions, ids["campaign"]) == before


async def test_only_the_owner_or_an_admin_may_change_it(sessions: Sessions) -> None:
    ids = await setup(sessions)
    with pytest.raises(NotAllowed, match="Only the campaign owner or an admin can change its escalation policy"):
        await apply(sessions, ids["campaign"], "grace=2h", by="UOTHER", contact="UDANA")
    assert await stored(sessions, ids["campaign"]) == ({}, None, 0)
    assert await apply(sessions, ids["campaign"], "grace=2h", by="UOTHER", admin=True) == ["grace"]
    async with sessions() as db:
        assert (await db.scalars(select(AuditEntry.actor))).one() == "UOTHER"


@pytest.mark.parametrize("status", [CampaignStatus.COMPLETED, CampaignStatus.CANCELLED])
async def test_a_finished_campaign_keeps_its_policy(sessions: Sessions, status: CampaignStatus) -> None:
    ids = await setup(sessions, status=status)
    with pytest.raises(InvalidInput, match=f"CM-{ids['campaign']} is {status.value}; nothing can change"):
        await apply(sessions, ids["campaign"], "grace=2h", contact="UDANA")
    assert await stored(sessions, ids["campaign"]) == ({}, None, 0)
    assert (await effective(sessions, ids["campaign"])).set_keys == frozenset()  # anyone may still look


# ---------------------------------------------------------------- the sweep honours contact_after_hours


async def test_the_default_keeps_level_two_one_grace_after_level_one(sessions: Sessions) -> None:
    w = await world(sessions)
    t = f"T-{w['task']}"
    assert f"escalation:{t}:owner" in await run(sessions, D + 24 * H + SECOND)
    assert f"escalation:{t}:contact" not in await run(sessions, D + 48 * H)
    assert f"escalation:{t}:contact" in await run(sessions, D + 48 * H + SECOND)


async def test_contact_after_moves_level_two(sessions: Sessions) -> None:
    w = await world(sessions, policy={"contact_after_hours": 6})
    t = f"T-{w['task']}"
    assert f"escalation:{t}:owner" in await run(sessions, D + 24 * H + SECOND)
    assert await run(sessions, D + 30 * H) == set()  # "more than": due + grace + 6 h exactly is not yet
    assert await run(sessions, D + 30 * H + SECOND) == {f"escalation:{t}:contact"}


async def test_contact_after_applies_to_critical_work_too(sessions: Sessions) -> None:
    # Default: critical level 2 at due + 4 h + 4 h; with contact_after 1 h, at due + 4 h + 1 h.
    w = await world(sessions, policy={"contact_after_hours": 1})
    t = f"T-{w['task']}"
    await change(sessions, Task, w["task"], on_critical_path=True)
    assert await run(sessions, D + 4 * H + SECOND) >= {f"escalation:{t}:owner"}
    assert await run(sessions, D + 5 * H) == set()
    assert await run(sessions, D + 5 * H + SECOND) == {f"escalation:{t}:contact"}


async def test_contact_after_zero_reaches_both_levels_at_once(sessions: Sessions) -> None:
    w = await world(sessions, policy={"contact_after_hours": 0})
    t = f"T-{w['task']}"
    both = {f"escalation:{t}:owner", f"escalation:{t}:contact"}
    assert not both & await run(sessions, D + 24 * H)
    assert both <= await run(sessions, D + 24 * H + SECOND)


# ---------------------------------------------------------------- the reply


def _view(name: str, *, stored_policy: dict[str, Any] | None = None, contact: TeamMember | None = None,
          status: CampaignStatus = CampaignStatus.ACTIVE) -> EffectivePolicy:
    owner = TeamMember(id=1, slack_user_id="U0ALICE", name="Alice", is_active=True)
    campaign = Campaign(id=12, name=name, template="small", launch_date=date(2027, 5, 1), status=status, owner_id=1)
    campaign.owner = owner
    keys = frozenset({"contact-after"} if stored_policy and "contact_after_hours" in stored_policy else ())
    return EffectivePolicy(campaign=campaign, policy=Policy.of(stored_policy), set_keys=keys, owner=owner,
                           contact=contact)


def test_the_reply_escapes_a_hostile_name() -> None:
    hostile = "<!channel> & <@U1>"
    reply = escalation_policy(_view(hostile), changed=["grace"])
    assert_valid(reply)
    shown = repr(reply)
    assert "<!channel>" not in shown and "<@U1>" not in shown
    assert "&lt;!channel&gt; &amp; &lt;@U1&gt;" in reply["text"] and "&lt;!channel&gt;" in shown


def test_the_reply_says_it_in_plain_words() -> None:
    dana = TeamMember(id=2, slack_user_id="U0DANA", name="Dana", is_active=True)
    shown = repr(escalation_policy(_view("Spring", contact=dana)))
    assert ("Reminders 24 h and 2 h before due; late work goes to the owner 24 h after due (4 h for critical-path "
            "or blocked work), then to <@U0DANA> 24 h later (4 h later for critical-path or blocked work); "
            "approvals: reminder 24 h before the deadline, owner at the deadline, <@U0DANA> 24 h after.") in shown
    assert "*Level 1*\\n<@U0ALICE> (owner)" in shown and "`grace=` _default_" in shown
    set_after = repr(escalation_policy(_view("Spring", stored_policy={"contact_after_hours": 6}, contact=dana)))
    assert "then to <@U0DANA> 6 h later;" in set_after and "`contact-after=` _set_" in set_after


def test_the_reply_without_a_usable_contact() -> None:
    assert "nobody: set one with `contact=@someone`" in repr(escalation_policy(_view("Spring")))
    gone = TeamMember(id=3, slack_user_id="U0GONE", name="Gone", is_active=False)
    shown = repr(escalation_policy(_view("Spring", contact=gone)))
    assert "is deactivated, so nobody" in shown and "nobody else hears of it" in shown
    finished = repr(escalation_policy(_view("Spring", status=CampaignStatus.COMPLETED)))
    assert "no longer changes" in finished


@pytest.mark.parametrize(("hours", "shown"), [(24, "24 h"), (0.5, "30 min"), (1.5, "1 h 30 min"), (48, "2 d"),
                                               (0, "0 h"), (720, "30 d"), (36, "36 h")])
def test_durations_read_naturally(hours: float, shown: str) -> None:
    assert duration(timedelta(hours=hours)) == shown
