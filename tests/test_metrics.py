"""`/metrics`: scraped over real HTTP from the running app and parsed by the official Prometheus parser.

Counters belong to the process (every app a test starts adds to them), so each check compares a scrape
after the action with one before it. Gauges read at scrape time belong to the app that was scraped.
"""

from __future__ import annotations

import asyncio
import signal
import socket
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import make_mocked_request
from prometheus_client.parser import text_string_to_metric_families

from handlers.jobs.notifications import DELIVER
from handlers.metrics import slack_method, slack_payload_labels
from handlers.web.metrics import SCRAPE_KEY
from handlers.web.operators import from_this_machine, is_loopback
from services import email_events, notifications
from tests import services
from tests.api_helpers import call
from tests.conftest import BOT_TOKEN, SIGNING_SECRET, RunningApp, app_settings, start_app
from tests.fake_slack import FakeSlack
from tests.home_helpers import planned_campaign
from tests.slack_helpers import send_command
from tests.support.api import api_token
from tests.support.dashboard import dashboard_token
from tests.support.waiting import eventually, settled
from tests.test_cli import CLI, cli_env
from tests.test_delivery import make_world
from tests.test_live_updates import stream

OPS_TOKEN = "ops-token-for-tests-0123456789"
STRANGER = {"X-Forwarded-For": "203.0.113.7"}  # a proxy on this machine forwarding someone else's request

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(app: RunningApp, headers: Mapping[str, str] | None = None) -> Samples:
    async with app.http.get(app.url("/metrics"), headers=headers or {}) as response:
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        text = await response.text()
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(samples: Samples, metric: str, /, **labels: str) -> float:
    """The sum of `metric`'s samples whose labels include `labels` (0 when there is none yet)."""
    wanted = set(labels.items())
    return sum(found for (sample, have), found in samples.items() if sample == metric and wanted <= have)


def moved(before: Samples, after: Samples, metric: str, /, **labels: str) -> float:
    return value(after, metric, **labels) - value(before, metric, **labels)


# ---------------------------------------------------------------- requests


async def test_requests_are_counted_by_route_template_never_by_raw_path(running_app: RunningApp,
                                                                        fake_slack: FakeSlack) -> None:
    ids = await planned_campaign(running_app)
    token = await api_token(running_app)
    before = await scrape(running_app)

    await send_command(running_app, fake_slack, "/campaign", "list")
    answer = await call(running_app, "PATCH", f"/api/v1/tasks/T-{ids['brief']}", token=token,
                        json={"status": "done"})
    assert answer.status == 200, answer.text
    assert (await call(running_app, "GET", "/no/such/page-12345")).status == 404
    await settled(running_app)
    after = await scrape(running_app)

    task_route = {"route": "/api/v1/tasks/{ref}"}
    assert moved(before, after, "cm_http_requests_total", **task_route, method="PATCH", status="2xx") == 1
    assert moved(before, after, "cm_http_request_duration_seconds_count", **task_route) == 1
    assert moved(before, after, "cm_http_request_duration_seconds_bucket", **task_route, le="+Inf") == 1
    assert moved(before, after, "cm_http_requests_total", route="/slack/events", method="POST", status="2xx") == 1
    assert moved(before, after, "cm_slack_requests_total", type="command", name="/campaign") == 1
    assert moved(before, after, "cm_http_requests_total", route="unmatched", status="4xx") == 1
    assert moved(before, after, "cm_replan_duration_seconds_count") >= 1  # a task done re-plans its campaign
    routes = {dict(labels).get("route", "") for _, labels in after}
    assert not any("T-" in route or "12345" in route for route in routes), routes


def test_slack_payloads_and_methods_get_bounded_labels() -> None:
    assert slack_payload_labels({"command": "/campaign", "text": "x"}) == ("command", "/campaign")
    assert slack_payload_labels({"type": "event_callback", "event": {"type": "app_home_opened"}}) == (
        "event_callback", "app_home_opened")
    assert slack_payload_labels({"type": "view_submission", "view": {"callback_id": "task_new"}}) == (
        "view_submission", "task_new")
    assert slack_payload_labels({"type": "block_actions", "actions": [{"action_id": "approve:123"}]}) == (
        "block_actions", "other")  # an id inside: not a label
    assert slack_payload_labels({"type": "made_up"}) == ("other", "")
    assert slack_method("http://127.0.0.1:1/api/chat.postMessage") == "chat.postMessage"
    assert slack_method("http://127.0.0.1:1/api/U0ALICE/../x") == "other"


# ---------------------------------------------------------------- gauges read at scrape time


