"""`/team` through signed requests: profiles, hours, capacity, time off, and who may change whom."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from models import AuditEntry, TeamMember
from tests.conftest import RunningApp, app_settings, start_app
from tests.fake_slack import Call, FakeSlack
from tests.slack_helpers import NEXT_YEAR, send_command


async def team(app: RunningApp, fake: FakeSlack, text: str, *, user_id: str = "U0ALICE") -> Call:
    return await send_command(app, fake, "/team", text, user_id=user_id)


async def find(app: RunningApp, slack_user_id: str) -> TeamMember | None:
    async with app.sessions() as db:
        return await db.scalar(select(TeamMember).where(TeamMember.slack_user_id == slack_user_id))


async def member(app: RunningApp, slack_user_id: str) -> TeamMember:
    found = await find(app, slack_user_id)
    assert found is not None
    return found


async def test_me_updates_my_profile(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    reply = await team(running_app, fake_slack,
                       "me skills=Copywriting, Email tz=europe/paris hours=mon-thu 9-17, fri 9-13 capacity=3 "
                       "ooo=2027-01-04..2027-01-08 role=senior writer")
    assert reply.args["response_type"] == "ephemeral" and "Updated" in reply.args["text"]
    alice = await member(running_app, "U0ALICE")
    assert alice.skills == ["copywriting", "email"] and alice.timezone == "Europe/Paris"
    assert alice.weekly_availability["fri"] == [["09:00", "13:00"]] and "sat" not in alice.weekly_availability
    assert (alice.max_concurrent_tasks, alice.role) == (3, "senior writer")
    assert (alice.out_of_office_from, alice.out_of_office_until) == (date(2027, 1, 4), date(2027, 1, 8))
    assert "Mon-Thu 9-17, Fri 9-13 Europe/Paris" in repr(reply.args["blocks"])
    await team(running_app, fake_slack, "me ooo=off")
    assert (await member(running_app, "U0ALICE")).out_of_office_from is None
    async with running_app.sessions() as db:
        actions = (await db.scalars(select(AuditEntry.action))).all()
    assert actions.count("member.updated") == 2


async def test_a_campaign_owner_adds_a_teammate_with_skills_then_only_an_admin_may_change_them(
    running_app: RunningApp, fake_slack: FakeSlack
) -> None:
    await send_command(running_app, fake_slack, "/campaign", f'new "Staffed" promo {NEXT_YEAR}')  # Alice owns it
    refused = await team(running_app, fake_slack, "add <@U0BOB|bob> role=designer skills=design,video")
    assert "more than `skills=`" in refused.args["text"]
    assert await find(running_app, "U0BOB") is None
    reply = await team(running_app, fake_slack, "add <@U0BOB|bob> skills=design,video")
    assert "Bob Baker is on the team" in reply.args["text"]
    bob = await member(running_app, "U0BOB")
    assert (bob.role, bob.skills, bob.timezone, bob.notify_via) == (None, ["design", "video"], "America/Chicago", "slack")
    refused = await team(running_app, fake_slack, "add <@U0BOB> capacity=1")
    assert "Only an admin" in refused.args["text"]
    assert (await member(running_app, "U0BOB")).max_concurrent_tasks == 5
    await team(running_app, fake_slack, "me capacity=2 role=designer", user_id="U0BOB")  # anyone may edit themselves
    assert ((bob := await member(running_app, "U0BOB")).max_concurrent_tasks, bob.role) == (2, "designer")


@pytest.mark.parametrize("text", ["add <@U0BOB|bob> role=lead notify=email ooo=2027-01-04..2027-01-08",
                                  "add <@U0BOB|bob> skills=design", "add <@U0BOB|bob>"])
async def test_someone_who_owns_no_campaign_cannot_put_a_newcomer_on_the_team(
    running_app: RunningApp, fake_slack: FakeSlack, text: str
) -> None:
    reply = await team(running_app, fake_slack, text)
    assert "Only a campaign owner or an admin" in reply.args["text"]
    assert await find(running_app, "U0BOB") is None
    async with running_app.sessions() as db:
        assert (await db.scalars(select(AuditEntry))).all() == []


async def test_an_admin_may_change_anyone(db_url: str, fake_slack: FakeSlack) -> None:
    async with start_app(app_settings(db_url, fake_slack, admin_user_ids="U0ALICE"), fake_slack) as app:
        await team(app, fake_slack, "me", user_id="U0BOB")
        reply = await team(app, fake_slack, "add <@U0BOB> capacity=9")
        assert "Updated max concurrent tasks" in reply.args["text"]
        assert (await member(app, "U0BOB")).max_concurrent_tasks == 9


async def test_list_shows_everyone_with_load(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await team(running_app, fake_slack, "me skills=ads", user_id="U0BOB")
    reply = await team(running_app, fake_slack, "list")
    text = repr(reply.args["blocks"])
    assert "Team: 2 people" in text and "Alice Archer" in text and "0 of 5 slots busy" in text and "ads" in text


@pytest.mark.parametrize(
    ("text", "explains"),
    [
        ("me tz=Mars/Olympus", "is not a time zone"),
        ("me hours=weekdays", "can't read the hours"),
        ("me hours=mon-fri 17-9", "end must come after the start"),
        ("me capacity=0", "a number from 1 to 50"),
        ("me capacity=lots", "a number from 1 to 50"),
        ("me ooo=2027-01-08..2027-01-04", "ends before it starts"),
        ("me ooo=soon", "Out of office is a date"),
        ("me colour=blue", "is not something I can set"),
        ("me notify=pigeon", "is not a way I can reach you"),
        ("me skills=a skills=b", "given twice"),
        ("add bob", "Mention the person"),
        ("add", "Who?"),
        ("fire <@U0BOB>", "is not a command I know"),
    ],
)
async def test_bad_input_is_explained_and_changes_nothing(
    running_app: RunningApp, fake_slack: FakeSlack, text: str, explains: str
) -> None:
    reply = await team(running_app, fake_slack, text)
    assert reply.args["response_type"] == "ephemeral" and explains in reply.args["text"]
    async with running_app.sessions() as db:
        assert (await db.scalars(select(AuditEntry))).all() == []


async def test_typed_markup_in_a_role_is_escaped(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    reply = await team(running_app, fake_slack, "me role=&lt;!channel&gt; lead skills=&lt;@U0BOB&gt;")
    assert (await member(running_app, "U0ALICE")).role == "<!channel> lead"
    text = repr(reply.args["blocks"])
    assert "<!channel>" not in text and "&lt;!channel&gt; lead" in text and "<@U0BOB>" not in text
