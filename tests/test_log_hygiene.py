"""Log hygiene, end to end: a real `serve` (and, in Redis mode, a real `worker`) at DEBUG with JSON logs is
driven through signed Slack commands, a modal, the REST API and MCP with a bearer token, a dashboard link,
a Mailjet post with its secret in the URL, an outgoing webhook, the marketing agent's hand-off and a
Slack call that fails. Then every line the processes wrote is read:

- each is one JSON object; the lines of a request, of the listeners after its ack and of the jobs it
  queued carry its `request_id`, across processes in Redis mode; a sweep's carry a `sweep-…` id;
- none holds a secret, a token or a text typed in (each is a unique canary string).

Waits are on definite signals (a reply, a recorded call, a log line), never on sleeps.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.logs import Redactor
from handlers.request_ids import accepted, bound, current, new_id
from tests import services
from tests.conftest import BOT_TOKEN, SIGNING_SECRET, empty_database
from tests.fake_slack import FakeSlack
from tests.slack_requests import SlackSender, view_submission_payload
from tests.support.network import free_port
from tests.support.waiting import eventually
from tests.test_agent_handoff import Agent
from tests.test_cli import CLI, _wait_until_up, cli_env
from tests.test_deploys import LogWatcher
from tests.test_mailjet_webhook import event
from tests.test_modals import task_form
from tests.test_webhooks import Receiver

ADMIN = "U0ALICE"
DASHBOARD_SECRET = "canary-dashboard-secret-5d1c9a"
AGENT_TOKEN = "canary-agent-token-77b0e2"
MAILJET_SECRET = "canary-mailjet-secret-3f6a41"
SMTP_PASSWORD = "canary-smtp-password-9e2b"
# What people type: each must stay out of the logs, wherever it travels (Slack messages, the agent, webhooks).
CAMPAIGN_NAME = "Quokka canary launch"
TASK_TITLE = "Zebra canary webinar"
MAILJET_ADDRESS = "canary.recipient.4471@example.com"
TYPED = (CAMPAIGN_NAME, TASK_TITLE, MAILJET_ADDRESS)

API_TOKEN = re.compile(r"cm_[1-9][0-9]*_[A-Za-z0-9_-]{43}")
WEBHOOK_SECRET = re.compile(r"```([0-9a-f]{64})```")
DASHBOARD_LINK = re.compile(r"/dashboard/([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)")


# ---------------------------------------------------------------- the pieces, in-process


def test_a_well_formed_incoming_id_is_kept_and_anything_else_replaced() -> None:
    assert accepted("lb-1234.abc:7") == "lb-1234.abc:7"
    for bad in (None, "", "two words", "x" * 101, "-leading", "new\nline", "quote\"d", "ünïcode"):
        assert accepted(bad) is None, bad
    assert re.fullmatch(r"[0-9a-f]{32}", new_id()) and re.fullmatch(r"sweep-[0-9a-f]{16}", new_id("sweep"))
    with bound("outer"):
        with bound("inner"):
            assert current.get() == "inner"
        assert current.get() == "outer"
    assert current.get() is None


@pytest.mark.parametrize(("line", "gone"), [
    ("GET /dashboard/MXwxMjM0.c2lnbmF0dXJlc2lnbmF0dXJlc2ln/week 200", "MXwxMjM0.c2lnbmF0dXJlc2lnbmF0dXJlc2ln"),
    ("GET /dashboard?token=abc.def&x=1", "abc.def"),
    ("POST /webhooks/mailjet?secret=hunter2hunter2", "hunter2hunter2"),
    ("smtp://mailer:s3cr3t-pass@smtp.example.com:587", "s3cr3t-pass"),
    ("https://mailjet:s3cr3t-pass@cm.example.com/webhooks/mailjet", "s3cr3t-pass"),
    ("headers {'Authorization': 'Bearer cm_12_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ'}", "abcdefghijklmnopqrstuvwxyz"),
    ("token xoxb-1234-5678-abcdEFGH and xapp-1-A0-99-ffee", "xoxb-1234"),
    ("token xoxb-1234-5678-abcdEFGH and xapp-1-A0-99-ffee", "xapp-1"),
    ("the configured one: configured-secret-value", "configured-secret-value"),
])
def test_the_redactor_blanks_token_shapes_and_configured_secrets(line: str, gone: str) -> None:
    redacted = Redactor(["configured-secret-value", "short"]).redact(line)
    assert gone not in redacted and "[redacted]" in redacted, redacted


def test_the_redactor_cleans_arguments_extras_and_tracebacks() -> None:
    import logging

    secret = "configured-secret-value"
    try:
        raise RuntimeError(f"failed with {secret}")
    except RuntimeError as error:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "call %s failed", (f"Bearer {secret}",),
                                   (type(error), error, error.__traceback__))
    record.url = f"/dashboard?token={secret}"
    Redactor([secret]).filter(record)
    from bot.logs import JsonFormatter

    line = JsonFormatter().format(record)
    assert secret not in line and json.loads(line)["exception"].startswith("Traceback"), line


def test_an_access_line_names_no_dashboard_token_nor_query_secret() -> None:
    """aiohttp's access log is off in `serve`, but whoever turns it on (or runs the app another way) gets
    the dashboard's token and `?secret=` blanked, in the line and in the fields it passes as extras."""
    import io
    import logging

    from aiohttp.test_utils import make_mocked_request
    from aiohttp.web_log import AccessLogger

    from bot.logs import JsonFormatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(Redactor())
    logger = logging.getLogger("tests.access")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    token = "MXwxMjM0.c2lnbmF0dXJlc2lnbmF0dXJlc2ln"
    try:
        for path in (f"/dashboard/{token}/week", f"/dashboard?token={token}", f"/webhooks/mailjet?secret={token}"):
            request = make_mocked_request("GET", path)
            AccessLogger(logger, '%a "%r" %s %b').log(request, web.Response(), 0.01)
    finally:
        logger.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3 and all(token not in line and "[redacted]" in line for line in lines), lines


