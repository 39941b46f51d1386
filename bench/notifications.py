"""Notifications benchmark: the outbox to Slack through Redis and real worker processes.

Run: .venv/bin/python -m bench.notifications [--count N] [--channels 5000] [--stream-rate 200] [--stream-seconds 30]
     (from the repository root; see --help for the rest)

It needs the local PostgreSQL and Redis (tests/services.py: TEST_POSTGRES_URL, TEST_REDIS_URL). It creates
its own database and Redis namespace and removes both at the end; Slack is tests.fake_slack on loopback,
answering 1 in `--every` chat.postMessage calls with a 429 (Retry-After: 1).

Three sections on the same broker and the same worker processes (the Dramatiq CLI with `bot.worker_boot`,
exactly what `campaign-manager worker` runs, plus this module for the no-op actor), default settings
(pacing on: one post per channel per second):
  1. ceiling: N messages to a bare no-op async actor (messages/s);
  2. burst: N rows written through `services.notifications.notify_many` in transactions of `--batch`,
     to `--channels` channels, each batch's ids handed out 50 to a job right after its commit (as the
     sweep does): throughput, and latency that is mostly queueing;
  3. stream: rows written at a steady `--stream-rate`: the delivery latency a live system sees.
Each delivery section counts lost rows and duplicate posts (both must be 0; exit 1 otherwise).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import dramatiq

NOOP = "bench.noop"
NOOP_QUEUE = "bench_noop"
WORKER_FLAG = "CM_BENCH_WORKER"  # set in the worker processes: declare the no-op actor there
ROOT = Path(__file__).resolve().parent.parent
MARK = re.compile(r"bench-n(\d+)-")


async def _noop() -> None:
    return None


def declare_noop(broker: dramatiq.Broker) -> dramatiq.Actor[Any, Any]:
    """The ceiling: an async actor that does nothing, on the same broker and middleware as the jobs."""
    return dramatiq.actor(_noop, actor_name=NOOP, queue_name=NOOP_QUEUE, broker=broker, max_retries=0)


if (
    os.environ.get(WORKER_FLAG) == "1" and __name__ != "__main__"
):  # imported by the Dramatiq CLI after worker_boot
    declare_noop(dramatiq.get_broker())


# --------------------------------------------------------------------------- fake Slack in a thread


def _start_fake(every: int) -> tuple[Any, asyncio.AbstractEventLoop, threading.Thread]:
    """The fake Slack API on its own event loop thread; every `every`-th chat.postMessage answers 429."""
    from tests.fake_slack import FakeSlack, _Failure

    class RateLimitingSlack(FakeSlack):
        posts = 0
        injected = 0

        def _pop_failure(self, method: str) -> _Failure | None:
            if method == "chat.postMessage":
                self.posts += 1
                if every and self.posts % every == 0:
                    self.injected += 1
                    return _Failure(None, 429, 1)
            return super()._pop_failure(method)

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fake-slack", daemon=True)
    thread.start()
    fake = RateLimitingSlack(validate_blocks=False)
    asyncio.run_coroutine_threadsafe(fake.start(), loop).result(10)
    return fake, loop, thread


def _stop_fake(fake: Any, loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
    asyncio.run_coroutine_threadsafe(fake.stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


# --------------------------------------------------------------------------- workers


def _start_workers(env: dict[str, str], processes: int, threads: int, log: Path) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "dramatiq",
        "bot.worker_boot",
        "bench.notifications",
        "--processes",
        str(processes),
        "--threads",
        str(threads),
    ]
    with log.open("wb") as out:  # cwd outside the repo, so no .env there changes the settings
        return subprocess.Popen(command, env=env, cwd=log.parent, stdout=out, stderr=subprocess.STDOUT)


def _stop_workers(worker: subprocess.Popen[bytes]) -> int:
    worker.send_signal(signal.SIGTERM)
    try:
        return worker.wait(60)
    except subprocess.TimeoutExpired:
        worker.kill()
        return worker.wait(10)


def _pending(client: Any, namespace: str, queue: str) -> int:
    """Messages enqueued and not yet acked (ready, delayed or being worked on)."""
    return int(client.hlen(f"{namespace}:{queue}.msgs") + client.hlen(f"{namespace}:{queue}.DQ.msgs"))


# --------------------------------------------------------------------------- sections


def bench_ceiling(queue: Any, noop: Any, count: int, timeout: float) -> dict[str, float]:
    client = queue.broker.client
    # warm-up: every worker thread has booted when a round of no-ops comes back
    for _ in range(64):
        noop.send()
    deadline = time.monotonic() + 120
    while _pending(client, queue.namespace, NOOP_QUEUE) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _pending(client, queue.namespace, NOOP_QUEUE):
        raise SystemExit("workers did not start (see the worker log)")

    started = time.perf_counter()
    # four sending threads, so the single-threaded send loop (about 3,000/s here) is not the ceiling itself
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: noop.send(), range(count), chunksize=256))
    enqueued = time.perf_counter() - started
    deadline = time.monotonic() + timeout
    while (left := _pending(client, queue.namespace, NOOP_QUEUE)) and time.monotonic() < deadline:
        time.sleep(0.01)
    elapsed = time.perf_counter() - started
    return {"count": count, "enqueue_s": enqueued, "elapsed_s": elapsed, "left": left}


def _hand_off(actor: Any, ids: list[int], batch: int) -> None:
    """The sweep's hand-off (`handlers.jobs.notifications.hand_out`), with the synchronous Redis client."""
    for first in range(0, len(ids), batch):
        actor.send_with_options(kwargs={"notification_ids": ids[first:first + batch]})


