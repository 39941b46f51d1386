"""A fleet on one PostgreSQL and one Redis: two `serve` processes and two `worker` processes, driven by signed
Slack requests split across both servers.

Promised (issue 16, README "Running a fleet"): nothing the outbox sends goes out twice; one sweep runs at a
time, and when the instance sweeping is killed the other goes on within an interval; the replay cache, the
API rate limit and the dashboards' live updates are shared through Redis.

The sweeps are observed from inside PostgreSQL, without changing the app: the test database gets a
`public.pg_try_advisory_xact_lock(bigint)` that, with `search_path = public, pg_catalog`, stands in front
of the built-in one the sweep calls (`services.sweep.try_lock`). It calls the built-in and records who
asked (the connection's `application_name`: `models.db.application_name`, the process id last), when,
and whether the lock was taken; a deferred trigger stamps the moment the sweep's transaction commits.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO

import aiohttp
import asyncpg
import pytest
import pytest_asyncio
from sqlalchemy import func, or_, select

from handlers.web.api_v1 import limits
from models import Notification, NotificationStatus
from models.db import create_engine, create_session_factory
from services import api_tokens, team
from services.kinds import TASK_KINDS, Kind
from tests import services
from tests.conftest import BOT_TOKEN, SIGNING_SECRET, migrate_url
from tests.fake_slack import FakeSlack
from tests.slack_requests import SlackSender
from tests.support.network import free_port
from tests.support.waiting import eventually, redis_jobs_done
from tests.test_cli import CLI, cli_env

pytestmark = pytest.mark.asyncio(loop_scope="module")

SWEEP_INTERVAL = 1  # seconds: SWEEP_INTERVAL_SECONDS of both servers
TAKEOVER_MARGIN = 1.5  # seconds past one interval: a sweep's own run and a loaded CI machine
API_LIMIT = 8  # API_RATE_LIMIT_PER_MINUTE of both servers
AT_WORK = "hours=mon-sun 0-24"  # no quiet hours: nothing waits for the morning, whatever the hour the test runs
OWNER, BOB = "U0ALICE", "U0BOB"
CHANNEL = "C0FLEET"

SWEEP_SPY = """
CREATE TABLE fleet_sweeps (
    id bigserial PRIMARY KEY, app text NOT NULL, started timestamptz NOT NULL, took boolean NOT NULL,
    committed timestamptz
);
CREATE FUNCTION public.pg_try_advisory_xact_lock(key bigint) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
DECLARE took boolean;
BEGIN
    took := pg_catalog.pg_try_advisory_xact_lock(key);
    INSERT INTO fleet_sweeps (app, started, took) VALUES (current_setting('application_name'), clock_timestamp(), took);
    RETURN took;
