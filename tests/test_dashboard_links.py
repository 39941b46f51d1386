"""Stored dashboard links, end to end: issued, listed and revoked through signed Slack requests to the real
app, and checked by real HTTP GETs to its dashboard (a refused link gets a plain 401/403 page with the
security headers and no data); the App Home's button; the weekly status's timeline link."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import delete, select

from blocks.status_report import campaign_status
from handlers.links import secret_of
from handlers.web.dashboard.render import HEADERS
from models import Campaign, DashboardLink, Notification, TeamMember
from services import authz, dashboard_links, links, sweep
from services.kinds import Kind
from tests.conftest import RunningApp, app_settings, start_app
from tests.fake_slack import Call, FakeSlack
from tests.fake_slack_blocks import MESSAGE_BLOCK_LIMIT, block_problems, view_problems
from tests.home_helpers import BERLIN, home_click, member, open_home, planned_campaign
from tests.slack_helpers import reply_text, send_command
from tests.slack_requests import block_actions_payload

ADMIN = "U0ADAM"
HOSTILE = 'Secret <script>alert("x")</script> & plan'
LINK = re.compile(r"<(https?://[^|>]+(/dashboard/[A-Za-z0-9_.-]+))\|Open the dashboard>")
NUMBER = re.compile(r"Link (\d+), good until")


# ---------------------------------------------------------------- helpers


def secret(app: RunningApp) -> bytes:
    assert app.runtime.deps is not None
    made = secret_of(app.runtime.deps.settings)
    assert made is not None
    return made


async def dashboard(app: RunningApp, fake: FakeSlack, text: str = "", user: str = "U0ALICE") -> Call:
    return await send_command(app, fake, "/dashboard", text, user_id=user)


async def issued(app: RunningApp, fake: FakeSlack, text: str = "", user: str = "U0ALICE") -> tuple[str, int]:
    """`/dashboard [text]` as `user`: the link's path on this server, and its number."""
    reply = await dashboard(app, fake, text, user)
    shown = reply_text(reply)
    url, number = LINK.search(shown), NUMBER.search(shown)
    assert url and number, shown
    return url.group(2), int(number.group(1))


async def get(app: RunningApp, path: str) -> tuple[int, dict[str, str], str]:
    async with app.http.get(app.url(path), allow_redirects=False) as response:
        return response.status, dict(response.headers), await response.text()


async def opens(app: RunningApp, path: str) -> str:
    status, headers, body = await get(app, path)
    assert status == 200, (path, status, body[:500])
    assert headers["Content-Security-Policy"] == HEADERS["Content-Security-Policy"]
    return body


async def refused(app: RunningApp, path: str, status: int, reason: str) -> str:
    """The page a refused link gets: the status, why, how to get a fresh link, the headers, and no data."""
    got, headers, body = await get(app, path)
    assert got == status, (path, got, body[:500])
    for name, value in HEADERS.items():
        assert headers.get(name) == value, name
    assert headers["Content-Type"].startswith("text/html")
    assert reason in body, body
    assert "fresh link" in body and "/dashboard" in body
    assert "Secret" not in body and "<script>" not in body and "CM-2" not in body
    return body


async def new_link(app: RunningApp, *, scope: str = "all", now: datetime | None = None, days: int = 7,
                   by: str | None = None) -> tuple[DashboardLink, str]:
    async with app.sessions.begin() as db:
        maker = await member(db, by) if by else None
        return await dashboard_links.issue(db=db, created_by=maker, scope=scope, days=days,
                                           now=now or datetime.now(UTC), secret=secret(app))


async def stored(app: RunningApp, link_id: int) -> DashboardLink:
    async with app.sessions() as db:
        link = await db.get(DashboardLink, link_id)
        assert link is not None
        return link


async def two_campaigns(app: RunningApp) -> None:
    """CM-1 with a name meant to break pages, CM-2 beside it; both planned (they have timelines)."""
    await planned_campaign(app, name=HOSTILE)
    await planned_campaign(app, owner="U0BOB", assignee="U0BOB", name="Other launch")


# ---------------------------------------------------------------- issue, list, revoke in Slack


