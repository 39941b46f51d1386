"""Socket Mode end to end: with SLACK_APP_TOKEN the runtime connects over the fake Slack's websocket.

The real Runtime opens the connection with Bolt's AsyncSocketModeHandler (apps.connections.open,
then the websocket and Slack's hello); the fake pushes envelopes and the very same listeners answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date, timedelta

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select

from bot.runtime import Runtime, StartupError
from models import Campaign, TeamMember
from tests.conftest import RunningApp, app_settings, start_app
from tests.fake_slack import FakeSlack
from tests.slack_requests import event_envelope, events_api_envelope, slash_command_envelope

APP_TOKEN = "xapp-1-test"
LAUNCH = (date.today() + timedelta(days=200)).isoformat()


@pytest.fixture
async def socket_app(db_url: str, fake_slack: FakeSlack) -> AsyncIterator[RunningApp]:
    settings = app_settings(db_url, fake_slack, slack_app_token=APP_TOKEN, slack_signing_secret=None)
    async with start_app(settings, fake_slack) as app:
        await fake_slack.wait_for_socket_connection()
        yield app


def socket_mode_tasks() -> list[asyncio.Task]:
    """Unfinished tasks that run slack_sdk's Socket Mode client code."""
    return [
        task for task in asyncio.all_tasks()
        if not task.done() and "SocketModeClient" in getattr(task.get_coro(), "__qualname__", "")
    ]  # fmt: skip


async def test_the_socket_is_opened_with_the_app_token(socket_app: RunningApp, fake_slack: FakeSlack) -> None:
    opened = fake_slack.calls_to("apps.connections.open")
    assert len(opened) == 1 and opened[0].response["url"].startswith("ws://127.0.0.1:")
    assert opened[0].headers["Authorization"] == f"Bearer {APP_TOKEN}"


async def test_slash_command_is_acked_answered_and_stored(socket_app: RunningApp, fake_slack: FakeSlack) -> None:
    url = fake_slack.response_url()
    envelope = slash_command_envelope(
        command="/campaign", text=f'new "Socket launch" webinar {LAUNCH}', user_id="U0ALICE", response_url=url
    )
    envelope_id = await fake_slack.socket_send(envelope)
    ack = await fake_slack.wait_for_socket_ack(envelope_id)
    assert ack["envelope_id"] == envelope_id and set(ack) <= {"envelope_id", "payload"}
    reply = await fake_slack.wait_for("response_url", lambda call: url.endswith(f"/{call.url_id}"))
    assert "CM-1 created" in reply.args["text"] and "Socket launch" in reply.args["text"]
    async with socket_app.sessions() as db:
        campaign = (await db.scalars(select(Campaign))).one()
        owner = await db.get(TeamMember, campaign.owner_id)
    assert (campaign.name, campaign.template, campaign.launch_date.isoformat()) == ("Socket launch", "webinar", LAUNCH)
    assert owner is not None and owner.slack_user_id == "U0ALICE"


async def test_app_home_opened_publishes_the_home_tab(socket_app: RunningApp, fake_slack: FakeSlack) -> None:
    event = {"type": "app_home_opened", "user": "U0BOB", "channel": "D0HOME", "tab": "home",
             "event_ts": "1700000000.000001"}  # fmt: skip
    envelope_id = await fake_slack.socket_send(events_api_envelope(event_envelope(event=event, event_id="EvSock1")))
    assert (await fake_slack.wait_for_socket_ack(envelope_id)) == {"envelope_id": envelope_id}
    published = await fake_slack.wait_for("views.publish")
    assert published.args["user_id"] == "U0BOB" and published.args["view"]["type"] == "home"
    assert published.response["ok"] is True


async def test_no_http_slack_endpoint_but_health(socket_app: RunningApp) -> None:
    async with socket_app.http.post(socket_app.url("/slack/events"), data=b"{}") as response:
        assert response.status in (404, 405)
    async with socket_app.http.get(socket_app.url("/health")) as response:
        assert response.status == 200


async def test_stop_closes_the_socket_and_its_tasks(db_url: str, fake_slack: FakeSlack) -> None:
    settings = app_settings(db_url, fake_slack, slack_app_token=APP_TOKEN, slack_signing_secret=None)
    async with start_app(settings, fake_slack) as app:
        await fake_slack.wait_for_socket_connection()
        assert socket_mode_tasks()
        handler = app.runtime._socket_handler
    await fake_slack.wait_for_socket_close()
    await asyncio.sleep(0)  # cancelled tasks finish on their next turn
    assert socket_mode_tasks() == []
    assert handler is not None and handler.client.aiohttp_client_session.closed


async def test_a_refused_app_token_stops_start_up(db_url: str, fake_slack: FakeSlack) -> None:
    # A bot token pasted into SLACK_APP_TOKEN: Slack answers not_allowed_token_type.
    runtime = Runtime(app_settings(db_url, fake_slack, slack_app_token="xoxb-not-an-app-token"), run_worker=False)
    try:
        with pytest.raises(StartupError, match="SLACK_APP_TOKEN.*not_allowed_token_type"):
            await asyncio.wait_for(runtime.start(), timeout=10)
    finally:
        await runtime.stop()
    await asyncio.sleep(0)
    assert socket_mode_tasks() == []


async def test_the_fake_refuses_what_slack_refuses(fake_slack: FakeSlack) -> None:
    async def error_of(token: str, method: str) -> str:
        with pytest.raises(SlackApiError) as raised:
            await AsyncWebClient(token=token, base_url=fake_slack.base_url).api_call(method)
        return raised.value.response["error"]

    assert await error_of("xoxb-test", "apps.connections.open") == "not_allowed_token_type"
    assert await error_of(APP_TOKEN, "auth.test") == "not_allowed_token_type"
    url = (await AsyncWebClient(base_url=fake_slack.base_url).apps_connections_open(app_token=APP_TOKEN))["url"]
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await http.ws_connect(url.replace("ticket=", "ticket=0"))
        async with http.ws_connect(url) as ws:
            hello = await ws.receive_json()
    assert hello["type"] == "hello" and hello["num_connections"] == 1
    assert hello["connection_info"] == {"app_id": "A0TEST"} and "approximate_connection_time" in hello["debug_info"]