END $$;
CREATE FUNCTION fleet_sweep_committed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE fleet_sweeps SET committed = clock_timestamp() WHERE id = NEW.id;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER fleet_sweep_commit AFTER INSERT ON fleet_sweeps DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION fleet_sweep_committed();
"""


@dataclass(frozen=True)
class Sweep:
    pid: int
    started: datetime
    took: bool
    committed: datetime | None


@dataclass
class Server:
    name: str
    process: asyncio.subprocess.Process
    base: str
    log: Path
    slack: SlackSender

    def url(self, path: str) -> str:
        return self.base + path


@dataclass
class Fleet:
    db_url: str
    namespace: str
    fake: FakeSlack
    http: aiohttp.ClientSession
    servers: list[Server]
    workers: list[asyncio.subprocess.Process]
    logs: list[IO[bytes]] = field(default_factory=list)

    async def sweeps(self) -> list[Sweep]:
        connection = await asyncpg.connect(_dsn(self.db_url))
        try:
            rows = await connection.fetch("SELECT app, started, took, committed FROM fleet_sweeps ORDER BY started")
        finally:
            await connection.close()
        return [Sweep(int(row["app"].rsplit("/", 1)[1]), row["started"], row["took"], row["committed"]) for row in rows]


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _install_sweep_spy(url: str) -> None:
    connection = await asyncpg.connect(_dsn(url))
    try:
        await connection.execute(SWEEP_SPY)
        name = url.rsplit("/", 1)[1]
        await connection.execute(f'ALTER DATABASE "{name}" SET search_path = public, pg_catalog')
    finally:
        await connection.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fleet(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Fleet]:
    services.check_redis()
    db_url = await asyncio.to_thread(services.create_postgres_database)
    namespace = f"cm-fleet-{uuid.uuid4().hex[:10]}"
    cwd = tmp_path_factory.mktemp("fleet")
    fake = FakeSlack()
    await fake.start()
    fleet: Fleet | None = None
    try:
        await migrate_url(db_url)
        await _install_sweep_spy(db_url)
        for user, name, tz in ((OWNER, "alice", "Europe/Berlin"), (BOB, "bob", "America/Chicago")):
            fake.add_user(user, name=name, real_name=name.title(), email=f"{name}@example.com", tz=tz)
        common = {"DATABASE_URL": db_url, "REDIS_URL": services.REDIS_URL, "REDIS_NAMESPACE": namespace,
                  "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                  "SLACK_API_URL": fake.base_url, "SLACK_CHANNEL_PACE_SECONDS": "0", "LOG_FORMAT": "json",
                  "SWEEP_INTERVAL_SECONDS": str(SWEEP_INTERVAL), "API_RATE_LIMIT_PER_MINUTE": str(API_LIMIT),
                  "DATABASE_POOL_SIZE": "5"}
        fleet = Fleet(db_url, namespace, fake, aiohttp.ClientSession(), [], [])
        for name in ("a", "b"):
            port = free_port()
            log = cwd / f"serve-{name}.log"
            sink = log.open("wb")  # a file, not a pipe: nobody has to drain it for the server to go on
            fleet.logs.append(sink)
            process = await asyncio.create_subprocess_exec(
                CLI, "serve", env=cli_env(**common, HOST="127.0.0.1", PORT=str(port)), cwd=cwd,
                stdout=asyncio.subprocess.DEVNULL, stderr=sink)
            base = f"http://127.0.0.1:{port}"
            sender = SlackSender(session=fleet.http, url=f"{base}/slack/events", secret=SIGNING_SECRET, fake=fake)
            fleet.servers.append(Server(name, process, base, log, sender))
        for name in ("1", "2"):
            sink = (cwd / f"worker-{name}.log").open("wb")
            fleet.logs.append(sink)
            fleet.workers.append(await asyncio.create_subprocess_exec(
                CLI, "worker", "--processes", "1", "--threads", "2", env=cli_env(**common), cwd=cwd,
                start_new_session=True, stdout=asyncio.subprocess.DEVNULL, stderr=sink))
        for server in fleet.servers:
            await _wait_until_up(fleet.http, server)
        yield fleet
    finally:
        await _stop(fleet)
        await fake.stop()
        await asyncio.to_thread(services.drop_postgres_database, db_url)
        await asyncio.to_thread(services.delete_redis_keys, namespace)


async def _wait_until_up(http: aiohttp.ClientSession, server: Server) -> None:
    async def up() -> bool:
        assert server.process.returncode is None, f"serve {server.name} exited: {server.log.read_text()[-2000:]}"
        try:
            async with http.get(server.url("/health")) as response:
                return response.status == 200
        except aiohttp.ClientConnectionError:
            return False

    await eventually(up, what=f"serve {server.name} to answer /health", timeout=30, every=0.1)


async def _stop(fleet: Fleet | None) -> None:
    """SIGTERM to every process still running (a killed one is gone already); each must exit cleanly."""
    if fleet is None:
        return
    await fleet.http.close()
    running = [server.process for server in fleet.servers if server.process.returncode is None]
    running += [worker for worker in fleet.workers if worker.returncode is None]
    for process in running:
        process.send_signal(signal.SIGTERM)
    codes = [await asyncio.wait_for(process.wait(), 40) for process in running]
    for sink in fleet.logs:
        sink.close()
    logs = {sink.name: await asyncio.to_thread(Path(sink.name).read_text, errors="replace") for sink in fleet.logs}
    assert codes == [0] * len(codes), {name: text[-2000:] for name, text in logs.items()}
    assert not [name for name, text in logs.items() if "Traceback" in text], logs


async def command(server: Server, fake: FakeSlack, text: str, *, user: str = OWNER, name: str = "/campaign") -> str:
    """Send `name text` to `server` as `user` and return the reply's text."""
    url = fake.response_url()
    url_id = url.rsplit("/", 1)[1]
    status, _ = await server.slack.command(name, text, user_id=user, response_url=url, channel_id=CHANNEL)
    assert status == 200
    reply = await fake.wait_for("response_url", lambda call: call.url_id == url_id)
    return repr(reply.args.get("blocks")) + str(reply.args.get("text", ""))


# ---------------------------------------------------------------- nothing sent twice


