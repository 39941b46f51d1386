"""App Home: opening the Home tab publishes the person's own overview."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

from tests.conftest import RunningApp
from tests.fake_slack import FakeSlack
from tests.slack_requests import event_envelope


def home_opened(user: str, tab: str = "home", event_id: str = "Ev1") -> dict:
    return event_envelope(
        event={"type": "app_home_opened", "user": user, "channel": "D0HOME", "tab": tab,
               "event_ts": "1700000000.000001"},
        event_id=event_id,
    )


async def test_home_lists_my_campaigns_and_not_others(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    launch = (date.today() + timedelta(days=60)).isoformat()
    for user, name in (("U0ALICE", "Alice's <!here> launch"), ("U0BOB", "Bob's webinar")):
        url = fake_slack.response_url()
        await running_app.slack.command("/campaign", f'new "{name}" webinar {launch}', user_id=user, response_url=url)
        await fake_slack.wait_for("response_url", lambda call, url=url: url.endswith(call.url_id))
    status, _ = await running_app.slack.event(home_opened("U0ALICE"))
    assert status == 200
    published = await fake_slack.wait_for("views.publish")
    assert published.args["user_id"] == "U0ALICE"
    text = repr(published.args["view"])
    assert "Hi Alice" in text and "Alice's &lt;!here&gt; launch" in text and "CM-1" in text
    assert "Bob's webinar" not in text and "<!here>" not in text


async def test_the_messages_tab_publishes_nothing(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    status, _ = await running_app.slack.event(home_opened("U0ALICE", tab="messages"))
    assert status == 200
    await asyncio.sleep(0.3)
    assert fake_slack.calls_to("views.publish") == []


async def test_a_failed_publish_still_acks_the_event(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    # Slack retries events that were not acked; a failure on our side must not turn into retries.
    fake_slack.fail_next("views.publish", status=500, times=3)
    status, _ = await running_app.slack.event(home_opened("U0BOB"))
    assert status == 200
    await fake_slack.wait_for("views.publish")


async def test_a_redelivered_event_is_handled_once(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    envelope = home_opened("U0ALICE", event_id="Ev0RETRY")
    assert (await running_app.slack.event(envelope))[0] == 200
    await fake_slack.wait_for("views.publish")
    status, _ = await running_app.slack.event(envelope, retry_num=1, retry_reason="http_timeout")
    assert status == 200
    await asyncio.sleep(0.3)
    assert len(fake_slack.calls_to("views.publish")) == 1
    status, _ = await running_app.slack.event(home_opened("U0ALICE", event_id="Ev0OTHER"))
    await fake_slack.wait_for("views.publish", count=2)


async def test_simultaneous_redeliveries_publish_once(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    envelope = home_opened("U0BOB", event_id="Ev0TWICE")
    results = await asyncio.gather(*(running_app.slack.event(envelope, retry_num=n) for n in range(3)))
    assert [status for status, _ in results] == [200, 200, 200]
    await fake_slack.wait_for("views.publish")
    await asyncio.sleep(0.3)
    assert len(fake_slack.calls_to("views.publish")) == 1
