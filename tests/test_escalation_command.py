"""`/campaign escalation` end to end: signed requests to the real app, replies seen by the fake Slack server."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from models import AuditEntry, Campaign, TeamMember
from tests.conftest import RunningApp
from tests.fake_slack import Call, FakeSlack
from tests.slack_helpers import NEXT_YEAR, count, reply_text, send_command


async def command(app: RunningApp, fake: FakeSlack, text: str, *, user_id: str = "U0ALICE") -> Call:
    return await send_command(app, fake, "/campaign", text, user_id=user_id)


async def campaign_with_bob(app: RunningApp, fake: FakeSlack) -> None:
    """Alice owns CM-1; Bob has used the app once, so he is on the team."""
    await command(app, fake, f'new "Spring &lt;!channel&gt;" product_launch {NEXT_YEAR}')
    await command(app, fake, "list", user_id="U0BOB")


async def policy_and_contact(app: RunningApp) -> tuple[dict[str, Any], str | None]:
    async with app.sessions() as db:
        campaign = (await db.scalars(select(Campaign))).one()
        contact = await db.get(TeamMember, campaign.escalation_contact_id) if campaign.escalation_contact_id else None
        return campaign.escalation_policy, contact.slack_user_id if contact else None


@pytest.mark.parametrize("word", ["escalation", "policy", "ESCALATION"])
async def test_anyone_sees_the_policy(running_app: RunningApp, fake_slack: FakeSlack, word: str) -> None:
    await campaign_with_bob(running_app, fake_slack)
    reply = await command(running_app, fake_slack, f"{word} cm-1", user_id="U0BOB")
    assert reply.args["response_type"] == "ephemeral"
    shown = reply_text(reply)
    assert "Reminders 24 h and 2 h before due; late work goes to the owner 24 h after due" in shown
    assert "nobody: set one with `contact=@someone`" in shown and "<@U0ALICE> (owner)" in shown
    assert "Spring &lt;!channel&gt;" in shown and "<!channel>" not in shown


async def test_the_owner_sets_it_with_a_mention(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await campaign_with_bob(running_app, fake_slack)
    reply = await command(running_app, fake_slack, "escalation CM-1 reminders=48h,2h grace=1d critical=2h "
                                                   "contact-after=12h approval-grace=6h contact=<@U0BOB|bob>")
    assert reply.args["response_type"] == "ephemeral"
    shown = reply_text(reply)
    assert "Updated `reminders=`, `grace=`, `critical=`, `contact-after=`, `approval-grace=`, `contact=`" in shown
    assert "then to <@U0BOB> 12 h later;" in shown and "<@U0BOB> 6 h after." in shown
    assert await policy_and_contact(running_app) == (
        {"reminder_offsets_hours": [48.0, 2.0], "task_grace_hours": 24.0, "critical_grace_hours": 2.0,
         "contact_after_hours": 12.0, "approval_grace_hours": 6.0}, "U0BOB")
    async with running_app.sessions() as db:
        actions = list(await db.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))
    assert actions == ["campaign.created", "campaign.escalation_set"]

    reply = await command(running_app, fake_slack, "policy CM-1 reset contact=none")
    assert "Updated `reminders=`" in reply_text(reply)
    assert await policy_and_contact(running_app) == ({}, None)


async def test_someone_else_is_refused_and_nothing_changes(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await campaign_with_bob(running_app, fake_slack)
    await command(running_app, fake_slack, "escalation CM-1 grace=2h")
    reply = await command(running_app, fake_slack, "escalation CM-1 grace=9h contact=<@U0BOB|bob>", user_id="U0BOB")
    assert reply.args["response_type"] == "ephemeral"
    assert "Only the campaign owner or an admin can change its escalation policy" in reply.args["text"]
    assert "error id" not in reply_text(reply)
    assert await policy_and_contact(running_app) == ({"task_grace_hours": 2.0}, None)
    assert await count(running_app, AuditEntry) == 2  # created + Alice's change


@pytest.mark.parametrize(
    ("text", "explains"),
    [
        ("escalation", "Which campaign?"),
        ("escalation CM-9", "There is no campaign CM-9"),
        ("escalation T-1", "not a campaign reference"),
        ("escalation CM-1 grace=soon critical=1h", "`grace=`: `soon` is not a duration"),
        ("escalation CM-1 grace=40d", "`grace=` must be between 0 and 30 days"),
        ("escalation CM-1 reminders=1h,2h,3h,4h,5h,6h", "`reminders=` takes 1 to 5"),
        ("escalation CM-1 nap=1h", "`nap=` is not something I can set"),
        ("escalation CM-1 grace=2h contact=bob", "`contact=` needs a person"),
        ("escalation CM-1 grace=2h contact=<@U0NOBODY|nobody>", "`contact=`: that person is not on the team"),
        ("escalation CM-1 contact=<@U0ALICE|alice>", "owns CM-1"),
    ],
)
async def test_bad_input_is_explained_and_stores_nothing(
    running_app: RunningApp, fake_slack: FakeSlack, text: str, explains: str
) -> None:
    await campaign_with_bob(running_app, fake_slack)
    reply = await command(running_app, fake_slack, text)
    assert reply.args["response_type"] == "ephemeral"
    assert explains in reply.args["text"], reply.args["text"]
    assert await policy_and_contact(running_app) == ({}, None)
    assert await count(running_app, AuditEntry) == 1


async def test_a_completed_campaign_is_shown_but_not_changed(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await campaign_with_bob(running_app, fake_slack)
    await command(running_app, fake_slack, "launch CM-1")
    await command(running_app, fake_slack, "complete CM-1")
    refused = await command(running_app, fake_slack, "escalation CM-1 grace=2h")
    assert "CM-1 is completed; nothing can change" in refused.args["text"]
    shown = await command(running_app, fake_slack, "escalation CM-1")
    assert "its policy no longer changes" in reply_text(shown)
    assert await policy_and_contact(running_app) == ({}, None)


WORDS = ["reminders=", "grace=", "critical=", "contact-after=", "approval-reminder=", "approval-grace=", "contact=",
         "reset", "none", "24h,2h", "1d", "30m", "1.5h", "0", "-1", "31d", "nan", ",", "=", "<@U0BOB|bob>",
         "&lt;!channel&gt;", "&lt;@U0BOB&gt;", "<!channel>", "\u201c", "\x00"]
typed = st.lists(st.sampled_from(WORDS) | st.text(max_size=12), max_size=6).map(
    lambda parts: " ".join(parts).replace("= ", "="))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=typed)
async def test_any_settings_get_an_answer_never_an_error_id(
    running_app: RunningApp, fake_slack: FakeSlack, text: str
) -> None:
    if not await count(running_app, Campaign):
        await campaign_with_bob(running_app, fake_slack)
    reply = await command(running_app, fake_slack, f"escalation CM-1 {text}")
    shown = reply_text(reply)
    assert reply.args["response_type"] == "ephemeral"
    assert "error id" not in shown, (text, reply.args.get("text"))
    assert "<!channel>" not in shown