async def test_reminders_and_approval_requests_go_out_once_across_the_fleet(fleet: Fleet) -> None:
    """Work made through both servers, swept by both and sent by both workers: every row posted once."""
    a, b = fleet.servers
    fake = fleet.fake
    await command(a, fake, f"me skills=strategy,copywriting,email,design,web,social,analytics {AT_WORK}",
                  name="/team")
    await command(b, fake, f"me skills=strategy,copywriting,email,design,web,social,analytics {AT_WORK}",
                  user=BOB, name="/team")
    # Launching in two days: most of the plan's work is due already, so the sweeps owe reminders at once.
    soon = (date.today() + timedelta(days=2)).isoformat()
    assert "CM-1 created" in await command(a, fake, f'new "Fleet one" newsletter {soon}')
    assert "CM-2 created" in await command(b, fake, f'new "Fleet two" webinar {soon}', user=BOB)
    await command(b, fake, "assign CM-1")
    await command(a, fake, "assign CM-2", user=BOB)
    reply = await command(a, fake, 'request CM-1 "Fleet review" <@U0BOB|bob>', name="/approval")
    assert "error id" not in reply, reply
    reply = await command(b, fake, 'request CM-2 "Fleet check" <@U0ALICE|alice>', user=BOB, name="/approval")
    assert "error id" not in reply, reply

    engine = create_engine(fleet.db_url, pool_size=2)
    sessions = create_session_factory(engine)
    try:
        async def reminders_and_requests_sent() -> bool:
            async with sessions() as db:
                kinds = dict((await db.execute(
                    select(Notification.kind, func.count()).where(Notification.status == NotificationStatus.SENT)
                    .group_by(Notification.kind))).all())
                busy = await db.scalar(select(func.count()).select_from(Notification).where(or_(
                    Notification.status == NotificationStatus.CLAIMED,
                    (Notification.status == NotificationStatus.PENDING)
                    & (Notification.scheduled_for <= datetime.now(UTC)))))
            reminded = any(kinds.get(kind) for kind in TASK_KINDS)
            return bool(kinds.get(Kind.APPROVAL_REQUEST)) and reminded and not busy

        await eventually(reminders_and_requests_sent, what="reminders and approval requests sent, nothing due",
                         timeout=40, every=0.2)
        # Two more sweeps on each server hand out again whatever a lost job might have left: still once each.
        seen = len(await fleet.sweeps())
        await eventually(lambda: _sweeps_since(fleet, seen, 4), what="four more sweeps", timeout=20, every=0.2)
        await redis_jobs_done(services.REDIS_URL, fleet.namespace)
        async with sessions() as db:
            sent = dict((await db.execute(select(Notification.slack_ts, Notification.dedupe_key).where(
                Notification.status == NotificationStatus.SENT, Notification.slack_ts.is_not(None)))).all())
    finally:
        await engine.dispose()

    posts = [call for call in fake.calls_to("chat.postMessage") if call.response and call.response.get("ok")]
    per_key = Counter(sent.get(call.response["ts"], f"not recorded: {call.args.get('text')}") for call in posts)
    assert {key: n for key, n in per_key.items() if n != 1} == {}, "posted more than once, or never recorded"
    assert len(posts) == len(sent) >= 4
    print(f"\nfleet: {len(posts)} posts, {len(await fleet.sweeps())} sweep attempts so far")
    same = Counter((call.args["channel"], call.args.get("text"), repr(call.args.get("blocks"))) for call in posts)
    assert max(same.values()) == 1, "the same message posted twice under different rows"


async def _sweeps_since(fleet: Fleet, seen: int, count: int) -> bool:
    return len([s for s in (await fleet.sweeps())[seen:] if s.took]) >= count


# ---------------------------------------------------------------- shared through Redis


async def test_a_request_replayed_to_the_other_server_is_refused(fleet: Fleet) -> None:
    a, b = fleet.servers
    timestamp = int(time.time())
    url = fleet.fake.response_url()
    first, _ = await a.slack.command("/campaign", "list", response_url=url, timestamp=timestamp)
    again, body = await b.slack.command("/campaign", "list", response_url=url, timestamp=timestamp)
    assert (first, again) == (200, 401), body
    await fleet.fake.wait_for("response_url", lambda call: call.url_id == url.rsplit("/", 1)[1])


