"""Load benchmark: signed Slack traffic at a fixed rate against a real `campaign-manager serve`.

Run: .venv/bin/python -m bench.load [--rate 200] [--seconds 60] [--floor-seconds N] [--mix KINDS]
     [--max-inflight N] [--pool-size N] [--profile FILE]
     (from the repository root; needs the local PostgreSQL, TEST_POSTGRES_URL as in the tests)

It creates its own PostgreSQL database and seeds it (100 members, 1,000 campaigns of a 10-task template,
so 10,000 tasks, assigned round-robin), starts `campaign-manager serve` on it (embedded mode, the fake
Slack of tests/fake_slack.py on a thread of this process as the Web API and the response_url target),
and sends, open loop at `--rate` requests/s for `--seconds`, the kinds of `--mix` in turn (default:
`/campaign show CM-n`, `/task mine`, a "Start" click under a message on one of the clicker's tasks, an
App Home opening; one kind alone measures that kind), each signed as Slack signs it, from the 100
members. Reported: ack latency (the HTTP answer), reply latency (request sent -> its response_url post
arrives, or for a Home opening the member's next `views.publish`), busy answers, errors (non-200 acks,
replies with an error id, replies that never came), and the server's CPU per request, share of a core
and memory (idle, right after the burst, 10 s later).

The floor, in the same run and with the same generator: a bare Bolt app on the same aiohttp adapter
whose listeners only ack (`--floor-seconds`, default the same as `--seconds`; 0 skips it).
Targets at 200 requests/s: ack p95 < 100 ms, 0 error ids, reply p95 < 1 s, at most 1% answered busy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-signing-secret"
TOKEN = "xoxb-bench-token"
MEMBERS, CAMPAIGNS, TASKS_PER_CAMPAIGN = 100, 1_000, 10
Tasks = dict[str, list[tuple[int, int]]]  # each member's tasks: (task id, campaign id)
BUSY_MARK = "busy right now"
WORKING_MARK = "Adding the task"  # a form's working view: its result follows by views.update
BUSY_TOLERATED = 0.01  # "busy, try again" is a refusal: a rate that needs more of them does not hold
SETTLE_SECONDS = 10  # after a burst, how long the server idles before its memory is read again
ERROR_MARK = "error id"
TEMPLATE = "name: bench_ten\ntitle: Bench ten\ndescription: Ten tasks in a chain\nbuffer: 1d\ntasks:\n" + "".join(
    f"  - key: t{n}\n    title: Step {n}\n    duration: 4h\n    skill: copywriting\n"
    + (f"    after: [t{n - 1}]\n" if n else "")
    for n in range(TASKS_PER_CAMPAIGN - 1)
) + f"  - key: launch\n    title: Launch\n    milestone: true\n    after: [t{TASKS_PER_CAMPAIGN - 2}]\n"


# --------------------------------------------------------------------------- the floor: a Bolt app that only acks


def serve_floor(port: int) -> None:
    from aiohttp import web
    from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
    from slack_bolt.async_app import AsyncApp

    async def auth(**_: Any) -> Any:
        from slack_bolt.authorization import AuthorizeResult

        return AuthorizeResult(enterprise_id=None, team_id="T0TEST", bot_token=TOKEN, bot_user_id="UBOT")

    app = AsyncApp(signing_secret=SECRET, authorize=auth, raise_error_for_unhandled_request=False)

    async def just_ack(ack: Any) -> None:
        await ack()

    app.command("/campaign")(just_ack)
    app.command("/task")(just_ack)
    app.action("task_start")(just_ack)
    app.view("task_new_modal")(just_ack)
    async def nothing() -> None:
        return None

    app.event("app_home_opened")(nothing)

    async def handle(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))

    web_app = web.Application()
    web_app.router.add_post("/slack/events", handle)
    web_app.router.add_get("/health", lambda _: web.Response(text="ok"))  # type: ignore[arg-type,return-value]
    web.run_app(web_app, host="127.0.0.1", port=port, access_log=None, print=None)


# --------------------------------------------------------------------------- seeding


async def seeded(url: str, templates_dir: Path) -> Tasks:
    """Migrate the empty database at `url` and seed it; returns each member's task ids."""
    from models import migrate
    from models.db import create_engine

    engine = create_engine(url)
    try:
        await migrate.upgrade(engine)
    finally:
        await engine.dispose()
    began = time.monotonic()
    tasks = await seed(url, templates_dir)
    print(f"Load: seeded {MEMBERS} members, {CAMPAIGNS:,} campaigns, "
          f"{sum(map(len, tasks.values())):,} tasks in {time.monotonic() - began:.0f} s")
    return tasks


