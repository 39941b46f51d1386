"""People and channels as a person types them, in every command that takes one (signed requests, real app).

Slack escapes a picked mention as `<@U123|name>`; a name typed without picking it arrives as plain `@name`,
and a person may type an id (`@U123`) they saw in a reply. All of them go through one resolver.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from models import Approval, AuditEntry, Campaign, Task, TeamMember
from tests.conftest import RunningApp
from tests.fake_slack import Call, FakeSlack
from tests.slack_helpers import NEXT_YEAR, reply_text, send_command

UNKNOWN_JULIA = "I don't know @julia; `/team list` shows who is here."


async def on_the_team(app: RunningApp, fake: FakeSlack, *users: tuple[str, str]) -> None:
    """Each (Slack id, real name) uses the app once, so they are members under that name."""
    for user_id, real_name in users:
        if user_id not in fake.users:
            fake.add_user(user_id, name=real_name.split()[0].lower(), real_name=real_name)
        await send_command(app, fake, "/team", "me", user_id=user_id)


async def a_campaign_with_bob(app: RunningApp, fake: FakeSlack) -> None:
    await on_the_team(app, fake, ("U0BOB", "Bob Baker"))
    reply = await send_command(app, fake, "/campaign", f'new "Spring launch" webinar {NEXT_YEAR}')
    assert "created" in reply.args["text"], reply.args["text"]


async def assignee_of_t1(app: RunningApp) -> str | None:
    async with app.sessions() as db:
        task = await db.get(Task, 1)
        assert task is not None
        member = await db.get(TeamMember, task.assignee_id) if task.assignee_id else None
    return member.slack_user_id if member else None


@pytest.mark.parametrize("typed", ["@bob", "@Bob", "@BOB", '"@Bob Baker"', "@bob.baker", "@U0BOB", "<@U0BOB|bob>",
                                   "&lt;@U0BOB|bob&gt;"])
async def test_task_assign_takes_a_person_as_typed(running_app: RunningApp, fake_slack: FakeSlack, typed: str) -> None:
    await a_campaign_with_bob(running_app, fake_slack)
    reply = await send_command(running_app, fake_slack, "/task", f"assign T-1 {typed}")
    assert "is now Bob Baker's" in reply_text(reply), reply_text(reply)
    assert await assignee_of_t1(running_app) == "U0BOB"


async def test_an_unknown_name_is_explained_in_every_command(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await a_campaign_with_bob(running_app, fake_slack)
    typed = [("/team", "add @julia"), ("/task", "assign T-1 @julia"),
             ("/approval", 'request CM-1 "Legal review" @julia'),
             ("/campaign", "escalation CM-1 contact=@julia"),
             ("/campaign", f'new "Autumn" webinar {NEXT_YEAR} owner=@julia')]
    for command, text in typed:
        reply = await send_command(running_app, fake_slack, command, text)
        assert reply.args["response_type"] == "ephemeral"
        assert reply.args["text"] == UNKNOWN_JULIA, (command, text, reply.args["text"])
    assert await assignee_of_t1(running_app) is None
    async with running_app.sessions() as db:
        assert (await db.scalars(select(Approval))).all() == []
        assert len((await db.scalars(select(Campaign))).all()) == 1
        assert [entry.action for entry in await db.scalars(select(AuditEntry))].count("member.updated") == 0


async def test_two_people_of_one_name_are_listed_by_id(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await a_campaign_with_bob(running_app, fake_slack)
    await on_the_team(running_app, fake_slack, ("U0BOBBY", "Bob Stone"))
    reply = await send_command(running_app, fake_slack, "/task", "assign T-1 @bob")
    text = reply.args["text"]
    assert "@bob could be" in text and "Bob Baker (@U0BOB)" in text and "Bob Stone (@U0BOBBY)" in text, text
    assert await assignee_of_t1(running_app) is None
    # The whole name, or the id the answer listed, settles it.
    reply = await send_command(running_app, fake_slack, "/task", 'assign T-1 "@bob stone"')
    assert "is now Bob Stone's" in reply_text(reply)
    reply = await send_command(running_app, fake_slack, "/task", "assign T-1 @U0BOB")
    assert await assignee_of_t1(running_app) == "U0BOB"


async def test_a_typed_name_is_escaped_in_the_answer(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await a_campaign_with_bob(running_app, fake_slack)
    reply = await send_command(running_app, fake_slack, "/task", "assign T-1 @&lt;!channel&gt;")
    shown = reply_text(reply)
    assert "<!channel>" not in shown and "I don't know @&lt;!channel&gt;;" in shown, shown


async def test_team_add_finds_a_member_by_name(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await on_the_team(running_app, fake_slack, ("U0BOB", "Bob Baker"))
    reply = await send_command(running_app, fake_slack, "/team", "add @bob")
    assert "Bob Baker" in reply_text(reply) and "Mention the person" not in reply_text(reply)


async def test_approval_request_takes_names_and_ids(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await a_campaign_with_bob(running_app, fake_slack)
    await on_the_team(running_app, fake_slack, ("U0CAROL", "Carol Chen"))
    reply = await send_command(running_app, fake_slack, "/approval", 'request CM-1 "Legal review" @carol @U0BOB @bob')
    assert "Legal review" in reply_text(reply), reply_text(reply)
    async with running_app.sessions() as db:
        approvers = (await db.scalars(
            select(TeamMember.slack_user_id).join(Approval, Approval.approver_id == TeamMember.id))).all()
    assert sorted(approvers) == ["U0BOB", "U0CAROL"]  # @U0BOB and @bob are one person, asked once


async def test_escalation_contact_by_name(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await a_campaign_with_bob(running_app, fake_slack)
    reply = await send_command(running_app, fake_slack, "/campaign", "escalation CM-1 contact=@bob")
    assert "Updated `contact=`" in reply_text(reply), reply_text(reply)
    async with running_app.sessions() as db:
        campaign = await db.get(Campaign, 1)
        assert campaign is not None and campaign.escalation_contact_id is not None
        contact = await db.get(TeamMember, campaign.escalation_contact_id)
    assert contact is not None and contact.slack_user_id == "U0BOB"


@pytest.mark.parametrize("typed", ["owner=@bob", "owner=<@U0BOB|bob>", "owner=@U0BOB"])
async def test_campaign_new_takes_an_owner(running_app: RunningApp, fake_slack: FakeSlack, typed: str) -> None:
    await on_the_team(running_app, fake_slack, ("U0BOB", "Bob Baker"))
    reply = await send_command(running_app, fake_slack, "/campaign", f'new "Spring launch" webinar {NEXT_YEAR} {typed}')
    assert "created" in reply.args["text"], reply.args["text"]
    async with running_app.sessions() as db:
        campaign = (await db.scalars(select(Campaign))).one()
        owner = await db.get(TeamMember, campaign.owner_id)
    assert owner is not None and owner.slack_user_id == "U0BOB" and campaign.name == "Spring launch"


@pytest.mark.parametrize("typed", ["<#C0LAUNCH|launch>", "#C0LAUNCH", "<#C0LAUNCH>"])
async def test_campaign_channel_takes_an_id_as_typed(running_app: RunningApp, fake_slack: FakeSlack, typed: str) -> None:
    await a_campaign_with_bob(running_app, fake_slack)
    await send_command(running_app, fake_slack, "/campaign", f"channel CM-1 {typed}")
    async with running_app.sessions() as db:
        campaign = await db.get(Campaign, 1)
    assert campaign is not None and campaign.channel_id == "C0LAUNCH"


async def test_a_channel_name_slack_did_not_resolve_is_explained(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    """Slack turns a channel picked after `#` into `<#C123|name>`; a bare `#name` is one it does not know."""
    await a_campaign_with_bob(running_app, fake_slack)
    reply: Call = await send_command(running_app, fake_slack, "/campaign", "channel CM-1 #no-such&lt;b&gt;")
    shown = reply_text(reply)
    assert "I don't know the channel #no-such&lt;b&gt;" in shown and "<b>" not in shown, shown
