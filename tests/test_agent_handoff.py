"""The marketing agent hand-off end to end: a launch through a signed `/campaign launch`, a real MCP server
started here (the SDK's `MCPServer`, served by uvicorn) that records each `cm_campaign_launched` call, and
the owner's notice in the fake Slack; on both backends.

Waits are on definite signals (a call the agent recorded, an outbox row's state, a Slack message), never
on sleeps. The outbox's backoff is shortened so an outage lasts a few attempts, not minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import uvicorn
from aiohttp import web
from mcp import MCPError
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import SecretStr
from sqlalchemy import select

from bot.settings import ConfigError, load_settings
from handlers.jobs import agent
from handlers.jobs.agent import AgentTarget
from handlers.jobs.delivery import Delivery
from models import Campaign, CampaignStatus, Notification, NotificationStatus
from services import agent_handoff
from services import delivery as delivery_policy
from services.delivery import Verdict
from services.kinds import Kind
from tests.conftest import RunningApp, app_settings, start_app
from tests.fake_slack import Call, FakeSlack
from tests.slack_helpers import owner_today, reply_text, send_command
from tests.support.network import free_port
from tests.support.waiting import eventually, settled

OWNER = "U0ALICE"
TOKEN = "agent-secret-token"
ARGUMENTS = {"campaign_ref": "CM-1", "name": "Spring", "launched_at": "2027-03-01T09:00:00+00:00",
             "channel": None, "owner": OWNER, "handoff_id": "0b7c"}


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """The agent's outage lasts a few attempts; the backoff (30 s and up) is shortened so the test need not
    wait it out. What is retried, and how often, is the delivery's own."""
    monkeypatch.setattr(delivery_policy, "BACKOFF_BASE", timedelta(milliseconds=100))


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: the test process keeps its own."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class Agent:
    """A marketing agent: an MCP server with the `cm_campaign_launched` tool, recording every call and the
    Authorization header it came with. `refusal`: the tool refuses (raises ToolError) with this text;
    `without_tool`: the server has no such tool."""

    port: int
    refusal: str | None = None
    without_tool: bool = False
    calls: list[dict[str, Any]] = field(default_factory=list)
    authorizations: list[str | None] = field(default_factory=list)
    server: _Server | None = None
    task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def _app(self) -> Any:
        mcp = MCPServer("agent", log_level="WARNING")  # constructed here: it configures logging

        def cm_campaign_launched(campaign_ref: str, name: str, launched_at: str, channel: str | None, owner: str,
                                 handoff_id: str, ctx: Context) -> str:
            self.calls.append({"campaign_ref": campaign_ref, "name": name, "launched_at": launched_at,
                               "channel": channel, "owner": owner, "handoff_id": handoff_id})
            self.authorizations.append((ctx.headers or {}).get("authorization"))
            if self.refusal is not None:
                raise ToolError(self.refusal)
            return f"noted {campaign_ref}"

        if not self.without_tool:
            mcp.tool()(cm_campaign_launched)
        return mcp.streamable_http_app()  # a new session manager each start: one runs only once

    async def start(self) -> None:
        config = uvicorn.Config(self._app(), host="127.0.0.1", port=self.port, log_level="warning",
                                timeout_graceful_shutdown=1)
        self.server = _Server(config)
        self.task = asyncio.create_task(self.server.serve())
        server = self.server
        await eventually(lambda: server.started or self.task is None or self.task.done(), what="the agent to listen")
        assert server.started, "the agent did not start"

    async def stop(self) -> None:
        if self.server is not None and self.task is not None:
            self.server.should_exit = True
            await self.task
        self.server = self.task = None


@pytest.fixture
async def marketing_agent() -> AsyncIterator[Agent]:
    """The agent's port, reserved and not yet listening: a test starts it when it wants it up."""
    found = Agent(port=free_port())
    yield found
    await found.stop()