async def seed(url: str, templates_dir: Path) -> Tasks:
    """Members U0LOAD000..099 and 1,000 campaigns; returns each member's task ids."""
    from sqlalchemy import select, text

    from models import Task, TeamMember
    from models.db import create_engine, create_session_factory
    from services import campaigns
    from services.planning.templates import load_library

    template = load_library(templates_dir).resolve("bench_ten")
    now = datetime.now(UTC)
    engine = create_engine(url)
    sessions = create_session_factory(engine)
    try:
        async with sessions.begin() as db:
            members = [TeamMember(slack_user_id=f"U0LOAD{n:03d}", name=f"Load {n}", skills=["copywriting"],
                                  timezone="UTC", max_concurrent_tasks=200, profile_synced_at=now)
                       for n in range(MEMBERS)]
            db.add_all(members)
        for start in range(0, CAMPAIGNS, 100):
            async with sessions.begin() as db:
                for n in range(start, start + 100):
                    owner = await db.get(TeamMember, members[n % MEMBERS].id)
                    assert owner is not None
                    await campaigns.create_campaign(
                        db=db, name=f"Load campaign {n}", template=template, owner=owner, now=now,
                        launch_date=date.today() + timedelta(days=90 + n % 60),
                    )
        async with engine.begin() as connection:
            first = members[0].id
            await connection.execute(text(f"UPDATE tasks SET assignee_id = {first} + (id - 1) % {MEMBERS}"))
        # Planner statistics, as autovacuum keeps them on a database in use. Seconds after the seed they
        # are missing or stale (autovacuum looks once a minute), and PostgreSQL then guessed 3 open
        # campaigns instead of 1,000 and nested-looped over them: 3 ms of database CPU per task list.
        async with engine.connect() as connection:
            await (await connection.execution_options(isolation_level="AUTOCOMMIT")).execute(text("ANALYZE"))
        async with sessions() as db:
            rows = (await db.execute(select(Task.id, Task.campaign_id, TeamMember.slack_user_id).join(
                TeamMember, Task.assignee_id == TeamMember.id))).all()
    finally:
        await engine.dispose()
    tasks: Tasks = {}
    for task_id, campaign_id, user in rows:
        tasks.setdefault(user, []).append((task_id, campaign_id))
    return tasks


# --------------------------------------------------------------------------- traffic


@dataclass
class Sent:
    number: int
    kind: str  # command | click | home | form
    user: str
    sent: float
    acked: float | None = None
    status: int | None = None
    shed: bool = False  # told busy in the HTTP answer itself (no reply follows)
    answer: str = ""  # a form's HTTP answer: its result, or the working view that a views.update replaces

    @property
    def answered_in_ack(self) -> bool:
        """A form whose result came in its HTTP answer (no views.update follows)."""
        return self.kind == "form" and WORKING_MARK not in self.answer


MIX = ("show", "mine", "click", "home")  # the default mix, in equal shares
KINDS_HELP = {"show": "/campaign show CM-n", "mine": "/task mine", "click": "a Start click under a message",
              "home": "an App Home opening", "form": "a task form submitted"}


@dataclass(frozen=True)
class Traffic:
    rate: float  # requests per second, open loop
    seconds: float
    mix: tuple[str, ...] = MIX  # kinds of request, taking turns

    def describe(self) -> str:
        shares = {kind: self.mix.count(kind) for kind in dict.fromkeys(self.mix)}
        return ", ".join(f"{count}/{len(self.mix)} {KINDS_HELP[kind]}" for kind, count in shares.items())


