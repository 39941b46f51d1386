"""A dashboard link pasted in Slack unfolds into a summary card: a signed `link_shared` event to the real
app, the card sent by the delivery job through `chat.unfurl` (the fake Slack checks its blocks)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import select

from handlers.slack.notify import inline_delivery
from models import DashboardLink, Notification, Task
from services import unfurls
from services.kinds import Kind
from services.links import dashboard_url
from tests.conftest import RunningApp
from tests.fake_slack import FakeSlack
from tests.home_helpers import planned_campaign
from tests.slack_requests import event_envelope
from tests.support.dashboard import dashboard_token
from tests.support.waiting import settled

HOSTILE = "<!channel> & <b>Launch</b>"


def shared(links: list[str], *, ts: str = "1700000100.000100") -> dict:
    return event_envelope(event={"type": "link_shared", "channel": "C0CAMP", "user": "U0ALICE", "message_ts": ts,
                                 "links": [{"domain": "example", "url": url} for url in links],
                                 "source": "conversations_history", "event_ts": ts})


def url_of(app: RunningApp, token: str, path: str = "") -> str:
    deps = app.runtime.deps
    assert deps is not None
    return dashboard_url(deps.settings.public_url, token) + path


async def test_a_campaign_link_unfolds_into_its_card(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    tasks = await planned_campaign(running_app, name=HOSTILE)
    campaign_id = await _campaign_of(running_app, tasks["brief"])
    link = url_of(running_app, await dashboard_token(running_app, campaign_id=campaign_id), "/timeline")
    workspace = url_of(running_app, await dashboard_token(running_app))

    assert (await running_app.slack.event(shared([link, workspace, "https://elsewhere.example/x"])))[0] == 200
    call = await fake_slack.wait_for("chat.unfurl")

    assert call.response["ok"], call.response
    assert (call.args["channel"], call.args["ts"]) == ("C0CAMP", "1700000100.000100")
    cards = call.args["unfurls"]
    assert set(cards) == {link, workspace}
    card = json.dumps(cards[link])
    assert f"CM-{campaign_id}" in card and "&lt;!channel&gt; &amp; &lt;b&gt;Launch&lt;/b&gt;" in card
    assert "<!channel>" not in card and "on track" in card
    assert "1 open campaigns" in json.dumps(cards[workspace])


async def test_a_forged_or_revoked_link_stays_a_plain_link(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    token = await dashboard_token(running_app)
    async with running_app.sessions.begin() as db:
        stored = await db.scalar(select(DashboardLink).order_by(DashboardLink.id.desc()))
        assert stored is not None
        stored.revoked_at = datetime.now(UTC)
    forged = url_of(running_app, token[:-4] + "AAAA")

    assert (await running_app.slack.event(shared([url_of(running_app, token), forged])))[0] == 200
    await settled(running_app, outbox=True)

    assert fake_slack.calls_to("chat.unfurl") == []
    async with running_app.sessions() as db:
        assert list(await db.scalars(select(Notification.id).where(Notification.kind == Kind.LINK_UNFURL))) == []


async def test_a_link_revoked_before_the_card_goes_unfolds_into_nothing(
    running_app: RunningApp, fake_slack: FakeSlack
) -> None:
    """The card is rendered when it goes out: a link revoked while the row waited is checked again then."""
    token = await dashboard_token(running_app)
    async with running_app.sessions.begin() as db:
        stored = await db.scalar(select(DashboardLink).order_by(DashboardLink.id.desc()))
        assert stored is not None
        request = unfurls.UnfurlRequest(channel="C0CAMP", ts="1700000200.000100", unfurl_id=None, source=None,
                                        links=unfurls.shared_links([(url_of(running_app, token), stored.id)]))
        [nid] = await unfurls.request(db=db, unfurl=request, now=datetime.now(UTC))
        stored.revoked_at = datetime.now(UTC)
    deps, slack_app = running_app.runtime.deps, running_app.runtime.slack_app
    assert deps is not None and slack_app is not None

    outcomes = await inline_delivery(deps, slack_app.client).run([nid])

    assert outcomes[nid].status == "sent"
    assert fake_slack.calls_to("chat.unfurl") == []


async def _campaign_of(app: RunningApp, task_id: int) -> int:
    async with app.sessions() as db:
        found = await db.scalar(select(Task.campaign_id).where(Task.id == task_id))
        assert found is not None
        return found
