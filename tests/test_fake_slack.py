"""Proves FakeSlack answers the real slack_sdk clients (and Bolt) the way Slack does.

Everything goes over real HTTP: AsyncWebClient / AsyncWebhookClient point at the fake,
and a real Bolt AsyncApp is driven by SlackSender's signed requests.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
from types import SimpleNamespace

import aiohttp
import pytest
from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import builtin_async_handlers
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from tests.fake_slack import FakeSlack
from tests.slack_requests import (
    SlackSender,
    block_actions_payload,
    event_envelope,
    sign_headers,
    view_submission_payload,
)

SECRET = "test-signing-secret"
SECTION = {"type": "section", "text": {"type": "mrkdwn", "text": "*Launch* plan"}}
MODAL = {
    "type": "modal",
    "callback_id": "cb",
    "title": {"type": "plain_text", "text": "Plan"},
    "blocks": [SECTION],
}


@pytest.fixture
async def fake():
    async with FakeSlack() as server:
        yield server


@pytest.fixture
def client(fake: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token="xoxb-test", base_url=fake.base_url)


async def api_error(coro) -> dict:
    """Await a call expected to fail; return Slack's error body."""
    with pytest.raises(SlackApiError) as info:
        await coro
    return info.value.response.data


# ------------------------------------------------------------------ Web API basics


async def test_post_message_is_answered_and_recorded(fake: FakeSlack, client: AsyncWebClient):
    first = await client.chat_postMessage(channel="C0GENERAL", text="hi", blocks=[SECTION])
    second = await client.chat_postMessage(channel="C0GENERAL", text="again")

    assert first["channel"] == "C0GENERAL"
    assert first["message"]["blocks"] == [SECTION] and first["message"]["user"] == "UBOT"
    assert first["ts"] == "1700000000.000100" and second["ts"] > first["ts"]
    call = fake.calls_to("chat.postMessage")[0]
    assert call.args == {"channel": "C0GENERAL", "text": "hi", "blocks": [SECTION]}
    assert call.headers["Authorization"] == "Bearer xoxb-test"
    assert call.headers["Content-Type"].startswith("application/json")  # slack_sdk sends JSON here
    assert call.response["ok"] is True and not call.injected


async def test_form_encoded_blocks_are_decoded(fake: FakeSlack, client: AsyncWebClient):
    data = {"channel": "C1", "text": "x", "blocks": json.dumps([SECTION])}
    await client.api_call("chat.postMessage", data=data)
    assert fake.calls_to("chat.postMessage")[0].args["blocks"] == [SECTION]


async def test_dm_channel_is_deterministic(client: AsyncWebClient):
    posted = await client.chat_postMessage(channel="U0ALICE", text="hello")
    opened = await client.conversations_open(users="U0ALICE")
    again = await client.conversations_open(users=["U0ALICE"])
    assert posted["channel"].startswith("D")
    assert posted["channel"] == opened["channel"]["id"] == again["channel"]["id"]
    assert (await client.conversations_open(users="U0ALICE,U0BOB"))["channel"]["id"] != posted["channel"]


async def test_post_message_requires_channel_and_content(client: AsyncWebClient):
    assert (await api_error(client.api_call("chat.postMessage", json={"text": "x"})))[
        "error"
    ] == "channel_not_found"
    assert (await api_error(client.api_call("chat.postMessage", json={"channel": "C1"})))[
        "error"
    ] == "no_text"


async def test_post_ephemeral(client: AsyncWebClient):
    resp = await client.chat_postEphemeral(channel="C1", user="U0ALICE", text="psst")
    assert resp["message_ts"]


async def test_users_info_uses_get(fake: FakeSlack, client: AsyncWebClient):
    fake.add_user("U0ALICE", name="alice", real_name="Alice A", email="alice@example.com", tz="Europe/Paris")
    user = (await client.users_info(user="U0ALICE"))["user"]
    assert user["real_name"] == "Alice A" and user["profile"]["email"] == "alice@example.com"
    assert user["tz"] == "Europe/Paris" and user["tz_offset"] in (3600, 7200) and user["is_bot"] is False
    call = fake.calls_to("users.info")[0]
    assert call.http_method == "GET" and call.args == {"user": "U0ALICE"}