def request(kind: str, number: int, rng: random.Random, tasks: Tasks, response_url: str) -> tuple[str, str, str, str]:
    """Request `number`, of `kind` (see KINDS_HELP), from a member picked by `rng`:
    (what it is for the report: command | click | form | home, user, body, content type)."""
    from tests.slack_requests import block_actions_payload, slash_command_form, view_submission_payload

    user = f"U0LOAD{rng.randrange(MEMBERS):03d}"
    if kind in ("show", "mine"):
        text = f"show CM-{rng.randrange(1, CAMPAIGNS + 1)}" if kind == "show" else "mine"
        command = "/campaign" if kind == "show" else "/task"
        body = slash_command_form(command=command, text=text, user_id=user, response_url=response_url)
        return "command", user, body, "application/x-www-form-urlencoded"
    if kind == "click":
        task_id, _ = rng.choice(tasks[user])
        payload = block_actions_payload(user_id=user, action_id="task_start", value=str(task_id),
                                        response_url=response_url)
        return "click", user, urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded"
    if kind == "form":  # the task form, adding a task to a campaign the person works in
        _, campaign_id = rng.choice(tasks[user])
        payload = view_submission_payload(user_id=user, callback_id="task_new_modal", view_id=form_view_id(number),
                                          values=task_form(campaign_id, f"Load task {number}"))
        return "form", user, urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded"
    return "home", user, json.dumps(home_opened(user, f"EvLoad{number}")), "application/json"


def form_view_id(number: int) -> str:
    return f"VLOAD{number}"


def task_form(campaign_id: int, title: str) -> dict[str, Any]:
    """The task form's state as Slack sends it: a campaign, a title and an estimate; the rest left empty."""
    empty_select = {"type": "static_select", "selected_option": None}
    chosen = {"type": "static_select", "selected_option": {"text": {"type": "plain_text", "text": "c"},
                                                           "value": str(campaign_id)}}
    leaves: dict[str, Any] = {"campaign": chosen, "title": title, "description": "", "estimate": "4h",
                              "due": {"type": "datepicker", "selected_date": None},
                              "assignee": {"type": "users_select", "selected_user": None},
                              "priority": empty_select, "after": "", "before": ""}
    return {block: {"value": leaf} for block, leaf in leaves.items()}


def home_opened(user: str, event_id: str) -> dict[str, Any]:
    """The Events API envelope of `user` opening their Home tab."""
    from tests.slack_requests import event_envelope

    event = {"type": "app_home_opened", "user": user, "channel": f"D{user}", "tab": "home",
             "event_ts": f"{time.time():.6f}"}
    return event_envelope(event=event, event_id=event_id)


async def drive(url: str, fake: Any, tasks: Tasks, traffic: Traffic) -> list[Sent]:
    """Open loop: request n goes at start + n / rate whatever became of the ones before it."""
    from tests.slack_requests import sign_headers

    rng = random.Random(20261201)
    sent: list[Sent] = []
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def one(record: Sent, body: str, content_type: str) -> None:
            headers = {**sign_headers(body, SECRET), "Content-Type": content_type}
            try:
                async with http.post(url, data=body.encode(), headers=headers) as response:
                    answer = await response.read()
                    record.status = response.status
                    if record.kind == "form":
                        record.answer = answer.decode()
                    record.shed = response.headers.get("X-Campaign-Manager-Busy") == "1"
            except aiohttp.ClientError:
                record.status = -1
            record.acked = time.monotonic()

        pending = []
        start = time.monotonic()
        for number in range(int(traffic.rate * traffic.seconds)):
            delay = start + number / traffic.rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            kind, user, body, content_type = request(traffic.mix[number % len(traffic.mix)], number, rng, tasks,
                                                     fake.response_url(f"r{number}"))
            record = Sent(number, kind, user, time.monotonic())
            sent.append(record)
            pending.append(asyncio.create_task(one(record, body, content_type)))
        await asyncio.gather(*pending)
    return sent


# --------------------------------------------------------------------------- outcome


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _line(label: str, values: list[float]) -> str:
    ms = [value * 1000 for value in values]
    return (f"  {label:<22} p50 {_pct(ms, .5):8.1f} ms   p95 {_pct(ms, .95):8.1f} ms   p99 {_pct(ms, .99):8.1f} ms"
            f"   max {max(ms, default=float('nan')):8.1f} ms   (n={len(ms)})")