async def _produce(url: str, queue: Any, *, section: str, numbers: range, channels: int, batch: int,
                   rate: float = 0.0) -> dict[str, float]:
    """Write the rows of `numbers` through `notify_many`, `batch` a transaction, and hand each batch out
    after its commit. `rate` 0: as fast as it goes (a burst); else about `rate` rows a second (a stream)."""
    from datetime import UTC, datetime

    from handlers.jobs.notifications import BATCH, DELIVER
    from models.db import create_engine, create_session_factory
    from services import notifications
    from services.notifications import Draft

    engine = create_engine(url, pool_size=2)
    sessions = create_session_factory(engine)
    actor = queue.actors[DELIVER]
    write_s = hand_off_s = 0.0
    started = time.perf_counter()
    try:
        for first in range(numbers.start, numbers.stop, batch):
            if rate:  # a stream: this batch is due at its place in the schedule
                await asyncio.sleep(max(0.0, started + (first - numbers.start) / rate - time.perf_counter()))
            t0 = time.perf_counter()
            async with sessions.begin() as db:
                ids = await notifications.notify_many(db=db, now=datetime.now(UTC), drafts=[
                    Draft(dedupe_key=f"bench:{section}:{n}", kind="generic", recipient_channel=f"C{n % channels:05d}",
                          payload={"summary": f"Reminder bench-n{n}-", "text": "a reminder from the outbox"})
                    for n in range(first, min(first + batch, numbers.stop))
                ])
            t1 = time.perf_counter()
            await asyncio.to_thread(_hand_off, actor, ids, BATCH)
            write_s += t1 - t0
            hand_off_s += time.perf_counter() - t1
    finally:
        await engine.dispose()
    return {"write_s": write_s, "hand_off_s": hand_off_s, "produce_s": time.perf_counter() - started}


async def _outcome(url: str, section: str) -> dict[str, Any]:
    from sqlalchemy import text

    from models.db import create_engine

    engine = create_engine(url, pool_size=1)
    mine = {"pattern": f"bench:{section}:%"}
    try:
        async with engine.connect() as conn:
            statuses = dict((await conn.execute(text(
                "SELECT status, count(*) FROM notifications WHERE dedupe_key LIKE :pattern GROUP BY status"
            ), mine)).all())
            row = (await conn.execute(text(
                "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM sent_at - created_at)),"
                "       percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM sent_at - created_at)),"
                "       max(extract(epoch FROM sent_at - created_at)),"
                "       extract(epoch FROM max(sent_at) - min(created_at)),"
                "       count(*) FILTER (WHERE last_error LIKE 'ratelimited%'),"
                "       count(*) FILTER (WHERE last_error LIKE 'paced%') "
                "FROM notifications WHERE sent_at IS NOT NULL AND dedupe_key LIKE :pattern"
            ), mine)).one()
    finally:
        await engine.dispose()
    return {"statuses": {str(k): v for k, v in statuses.items()}, "p50": row[0], "p95": row[1], "max": row[2],
            "span": row[3], "rate_limited_rows": row[4], "paced_rows": row[5]}