async def test_unknown_user(client: AsyncWebClient):
    assert (await api_error(client.users_info(user="U0NOBODY")))["error"] == "user_not_found"


async def test_auth(fake: FakeSlack):
    bot = await AsyncWebClient(token="xoxb-test", base_url=fake.base_url).auth_test()
    assert (bot["team_id"], bot["user_id"], bot["bot_id"], bot["team"]) == (
        "T0TEST",
        "UBOT",
        "BBOT",
        "Test Team",
    )
    assert (await api_error(AsyncWebClient(base_url=fake.base_url).auth_test()))["error"] == "not_authed"
    bad = AsyncWebClient(token="nope", base_url=fake.base_url)
    assert (await api_error(bad.auth_test()))["error"] == "invalid_auth"
    # token as a form field works too (legacy style)
    form = await AsyncWebClient(base_url=fake.base_url).api_call("auth.test", data={"token": "xoxb-form"})
    assert form["ok"]


async def test_unknown_method(client: AsyncWebClient):
    assert (await api_error(client.api_call("campaigns.launch")))["error"] == "unknown_method"


# ------------------------------------------------------------------ injected failures


async def test_injected_429_then_retry_handler_succeeds(fake: FakeSlack, monkeypatch):
    fake.fail_next("chat.postMessage", status=429, retry_after=1)
    plain = AsyncWebClient(token="xoxb-test", base_url=fake.base_url)
    with pytest.raises(SlackApiError) as info:
        await plain.chat_postMessage(channel="C1", text="x")
    assert info.value.response.status_code == 429
    assert info.value.response.headers["Retry-After"] == "1"
    assert info.value.response["error"] == "ratelimited"

    # The handler sleeps Retry-After + random jitter; record the wait instead of spending it.
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(builtin_async_handlers, "asyncio", SimpleNamespace(sleep=fake_sleep))
    fake.fail_next("chat.postMessage", status=429, retry_after=1)
    retrying = AsyncWebClient(token="xoxb-test", base_url=fake.base_url)
    retrying.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=1))
    assert (await retrying.chat_postMessage(channel="C1", text="x"))["ok"]
    assert len(slept) == 1 and 1 <= slept[0] < 2
    assert [c.injected for c in fake.calls_to("chat.postMessage")] == [True, True, False]


async def test_injected_500(fake: FakeSlack, client: AsyncWebClient):
    fake.fail_next("chat.postMessage", status=503)
    with pytest.raises(SlackApiError) as info:
        await client.chat_postMessage(channel="C1", text="x")
    assert info.value.response.status_code == 503
    assert (await client.chat_postMessage(channel="C1", text="x"))["ok"]  # only the next call fails


async def test_injected_error_code(fake: FakeSlack, client: AsyncWebClient):
    fake.fail_next("chat.postMessage", error="channel_not_found", times=2)
    for _ in range(2):
        assert (await api_error(client.chat_postMessage(channel="C1", text="x")))[
            "error"
        ] == "channel_not_found"
    assert (await client.chat_postMessage(channel="C1", text="x"))["ok"]
    assert [c.injected for c in fake.calls] == [True, True, False]
    fake.fail_next("chat.postMessage", error="x")
    fake.reset()
    assert fake.calls == [] and (await client.chat_postMessage(channel="C1", text="x"))["ok"]


# ------------------------------------------------------------------ block validation


def _text_section(n: int) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": "x" * n}}