async def wait_for_replies(fake: Any, sent: list[Sent], seconds: float) -> None:
    expected = sum(1 for record in sent if record.status == 200 and not record.shed and not record.answered_in_ack)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        arrived = sum(len(fake.calls_to(method)) for method in ("response_url", "views.publish", "views.update"))
        if arrived >= expected:
            return
        await asyncio.sleep(0.2)


def outcome(sent: list[Sent], fake: Any | None) -> dict[str, Any]:
    acks = [record.acked - record.sent for record in sent if record.acked is not None and record.status == 200]
    bad_acks = sum(1 for record in sent if record.status != 200)
    result: dict[str, Any] = {"requests": len(sent), "acks": acks, "bad_acks": bad_acks}
    if fake is None:
        return result
    replies, busy, error_ids, missing = [], 0, 0, 0
    by_kind: dict[str, list[float]] = {}
    by_url = {call.url_id: call for call in fake.calls_to("response_url")}
    publishes: dict[str, list[float]] = {}
    for call in fake.calls_to("views.publish"):
        publishes.setdefault(str(call.args.get("user_id")), []).append(call.at)
    updates = {str(call.args.get("view_id")): call for call in fake.calls_to("views.update")}
    for record in sent:
        if record.status != 200:
            continue
        if record.shed:  # answered busy in its own HTTP answer: nothing more comes
            busy += 1
            continue
        if record.kind == "form":
            update = updates.get(form_view_id(record.number))
            text = record.answer if record.answered_in_ack else json.dumps(update.args) if update else ""
            arrived = record.acked if record.answered_in_ack else update.at if update else None
            if arrived is None:
                missing += 1
            elif BUSY_MARK in text:
                busy += 1
            elif ERROR_MARK in text or '"errors"' in text or "was not added" in text:
                error_ids += 1  # every form the bench sends is valid: any refusal is a failure
            else:
                replies.append(arrived - record.sent)
                by_kind.setdefault("form", []).append(arrived - record.sent)
            continue
        if record.kind == "home":
            # The member's first publish not yet claimed that left after this request was sent.
            arrivals = [at for at in publishes.get(record.user, []) if at >= record.sent]
            if arrivals:
                publishes[record.user].remove(arrivals[0])
                replies.append(arrivals[0] - record.sent)
                by_kind.setdefault("home", []).append(arrivals[0] - record.sent)
            else:
                missing += 1  # busy Home opens publish nothing; counted here, not as error ids
            continue
        call = by_url.get(f"r{record.number}")
        if call is None:
            missing += 1
            continue
        text = json.dumps(call.args)
        busy += BUSY_MARK in text
        error_ids += ERROR_MARK in text
        if BUSY_MARK not in text:
            replies.append(call.at - record.sent)
            by_kind.setdefault(record.kind, []).append(call.at - record.sent)
    result.update(replies=replies, busy=busy, error_ids=error_ids, missing=missing, by_kind=by_kind)
    return result


def report(title: str, result: dict[str, Any]) -> None:
    print(title)
    print(_line("ack", result["acks"]))
    meter = result["meter"]
    settled = f", {meter['rss_settled']:.0f} MB {SETTLE_SECONDS:g} s later" if "rss_settled" in meter else ""
    print(f"  server CPU {meter['cpu_s'] * 1000 / max(result['requests'], 1):.2f} ms per request, "
          f"{100 * meter['cpu_s'] / meter['wall_s']:.0f}% of one core; RSS {meter['rss_idle']:.0f} MB idle, "
          f"{meter['rss_after']:.0f} MB after the burst{settled}")
    print(f"  beside it: PostgreSQL {100 * meter['db_cpu_s'] / meter['wall_s']:.0f}% of one core, the bench process "
          f"(generator and fake Slack) {100 * meter['bench_cpu_s'] / meter['wall_s']:.0f}%")
    if "replies" in result:
        print(_line("reply (done, not busy)", result["replies"]))
        for kind, latencies in sorted(result["by_kind"].items()):
            print(_line(f"  {kind}", latencies))
        print(f"  busy answers {result['busy']}   error ids {result['error_ids']}   non-200 acks {result['bad_acks']}"
              f"   no reply {result['missing']}   of {result['requests']} requests")
    else:
        print(f"  non-200 acks {result['bad_acks']} of {result['requests']} requests")


