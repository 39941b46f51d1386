"""Cost per request: server CPU and statements for each kind of Slack request, one at a time.

Run: .venv/bin/python -m bench.per_request [--count 200] [--profile FILE]
     (from the repository root; needs the local PostgreSQL, as bench.load)

On the workspace bench.load seeds (100 members, 1,000 campaigns, 10,000 tasks, 100 open tasks each),
a real `campaign-manager serve` and, in the same run, the bare Bolt app of bench.load (listeners that only
ack) get `--count` requests of each kind, closed loop: the next request goes when the previous one's
reply (its response_url post, or the Home's views.publish) has arrived, so nothing queues and what is
measured is the work itself. Reported per kind: the server process's CPU time per request (user + system,
read from /proc before and after), its ratio to the floor's, and the reply latency p50/p95.

`--profile FILE` runs the server under cProfile and writes its statistics to FILE at the end (the CPU
figures are then inflated by the profiler; read the profile for where the time goes, not for totals).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp

from bench import load

KINDS = ("campaign help", "campaign show", "task mine", "start click (message)", "start click (home)", "home open",
         "task form")


# The kinds bench.load sends too, by their name there; "campaign help" and the Home click are only here.
SHARED = {"campaign show": "show", "task mine": "mine", "start click (message)": "click", "home open": "home",
          "task form": "form"}


def _request(kind: str, number: int, rng: random.Random, tasks: load.Tasks, fake: Any) -> tuple[str, str, str]:
    """(user, body, content type)."""
    from tests.slack_requests import block_actions_payload, slash_command_form

    url = fake.response_url(f"p{number}")
    if kind in SHARED:
        _, user, body, content_type = load.request(SHARED[kind], number, rng, tasks, url)
        return user, body, content_type
    user = f"U0LOAD{rng.randrange(load.MEMBERS):03d}"
    form = "application/x-www-form-urlencoded"
    if kind == "campaign help":  # our own fixed cost: gate, Bolt, the member's row, a reply; no domain work
        return user, slash_command_form(command="/campaign", text="help", user_id=user, response_url=url), form
    # A Start click on the Home tab: no response_url; the Home is published again after the change.
    payload = block_actions_payload(user_id=user, action_id="task_start", value=str(rng.choice(tasks[user])[0]),
                                    view={"id": "VHOME", "type": "home"}, trigger_id=f"trig.{number}")
    return user, urlencode({"payload": json.dumps(payload)}), form


async def measure(url: str, pid: int, fake: Any, tasks: load.Tasks, kind: str, count: int,
                  waits_for_reply: bool) -> tuple[float, list[float]]:
    """CPU seconds per request and reply latencies, for `count` requests of `kind` one after another."""
    from tests.slack_requests import sign_headers

    rng = random.Random(20261129)
    latencies = []
    async with aiohttp.ClientSession() as http:
        before = load.cpu_seconds(pid)
        for number in range(count):
            user, body, content_type = _request(kind, number, rng, tasks, fake)
            seen = len(fake.calls_to("response_url")) + len(fake.calls_to("views.publish"))
            began = time.monotonic()
            async with http.post(url, data=body.encode(),
                                 headers={**sign_headers(body, load.SECRET), "Content-Type": content_type}) as answer:
                await answer.read()
                if answer.status != 200:
                    raise SystemExit(f"{kind}: HTTP {answer.status}")
            if waits_for_reply:
                await _reply_after(fake, seen, kind)
            latencies.append(time.monotonic() - began)
        # Let the last request's after-reply work (a Home re-publish) finish before reading the clock.
        await asyncio.sleep(0.3)
        return (load.cpu_seconds(pid) - before) / count, latencies


async def _reply_after(fake: Any, seen: int, kind: str) -> None:
    deadline = time.monotonic() + 10
    while len(fake.calls_to("response_url")) + len(fake.calls_to("views.publish")) <= seen:
        if time.monotonic() > deadline:
            raise SystemExit(f"{kind}: no reply within 10 s")
        await asyncio.sleep(0.001)


async def _idle_cpu(pid: int) -> float:
    """CPU per second the idle server spends (timers, pings): printed, not subtracted, so the per-request
    figures can be read against it."""
    before = load.cpu_seconds(pid)
    await asyncio.sleep(2)
    return (load.cpu_seconds(pid) - before) / 2


async def run(url: str, templates: Path, tasks: load.Tasks, fake: Any, count: int,
              profile: str | None, kinds: tuple[str, ...]) -> None:
    floor_port, app_port = load._free_port(), load._free_port()
    floor = await asyncio.create_subprocess_exec(sys.executable, "-m", "bench.load", "--floor-server",
                                                 str(floor_port), cwd=load.ROOT)
    env = {**os.environ, "DATABASE_URL": url, "HOST": "127.0.0.1", "PORT": str(app_port),
           "SLACK_BOT_TOKEN": load.TOKEN, "SLACK_SIGNING_SECRET": load.SECRET, "SLACK_API_URL": fake.base_url,
           "TEMPLATES_DIR": str(templates), "LOG_LEVEL": "WARNING", "SWEEP_INTERVAL_SECONDS": "3600"}
    env.pop("REDIS_URL", None)
    cli = str(Path(sys.executable).parent / "campaign-manager")
    command = [sys.executable, "-m", "cProfile", "-o", profile, cli, "serve"] if profile else [cli, "serve"]
    app = await asyncio.create_subprocess_exec(*command, env=env, cwd=templates)
    try:
        await load._until_up(f"http://127.0.0.1:{floor_port}/health", floor)
        await load._until_up(f"http://127.0.0.1:{app_port}/health", app)
        print(f"idle CPU: floor {await _idle_cpu(floor.pid) * 1000:.1f} ms/s, "
              f"serve {await _idle_cpu(app.pid) * 1000:.1f} ms/s")
        print(f"{'kind':<24}{'floor CPU':>12}{'serve CPU':>12}{'ratio':>8}{'reply p50':>12}{'reply p95':>12}")
        for kind in kinds:
            floor_cpu, _ = await measure(f"http://127.0.0.1:{floor_port}/slack/events", floor.pid, fake, tasks,
                                         kind, count, waits_for_reply=False)
            fake.reset()
            app_cpu, latencies = await measure(f"http://127.0.0.1:{app_port}/slack/events", app.pid, fake, tasks,
                                               kind, count, waits_for_reply=kind != "task form")
            fake.reset()
            ms = sorted(latency * 1000 for latency in latencies)
            ratio = f"{app_cpu / floor_cpu:>7.1f}x" if floor_cpu > 0 else "      -"  # too few requests to see
            print(f"{kind:<24}{floor_cpu * 1000:>9.2f} ms{app_cpu * 1000:>9.2f} ms{ratio}"
                  f"{load._pct(ms, .5):>9.1f} ms{load._pct(ms, .95):>9.1f} ms")
    finally:
        await load._stop(floor)
        await load._stop(app)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench.per_request", description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200, help="requests of each kind (default 200)")
    parser.add_argument("--profile", help="run the server under cProfile and write its statistics here")
    parser.add_argument("--kind", action="append", choices=KINDS, help="only this kind (repeatable; default all)")
    args = parser.parse_args(argv)
    profile = str(Path(args.profile).resolve()) if args.profile else None

    async def go(url: str, templates: Path, fake: Any) -> None:
        tasks = await load.seeded(url, templates)
        await run(url, templates, tasks, fake, args.count, profile, tuple(args.kind or KINDS))

    load.on_fresh_postgres("cm-cost-", go)


if __name__ == "__main__":
    main()
