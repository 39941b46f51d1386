"""`/campaign` end to end: signed HTTP requests to the real app, replies seen by the fake Slack server."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from models import AuditEntry, Campaign, TeamMember
from tests.conftest import RunningApp
from tests.fake_slack import Call, FakeSlack
from tests.slack_helpers import NEXT_YEAR, count, fuzzed_texts, reply_text, send_command


async def command(app: RunningApp, fake: FakeSlack, text: str, *, user_id: str = "U0ALICE", **kw) -> Call:  # type: ignore[no-untyped-def]
    """Send `/campaign <text>` and return the reply that arrives at its response_url."""
    return await send_command(app, fake, "/campaign", text, user_id=user_id, **kw)


async def test_new_campaign_is_stored_and_announced(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    reply = await command(running_app, fake_slack, f'new "Spring launch" product_launch {NEXT_YEAR}')
    assert reply.args["response_type"] == "in_channel"
    assert "CM-1 created" in reply.args["text"] and "Spring launch" in reply.args["text"]
    async with running_app.sessions() as db:
        campaign = (await db.scalars(select(Campaign))).one()
        owner = await db.get(TeamMember, campaign.owner_id)
        entry = (await db.scalars(select(AuditEntry))).one()
    assert (campaign.name, campaign.template, campaign.launch_date.isoformat()) == (
        "Spring launch", "product_launch", NEXT_YEAR)
    assert campaign.channel_id == "C0GENERAL"
    assert owner is not None and owner.slack_user_id == "U0ALICE"
    assert (entry.action, entry.actor, entry.entity_id) == ("campaign.created", "U0ALICE", campaign.id)


async def test_first_contact_creates_the_member_from_their_profile(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await command(running_app, fake_slack, "list")
    await command(running_app, fake_slack, "list")
    async with running_app.sessions() as db:
        member = (await db.scalars(select(TeamMember))).one()
    assert (member.name, member.email, member.timezone) == ("Alice Archer", "alice@example.com", "Europe/Berlin")
    assert len(fake_slack.calls_to("users.info")) == 1  # the second contact needs no lookup


async def test_a_failing_profile_lookup_does_not_fail_the_command(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    fake_slack.fail_next("users.info", error="user_not_found")
    reply = await command(running_app, fake_slack, f'new "Quiet" newsletter {NEXT_YEAR}', user_id="U0GHOST")
    assert "CM-1 created" in reply.args["text"]
    async with running_app.sessions() as db:
        member = (await db.scalars(select(TeamMember))).one()
    assert member.slack_user_id == "U0GHOST" and member.profile_synced_at is None


async def test_list_and_show(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await command(running_app, fake_slack, f'new "Later one" webinar {NEXT_YEAR}')
    soon = (date.today() + timedelta(days=10)).isoformat()
    await command(running_app, fake_slack, f"new Sooner one event {soon}")
    listing = await command(running_app, fake_slack, "list")
    text = reply_text(listing)
    assert listing.args["response_type"] == "ephemeral"
    assert text.index("Sooner one") < text.index("Later one")  # soonest launch first
    shown = await command(running_app, fake_slack, "show cm-1", user_id="U0BOB")
    assert "Later one" in reply_text(shown) and "Webinar" in reply_text(shown)
    assert "<@U0ALICE>" in reply_text(shown)


@pytest.mark.parametrize("text", ["", "help", "HELP"])
async def test_help(running_app: RunningApp, fake_slack: FakeSlack, text: str) -> None:
    reply = await command(running_app, fake_slack, text)
    assert reply.args["response_type"] == "ephemeral"
    assert "/campaign new" in reply_text(reply)


@pytest.mark.parametrize(
    ("text", "explains"),
    [
        ("launchify CM-1", "is not a command I know"),
        ('new "Spring" product_launch 2027-02-30', "is not a date"),
        ('new "Spring" product_launch next-week', "is not a date"),
        ('new "Spring" product_launch 2020-01-01', "in the past"),
        (f'new "Spring" billboard {NEXT_YEAR}', "no template called `billboard`"),
        (f'new "Spring launch product_launch {NEXT_YEAR}', "quote is not closed"),
        (f"new {NEXT_YEAR} Spring product_launch", "Put the launch date last"),
        ("new Spring", "needs a name, a template and a launch date"),
        ("show", "Which campaign?"),
        ("show T-4", "not a campaign reference"),
        ("show CM-999", "There is no campaign CM-999"),
        ("list sleeping", "Unknown status"),
        (f'new "{"x" * 300}" promo {NEXT_YEAR}', "keep it under 201"),
    ],
)
async def test_bad_input_gets_a_short_ephemeral_explanation(
    running_app: RunningApp, fake_slack: FakeSlack, text: str, explains: str
) -> None:
    reply = await command(running_app, fake_slack, text)
    assert reply.args["response_type"] == "ephemeral"
    assert explains in reply.args["text"]
    assert "Traceback" not in reply_text(reply)
    assert await count(running_app, Campaign) == 0


async def test_curly_quotes_count_as_quotes(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await command(running_app, fake_slack, f"new \u201cHoliday sale\u201d promo {NEXT_YEAR}")
    async with running_app.sessions() as db:
        assert (await db.scalars(select(Campaign.name))).one() == "Holiday sale"


async def test_typed_mentions_and_markup_are_stored_as_typed_and_never_fire(
    running_app: RunningApp, fake_slack: FakeSlack
) -> None:
    # Slack sends &, < and > in command text as entities.
    typed = 'new "Tom &amp; Jerry &lt;!channel&gt; &lt;@U0BOB&gt;" promo ' + NEXT_YEAR
    reply = await command(running_app, fake_slack, typed)
    async with running_app.sessions() as db:
        assert (await db.scalars(select(Campaign.name))).one() == "Tom & Jerry <!channel> <@U0BOB>"
    for text in (reply.args["text"], reply_text(reply)):
        assert "<!channel>" not in text and "<@U0BOB>" not in text
    assert "Tom &amp; Jerry &lt;!channel&gt; &lt;@U0BOB&gt;" in reply.args["text"]


async def test_an_unexpected_error_shows_an_id_and_no_trace(
    running_app: RunningApp, fake_slack: FakeSlack, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from services import campaigns

    async def explode(**_: object) -> None:
        raise RuntimeError("database on fire")

    monkeypatch.setattr(campaigns, "list_campaigns", explode)
    reply = await command(running_app, fake_slack, "list")
    assert reply.args["response_type"] == "ephemeral"
    assert "error id" in reply.args["text"] and "on fire" not in reply_text(reply)
    error_id = reply.args["text"].split("`")[1]
    assert any(error_id in record.getMessage() and record.exc_info for record in caplog.records)


async def test_two_first_contacts_at_once_make_one_member(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    replies = await asyncio.gather(*(command(running_app, fake_slack, "list", user_id="U0BOB") for _ in range(4)))
    assert all(reply.args["response_type"] == "ephemeral" for reply in replies)
    assert await count(running_app, TeamMember) == 1


async def test_fuzzed_text_always_gets_a_200_and_a_reply(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    for text in fuzzed_texts(40):
        reply = await command(running_app, fake_slack, text)
        assert reply.args["response_type"] in ("ephemeral", "in_channel"), text
        assert "error id" not in reply.args["text"], (text, reply.args["text"])
        rendered = reply_text(reply)
        assert "<!channel>" not in rendered and "<@U0BOB>" not in rendered