# --------------------------------------------------------------------------- processes


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds() -> float:
    """CPU time of every PostgreSQL process on this machine (the server runs beside the bench here)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # gone since the listing
            continue
        if "(postgres)" in text:
            fields = text.rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def metered(pid: int, work: Any, settle_seconds: float = 0) -> tuple[Any, dict[str, float]]:
    """Await `work` and measure the process `pid` around it: CPU used, RSS before, right after, and
    `settle_seconds` later (memory back towards idle or not)."""
    idle_rss, before, own_before, db_before = rss_mb(pid), cpu_seconds(pid), cpu_seconds(os.getpid()), \
        postgres_cpu_seconds()
    began = time.monotonic()
    result = await work
    meter = {"cpu_s": cpu_seconds(pid) - before, "wall_s": time.monotonic() - began, "rss_idle": idle_rss,
             "rss_after": rss_mb(pid),
             # The generator and the fake Slack share this process: near a whole core, it is the bottleneck.
             "bench_cpu_s": cpu_seconds(os.getpid()) - own_before, "db_cpu_s": postgres_cpu_seconds() - db_before}
    if settle_seconds:
        await asyncio.sleep(settle_seconds)
        meter["rss_settled"] = rss_mb(pid)
    return result, meter


def on_fresh_postgres(prefix: str, body: Callable[[str, Path, Any], Awaitable[None]]) -> None:
    """`body(url, templates, fake)` on a database of its own, with the fake Slack and a folder holding the
    bench's template; all three are gone afterwards, whatever happened."""
    sys.path.insert(0, str(ROOT))
    from tests import services

    url = services.create_postgres_database()
    fake, loop, thread = _start_fake()
    try:
        with tempfile.TemporaryDirectory(prefix=prefix) as folder:
            templates = Path(folder)
            (templates / "bench_ten.yaml").write_text(TEMPLATE)
            asyncio.run(body(url, templates, fake))
    finally:
        stop_fake(fake, loop, thread)
        services.drop_postgres_database(url)


def _start_fake() -> tuple[Any, asyncio.AbstractEventLoop, threading.Thread]:
    from tests.fake_slack import FakeSlack

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fake-slack", daemon=True)
    thread.start()
    fake = FakeSlack(validate_blocks=False)
    asyncio.run_coroutine_threadsafe(fake.start(), loop).result(10)
    return fake, loop, thread