async def test_the_outbox_and_email_batches_show_at_scrape_time(running_app: RunningApp) -> None:
    empty = await scrape(running_app)
    assert value(empty, "cm_outbox_notifications", status="due") == 0
    assert value(empty, "cm_scrape_database_read_ok") == 1
    now = datetime.now(UTC)
    async with running_app.sessions.begin() as db:  # nothing delivers here: no worker runs
        await notifications.notify(db=db, dedupe_key="later", kind="generic", payload={"text": "x"},
                                   recipient_channel="C0LATER", scheduled_for=now + timedelta(hours=1), now=now)
        await notifications.notify(db=db, dedupe_key="old", kind="generic", payload={"text": "x"},
                                   recipient_channel="C0OLD", scheduled_for=now - timedelta(minutes=3), now=now)
        await email_events.store_batch(db=db, body="[]", events=0, now=now)

    after = await scrape(running_app)

    assert value(after, "cm_outbox_notifications", status="due") == 1
    assert value(after, "cm_outbox_notifications", status="scheduled") == 1
    assert value(after, "cm_outbox_notifications", status="sending") == 0
    assert 180 <= value(after, "cm_outbox_oldest_due_age_seconds") < 600
    assert value(after, "cm_email_event_batches_pending") == 1
    assert value(after, "cm_scrape_database_read_age_seconds") < 5


async def test_a_slow_database_never_holds_a_scrape_up(running_app: RunningApp) -> None:
    await scrape(running_app)  # a first reading to fall back on
    assert running_app.runtime.web_app is not None
    gauges = running_app.runtime.web_app[SCRAPE_KEY].gauges
    release = asyncio.Event()
    real_read = gauges._read

    async def stuck() -> None:
        await release.wait()
        await real_read()

    gauges._read = stuck  # type: ignore[method-assign]
    try:
        started = asyncio.get_running_loop().time()
        during = await scrape(running_app)
        assert asyncio.get_running_loop().time() - started < gauges.timeout + 1.5
        assert value(during, "cm_outbox_notifications", status="due") == 0  # the last values, still shown
    finally:
        release.set()
        gauges._read = real_read  # type: ignore[method-assign]


async def test_live_streams_go_up_while_a_page_is_open_and_down_when_it_closes(running_app: RunningApp) -> None:
    token = await dashboard_token(running_app)
    async with stream(running_app, token):
        assert value(await scrape(running_app), "cm_live_streams") == 1

    async def closed() -> bool:
        return value(await scrape(running_app), "cm_live_streams") == 0

    await eventually(closed, what="the closed stream to leave the gauge", timeout=10)


# ---------------------------------------------------------------- deliveries, Slack calls, sweeps


async def test_a_delivery_a_429_and_the_sweep_are_counted(db_url: str, fake_slack: FakeSlack) -> None:
    async with start_app(app_settings(db_url, fake_slack), fake_slack, run_worker=True) as app:
        world = await make_world(app.sessions, fake_slack)
        before = await scrape(app)
        async with app.sessions.begin() as db:
            await notifications.notify(db=db, dedupe_key="metrics", kind="generic", payload={"text": "hello"},
                                       recipient_id=world.bob_id, now=datetime.now(UTC))
        fake_slack.fail_next("chat.postMessage", status=429, retry_after=1)

        assert await app.runtime.sweeper_for_tests().run_once() is not None  # hands the row to the worker
        await fake_slack.wait_for("chat.postMessage")
        await settled(app, outbox=True)
        after = await scrape(app)

    slack = {"kind": "other", "channel": "slack"}  # "generic" is no kind of ours: counted as other
    assert moved(before, after, "cm_deliveries_total", **slack, outcome="rate_limited") == 1
    assert moved(before, after, "cm_deliveries_total", **slack, outcome="sent") == 1
    assert moved(before, after, "cm_slack_api_rate_limited_total", method="chat.postMessage") == 1
    assert moved(before, after, "cm_slack_api_calls_total", method="chat.postMessage", outcome="rate_limited") == 1
    assert moved(before, after, "cm_slack_api_calls_total", method="chat.postMessage", outcome="ok") == 1
    assert moved(before, after, "cm_sweeps_total", outcome="ran") == 1
    assert moved(before, after, "cm_sweep_duration_seconds_count") == 1


# ---------------------------------------------------------------- who may scrape


async def test_internals_are_refused_to_strangers_without_the_token(db_url: str, fake_slack: FakeSlack) -> None:
    async with start_app(app_settings(db_url, fake_slack, ops_token=OPS_TOKEN), fake_slack) as app:
        for path in ("/metrics", "/health/detailed"):
            async def status(headers: dict[str, str], path: str = path) -> int:
                async with app.http.get(app.url(path), headers=headers) as response:
                    return response.status

            assert await status({}) == 200  # from this machine
            assert await status(STRANGER) == 404
            assert await status({**STRANGER, "Authorization": "Bearer wrong"}) == 404
            assert await status({**STRANGER, "Authorization": f"Basic {OPS_TOKEN}"}) == 404
            assert await status({**STRANGER, "Authorization": f"Bearer {OPS_TOKEN}"}) == 200
            assert await status({"X-Forwarded-For": "127.0.0.1, ::1"}) == 200  # a local proxy, a local client
        async with app.http.get(app.url("/health"), headers=STRANGER) as response:
            assert response.status == 200 and await response.json() == {"status": "ok"}