@pytest.mark.parametrize(
    "blocks",
    [
        pytest.param([_text_section(3001)], id="section-3001"),
        pytest.param(
            [{"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}], id="header-151"
        ),
        pytest.param([SECTION] * 51, id="51-blocks"),
        pytest.param([{"type": "no_such_block"}], id="unknown-type"),
        pytest.param([{"type": "section"}], id="section-without-text"),
        pytest.param(
            [
                {
                    "type": "actions",
                    "elements": [
                        {"type": "button", "action_id": "a", "text": {"type": "plain_text", "text": "x" * 76}}
                    ],
                }
            ],
            id="nested-button-76",
        ),  # fmt: skip
        pytest.param([{**SECTION, "block_id": "a"}, {**SECTION, "block_id": "a"}], id="duplicate-block-id"),
    ],
)
async def test_invalid_blocks_refused(client: AsyncWebClient, blocks: list):
    body = await api_error(client.chat_postMessage(channel="C1", text="x", blocks=blocks))
    assert body["error"] == "invalid_blocks"
    assert body["response_metadata"]["messages"][0].startswith("[ERROR]")


async def test_blocks_at_the_limits_accepted(client: AsyncWebClient):
    assert (await client.chat_postMessage(channel="C1", text="x", blocks=[_text_section(3000)] * 50))["ok"]


async def test_validation_can_be_disabled():
    async with FakeSlack(validate_blocks=False) as lax:
        client = AsyncWebClient(token="xoxb-test", base_url=lax.base_url)
        assert (await client.chat_postMessage(channel="C1", text="x", blocks=[_text_section(5000)]))["ok"]


# ------------------------------------------------------------------ messages and views


async def test_chat_update(client: AsyncWebClient):
    assert (await api_error(client.chat_update(channel="C1", ts="1.000001", text="y")))[
        "error"
    ] == "message_not_found"
    posted = await client.chat_postMessage(channel="C1", text="x")
    updated = await client.chat_update(channel="C1", ts=posted["ts"], text="y")
    assert (updated["ts"], updated["text"]) == (posted["ts"], "y")


async def test_views_open_update_and_hash_conflict(client: AsyncWebClient):
    opened = (await client.views_open(trigger_id="trig.1", view=MODAL))["view"]
    assert (
        opened["id"].startswith("V") and opened["state"] == {"values": {}} and opened["callback_id"] == "cb"
    )

    conflict = await api_error(client.views_update(view_id=opened["id"], hash="stale", view=MODAL))
    assert conflict["error"] == "hash_conflict"
    updated = (await client.views_update(view_id=opened["id"], hash=opened["hash"], view=MODAL))["view"]
    assert updated["id"] == opened["id"] and updated["hash"] != opened["hash"]
    assert (await api_error(client.views_update(view_id="V0NONE", view=MODAL)))["error"] == "not_found"


async def test_views_validation(client: AsyncWebClient):
    no_trigger = await api_error(client.api_call("views.open", json={"view": MODAL}))
    assert no_trigger["error"] == "invalid_arguments"
    long_title = {**MODAL, "title": {"type": "plain_text", "text": "x" * 25}}
    body = await api_error(client.views_open(trigger_id="t", view=long_title))
    assert body["error"] == "invalid_arguments" and "title" in body["response_metadata"]["messages"][0]
    too_many = {**MODAL, "blocks": [SECTION] * 101}
    assert (await api_error(client.views_push(trigger_id="t", view=too_many)))["error"] == "invalid_arguments"
    assert (await client.views_push(trigger_id="t", view={**MODAL, "blocks": [SECTION] * 100}))["ok"]


async def test_views_publish(fake: FakeSlack, client: AsyncWebClient):
    home = {"type": "home", "blocks": [SECTION]}
    first = (await client.views_publish(user_id="U0ALICE", view=home))["view"]
    second = (await client.views_publish(user_id="U0ALICE", view=home, hash=first["hash"]))["view"]
    assert first["id"] == second["id"] == fake.home_views["U0ALICE"]
    assert fake.calls_to("views.publish")[0].args["view"] == home


# ------------------------------------------------------------------ response_url


async def test_response_url_recorded(fake: FakeSlack):
    url = fake.response_url("abc123")
    resp = await AsyncWebhookClient(url).send(text="done", blocks=[SECTION], response_type="ephemeral")
    assert (resp.status_code, resp.body) == (200, "ok")
    call = await fake.wait_for("response_url")
    assert call.url_id == "abc123"
    assert call.args == {"text": "done", "blocks": [SECTION], "response_type": "ephemeral"}

    bad = await AsyncWebhookClient(url).send(text="x", blocks=[_text_section(3001)])
    assert (bad.status_code, bad.body) == (400, "invalid_blocks")
    fake.fail_next("response_url", error="expired_url")
    assert (await AsyncWebhookClient(url).send(text="x")).status_code == 404


# ------------------------------------------------------------------ wait_for


async def test_wait_for_wakes_on_new_call(fake: FakeSlack, client: AsyncWebClient):
    waiter = asyncio.create_task(fake.wait_for("chat.postMessage", lambda c: c.args["text"] == "b", count=1))
    await client.chat_postMessage(channel="C1", text="a")
    assert not waiter.done()
    await client.chat_postMessage(channel="C1", text="b")
    assert (await asyncio.wait_for(waiter, 2)).args["text"] == "b"
    assert (await fake.wait_for("chat.postMessage", count=2)).args["text"] == "b"


async def test_wait_for_timeout_lists_calls(fake: FakeSlack, client: AsyncWebClient):
    await client.chat_postMessage(channel="C1", text="seen")
    with pytest.raises(AssertionError, match=r"views\.open(.|\n)*chat\.postMessage"):
        await fake.wait_for("views.open", timeout=0.05)


# ------------------------------------------------------------------ signing + Bolt end to end


def test_sign_headers_known_vector():
    body, ts = "token=abc&command=%2Fcampaign&text=launch", 1531420618
    expected = "v0=" + hmac.new(SECRET.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    headers = sign_headers(body, SECRET, timestamp=ts)
    assert headers == {"X-Slack-Request-Timestamp": "1531420618", "X-Slack-Signature": expected}
    assert SignatureVerifier(SECRET, clock=SimpleNamespace(now=lambda: ts)).is_valid_request(body, headers)


@pytest.fixture
async def bolt(fake: FakeSlack):
    """A real Bolt AsyncApp served on an ephemeral port, talking to the fake."""
    app = AsyncApp(signing_secret=SECRET, client=AsyncWebClient(token="xoxb-test", base_url=fake.base_url))

    @app.command("/campaign")
    async def campaign(ack, respond, client, command):
        await ack()
        await respond(text=f"got {command['text']}", response_type="ephemeral")
        await client.chat_postMessage(channel=command["user_id"], text="dm")

    @app.action("approve")
    async def approve(ack, respond):
        await ack()
        await respond(text="approved", replace_original=True)

    @app.view("plan")
    async def plan(ack, view):
        await ack(response_action="errors", errors={"name": view["state"]["values"]["name"]["v"]["value"]})

    @app.event("app_mention")
    async def mention(ack):
        await ack()

    runner = web.AppRunner(app.web_app(path="/slack/events"), access_log=None)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    async with aiohttp.ClientSession() as session:
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/slack/events"
        yield SlackSender(session=session, url=url, secret=SECRET, fake=fake)
    await runner.cleanup()


async def test_bolt_command_round_trip(fake: FakeSlack, bolt: SlackSender):
    assert (await bolt.command("/campaign", "launch spring"))[0] == 200
    reply = await fake.wait_for("response_url")
    assert reply.args["text"] == "got launch spring" and reply.args["response_type"] == "ephemeral"
    assert (await fake.wait_for("chat.postMessage")).response["channel"].startswith("D")
    assert fake.calls_to("auth.test")  # Bolt authorizes lazily on the first request
    assert (await bolt.command("/campaign", "x", secret="wrong"))[0] == 401


async def test_bolt_interactions_and_events(fake: FakeSlack, bolt: SlackSender):
    assert (await bolt.interaction(block_actions_payload(user_id="U0ALICE", action_id="approve")))[0] == 200
    assert (await fake.wait_for("response_url")).args["replace_original"] is True

    payload = view_submission_payload(
        user_id="U0ALICE", callback_id="plan", values={"name": {"v": "Too short"}}
    )
    status, body = await bolt.interaction(payload)
    assert status == 200 and json.loads(body) == {
        "response_action": "errors",
        "errors": {"name": "Too short"},
    }

    mention = {"type": "app_mention", "user": "U0ALICE", "text": "<@UBOT> hi", "channel": "C1", "ts": "1.1"}
    assert (await bolt.event(event_envelope(event=mention), retry_num=1, retry_reason="http_timeout"))[
        0
    ] == 200