def stop_fake(fake: Any, loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
    asyncio.run_coroutine_threadsafe(fake.stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


async def _until_up(url: str, process: asyncio.subprocess.Process) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(600):
            if process.returncode is not None:
                raise SystemExit(f"the server exited early ({process.returncode})")
            try:
                async with http.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit("the server did not come up within 60 s")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _stop(process: asyncio.subprocess.Process) -> None:
    process.terminate()
    try:
        await asyncio.wait_for(process.wait(), 60)
    except TimeoutError:
        process.kill()
        await process.wait()


async def run_floor(traffic: Traffic, tasks: Tasks, fake: Any) -> dict[str, Any]:
    port = _free_port()
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "bench.load", "--floor-server", str(port),
                                                   cwd=ROOT)
    try:
        await _until_up(f"http://127.0.0.1:{port}/health", process)
        sent, meter = await metered(process.pid, drive(f"http://127.0.0.1:{port}/slack/events", fake, tasks, traffic))
    finally:
        await _stop(process)
    return {**outcome(sent, None), "meter": meter}


async def run_app(url: str, templates: Path, traffic: Traffic, tasks: Tasks, fake: Any,
                  extra_env: dict[str, str], profile: str | None = None) -> dict[str, Any]:
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": url, "HOST": "127.0.0.1", "PORT": str(port), "SLACK_BOT_TOKEN": TOKEN,
           "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": fake.base_url, "TEMPLATES_DIR": str(templates),
           "LOG_LEVEL": "WARNING", "SWEEP_INTERVAL_SECONDS": "3600", **extra_env}
    env.pop("REDIS_URL", None)
    cli = str(Path(sys.executable).parent / "campaign-manager")
    command = [sys.executable, "-m", "cProfile", "-o", profile, cli, "serve"] if profile else [cli, "serve"]
    process = await asyncio.create_subprocess_exec(*command, env=env, cwd=templates)

    async def burst() -> list[Sent]:
        sent = await drive(f"http://127.0.0.1:{port}/slack/events", fake, tasks, traffic)
        await wait_for_replies(fake, sent, 15)
        return sent

    try:
        await _until_up(f"http://127.0.0.1:{port}/health", process)
        sent, meter = await metered(process.pid, burst(), settle_seconds=SETTLE_SECONDS)
    finally:
        await _stop(process)
    return {**outcome(sent, fake), "meter": meter}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench.load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=200, help="requests per second (default 200)")
    parser.add_argument("--seconds", type=float, default=60, help="how long to send (default 60)")
    parser.add_argument("--floor-seconds", type=float, help="how long the floor runs (default: --seconds; 0 = skip)")
    parser.add_argument("--mix", default=",".join(MIX),
                        help=f"kinds of request taking turns, comma-separated (default {','.join(MIX)}; "
                             f"one of them alone measures that kind)")
    parser.add_argument("--max-inflight", type=int, help="MAX_INFLIGHT for the server (default: its own)")
    parser.add_argument("--pool-size", type=int, help="DATABASE_POOL_SIZE for the server (default: its own)")
    parser.add_argument("--profile", help="run the server under cProfile and write its statistics here "
                                          "(its CPU figures are then inflated by the profiler)")
    parser.add_argument("--floor-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.floor_server:
        serve_floor(args.floor_server)
        return
    sys.path.insert(0, str(ROOT))
    from tests import services

    floor_seconds = args.seconds if args.floor_seconds is None else args.floor_seconds
    mix = tuple(kind.strip() for kind in args.mix.split(",") if kind.strip())
    if not mix or set(mix) - set(KINDS_HELP):
        parser.error(f"--mix takes kinds from {', '.join(KINDS_HELP)}")
    traffic, floor_traffic = Traffic(args.rate, args.seconds, mix), Traffic(args.rate, floor_seconds, mix)
    extra_env = {name: str(value) for name, value in (("MAX_INFLIGHT", args.max_inflight),
                                                      ("DATABASE_POOL_SIZE", args.pool_size)) if value is not None}
    url = services.create_postgres_database()
    fake, loop, thread = _start_fake()
    try:
        with tempfile.TemporaryDirectory(prefix="cm-load-") as folder:
            templates = Path(folder)
            (templates / "bench_ten.yaml").write_text(TEMPLATE)

            profile = str(Path(args.profile).resolve()) if args.profile else None

            async def go() -> None:
                tasks = await seeded(url, templates)
                print(f"Load: {args.rate:g} requests/s for {args.seconds:g} s, open loop "
                      f"({traffic.describe()}){' ' + str(extra_env) if extra_env else ''}")
                if floor_seconds:
                    floor = await run_floor(floor_traffic, tasks, fake)
                    report(f"floor: bare Bolt app, ack only ({floor_seconds:g} s)", floor)
                fake.reset()
                app = await run_app(url, templates, traffic, tasks, fake, extra_env, profile)
                report("campaign-manager serve", app)
                if floor_seconds:
                    ratio = _pct(app["acks"], .95) / _pct(floor["acks"], .95)
                    print(f"  ack p95 ratio to the floor: {ratio:.2f}x")
                ok = (_pct(app["acks"], .95) < 0.1 and app["error_ids"] == 0 and app["bad_acks"] == 0
                      and _pct(app["replies"], .95) < 1.0 and app["busy"] <= BUSY_TOLERATED * app["requests"])
                print(f"  targets (ack p95 < 100 ms, 0 error ids, reply p95 < 1 s, at most "
                      f"{BUSY_TOLERATED:.0%} answered busy): {'hold' if ok else 'MISSED'}")

            asyncio.run(go())
    finally:
        stop_fake(fake, loop, thread)
        services.drop_postgres_database(url)


if __name__ == "__main__":
    main()