def bench_deliveries(url: str, queue: Any, fake: Any, *, section: str, numbers: range, channels: int, batch: int,
                     rate: float, timeout: float) -> dict[str, Any]:
    from handlers.jobs.notifications import DELIVER

    client = queue.broker.client
    dq = queue.actors[DELIVER].queue_name
    started = time.perf_counter()
    produced = asyncio.run(_produce(url, queue, section=section, numbers=numbers, channels=channels, batch=batch,
                                    rate=rate))
    deadline = time.monotonic() + timeout
    while (left := _pending(client, queue.namespace, dq)) and time.monotonic() < deadline:
        time.sleep(0.05)
    drained = time.perf_counter() - started
    outcome = asyncio.run(_outcome(url, section))
    per: Counter[int] = Counter()
    arrivals: dict[str, list[float]] = {}
    for call in list(fake.calls):
        if call.method == "chat.postMessage" and not call.injected:
            found = MARK.search(str(call.args.get("text", "")))
            number = int(found.group(1)) if found else -1
            if number in numbers or number == -1:
                per[number] += 1
                arrivals.setdefault(str(call.args.get("channel")), []).append(call.at)
    gaps = [b - a for times in arrivals.values() for a, b in itertools.pairwise(sorted(times))]
    sent = outcome["statuses"].get("sent", 0)
    return {
        **produced, **outcome, "drained_s": drained, "queue_left": left, "count": len(numbers), "sent": sent,
        "lost": len(numbers) - sent, "posts": sum(per.values()), "posted_distinct": len([k for k in per if k >= 0]),
        "duplicates": sum(n - 1 for n in per.values() if n > 1), "unmarked": per.get(-1, 0),
        "min_gap": min(gaps, default=float("nan")),
    }


