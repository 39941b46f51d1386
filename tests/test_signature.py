"""Only Slack, holding the signing secret, gets through to the listeners."""

from __future__ import annotations

import time
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from models import Campaign
from tests.conftest import RunningApp
from tests.fake_slack import FakeSlack

NEW = f'new "Forged" promo {(date.today() + timedelta(days=100)).isoformat()}'


async def campaigns_stored(app: RunningApp) -> int:
    async with app.sessions() as db:
        return await db.scalar(select(func.count()).select_from(Campaign)) or 0


@pytest.mark.parametrize(
    "forgery",
    # Timestamps as offsets, taken when the test runs: computed at collection they go stale in a long run.
    [{"secret": "not-the-secret"}, {"timestamp": -6 * 60}, {"timestamp": 6 * 60}],
    ids=["wrong-secret", "stale-timestamp", "future-timestamp"],
)
async def test_forged_requests_get_401_and_change_nothing(
    running_app: RunningApp, fake_slack: FakeSlack, forgery: dict
) -> None:
    if "timestamp" in forgery:
        forgery = {"timestamp": int(time.time()) + forgery["timestamp"]}
    status, _ = await running_app.slack.command("/campaign", NEW, **forgery)
    assert status == 401
    assert await campaigns_stored(running_app) == 0
    assert fake_slack.calls_to("response_url") == []


async def test_unsigned_and_garbage_requests_get_401(running_app: RunningApp) -> None:
    url = running_app.url("/slack/events")
    async with running_app.http.post(url, data="command=%2Fcampaign&text=list") as response:
        assert response.status == 401
    async with running_app.http.post(url, data=b"\xff\xfe\x00garbage", headers={"X-Slack-Signature": "v0=00"}) as response:
        assert response.status in (400, 401)


async def test_a_correctly_signed_request_is_accepted(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    status, _ = await running_app.slack.command("/campaign", NEW)
    assert status == 200
    await fake_slack.wait_for("response_url")
    assert await campaigns_stored(running_app) == 1


async def test_a_replayed_old_request_is_refused_even_with_a_valid_signature(running_app: RunningApp) -> None:
    # A valid signature over an old timestamp: what an attacker who captured a request would have.
    status, _ = await running_app.slack.command("/campaign", NEW, timestamp=int(time.time()) - 301)
    assert status == 401
