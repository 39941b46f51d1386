"""Capacity run: ten times the design's day, compressed in time, on a fleet of two servers and two workers.

Run: .venv/bin/python -m bench.capacity [--quick] [--minutes M] [--speedup X]
     (from the repository root; needs the local PostgreSQL and Redis, as bench.notifications)

The day (issue 16): 1,000 campaigns, 100 members, 100,000 task changes and 1,000,000 notifications.
`--speedup X` plays that day X times faster: 100,000 x X / 86,400 task changes a second and
1,000,000 x X / 86,400 notifications a second (the exact rates are printed), for `--minutes`.

On a fresh PostgreSQL database (seeded by bench.load: 1,000 campaigns of a 10-task chain, 100 members;
`--quick`: 100 campaigns, 1 minute) and a private Redis namespace, the fleet runs as it would in production
(Redis mode): two `campaign-manager serve` and two `campaign-manager worker` processes, the fake Slack of
tests/fake_slack.py on loopback as the Web API and the response_url target. Driven at once, open loop:

- task changes, split across both servers, in turns: `/task estimate T-n 6h` (signed as Slack signs it),
  `PATCH /api/v1/tasks/T-n {"estimate": ...}` (a write token of the assignee), and tasks walked through
  their chain by `/task start`, `/task done` and `PATCH {"status": ...}` (estimates and status changes go to
  different campaigns, so no change is refused because of another one);
- notifications written through `services.notifications.notify_many` and handed out after each commit as
  the sweep does (bench.notifications' producer), to `--channels` channels.

Every `--sample` seconds: requests answered, busy and errors; outbox depth by status and the oldest due
row's age; the Dramatiq queues in Redis; posts the fake Slack got; the database size; CPU of the servers,
workers, PostgreSQL, this process and the machine. After the load, how long the backlog took to drain.
Printed: the table over time, achieved rates vs targets, ack latency, lost and duplicate notifications
(both must be 0: exit 1 otherwise), database growth per simulated day, and which part saturated first.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from bench import load, notifications

DAY_SECONDS = 86_400
DAY_TASK_CHANGES = 100_000
DAY_NOTIFICATIONS = 1_000_000
SECTION = "capacity"  # dedupe keys bench:capacity:<n>; posts carry bench-n<n>-
SERVERS, WORKERS = 2, 2
SUCCESS_MARKS = (":hourglass:", ":arrow_forward:", ":white_check_mark:")  # the Slack replies of a change made
# Saturation, decided per sample while the load runs (see `saturation`):
ACK_P95_LIMIT = 0.5  # s: a listener answers Slack within 3 s; far above the 100 ms target means queueing
BUSY_LIMIT = 0.01  # share of a sample's requests answered busy (503 or "busy right now")
GROWING_SAMPLES = 3  # a backlog that rose this many samples in a row
OUTBOX_AGE_LIMIT = 30.0  # s: the oldest row due and not sent
QUEUE_SECONDS_LIMIT = 10.0  # Redis holds more than this many seconds of the notification rate
PG_CORE_LIMIT = 0.8  # PostgreSQL uses this share of a core ...
MACHINE_BUSY_LIMIT = 0.9  # ... while the machine's cores are this busy: it cannot get more


@dataclass(frozen=True)
class Plan:
    minutes: float
    speedup: float
    campaigns: int
    channels: int
    sample_seconds: float
    threads: int
    drain_seconds: float

    @property
    def change_rate(self) -> float:
        return DAY_TASK_CHANGES * self.speedup / DAY_SECONDS

    @property
    def notification_rate(self) -> float:
        return DAY_NOTIFICATIONS * self.speedup / DAY_SECONDS

    @property
    def seconds(self) -> float:
        return self.minutes * 60

    @property
    def simulated_days(self) -> float:
        return self.seconds * self.speedup / DAY_SECONDS


# --------------------------------------------------------------------------- the fleet


@dataclass
class Fleet:
    servers: list[tuple[asyncio.subprocess.Process, str]]  # each with its base URL
    workers: list[asyncio.subprocess.Process]
    logs: Path


def fleet_env(url: str, namespace: str, templates: Path, fake: Any) -> dict[str, str]:
    from tests import services
    from tests.test_cli import cli_env

    return cli_env(DATABASE_URL=url, REDIS_URL=services.REDIS_URL, REDIS_NAMESPACE=namespace,
                   SLACK_BOT_TOKEN=load.TOKEN, SLACK_SIGNING_SECRET=load.SECRET, SLACK_API_URL=fake.base_url,
                   TEMPLATES_DIR=str(templates), LOG_LEVEL="WARNING", PYTHONPATH=str(load.ROOT))


async def start_fleet(env: dict[str, str], logs: Path, threads: int) -> Fleet:
    """Two servers and two workers, each its own process tree, as separate containers would run them."""
    cli = str(Path(sys.executable).parent / "campaign-manager")
    fleet = Fleet([], [], logs)
    for n in range(SERVERS):
        port = load._free_port()
        with (logs / f"serve{n}.log").open("wb") as out:  # cwd outside the repo: no .env changes the settings
            process = await asyncio.create_subprocess_exec(
                cli, "serve", env={**env, "HOST": "127.0.0.1", "PORT": str(port)}, cwd=logs, stdout=out,
                stderr=subprocess.STDOUT)
        fleet.servers.append((process, f"http://127.0.0.1:{port}"))
    for n in range(WORKERS):
        with (logs / f"worker{n}.log").open("wb") as out:
            fleet.workers.append(await asyncio.create_subprocess_exec(
                cli, "worker", "--processes", "1", "--threads", str(threads), env=env, cwd=logs, stdout=out,
                stderr=subprocess.STDOUT))
    for process, base in fleet.servers:
        await load._until_up(f"{base}/health", process)
    return fleet


async def stop_fleet(fleet: Fleet) -> None:
    await asyncio.gather(*(load._stop(process) for process, _ in fleet.servers),
                         *(load._stop(process) for process in fleet.workers))


# --------------------------------------------------------------------------- CPU from /proc


def _stat_fields(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # gone since the listing
        return None


def tree_cpu_seconds(root: int) -> float:
    """CPU time of `root` and every process under it (a worker's Dramatiq children, say)."""
    tick = os.sysconf("SC_CLK_TCK")
    parent, cpu = {}, {}
    for entry in Path("/proc").glob("[0-9]*"):
        fields = _stat_fields(int(entry.name))
        if fields is not None:
            parent[int(entry.name)] = int(fields[1])
            cpu[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    total = 0.0
    for pid in parent:
        ancestor = pid
        while ancestor not in (root, 0, 1) and ancestor in parent:
            ancestor = parent[ancestor]
        if ancestor == root:
            total += cpu[pid]
    return total


def named_cpu_seconds(name: str) -> float:
    """CPU time of every process whose name is `name` (redis-server beside the bench here)."""
    tick, total = os.sysconf("SC_CLK_TCK"), 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # gone since the listing
            continue
        if f"({name})" in text:
            fields = text.rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores together."""
    numbers = [int(value) for value in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = numbers[3] + numbers[4]  # idle + iowait
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(numbers) - idle) / tick, sum(numbers) / tick


# --------------------------------------------------------------------------- task changes


@dataclass
class Change:
    number: int
    kind: str  # slack-estimate | api-estimate | slack-status | api-status
    server: int
    sent: float
    acked: float | None = None
    status: int | None = None
    busy: bool = False
    replied: float | None = None  # a Slack change: when its response_url reply arrived (the work done)
    error: str = ""  # what went wrong, when something did (filled in for Slack once the reply is in)

    @property
    def slack(self) -> bool:
        return self.kind.startswith("slack")


KINDS = ("slack-estimate", "api-estimate", "slack-status", "api-status")


@dataclass
class Workload:
    """Who changes which task: estimates on the odd campaigns, their chains walked on the even ones."""

    assignee: dict[int, str]  # task id -> the member's Slack id
    estimate_tasks: list[int]
    steps: Iterator[tuple[int, str]]  # (task id, "start" | "done"), each task started long before it is done
    rng: random.Random = field(default_factory=lambda: random.Random(20261216))

    @classmethod
    def of(cls, tasks: load.Tasks) -> Workload:
        assignee = {task: user for user, owned in tasks.items() for task, _ in owned}
        by_campaign: dict[int, list[int]] = {}
        for owned in tasks.values():
            for task, campaign in owned:
                by_campaign.setdefault(campaign, []).append(task)
        chains = [sorted(ids)[:-1] for _, ids in sorted(by_campaign.items())]  # the last is the launch milestone
        walked, estimated = chains[0::2], chains[1::2]

        def steps() -> Iterator[tuple[int, str]]:
            for step in range(load.TASKS_PER_CAMPAIGN - 1):
                yield from ((chain[step], "start") for chain in walked)
                yield from ((chain[step], "done") for chain in walked)

        return cls(assignee, [task for chain in estimated for task in chain], steps())

    def next(self, number: int, kind: str) -> tuple[int, str]:
        """(task id, what to do: an estimate like "6h", or "start" / "done")."""
        if kind.endswith("status"):
            step = next(self.steps, None)
            if step is not None:
                return step
        return self.estimate_tasks[number % len(self.estimate_tasks)], f"{self.rng.randrange(2, 41)}h"


async def drive_changes(fleet: Fleet, fake: Any, work: Workload, tokens: dict[str, str], plan: Plan,
                        changes: list[Change]) -> None:
    """Open loop at the change rate: change n goes at start + n / rate, whatever became of the ones before."""
    from services.refs import RefKind, format_ref
    from tests.slack_requests import sign_headers, slash_command_form

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:

        async def one(change: Change, url: str, body: str, headers: dict[str, str], method: str) -> None:
            try:
                async with http.request(method, url, data=body.encode(), headers=headers) as response:
                    answer = await response.text()
                    change.status = response.status
                    change.busy = response.status == 503 or response.headers.get("X-Campaign-Manager-Busy") == "1"
                    if not change.slack and response.status != 200 and not change.busy:
                        change.error = f"HTTP {response.status}: {answer[:200]}"
            except aiohttp.ClientError as error:
                change.status, change.error = -1, f"{type(error).__name__}"
            change.acked = time.monotonic()

        pending = []
        start = time.monotonic()
        for number in range(int(plan.change_rate * plan.seconds)):
            delay = start + number / plan.change_rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            kind, server = KINDS[number % len(KINDS)], (number // len(KINDS)) % SERVERS
            task, what = work.next(number, kind)
            ref, user, base = format_ref(RefKind.TASK, task), work.assignee[task], fleet.servers[server][1]
            if kind.startswith("slack"):
                text = f"{what} {ref}" if what in ("start", "done") else f"estimate {ref} {what}"
                body = slash_command_form(command="/task", text=text, user_id=user,
                                          response_url=fake.response_url(f"c{number}"))
                headers = {**sign_headers(body, load.SECRET), "Content-Type": "application/x-www-form-urlencoded"}
                url, method = f"{base}/slack/events", "POST"
            else:
                patch = {"status": "in_progress" if what == "start" else what} if what in ("start", "done") \
                    else {"estimate": what}
                body = json.dumps(patch)
                headers = {"Authorization": f"Bearer {tokens[user]}", "Content-Type": "application/json"}
                url, method = f"{base}/api/v1/tasks/{ref}", "PATCH"
            change = Change(number, kind, server, time.monotonic())
            changes.append(change)
            pending.append(asyncio.create_task(one(change, url, body, headers, method)))
        await asyncio.gather(*pending)


def judge_slack_replies(changes: list[Change], fake: Any) -> int:
    """Fill in each Slack change's outcome from its response_url reply; returns how many have none yet."""
    calls = {call.url_id: call for call in fake.calls_to("response_url")}
    missing = 0
    for change in changes:
        if not change.slack or change.status != 200 or change.busy:
            if change.slack and change.status not in (200, None) and not change.busy and not change.error:
                change.error = f"HTTP {change.status}"
            continue
        call = calls.get(f"c{change.number}")
        if call is None:
            missing += 1
            change.error = "no reply"
            continue
        reply, change.replied = json.dumps(call.args), call.at
        if load.BUSY_MARK in reply:
            change.busy, change.error = True, ""
        elif not any(mark in reply for mark in SUCCESS_MARKS):
            change.error = reply[:200]
        else:
            change.error = ""
    return missing


async def write_tokens(url: str) -> dict[str, str]:
    """A write token per member, acting as that member (who may change their own tasks)."""
    from sqlalchemy import select

    from models import TeamMember
    from models.db import create_engine, create_session_factory
    from services import api_tokens

    engine = create_engine(url)
    try:
        async with create_session_factory(engine).begin() as db:
            members = (await db.scalars(select(TeamMember))).all()
            return {member.slack_user_id: (await api_tokens.issue(
                db=db, created_by=member, acting_as=member, label="capacity", scope="write",
                now=datetime.now(UTC))).token for member in members}
    finally:
        await engine.dispose()


# --------------------------------------------------------------------------- sampling


@dataclass
class Sample:
    at: float  # s since the load began
    loading: bool
    changes_sent: int
    answered: int
    busy: int
    errors: int
    ack_p95: float  # s, over the changes answered since the last sample
    window_requests: int
    window_busy: int
    outbox: dict[str, int]
    oldest_due_s: float  # age of the oldest row due and not yet sent (0: none)
    queued: int  # Dramatiq messages in Redis, not yet acked (ready, delayed or in progress)
    posts: int
    db_mb: float
    cpu: dict[str, float]  # share of one core over the last interval; "machine": share of all cores


PARTS = ("serve", "workers", "postgres", "redis", "bench")


class Sampler:
    def __init__(self, url: str, queue: Any, fleet: Fleet, fake: Any, changes: list[Change]):
        from models.db import create_engine

        self.engine = create_engine(url, pool_size=1)
        self.queue, self.fleet, self.fake, self.changes = queue, fleet, fake, changes
        self.samples: list[Sample] = []
        self.queue_names = sorted({actor.queue_name for actor in queue.actors.values()})
        self._last = time.monotonic()
        self._cpu = self._cpu_now()

    def _cpu_now(self) -> dict[str, float]:
        busy, total = machine_busy_seconds()
        return {"serve": sum(tree_cpu_seconds(process.pid) for process, _ in self.fleet.servers),
                "workers": sum(tree_cpu_seconds(process.pid) for process in self.fleet.workers),
                "postgres": load.postgres_cpu_seconds(), "redis": named_cpu_seconds("redis-server"),
                "bench": load.cpu_seconds(os.getpid()),
                "machine_busy": busy, "machine_total": total, "wall": time.monotonic()}

    def _queued(self) -> int:
        return sum(notifications._pending(self.queue.broker.client, self.queue.namespace, name)
                   for name in self.queue_names)

    async def take(self, began: float, loading: bool, quiet: bool = False) -> Sample:
        from sqlalchemy import text

        async with self.engine.connect() as conn:
            outbox = {str(status): int(count) for status, count in (await conn.execute(text(
                "SELECT status, count(*) FROM notifications GROUP BY status"))).all()}
            oldest = (await conn.execute(text(
                "SELECT coalesce(extract(epoch FROM now() - min(scheduled_for)), 0) FROM notifications "
                "WHERE status IN ('pending', 'claimed') AND scheduled_for <= now()"))).scalar_one()
            size = (await conn.execute(text("SELECT pg_database_size(current_database())"))).scalar_one()
        queued = await asyncio.to_thread(self._queued)
        now_cpu = self._cpu_now()
        wall = now_cpu["wall"] - self._cpu["wall"] or 1e-9
        cpu = {name: (now_cpu[name] - self._cpu[name]) / wall for name in PARTS}
        cpu["machine"] = (now_cpu["machine_busy"] - self._cpu["machine_busy"]) / max(
            now_cpu["machine_total"] - self._cpu["machine_total"], 1e-9)
        # Whatever else ran on the machine meanwhile (other people's tests on a shared VM): not this run's.
        cpu["other"] = max(0.0, cpu["machine"] * (os.cpu_count() or 1) - sum(cpu[name] for name in PARTS))
        self._cpu = now_cpu
        answered = [change for change in self.changes if change.acked is not None]
        now, since = time.monotonic(), self._last
        self._last = now
        done = [change for change in answered if change.acked is not None and since < change.acked <= now]
        acks = [change.acked - change.sent for change in done if change.acked is not None]
        sample = Sample(
            at=time.monotonic() - began, loading=loading, changes_sent=len(self.changes), answered=len(answered),
            busy=sum(change.busy for change in answered),
            errors=sum(1 for change in answered if change.status != 200 and not change.busy),
            ack_p95=load._pct(acks, .95) if acks else 0.0, window_requests=len(done),
            window_busy=sum(change.busy for change in done), outbox=outbox, oldest_due_s=float(oldest),
            queued=queued, posts=len(self.fake.calls_to("chat.postMessage")), db_mb=size / 2**20, cpu=cpu)
        if not quiet:
            self.samples.append(sample)
            print(row(sample), flush=True)
        return sample


HEADER = (f"{'t s':>6} {'sent':>6} {'answ':>6} {'busy':>5} {'err':>4} {'ack95':>7}  {'pending':>8} {'claimed':>7} "
          f"{'sent':>8} {'fail':>5} {'due age':>7} {'redis q':>7} {'posts':>8} {'DB MB':>7}   CPU% of a core: "
          f"{'serve':>5} {'work':>5} {'pg':>5} {'redis':>5} {'bench':>5} {'other':>5}  machine%")


def row(sample: Sample) -> str:
    outbox = sample.outbox
    cpu = sample.cpu
    return (f"{sample.at:6.0f} {sample.changes_sent:6d} {sample.answered:6d} {sample.busy:5d} {sample.errors:4d} "
            f"{sample.ack_p95 * 1000:5.0f}ms  {outbox.get('pending', 0):8d} {outbox.get('claimed', 0):7d} "
            f"{outbox.get('sent', 0):8d} {outbox.get('failed', 0):5d} {sample.oldest_due_s:6.1f}s {sample.queued:7d} "
            f"{sample.posts:8d} {sample.db_mb:7.1f}   {'':>15}"
            + "".join(f"{cpu[name] * 100:5.0f} " for name in (*PARTS, "other"))
            + f" {cpu['machine'] * 100:7.0f}"
            f"{'' if sample.loading else '  (draining)'}")


# --------------------------------------------------------------------------- verdicts


def _growing(values: list[float]) -> bool:
    return len(values) > GROWING_SAMPLES and all(b > a for a, b in itertools.pairwise(values[-GROWING_SAMPLES - 1:]))


def saturation(samples: list[Sample], plan: Plan) -> list[tuple[float, str, str]]:
    """Each part's first sample (time, part, the numbers) at which it saturated during the load, earliest first."""
    found: dict[str, tuple[float, str, str]] = {}
    loading = [sample for sample in samples if sample.loading]
    queue_limit = plan.notification_rate * QUEUE_SECONDS_LIMIT
    cores = os.cpu_count() or 1
    for n, sample in enumerate(loading):
        history = loading[:n + 1]
        busy_share = sample.window_busy / sample.window_requests if sample.window_requests else 0.0
        checks = {
            "requests (API and Slack latency or busy answers)": (
                sample.ack_p95 > ACK_P95_LIMIT or busy_share > BUSY_LIMIT,
                f"ack p95 {sample.ack_p95 * 1000:.0f} ms, {busy_share:.1%} busy"),
            "outbox backlog": (
                sample.oldest_due_s > OUTBOX_AGE_LIMIT and _growing([s.outbox.get("pending", 0) for s in history]),
                f"oldest due row {sample.oldest_due_s:.0f} s old, {sample.outbox.get('pending', 0):,} pending and rising"),
            "Redis queue": (
                sample.queued > queue_limit and _growing([s.queued for s in history]),
                f"{sample.queued:,} messages queued and rising (> {QUEUE_SECONDS_LIMIT:g} s of the rate)"),
            "PostgreSQL CPU": (
                sample.cpu["postgres"] >= PG_CORE_LIMIT and sample.cpu["machine"] >= MACHINE_BUSY_LIMIT,
                f"PostgreSQL {sample.cpu['postgres']:.0%} of a core, machine {sample.cpu['machine']:.0%} of "
                f"{cores} cores"),
        }
        for part, (hit, numbers) in checks.items():
            if hit and part not in found:
                found[part] = (sample.at, part, numbers)
    return sorted(found.values())


REMEDY = {
    "requests (API and Slack latency or busy answers)":
        "more `serve` instances behind the proxy (each has its own pool and in-flight slots), or a larger "
        "DATABASE_POOL_SIZE / MAX_INFLIGHT if PostgreSQL has CPU to spare",
    "outbox backlog": "more worker processes or threads (`campaign-manager worker --processes N`), more "
                      "worker containers; check the per-channel pace is not what holds rows",
    "Redis queue": "more worker processes (the queue grows when workers cannot keep up with hand-outs)",
    "PostgreSQL CPU": "a PostgreSQL with more cores (or a machine of its own), then more app instances",
}


def delivered(fake: Any, total: int) -> tuple[int, int]:
    """(distinct notifications posted, duplicate posts) of this run's rows, by the mark in each post."""
    per: Counter[int] = Counter()
    for call in list(fake.calls):
        if call.method == "chat.postMessage" and not call.injected:
            found = notifications.MARK.search(str(call.args.get("text", "")))
            if found and int(found.group(1)) < total:
                per[int(found.group(1))] += 1
    return len(per), sum(count - 1 for count in per.values() if count > 1)


def summary(plan: Plan, changes: list[Change], samples: list[Sample], load_seconds: float, drained_s: float | None,
            outcome: dict[str, Any], total: int, posted: int, duplicates: int, db_before: float) -> bool:
    answered = [change for change in changes if change.acked is not None]
    made = [change for change in answered if change.status == 200 and not change.busy and not change.error]
    busy = [change for change in answered if change.busy]
    failed = [change for change in changes if change.error and not change.busy]
    print(f"\nCapacity: {plan.minutes:g} min at speedup {plan.speedup:g} ({plan.simulated_days * 24:.1f} simulated "
          f"hours of the day), {plan.campaigns:,} campaigns, {SERVERS} servers, {WORKERS} workers x {plan.threads} "
          f"threads")
    print(f"  task changes   target {plan.change_rate:7.1f}/s   achieved {len(made) / load_seconds:7.1f}/s made "
          f"({len(made):,} of {len(changes):,} sent; {len(busy)} busy, {len(failed)} failed)")
    sent = outcome["statuses"].get("sent", 0)
    span = outcome["span"] or float("nan")
    print(f"  notifications  target {plan.notification_rate:7.1f}/s   achieved {sent / span:7.1f}/s delivered "
          f"({sent:,} of {total:,} sent in {span:.0f} s, first written to last sent)")
    for kind in KINDS:
        acks = [change.acked - change.sent for change in answered if change.kind == kind and change.acked]
        told_busy = sum(change.busy for change in answered if change.kind == kind)
        print(load._line(f"{kind} {'ack' if kind.startswith('slack') else 'answer'}", acks) + f"  busy {told_busy}")
        if kind.startswith("slack"):  # the API answers when the work is done; Slack's reply comes after the ack
            print(load._line(f"{kind} reply", [change.replied - change.sent for change in answered
                                               if change.kind == kind and change.replied is not None]))
    print(f"  notification latency written -> sent  p50 {outcome['p50'] or 0:.2f} s   p95 {outcome['p95'] or 0:.2f} s   "
          f"max {outcome['max'] or 0:.2f} s; rows paced back to the outbox {outcome['paced_rows']}")
    during = [sample for sample in samples if sample.loading]
    print(f"  max depth: outbox pending {max((s.outbox.get('pending', 0) for s in samples), default=0):,}, "
          f"Redis queue {max((s.queued for s in samples), default=0):,}; oldest due row "
          f"{max((s.oldest_due_s for s in samples), default=0):.1f} s")
    print("  backlog after the load: " + (f"drained in {drained_s:.0f} s" if drained_s is not None
                                          else f"NOT drained within {plan.drain_seconds:.0f} s"))
    db_after = samples[-1].db_mb if samples else db_before
    print(f"  database {db_before:.0f} MB -> {db_after:.0f} MB: {(db_after - db_before) / plan.simulated_days:,.0f} "
          f"MB per simulated day (outbox rows kept, no clean-up in the run)")
    if during:
        mean = {name: sum(s.cpu[name] for s in during) / len(during) for name in (*PARTS, "other", "machine")}
        print(f"  mean CPU while loaded: servers {mean['serve']:.0%}, workers {mean['workers']:.0%}, PostgreSQL "
              f"{mean['postgres']:.0%}, Redis {mean['redis']:.0%}, bench and fake Slack {mean['bench']:.0%}, not this "
              f"run's {mean['other']:.0%} (of one core); machine {mean['machine']:.0%} of {os.cpu_count()} cores")
    lost = total - sent
    print(f"  notifications lost {lost}   duplicates {duplicates}   (distinct posted {posted:,})")
    for change in failed[:3]:
        print(f"  a failed change ({change.kind}): {change.error}")
    tripped = saturation(samples, plan)
    if tripped:
        at, part, numbers = tripped[0]
        then = next(sample for sample in samples if sample.at == at)
        print(f"  saturated first: {part}, at {at:.0f} s ({numbers}; the machine {then.cpu['machine']:.0%} busy, "
              f"{then.cpu['other']:.0%} of a core not this run's)")
        for at, other, numbers in tripped[1:]:
            print(f"    then: {other}, at {at:.0f} s ({numbers})")
        print(f"  to add: {REMEDY[part]}")
    else:
        print("  saturated first: nothing at these rates (ack p95, busy answers, outbox and Redis backlogs and "
              "PostgreSQL CPU all stayed under their limits); try a higher --speedup")
    return lost == 0 and duplicates == 0 and drained_s is not None


# --------------------------------------------------------------------------- the run


async def _drained(sampler: Sampler, total: int) -> bool:
    from sqlalchemy import text

    async with sampler.engine.connect() as conn:
        open_rows = (await conn.execute(text(
            "SELECT count(*) FROM notifications WHERE status IN ('pending', 'claimed') AND scheduled_for <= now()"
        ))).scalar_one()
        mine_open = (await conn.execute(text(
            "SELECT count(*) FROM notifications WHERE dedupe_key LIKE :mine AND status IN ('pending', 'claimed')"
        ), {"mine": f"bench:{SECTION}:%"})).scalar_one()
    return open_rows == 0 and mine_open == 0 and await asyncio.to_thread(sampler._queued) == 0


async def run(plan: Plan, url: str, templates: Path, fake: Any) -> bool:
    from pydantic import SecretStr

    from bot.broker import create_queue
    from bot.jobs import declare_jobs_on
    from bot.settings import Settings
    from tests import services

    load.CAMPAIGNS = plan.campaigns  # read by load.seed; a multiple of 100
    tasks = await load.seeded(url, templates)
    tokens = await write_tokens(url)
    namespace = f"cm-capacity-{uuid.uuid4().hex[:10]}"
    logs = Path(tempfile.mkdtemp(prefix="cm-capacity-"))
    fleet: Fleet | None = None
    try:
        settings = Settings(database_url=url, redis_url=services.REDIS_URL, redis_namespace=namespace,
                            slack_bot_token=SecretStr(load.TOKEN), slack_signing_secret=SecretStr(load.SECRET),
                            slack_api_url=fake.base_url)
        queue = create_queue(services.REDIS_URL, namespace=namespace)
        declare_jobs_on(queue, settings)
        fleet = await start_fleet(fleet_env(url, namespace, templates, fake), logs, plan.threads)
        # Warm-up: one notification through a worker, so the run does not time the workers' start.
        await notifications._produce(url, queue, section="warmup", numbers=range(1), channels=1, batch=1)
        deadline = time.monotonic() + 120
        while not fake.calls_to("chat.postMessage"):
            if time.monotonic() > deadline:
                raise SystemExit(f"no worker delivered the warm-up notification within 120 s; logs in {logs}")
            await asyncio.sleep(0.2)
        fake.reset()
        total = int(plan.notification_rate * plan.seconds)
        print(f"Capacity: {plan.change_rate:.2f} task changes/s (100,000 a day x {plan.speedup:g}) and "
              f"{plan.notification_rate:.1f} notifications/s (1,000,000 a day x {plan.speedup:g}) for "
              f"{plan.minutes:g} min: {int(plan.change_rate * plan.seconds):,} changes, {total:,} notifications to "
              f"{plan.channels:,} channels; {SERVERS} serve + {WORKERS} worker processes (Redis mode); logs {logs}")
        changes: list[Change] = []
        sampler = Sampler(url, queue, fleet, fake, changes)
        db_before = (await sampler.take(time.monotonic(), loading=False, quiet=True)).db_mb
        print(HEADER)
        began = time.monotonic()
        loading = asyncio.gather(
            drive_changes(fleet, fake, Workload.of(tasks), tokens, plan, changes),
            notifications._produce(url, queue, section=SECTION, numbers=range(total), channels=plan.channels,
                                   batch=max(1, round(plan.notification_rate / 10)), rate=plan.notification_rate))
        while not loading.done():
            await asyncio.wait([loading], timeout=plan.sample_seconds)
            if not loading.done():
                await sampler.take(began, loading=True)
        await loading
        load_seconds = time.monotonic() - began
        stopped, drained_s = time.monotonic(), None
        while time.monotonic() - stopped < plan.drain_seconds:
            judge_slack_replies(changes, fake)
            if await _drained(sampler, total) and judge_slack_replies(changes, fake) == 0:
                drained_s = time.monotonic() - stopped
                break
            await sampler.take(began, loading=False)
            await asyncio.sleep(min(1.0, plan.sample_seconds))
        await sampler.take(began, loading=False)
        judge_slack_replies(changes, fake)
        outcome = await notifications._outcome(url, SECTION)
        posted, duplicates = delivered(fake, total)
        await sampler.engine.dispose()
        return summary(plan, changes, sampler.samples, load_seconds, drained_s, outcome, total, posted, duplicates,
                       db_before)
    finally:
        if fleet is not None:
            await stop_fleet(fleet)
        services.delete_redis_keys(namespace)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench.capacity", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 campaigns for 1 minute, for a smoke run")
    parser.add_argument("--minutes", type=float, help="how long the load runs (default 5; --quick 1)")
    parser.add_argument("--speedup", type=float, default=24.0,
                        help="how many times faster than a real day (default 24: a day an hour)")
    parser.add_argument("--campaigns", type=int, help="campaigns to seed, a multiple of 100 (default 1,000; --quick 100)")
    parser.add_argument("--channels", type=int, default=1_100,
                        help="channels the notifications go to (default 1,100: a channel per campaign and a DM per "
                             "member of the design's team; each is paced at 1 post/s)")
    parser.add_argument("--sample", type=float, default=5.0, help="seconds between samples (default 5)")
    parser.add_argument("--threads", type=int, default=8, help="threads per worker process (default 8)")
    parser.add_argument("--drain", type=float, default=180.0, help="how long the backlog may take to drain, s")
    args = parser.parse_args(argv)
    plan = Plan(minutes=args.minutes or (1.0 if args.quick else 5.0), speedup=args.speedup,
                campaigns=args.campaigns or (100 if args.quick else 1_000), channels=args.channels,
                sample_seconds=args.sample, threads=args.threads, drain_seconds=args.drain)
    if plan.campaigns % 100 or plan.campaigns < 100:
        parser.error("--campaigns takes a multiple of 100")
    if plan.speedup <= 0 or plan.minutes <= 0:
        parser.error("--speedup and --minutes take a positive number")
    verdict: list[bool] = []

    async def body(url: str, templates: Path, fake: Any) -> None:
        verdict.append(await run(plan, url, templates, fake))

    load.on_fresh_postgres("cm-capacity-", body)
    print(f"  verdict: {'OK' if verdict and verdict[0] else 'FAILED'}")
    if not (verdict and verdict[0]):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