def report(title: str, result: dict[str, Any]) -> bool:
    print(f"  {title}")
    print(f"    throughput {result['sent'] / result['span']:8,.0f} deliveries/s   ({result['sent']:,} sent in "
          f"{result['span']:.1f} s, first created_at to last sent_at)")
    print(f"    producer: notify_many {result['count'] / result['write_s']:,.0f} rows/s, hand-off "
          f"{result['count'] / result['hand_off_s']:,.0f} ids/s, both {result['produce_s']:.1f} s")
    print(f"    latency created_at -> sent_at  p50 {result['p50']:.2f} s   p95 {result['p95']:.2f} s   "
          f"max {result['max']:.2f} s")
    print(f"    rows that waited out a 429: {result['rate_limited_rows']}; rows paced back to the outbox: "
          f"{result['paced_rows']}; closest two posts to one channel: {result['min_gap']:.2f} s apart")
    print(f"    statuses {result['statuses']}; queue left {result['queue_left']}")
    print(f"    lost {result['lost']}   duplicates {result['duplicates']}   (posts {result['posts']:,}, distinct "
          f"{result['posted_distinct']:,}, unmarked {result['unmarked']})")
    return bool(result["lost"] == 0 and result["duplicates"] == 0)


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.notifications")
    parser.add_argument("--count", type=int, default=100_000, help="notifications (and no-op messages)")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument(
        "--batch", type=int, default=500, help="rows per outbox transaction (the sweep's 500)"
    )
    parser.add_argument("--every", type=int, default=2_000, help="one chat.postMessage in EVERY answers 429")
    parser.add_argument("--channels", type=int, default=5_000,
                        help="distinct channels the notifications go to (paced at 1 post/s each)")
    parser.add_argument("--stream-rate", type=float, default=200.0, help="rows/s of the steady stream section")
    parser.add_argument("--stream-seconds", type=float, default=30.0, help="length of the steady stream; 0: skip")
    parser.add_argument(
        "--timeout", type=float, default=0, help="bound on each drain, s (default: 60 + N/100)"
    )
    args = parser.parse_args(argv)
    timeout = args.timeout or 60 + args.count / 100

    from bot.broker import create_queue
    from bot.jobs import declare_jobs_on
    from bot.settings import Settings
    from models import migrate
    from models.db import create_engine
    from tests import services
    from tests.conftest import BOT_TOKEN, SIGNING_SECRET
    from tests.test_cli import cli_env

    namespace = f"cm-bench-{uuid.uuid4().hex[:10]}"
    url = services.create_postgres_database()
    fake = worker = None
    workdir = Path(tempfile.mkdtemp(prefix="cm-bench-"))
    try:

        async def prepare() -> None:
            engine = create_engine(url)
            try:
                await migrate.upgrade(engine)
            finally:
                await engine.dispose()

        asyncio.run(prepare())
        fake, fake_loop, fake_thread = _start_fake(args.every)
        settings = Settings(
            database_url=url,
            redis_url=services.REDIS_URL,
            redis_namespace=namespace,
            slack_bot_token=BOT_TOKEN,
            slack_signing_secret=SIGNING_SECRET,
            slack_api_url=fake.base_url,
            admin_user_ids="",
        )  # type: ignore[arg-type]
        queue = create_queue(services.REDIS_URL, namespace=namespace)
        declare_jobs_on(queue, settings)
        noop = declare_noop(queue.broker)
        env = cli_env(
            DATABASE_URL=url,
            REDIS_URL=services.REDIS_URL,
            REDIS_NAMESPACE=namespace,
            SLACK_BOT_TOKEN=BOT_TOKEN,
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            SLACK_API_URL=fake.base_url,
            LOG_LEVEL="WARNING",
            PYTHONPATH=str(ROOT),
            **{WORKER_FLAG: "1"},
        )
        log = workdir / "worker.log"
        worker = _start_workers(env, args.processes, args.threads, log)

        print(
            f"Notifications: outbox to Slack ({args.count:,} notifications to {args.channels:,} channels, "
            f"{args.processes} worker processes x {args.threads} threads, batches of {args.batch}, "
            f"1 in {args.every:,} posts answered 429)"
        )
        ceiling = bench_ceiling(queue, noop, args.count, timeout)
        print(
            f"  no-op actor (ceiling)        {ceiling['count'] / ceiling['elapsed_s']:8,.0f} messages/s   "
            f"({ceiling['elapsed_s']:.1f} s; enqueue alone {ceiling['count'] / ceiling['enqueue_s']:,.0f}/s; "
            f"left {ceiling['left']})"
        )

        burst = bench_deliveries(url, queue, fake, section="burst", numbers=range(args.count),
                                 channels=args.channels, batch=args.batch, rate=0, timeout=timeout)
        ok = report(f"burst: {args.count:,} rows written at once (throughput; latency here is queueing)", burst)
        if args.stream_seconds:
            rows = int(args.stream_rate * args.stream_seconds)
            stream = bench_deliveries(url, queue, fake, section="stream", numbers=range(args.count, args.count + rows),
                                      channels=args.channels, batch=max(1, int(args.stream_rate / 10)),
                                      rate=args.stream_rate, timeout=timeout)
            ok = report(f"stream: {args.stream_rate:,.0f} rows/s for {args.stream_seconds:.0f} s (delivery latency)",
                        stream) and ok
        print(f"  429s injected {fake.injected}")
        ok = ok and ceiling["left"] == 0
        print(f"  verdict: {'OK' if ok else 'FAILED'}")
        if not ok:
            raise SystemExit(1)
    finally:
        if worker is not None:
            code = _stop_workers(worker)
            if code != 0:
                print(f"  workers exited with {code}; log: {log}", file=sys.stderr)
        if fake is not None:
            _stop_fake(fake, fake_loop, fake_thread)
        services.delete_redis_keys(namespace)
        services.drop_postgres_database(url)


if __name__ == "__main__":
    main()