@pytest.fixture
async def app(db_url: str, fake_slack: FakeSlack, marketing_agent: Agent) -> AsyncIterator[RunningApp]:
    settings = app_settings(db_url, fake_slack, marketing_agent_url=marketing_agent.url, marketing_agent_token=TOKEN)
    async with start_app(settings, fake_slack) as running:
        yield running


async def launch_campaign(app: RunningApp, fake: FakeSlack, *, channel: bool = False) -> Call:
    """Alice creates CM-1 "Spring" (with its channel, if asked) and launches it; the launch's reply."""
    launch = owner_today() + timedelta(days=60)
    created = await send_command(app, fake, "/campaign", f'new "Spring" product_launch {launch.isoformat()}')
    assert "CM-1 created" in created.args["text"], created.args["text"]
    if channel:
        await send_command(app, fake, "/campaign", "channel CM-1 <#C0LAUNCH|launch>")
    return await send_command(app, fake, "/campaign", "launch CM-1", user_id=OWNER)


async def handoffs(app: RunningApp) -> list[Notification]:
    async with app.sessions() as db:
        return list(await db.scalars(select(Notification).where(Notification.kind == Kind.AGENT_HANDOFF)))


async def results(app: RunningApp) -> list[Notification]:
    async with app.sessions() as db:
        return list(await db.scalars(select(Notification).where(Notification.kind == Kind.AGENT_HANDOFF_RESULT)))


async def owner_told(fake: FakeSlack, words: str) -> Call:
    return await fake.wait_for("chat.postMessage",
                               lambda call: call.args.get("channel") == OWNER and words in reply_text(call))


async def settled_row(app: RunningApp, status: NotificationStatus) -> Notification:
    async def found() -> Notification | None:
        rows = await handoffs(app)
        return rows[0] if len(rows) == 1 and rows[0].status is status else None
    return await eventually(found, what=f"the hand-off row to be {status.value}")


async def test_a_launch_calls_the_agent_once_with_its_token(app: RunningApp, fake_slack: FakeSlack,
                                                            marketing_agent: Agent) -> None:
    await marketing_agent.start()
    before = datetime.now(UTC).replace(microsecond=0)
    reply = await launch_campaign(app, fake_slack, channel=True)
    assert "is launched" in reply_text(reply)
    notice = await owner_told(fake_slack, "was handed to the marketing agent")
    await settled(app, outbox=True)

    [row] = await handoffs(app)
    [call] = marketing_agent.calls
    assert row.status is NotificationStatus.SENT and row.retries == 0
    assert call == {"campaign_ref": "CM-1", "name": "Spring", "launched_at": call["launched_at"], "channel": "C0LAUNCH",
                    "owner": OWNER, "handoff_id": row.payload["handoff_id"]}
    launched_at = datetime.fromisoformat(call["launched_at"])
    assert launched_at.utcoffset() == timedelta(0) and before <= launched_at <= datetime.now(UTC)
    assert marketing_agent.authorizations == [f"Bearer {TOKEN}"]
    assert "CM-1" in reply_text(notice) and "Spring" in reply_text(notice)
    assert len(await results(app)) == 1


async def test_an_agent_down_at_launch_gets_the_call_once_when_it_is_back(app: RunningApp, fake_slack: FakeSlack,
                                                                          marketing_agent: Agent) -> None:
    reply = await launch_campaign(app, fake_slack)  # nothing listens on the agent's port: refused
    assert "is launched" in reply_text(reply)
    async with app.sessions() as db:
        campaign = await db.get(Campaign, 1)
    assert campaign is not None and campaign.status is CampaignStatus.ACTIVE

    async def failed_twice() -> bool:
        rows = await handoffs(app)
        return len(rows) == 1 and rows[0].retries >= 2
    await eventually(failed_twice, what="two refused attempts")
    assert marketing_agent.calls == []
    await marketing_agent.start()
    await settled_row(app, NotificationStatus.SENT)
    await owner_told(fake_slack, "was handed to the marketing agent")
    await settled(app, outbox=True)

    [row] = await handoffs(app)
    [call] = marketing_agent.calls
    assert call["handoff_id"] == row.payload["handoff_id"] and call["campaign_ref"] == "CM-1"
    assert row.retries >= 2