async def test_the_api_rate_limit_counts_a_tokens_requests_on_every_server(fleet: Fleet) -> None:
    assert API_LIMIT < limits.LIMIT_PER_WINDOW  # the setting, not the default, is what refuses
    engine = create_engine(fleet.db_url, pool_size=1)
    try:
        async with create_session_factory(engine).begin() as db:
            member = await team.ensure_member(db=db, slack_user_id=OWNER)
            issued = await api_tokens.issue(db=db, created_by=member, acting_as=member, label="fleet", scope="read",
                                            now=datetime.now(UTC))
    finally:
        await engine.dispose()
    headers = {"Authorization": f"Bearer {issued.token}"}
    for _attempt in range(2):  # a run that straddles the minute's edge counts in two windows: once more
        window = int(time.time() // limits.WINDOW_SECONDS)
        statuses: list[tuple[str, int]] = []
        for n in range(API_LIMIT + 2):
            server = fleet.servers[n % 2]
            async with fleet.http.get(server.url("/api/v1/campaigns"), headers=headers) as response:
                statuses.append((server.name, response.status))
        if int(time.time() // limits.WINDOW_SECONDS) == window:
            break
        await asyncio.sleep(max(0.0, (window + 2) * limits.WINDOW_SECONDS - time.time()))  # into a fresh window
    allowed = [name for name, status in statuses if status == 200]
    refused = [name for name, status in statuses if status == 429]
    assert len(allowed) == API_LIMIT and sorted(set(allowed)) == ["a", "b"], statuses
    assert refused == ["a", "b"] and statuses[:API_LIMIT] == [(name, 200) for name, _ in statuses[:API_LIMIT]]


async def test_a_page_open_on_one_server_hears_a_change_made_through_the_other(fleet: Fleet) -> None:
    a, b = fleet.servers
    reply = await command(a, fleet.fake, "", name="/dashboard")
    link = re.search(rf"{re.escape(a.base)}/dashboard/([A-Za-z0-9_.-]+)", reply)
    assert link, reply
    token = link.group(1)
    async with fleet.http.get(a.url(f"/dashboard/{token}/events")) as page:
        assert page.status == 200
        assert (await page.content.readline()).startswith(b"retry:")  # written once the hub listens
        created = await command(b, fleet.fake, f'new "Heard elsewhere" newsletter {_in_days(60)}')
        number = re.search(r"CM-(\d+) created", created)
        assert number, created
        heard: list[int] = []
        async with asyncio.timeout(5):
            while int(number.group(1)) not in heard:
                line = (await page.content.readline()).decode()
                assert line, "the stream ended"
                if line.startswith("data:"):
                    heard += json.loads(line.removeprefix("data:"))["campaigns"]


def _in_days(days: int) -> str:
    return (date.today() + timedelta(days=days)).isoformat()


# ---------------------------------------------------------------- one sweep at a time; a successor


async def test_one_sweep_runs_at_a_time_and_the_other_server_takes_over_when_one_is_killed(fleet: Fleet) -> None:
    """Kept last in this module: it kills a server."""
    pids = {server.process.pid for server in fleet.servers}
    seen = len(await fleet.sweeps())
    await eventually(lambda: _sweeps_since(fleet, seen, 6), what="six sweeps", timeout=20, every=0.2)
    sweeps = [s for s in await fleet.sweeps() if s.took]
    assert {s.pid for s in sweeps} == pids, "both servers sweep (each in turn), and nobody else"
    for earlier, later in zip(sweeps, sweeps[1:], strict=False):
        assert earlier.committed is not None and earlier.committed <= later.started, (earlier, later)

    victim = next(server for server in fleet.servers if server.process.pid == sweeps[-1].pid)
    survivor = next(server for server in fleet.servers if server is not victim)
    killed_at = datetime.now(UTC)
    os.kill(victim.process.pid, signal.SIGKILL)
    await victim.process.wait()

    async def survivor_swept() -> Sweep | None:
        later = [s for s in await fleet.sweeps() if s.took and s.started > killed_at]
        return later[0] if later else None

    first = await eventually(survivor_swept, what="a sweep after the kill", timeout=10, every=0.05)
    assert first.pid == survivor.process.pid
    waited = (first.started - killed_at).total_seconds()
    assert waited <= SWEEP_INTERVAL + TAKEOVER_MARGIN, f"the next sweep came {waited:.2f} s after the kill"
    print(f"\nfleet: {len(sweeps)} sweeps, none overlapping; the survivor swept {waited:.2f} s after the kill")
    # And the survivor still answers Slack.
    assert "CM-" in await command(survivor, fleet.fake, "list")