async def test_a_link_works_until_its_maker_revokes_it(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await two_campaigns(running_app)
    path, number = await issued(running_app, fake_slack)
    await opens(running_app, path)
    campaign_path, campaign_number = await issued(running_app, fake_slack, "CM-1")
    await opens(running_app, campaign_path + "/campaigns/CM-1")

    listed = reply_text(await dashboard(running_app, fake_slack, "links"))
    assert f"*{number}* · every campaign" in listed and f"*{campaign_number}* · CM-1 Secret &lt;script&gt;" in listed
    assert listed.count(":large_green_circle: active") == 2 and "<script>" not in listed
    # Newest first
    assert listed.index(f"*{campaign_number}*") < listed.index(f"*{number}*")

    answer = reply_text(await dashboard(running_app, fake_slack, f"revoke {number}"))
    assert f"Dashboard link {number} (every campaign) is revoked" in answer
    await refused(running_app, path, 401, "This link was revoked on")
    await opens(running_app, campaign_path + "/campaigns/CM-1")  # the other link is untouched
    link = await stored(running_app, number)
    assert link.revoked_at is not None and link.revoked_by_id == link.created_by_id

    listed = reply_text(await dashboard(running_app, fake_slack, "links"))
    assert ":no_entry_sign: revoked" in listed and ":large_green_circle: active" in listed
    again = reply_text(await dashboard(running_app, fake_slack, f"revoke #{number}"))
    assert "was revoked already" in again
    assert (await stored(running_app, number)).revoked_at == link.revoked_at


async def test_only_the_maker_or_an_admin_revokes(db_url: str, fake_slack: FakeSlack) -> None:
    fake_slack.add_user(ADMIN, name="adam", real_name="Adam Admin", tz="Europe/Berlin")
    async with start_app(app_settings(db_url, fake_slack, admin_user_ids=ADMIN), fake_slack) as app:
        path, number = await issued(app, fake_slack, user="U0ALICE")

        bobs = reply_text(await dashboard(app, fake_slack, "links", user="U0BOB"))
        assert "You have no dashboard links" in bobs and f"*{number}*" not in bobs
        refusal = reply_text(await dashboard(app, fake_slack, f"revoke {number}", user="U0BOB"))
        assert "Only the person who made a dashboard link or an admin can revoke it." in refusal
        assert (await stored(app, number)).revoked_at is None
        await opens(app, path)

        # An admin shown the leaked link pastes it (Slack sends a URL wrapped in <>).
        pasted = f"<{app.url(path)}/week?start=2027-01-04>"
        answer = reply_text(await dashboard(app, fake_slack, f"revoke {pasted}", user=ADMIN))
        assert f"Dashboard link {number} (every campaign) is revoked" in answer
        await refused(app, path, 401, "This link was revoked")
        async with app.sessions() as db:
            revoker = await db.scalar(select(TeamMember.slack_user_id)
                                      .join(DashboardLink, DashboardLink.revoked_by_id == TeamMember.id)
                                      .where(DashboardLink.id == number))
        assert revoker == ADMIN


@pytest.mark.parametrize(
    ("text", "explains"),
    [("revoke", "Say which link to revoke"), ("revoke 1 2", "Say which link to revoke"),
     ("revoke abc", "`abc` is neither a link number nor a dashboard link of ours"),
     ("revoke 999999", "There is no dashboard link 999999."),
     ("revoke 0", "is neither a link number"),
     ("revoke &lt;!channel&gt;", "`&lt;!channel&gt;` is neither"),
     ("revoke YWxs.c2lnbmF0dXJl", "is neither a link number nor a dashboard link of ours")],
)
async def test_revoke_explains_bad_input(running_app: RunningApp, fake_slack: FakeSlack, text: str,
                                         explains: str) -> None:
    reply = await dashboard(running_app, fake_slack, text)
    shown = reply_text(reply)
    assert reply.args["response_type"] == "ephemeral" and explains in shown, shown
    assert "<!channel>" not in shown and "error id" not in shown


async def test_links_lists_what_still_works_or_ended_lately(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    now = datetime.now(UTC)
    working, _ = await new_link(running_app, by="U0ALICE", now=now - timedelta(hours=1))
    lately_expired, _ = await new_link(running_app, by="U0ALICE", now=now - timedelta(days=9))  # ended 2 days ago
    long_expired, _ = await new_link(running_app, by="U0ALICE", now=now - timedelta(days=30))
    lately_revoked, _ = await new_link(running_app, by="U0ALICE", now=now - timedelta(days=3))
    long_revoked, _ = await new_link(running_app, by="U0ALICE", now=now - timedelta(days=20), days=30)
    bobs, _ = await new_link(running_app, by="U0BOB")
    async with running_app.sessions.begin() as db:
        alice = authz.Actor(member=await member(db, "U0ALICE"))
        await dashboard_links.revoke(db=db, actor=alice, link_id=lately_revoked.id, now=now - timedelta(days=1))
        await dashboard_links.revoke(db=db, actor=alice, link_id=long_revoked.id, now=now - timedelta(days=10))
        mine = await dashboard_links.mine(db=db, member=alice.member, now=now)
    assert [link.id for link in mine] == [working.id, lately_revoked.id, lately_expired.id]
    assert [dashboard_links.state_of(link, now) for link in mine] == ["active", "revoked", "expired"]

    listed = reply_text(await dashboard(running_app, fake_slack, "links"))
    for link in mine:
        assert f"*{link.id}* ·" in listed
    for link in (long_expired, long_revoked, bobs):
        assert f"*{link.id}* ·" not in listed
    assert ":white_circle: expired" in listed


# ---------------------------------------------------------------- refused tokens, over HTTP


async def test_refused_links_get_a_plain_page_and_no_data(running_app: RunningApp) -> None:
    await two_campaigns(running_app)
    key = secret(running_app)
    now = datetime.now(UTC)
    good, good_token = await new_link(running_app, scope="campaign:1")
    await opens(running_app, f"/dashboard/{good_token}/campaigns/CM-1")
    _, expired = await new_link(running_app, now=now - timedelta(days=8))
    revoked, revoked_token = await new_link(running_app, scope="campaign:1", now=now - timedelta(days=9), days=30)
    async with running_app.sessions.begin() as db:
        await dashboard_links.revoke(db=db, actor=authz.Actor(member=await member(db, "U0ALICE"), is_admin=True),
                                     link_id=revoked.id, now=now)
    _, gone_token = await new_link(running_app, scope="campaign:2")

    await refused(running_app, f"/dashboard/{expired}", 401, "This link expired on")
    await refused(running_app, f"/dashboard/{revoked_token}/campaigns/CM-1", 401, "This link was revoked on")
    invalid = {
        "forged": links.sign(b"another key", link_id=good.id, scope=good.scope, expires_at=good.expires_at),
        "truncated": good_token[:-5],
        "cut at the dot": good_token.split(".")[0],
        "not stored": links.sign(key, link_id=good.id + 1000, scope="all", expires_at=good.expires_at),
        "another scope": links.sign(key, link_id=good.id, scope="all", expires_at=good.expires_at),
        "a longer life": links.sign(key, link_id=good.id, scope=good.scope,
                                    expires_at=good.expires_at + timedelta(days=30)),
        "first version": "YWxs.ZmFrZQ",
        "hostile": "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    }
    for name, bad in invalid.items():
        body = await refused(running_app, f"/dashboard/{bad}/campaigns/CM-1", 401, "This link is not valid.")
        assert "alert(1)" not in body, name
    await refused(running_app, "/dashboard?token=", 401, "This link is not valid.")
    await refused(running_app, "/dashboard/" + "A" * 400, 401, "This link is not valid.")

    # A good link, asked for more than it opens: 403.
    await refused(running_app, f"/dashboard/{good_token}/campaigns/CM-2", 403, "another campaign")
    await refused(running_app, f"/dashboard/{good_token}/campaigns/CM-2/timeline", 403, "another campaign")

    # A campaign deleted takes its links with it: the token names nothing any more.
    await opens(running_app, f"/dashboard/{gone_token}/campaigns/CM-2")
    async with running_app.sessions.begin() as db:
        await db.execute(delete(Campaign).where(Campaign.id == 2))
    await refused(running_app, f"/dashboard/{gone_token}/campaigns/CM-2", 401, "This link is not valid.")


async def test_the_check_reads_the_stored_row(running_app: RunningApp) -> None:
    """Revoked beats expired; a token naming a row it was not issued for is invalid; a malformed one costs no read."""
    now = datetime.now(UTC)
    link, token = await new_link(running_app, now=now - timedelta(days=10))
    async with running_app.sessions.begin() as db:
        await dashboard_links.revoke(db=db, actor=authz.Actor(member=await member(db, "U0ALICE"), is_admin=True),
                                     link_id=link.id, now=now - timedelta(days=5))
    async with running_app.sessions() as db:
        with pytest.raises(dashboard_links.LinkRefused) as raised:
            await dashboard_links.check(db=db, secret=secret(running_app), token=token, now=now)
        assert raised.value.refusal is dashboard_links.Refusal.REVOKED
        with pytest.raises(dashboard_links.LinkRefused) as raised:
            await dashboard_links.check(db=db, secret=secret(running_app), token="x" * 50, now=now)
        assert raised.value.refusal is dashboard_links.Refusal.INVALID
    fresh, fresh_token = await new_link(running_app, scope="all")
    async with running_app.sessions() as db:
        checked = await dashboard_links.check(db=db, secret=secret(running_app), token=fresh_token, now=now)
        assert (checked.link_id, checked.scope, checked.campaign_id) == (fresh.id, "all", None)
        with pytest.raises(dashboard_links.LinkRefused) as raised:  # the moment it expires
            await dashboard_links.check(db=db, secret=secret(running_app), token=fresh_token, now=fresh.expires_at)
        assert raised.value.refusal is dashboard_links.Refusal.EXPIRED and raised.value.when == fresh.expires_at


# ---------------------------------------------------------------- the App Home's button


async def test_the_home_button_opens_a_modal_with_a_fresh_link(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await two_campaigns(running_app)
    home = await open_home(running_app, fake_slack)
    assert "/dashboard/" not in json.dumps(home)  # rendering the Home issues no link
    [button] = next(b for b in home["blocks"] if b.get("block_id") == "home-dashboard")["elements"]
    async with running_app.sessions() as db:
        assert await db.scalar(select(DashboardLink.id)) is None

    click = home_click("U0ALICE", button["action_id"], button["value"], trigger_id="trig.dashboard")
    assert (await running_app.slack.interaction(click))[0] == 200
    opened = await fake_slack.wait_for("views.open")
    assert opened.args["trigger_id"] == "trig.dashboard" and opened.response["ok"], opened.response
    modal = opened.args["view"]
    assert view_problems(modal) == []
    [link_button] = [element for block in modal["blocks"] if block["type"] == "actions" for element in block["elements"]]
    assert link_button["text"]["text"] == "Open dashboard"
    url = link_button["url"]
    assert url.startswith("http://localhost:3000/dashboard/")
    async with running_app.sessions() as db:
        [link] = list(await db.scalars(select(DashboardLink)))
        alice = await member(db, "U0ALICE")
    assert (link.created_by_id, link.scope) == (alice.id, "all")
    assert f"<!date^{int(link.expires_at.timestamp())}^" in json.dumps(modal)
    await opens(running_app, url.removeprefix("http://localhost:3000"))

    # Slack tells the app about a click on the link button too: acknowledged, nothing else.
    opened_link = block_actions_payload(user_id="U0ALICE", action_id=link_button["action_id"], view=modal)
    assert (await running_app.slack.interaction(opened_link))[0] == 200
    async with running_app.sessions() as db:
        assert len(list(await db.scalars(select(DashboardLink.id)))) == 1


async def test_the_home_button_without_a_key_says_so(db_url: str, fake_slack: FakeSlack) -> None:
    async with start_app(app_settings(db_url, fake_slack), fake_slack) as app:
        assert app.runtime.deps is not None
        app.runtime.deps.settings = app.runtime.deps.settings.model_copy(
            update={"slack_signing_secret": None, "dashboard_secret": None})
        assert (await app.slack.interaction(home_click("U0ALICE", "home_open_dashboard", "all")))[0] == 200
        notice = await fake_slack.wait_for("views.open")
        assert "not configured" in json.dumps(notice.args["view"]) and "/dashboard/" not in json.dumps(notice.args)


# ---------------------------------------------------------------- the weekly status's timeline link


def next_monday_afternoon() -> datetime:
    """17:00 next Monday in Berlin, 10:00 in Chicago (the owners' zones): past 09:00 for both, so the week's
    status is owed, and the campaigns were made before it."""
    today = datetime.now(BERLIN).date()
    monday = today + timedelta(days=7 - today.weekday())
    return datetime.combine(monday, time(17), tzinfo=BERLIN).astimezone(UTC)


async def test_the_weekly_status_links_the_campaign_timeline(db_url: str, fake_slack: FakeSlack) -> None:
    fake_slack.add_user(ADMIN, name="adam", real_name="Adam Admin", tz="Europe/Berlin")
    async with start_app(app_settings(db_url, fake_slack, admin_user_ids=ADMIN), fake_slack) as app:
        await two_campaigns(app)
        async with app.sessions.begin() as db:
            for campaign in await db.scalars(select(Campaign)):
                campaign.channel_id = f"C0NEWS{campaign.id}"  # a channel's post goes at 09:00 sharp
        assert app.runtime.deps is not None
        base = app.runtime.deps.settings.public_url.rstrip("/")
        when = next_monday_afternoon()
        result = await app.runtime.sweeper_for_tests().run_once(when)  # the sweep as `serve` runs it
        assert result is not None and result.written >= 2
        async with app.sessions() as db:
            posts = {row.campaign_id: row.payload for row in await db.scalars(
                select(Notification).where(Notification.kind == Kind.CAMPAIGN_STATUS))}
            made = {row.campaign_id: row for row in await db.scalars(select(DashboardLink))}
        assert set(posts) == set(made) == {1, 2}
        for campaign_id, payload in posts.items():
            url = payload["timeline_url"]
            assert url.startswith(f"{base}/dashboard/") and url.endswith(f"/campaigns/CM-{campaign_id}/timeline")
            link = made[campaign_id]
            assert (link.created_by_id, link.scope) == (None, f"campaign:{campaign_id}")
            assert link.expires_at == (when + timedelta(days=7)).replace(microsecond=0)
            assert payload["timeline_expires"] == link.expires_at.isoformat()
            message = campaign_status(payload)
            assert block_problems(message["blocks"], MESSAGE_BLOCK_LIMIT) == []
            assert f"<{url}|Timeline>" in json.dumps(message["blocks"])
        path = posts[1]["timeline_url"].removeprefix(base)
        await opens(app, path)
        await refused(app, path.replace("/campaigns/CM-1/", "/campaigns/CM-2/"), 403, "another campaign")

        # Made by the app: the campaign owner cannot end it, an admin can.
        number = made[1].id
        refusal = reply_text(await dashboard(app, fake_slack, f"revoke {number}", user="U0ALICE"))
        assert "Only the person who made a dashboard link or an admin" in refusal
        assert "is revoked" in reply_text(await dashboard(app, fake_slack, f"revoke {number}", user=ADMIN))
        await refused(app, path, 401, "This link was revoked")


async def test_a_status_without_keys_or_from_before_has_no_timeline_link(running_app: RunningApp) -> None:
    await planned_campaign(running_app)
    async with running_app.sessions.begin() as db:
        campaign = await db.get(Campaign, 1)
        assert campaign is not None
        campaign.channel_id = "C0NEWS"
    async with running_app.sessions.begin() as db:
        await sweep.sweep(db=db, now=next_monday_afternoon())  # the sweep's caller gave no key
    async with running_app.sessions() as db:
        [payload] = [row.payload for row in await db.scalars(select(Notification))
                     if row.kind == Kind.CAMPAIGN_STATUS]
        assert await db.scalar(select(DashboardLink.id)) is None
    assert "timeline_url" not in payload
    message = campaign_status(payload)
    assert "Timeline" not in json.dumps(message) and block_problems(message["blocks"], MESSAGE_BLOCK_LIMIT) == []
    hostile = campaign_status({**payload, "timeline_url": "javascript:alert(1)"})
    assert "Timeline" not in json.dumps(hostile)


async def test_no_token_or_a_changing_method_opens_nothing(running_app: RunningApp) -> None:
    await refused(running_app, "/dashboard", 401, "This link is not valid.")
    _, token = await new_link(running_app)
    async with running_app.http.post(running_app.url(f"/dashboard/{token}")) as response:
        assert response.status == 405 and response.headers.get("X-Frame-Options") == "DENY"