@pytest.mark.parametrize(("refusal", "without_tool", "reason"), [
    ("no budget left for CM-1", False,
     "the agent refused it: Error executing tool cm_campaign_launched: no budget left for CM-1"),
    (None, True, "the agent refused it: Unknown tool: cm_campaign_launched"),
])
async def test_an_agent_that_refuses_fails_the_hand_off_at_once(app: RunningApp, fake_slack: FakeSlack,
                                                                marketing_agent: Agent, refusal: str | None,
                                                                without_tool: bool, reason: str) -> None:
    marketing_agent.refusal, marketing_agent.without_tool = refusal, without_tool
    await marketing_agent.start()
    reply = await launch_campaign(app, fake_slack)
    assert "is launched" in reply_text(reply)
    row = await settled_row(app, NotificationStatus.FAILED)
    notice = await owner_told(fake_slack, "could not be handed to the marketing agent")
    await settled(app, outbox=True)

    assert row.retries == 0 and row.last_error == reason
    assert len(marketing_agent.calls) == (0 if without_tool else 1)
    shown = reply_text(notice)
    assert reason in shown and "The launch itself stands" in shown and TOKEN not in shown
    [result] = await results(app)
    assert result.payload["reason"] == reason and result.urgency.value == "high"


async def test_the_worker_hands_it_off_from_its_own_loop(db_url: str, fake_slack: FakeSlack,
                                                         marketing_agent: Agent) -> None:
    """The embedded worker (its own event loop thread, its own delivery built from the settings) calls the
    agent the same way: once, with the token."""
    await marketing_agent.start()
    settings = app_settings(db_url, fake_slack, marketing_agent_url=marketing_agent.url, marketing_agent_token=TOKEN)
    async with start_app(settings, fake_slack, run_worker=True) as app:
        await launch_campaign(app, fake_slack)
        await owner_told(fake_slack, "was handed to the marketing agent")
        await settled(app, outbox=True)
        assert len(marketing_agent.calls) == 1 and marketing_agent.authorizations == [f"Bearer {TOKEN}"]


async def test_without_an_agent_a_launch_hands_nothing_off(db_url: str, fake_slack: FakeSlack) -> None:
    async with start_app(app_settings(db_url, fake_slack), fake_slack) as app:
        reply = await launch_campaign(app, fake_slack)
        assert "is launched" in reply_text(reply)
        await settled(app, outbox=True)
        assert await handoffs(app) == [] and await results(app) == []


async def test_a_row_left_when_the_agent_was_unconfigured_fails_and_says_so(db_url: str,
                                                                            fake_slack: FakeSlack) -> None:
    """MARKETING_AGENT_URL removed after a launch wrote its hand-off: the row fails, the owner hears why."""
    async with start_app(app_settings(db_url, fake_slack), fake_slack) as app:
        await launch_campaign(app, fake_slack)
        async with app.sessions.begin() as db:
            campaign = await db.get_one(Campaign, 1)
            nid = await agent_handoff.launched(db=db, campaign=campaign, owner_slack_id=OWNER, now=datetime.now(UTC))
        assert nid is not None

        outcomes = await Delivery(sessions=app.sessions, slack=None, clock=lambda: datetime.now(UTC)).run([nid])

        assert outcomes[nid].status == "failed" and outcomes[nid].owner_notice_id is not None
        [result] = await results(app)
        assert result.payload["reason"] == "no marketing agent configured" and not result.payload["went_through"]