async def test_without_an_ops_token_only_this_machine_may_scrape(running_app: RunningApp) -> None:
    async with running_app.http.get(running_app.url("/metrics"),
                                    headers={**STRANGER, "Authorization": "Bearer "}) as response:
        assert response.status == 404


def test_who_is_this_machine() -> None:
    for address in ("127.0.0.1", "127.8.9.10", "::1", "[::1]", "[::1]:4711", "127.0.0.1:4711", "::ffff:127.0.0.1"):
        assert is_loopback(address), address
    for address in (None, "", "10.0.0.1", "203.0.113.7", "unknown", "::ffff:10.0.0.1", "localhost"):
        assert not is_loopback(address), address

    def request(remote: str, **headers: str) -> bool:
        made = make_mocked_request("GET", "/metrics", headers=headers, transport=_Peer(remote))
        return from_this_machine(made)

    assert request("127.0.0.1")
    assert not request("10.1.2.3")
    assert not request("127.0.0.1", **{"X-Real-IP": "198.51.100.2"})
    assert not request("127.0.0.1", Forwarded='for="[2001:db8::1]:4711";proto=https')
    assert request("127.0.0.1", Forwarded="for=127.0.0.1")


class _Peer:
    def __init__(self, remote: str):
        self.remote = remote

    def get_extra_info(self, name: str, default: object = None) -> object:
        return (self.remote, 50000) if name == "peername" else default

    def is_closing(self) -> bool:
        return False


# ---------------------------------------------------------------- a worker's own port


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_worker_serves_its_processes_metrics_on_its_own_port(
    db_url: str, fake_slack: FakeSlack, redis_prefix: str, tmp_path: Path
) -> None:
    port = _free_port()
    env = cli_env(DATABASE_URL=db_url, REDIS_URL=services.REDIS_URL, REDIS_NAMESPACE=redis_prefix,
                  SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=fake_slack.base_url,
                  SLACK_CHANNEL_PACE_SECONDS="0", METRICS_PORT=str(port))
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    settings = app_settings(db_url, fake_slack, redis_url=services.REDIS_URL, redis_namespace=redis_prefix)
    worker = await asyncio.create_subprocess_exec(
        CLI, "worker", "--processes", "2", "--threads", "2", env=env, cwd=tmp_path, start_new_session=True,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        async with start_app(settings, fake_slack) as app, aiohttp.ClientSession() as http:
            world = await make_world(app.sessions, fake_slack)
            async with app.sessions.begin() as db:
                nid = await notifications.notify(db=db, dedupe_key="worker-metrics", kind="generic",
                                                 payload={"text": "hi"}, recipient_id=world.bob_id,
                                                 now=datetime.now(UTC))
            assert app.runtime.deps is not None and app.runtime.deps.queue is not None
            await app.runtime.deps.queue.enqueue(DELIVER, notification_ids=[nid])
            await fake_slack.wait_for("chat.postMessage")

            async def counted() -> Samples | None:
                try:
                    async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
                        text = await response.text()
                except aiohttp.ClientError:
                    return None  # the serving process is not up yet
                samples: Samples = {(s.name, frozenset(s.labels.items())): s.value
                                    for family in text_string_to_metric_families(text) for s in family.samples}
                return samples if value(samples, "cm_deliveries_total", outcome="sent") == 1 else None

            samples = await eventually(counted, what="the worker's metrics to show the delivery", every=0.2)
            assert value(samples, "cm_slack_api_calls_total", method="chat.postMessage", outcome="ok") == 1
    finally:
        worker.send_signal(signal.SIGTERM)  # Dramatiq passes it on to its processes
        _, stderr = await asyncio.wait_for(worker.communicate(), 30)
    assert b"Traceback" not in stderr, stderr.decode()


def test_settings_read_the_ops_token_hidden_and_a_blank_metrics_port_as_unset() -> None:
    from bot.settings import load_settings

    settings = load_settings(ops_token="  ", metrics_port="")
    assert settings.ops_token is None and settings.metrics_port is None
    settings = load_settings(ops_token=OPS_TOKEN, metrics_port="9464")
    assert settings.metrics_port == 9464 and OPS_TOKEN not in repr(settings)
    assert settings.ops_token is not None and settings.ops_token.get_secret_value() == OPS_TOKEN