# ---------------------------------------------------------------- a real server (and worker), driven


@dataclass
class Fleet:
    """The processes under test and what they wrote, as it comes."""

    base: str
    http: aiohttp.ClientSession
    slack: SlackSender
    fake: FakeSlack
    watchers: list[LogWatcher] = field(default_factory=list)
    processes: list[asyncio.subprocess.Process] = field(default_factory=list)

    async def stop(self) -> None:
        """SIGTERM to each process, then wait for its exit and the end of its output (the shutdown's lines)."""
        for process in self.processes:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            await asyncio.wait_for(process.wait(), 30)
        for watcher in self.watchers:
            await watcher.finished()

    def url(self, path: str) -> str:
        return self.base + path

    def lines(self) -> list[str]:
        return [line for watcher in self.watchers for line in watcher.lines if line.strip()]

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines()]

    async def wait_for(self, what: str, matches: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """The first record `matches` accepts, in any process's output."""

        def found() -> dict[str, Any] | None:
            for line in self.lines():
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if matches(record):
                    return record
            return None

        return await eventually(found, what=what, timeout=30)

    async def command(self, command: str, text: str, *, user_id: str = ADMIN) -> str:
        """Send a slash command; the text of the reply at its response_url."""
        url = self.fake.response_url()
        url_id = url.rsplit("/", 1)[1]
        status, _ = await self.slack.command(command, text, user_id=user_id, response_url=url)
        assert status == 200
        reply = await self.fake.wait_for("response_url", lambda call: call.url_id == url_id)
        return repr(reply.args.get("blocks")) + reply.args.get("text", "")


@pytest.fixture(params=["sqlite-embedded", "postgresql-redis"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """The environment that picks the database and the queue: SQLite with the embedded worker, or
    PostgreSQL with Redis and a worker process."""
    if request.param == "sqlite-embedded":
        return {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'logs.db'}"}
    return {"DATABASE_URL": request.getfixturevalue("postgres_url"), "REDIS_URL": services.REDIS_URL,
            "REDIS_NAMESPACE": request.getfixturevalue("redis_prefix")}


@pytest.fixture
async def fleet(backend: dict[str, str], tmp_path: Path, fake_slack: FakeSlack, agent: Agent) -> AsyncIterator[Fleet]:
    port = free_port()
    env = dict(
        HOST="127.0.0.1", PORT=str(port), LOG_FORMAT="json", LOG_LEVEL="DEBUG", ADMIN_USER_IDS=ADMIN,
        SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=fake_slack.base_url,
        DASHBOARD_SECRET=DASHBOARD_SECRET, MAILJET_WEBHOOK_SECRET=MAILJET_SECRET,
        MARKETING_AGENT_URL=agent.url, MARKETING_AGENT_TOKEN=AGENT_TOKEN,
        SMTP_URL=f"smtp://mailer:{SMTP_PASSWORD}@127.0.0.1:{free_port()}", SLACK_CHANNEL_PACE_SECONDS="0",
        SWEEP_INTERVAL_SECONDS="1", SHUTDOWN_GRACE_SECONDS="5",
    )
    env.update(backend)
    if "REDIS_URL" in backend:
        await empty_database(backend["DATABASE_URL"])
    async with aiohttp.ClientSession() as http:
        fleet = Fleet(base=f"http://127.0.0.1:{port}", http=http, fake=fake_slack,
                      slack=SlackSender(session=http, url=f"http://127.0.0.1:{port}/slack/events",
                                        secret=SIGNING_SECRET, fake=fake_slack))
        try:
            serve = await asyncio.create_subprocess_exec(CLI, "serve", env=cli_env(**env), cwd=tmp_path,
                                                         stderr=asyncio.subprocess.PIPE)
            fleet.processes.append(serve)
            assert serve.stderr is not None
            fleet.watchers.append(LogWatcher(serve.stderr))
            if "REDIS_URL" in env:
                worker = await asyncio.create_subprocess_exec(
                    CLI, "worker", "--processes", "1", "--threads", "2", env=cli_env(**env), cwd=tmp_path,
                    stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
                fleet.processes.append(worker)
                assert worker.stderr is not None
                fleet.watchers.append(LogWatcher(worker.stderr))
            await _wait_until_up(http, fleet.url("/health"), serve)
            yield fleet
        finally:
            await fleet.stop()


@pytest.fixture
async def agent() -> AsyncIterator[Agent]:
    found = Agent(port=free_port())
    await found.start()
    yield found
    await found.stop()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver(port=free_port())
    await found.start()
    yield found
    await found.stop()


async def test_a_run_logs_json_with_request_ids_and_no_secret_or_typed_text(
    fleet: Fleet, fake_slack: FakeSlack, agent: Agent, receiver: Receiver,
) -> None:
    launch = (date.today() + timedelta(days=90)).isoformat()
    # Slack: an API token, a campaign, a webhook, a task through the form, a task done (the webhook fires).
    issued = API_TOKEN.search(await fleet.command("/api", 'token new "canary sync" scope=write'))
    assert issued, "no API token in the reply"
    api_token = issued.group(0)
    assert "CM-1 created" in await fleet.command("/campaign", f'new "{CAMPAIGN_NAME}" product_launch {launch}')
    hooked = WEBHOOK_SECRET.search(await fleet.command("/api", f"webhook add {receiver.url} events=task.done"))
    assert hooked, "no webhook secret in the reply"
    webhook_secret = hooked.group(1)
    opened = len(fake_slack.calls_to("views.open"))
    status, _ = await fleet.slack.command("/task", "new", user_id=ADMIN)
    assert status == 200
    form = await fake_slack.wait_for("views.open", count=opened + 1)
    submitted = view_submission_payload(user_id=ADMIN, callback_id="task_new_modal", view_id=form.response["view"]["id"],
                                        values={block: {"value": leaf} for block, leaf in task_form(title=TASK_TITLE).items()})
    status, body = await fleet.slack.interaction(submitted)
    assert status == 200 and "added to CM-1" in body, body
    assert "T-1" in await fleet.command("/task", "done T-1")
    await _eventually(lambda: receiver.arrived, "the webhook's post")

    # The REST API and MCP with the bearer token; the caller's request id is answered back and logged.
    headers = {"Authorization": f"Bearer {api_token}", "X-Request-Id": "api-call-0001"}
    async with fleet.http.get(fleet.url("/api/v1/campaigns"), headers=headers) as response:
        assert response.status == 200 and response.headers["X-Request-Id"] == "api-call-0001"
        assert CAMPAIGN_NAME in await response.text()
    async with fleet.http.get(fleet.url("/health"), headers={"X-Request-Id": "not a good id"}) as response:
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-Id"])
    await _mcp_call(fleet, api_token)

    # The dashboard by its link, by path and by ?token=, and a refused one.
    link = DASHBOARD_LINK.search(await fleet.command("/dashboard", ""))
    assert link, "no dashboard link in the reply"
    link_token = link.group(1)
    for path in (f"/dashboard/{link_token}", f"/dashboard/{link_token}/week", f"/dashboard?token={link_token}"):
        async with fleet.http.get(fleet.url(path)) as response:
            assert response.status == 200, path
    async with fleet.http.get(fleet.url(f"/dashboard/{link_token}x/week")) as response:
        assert response.status in (401, 403)

    # Mailjet with the secret in the URL: its job's lines carry the post's request id, in whichever process.
    async with fleet.http.post(fleet.url(f"/webhooks/mailjet?secret={MAILJET_SECRET}"),
                               json=[event("sent", MAILJET_ADDRESS)], headers={"X-Request-Id": "mailjet-post-1"}) as response:
        assert response.status == 200, await response.text()
    await fleet.wait_for("the email batch job's line", lambda record: "email event batch" in record["message"]
                         and record.get("request_id") == "mailjet-post-1")

    # A launch: the agent's hand-off (bearer token), and the owner's notice refused by Slack.
    fake_slack.fail_next("chat.postMessage", error="channel_not_found", times=3)
    assert "launched" in await fleet.command("/campaign", "launch CM-1")
    await _eventually(lambda: agent.calls, "the agent's call")
    assert agent.authorizations == [f"Bearer {AGENT_TOKEN}"]
    await fleet.wait_for("a refused Slack call logged", lambda record: "channel_not_found" in record["message"])
    await fleet.wait_for("a sweep's line", lambda record: str(record.get("request_id", "")).startswith("sweep-"))

    await fleet.stop()  # what follows reads everything, shutdown included
    assert [process.returncode for process in fleet.processes] == [0] * len(fleet.processes)
    records = fleet.records()  # every line parses as JSON (json.loads raises otherwise)
    assert all(isinstance(record, dict) and {"time", "level", "logger", "message"} <= set(record) for record in records)
    _each_request_and_its_jobs_share_an_id(records)
    secrets = (BOT_TOKEN, SIGNING_SECRET, DASHBOARD_SECRET, AGENT_TOKEN, MAILJET_SECRET, SMTP_PASSWORD, api_token,
               api_token.rsplit("_", 1)[1], webhook_secret, link_token, link_token.split(".")[1], *TYPED)
    leaks = [(secret, line) for line in fleet.lines() for secret in secrets if secret in line]
    assert not leaks, {(secret, json.loads(line)["logger"]) for secret, line in leaks}


def _each_request_and_its_jobs_share_an_id(records: list[dict[str, Any]]) -> None:
    by_request: dict[str, set[str]] = {}
    for record in records:
        if record.get("request_id"):
            by_request.setdefault(record["request_id"], set()).add(record["logger"])
    request_lines = [record for record in records if record["logger"] == "handlers.web.request_ids"]
    assert request_lines and all(record.get("request_id") for record in request_lines)
    assert any(record["request_id"] == "api-call-0001" for record in request_lines)
    # Lines of our own code that a request or a sweep caused carry its id: web routes, listeners, jobs.
    caused = [record for record in records
              if record["logger"].startswith(("handlers.web", "handlers.slack", "handlers.jobs", "services."))]
    assert caused and all(record.get("request_id") for record in caused), [r for r in caused if not r.get("request_id")][:3]
    # Slack requests whose jobs delivered something: the delivery job's line has the request's id.
    slack_requests = {record["request_id"] for record in request_lines if "/slack/events" in record["message"]}
    deliveries = {record["request_id"] for record in records if record["logger"] == "handlers.jobs.notifications"}
    assert deliveries & slack_requests, (deliveries, slack_requests)


async def _mcp_call(fleet: Fleet, token: str) -> None:
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http, \
            Client(streamable_http_client(fleet.url("/mcp"), http_client=http)) as client:  # type: ignore[arg-type]
        result = await client.call_tool("list_campaigns", {})
    assert not result.is_error, result.content


async def _eventually(check: Callable[[], Any], what: str) -> Any:
    return await eventually(check, what=what, timeout=30)


def test_the_configured_secrets_are_every_secret_setting_and_url_passwords() -> None:
    from bot.logs import secrets_of
    from bot.settings import Settings

    settings = Settings(database_url="postgresql+asyncpg://app:db-password-1@db/cm", redis_url="redis://:redis-pw-22@r:6379/0",
                        smtp_url="smtp://mailer:smtp%40password@mail:587", slack_bot_token="xoxb-configured",
                        slack_signing_secret="signing-secret", mailjet_webhook_secret="mailjet-secret")  # type: ignore[arg-type]
    assert {"db-password-1", "redis-pw-22", "smtp@password", "xoxb-configured", "signing-secret",
            "mailjet-secret"} <= set(secrets_of(settings))


async def test_a_database_error_names_no_parameter_value(database_url: str) -> None:
    """A failed statement's error, logged with its traceback by whoever catches it, holds no value bound to it
    (a task's title, a message's text): SQLAlchemy prints them unless the engine hides them."""
    from sqlalchemy import text

    from models.db import create_engine

    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            with pytest.raises(Exception) as raised:
                await connection.execute(text("SELECT * FROM no_such_table WHERE name = :name"),
                                         {"name": TASK_TITLE})
    finally:
        await engine.dispose()
    assert TASK_TITLE not in str(raised.value) and "no_such_table" in str(raised.value)