@pytest.mark.parametrize("url", [
    "ftp://agent.example.com/mcp", "agent.example.com/mcp", "https://", "https://user:pw@agent.example.com/mcp",
    "https://agent.example.com:99999/mcp", "https://agent example.com/mcp", "javascript:alert(1)",
])
def test_settings_refuse_an_agent_url_that_is_not_http(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.delenv("MARKETING_AGENT_URL", raising=False)
    with pytest.raises(ConfigError, match="MARKETING_AGENT_URL") as refused:
        load_settings(marketing_agent_url=url, _env_file=None)
    assert "pw" not in str(refused.value)


def test_settings_read_the_agent_and_hide_its_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARKETING_AGENT_URL", " https://agent.example.com/mcp ")
    monkeypatch.setenv("MARKETING_AGENT_TOKEN", TOKEN)
    settings = load_settings(_env_file=None)
    assert settings.marketing_agent_url == "https://agent.example.com/mcp"
    assert settings.marketing_agent_token is not None and settings.marketing_agent_token.get_secret_value() == TOKEN
    assert TOKEN not in repr(settings) and TOKEN not in repr(AgentTarget(settings.marketing_agent_url, SecretStr(TOKEN)))
    monkeypatch.setenv("MARKETING_AGENT_URL", "")
    monkeypatch.setenv("MARKETING_AGENT_TOKEN", " ")
    blank = load_settings(_env_file=None)
    assert blank.marketing_agent_url is None and blank.marketing_agent_token is None


# ---------------------------------------------------------------- what each answer means (no database)


@dataclass
class Answering:
    """An HTTP endpoint that answers every request with `status` (and Retry-After), or never answers."""

    status: int | None
    runner: web.AppRunner | None = None
    port: int = field(default_factory=free_port)

    async def __aenter__(self) -> str:
        async def handle(request: web.Request) -> web.StreamResponse:
            if self.status is None:
                await asyncio.Event().wait()  # hangs until the client gives up
            return web.Response(status=self.status or 200, text="no", headers={"Retry-After": "7"})

        app = web.Application()
        app.router.add_route("*", "/mcp", handle)
        self.runner = web.AppRunner(app, handler_cancellation=True)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return f"http://127.0.0.1:{self.port}/mcp"

    async def __aexit__(self, *exc: object) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


@pytest.mark.parametrize(("status", "verdict"), [
    (401, Verdict.FAIL), (403, Verdict.FAIL), (404, Verdict.FAIL), (500, Verdict.RETRY), (503, Verdict.RETRY),
    (408, Verdict.RETRY), (429, Verdict.WAIT), (None, Verdict.RETRY),
])
async def test_http_answers_are_classified(status: int | None, verdict: Verdict) -> None:
    async with Answering(status) as url:
        fault = await agent.call_launched(AgentTarget(url, SecretStr(TOKEN)), ARGUMENTS, timeout=0.5)
    assert fault is not None and fault.verdict is verdict, fault
    assert TOKEN not in fault.reason and len(fault.reason) <= 300
    if status is not None:
        assert fault.reason.startswith(f"HTTP {status}")
    if verdict is Verdict.WAIT:
        assert fault.wait == timedelta(seconds=7)


async def test_an_agent_that_is_not_there_is_retried() -> None:
    fault = await agent.call_launched(AgentTarget(f"http://127.0.0.1:{free_port()}/mcp"), ARGUMENTS, timeout=2)
    assert fault is not None and fault.verdict is Verdict.RETRY and "ConnectError" in fault.reason


@pytest.mark.parametrize(("code", "verdict"), [(-32602, Verdict.FAIL), (-32603, Verdict.RETRY)])
async def test_json_rpc_errors_are_classified(marketing_agent: Agent, code: int, verdict: Verdict) -> None:
    """A tool that answers with a protocol error: invalid params is a refusal, an internal error may pass.
    (The server may send it with an HTTP error status; the reason keeps the agent's words.)"""
    mcp = MCPServer("agent", log_level="WARNING")

    @mcp.tool()
    def cm_campaign_launched(campaign_ref: str, name: str, launched_at: str, channel: str | None, owner: str,
                             handoff_id: str) -> str:
        raise MCPError(code, "not now")

    marketing_agent._app = mcp.streamable_http_app  # type: ignore[method-assign]
    await marketing_agent.start()
    fault = await agent.call_launched(AgentTarget(marketing_agent.url), ARGUMENTS, timeout=5)
    assert fault is not None and fault.verdict is verdict, fault
    assert fault.reason.endswith(f"error {code}: not now"), fault
