"""API read benchmark: `GET /api/v1/campaigns?limit=50` (and the same through MCP) on a 1,000-campaign workspace,
beside the floor.

Run: .venv/bin/python -m bench.api [--quick] [--campaigns N] [--requests N]
     (from the repository root; needs the local PostgreSQL as bench.load)

On the workspace bench.load seeds (1,000 campaigns of a 10-task chain, so 10,000 tasks, 100 members;
`--quick`: 100 campaigns and fewer requests, for a smoke run), a real `campaign-manager serve` (embedded
mode: no REDIS_URL, so the rate limit counts in memory) is asked for the first page of campaigns with a
read token, closed loop (one request after another, each with its own connection reused), `--requests`
times after a first one:

- serve: the full path (token check, rate limit, a reading transaction, the keyset page of 50, JSON,
  ETag); its first answer is the page's bytes.
- serve 304: the same request with `If-None-Match` of that ETag (the body is still built and hashed, so
  this is what a polling integration costs the server, minus the bytes on the wire).
- mcp: the same page through the MCP server, `tools/call list_campaigns {"limit": 50}` POSTed to /mcp as
  one JSON-RPC message (stateless: no session to open first), so the SDK's transport and the tool's
  argument and output models are what it adds to "serve".
- floor: a bare aiohttp server in another process answering the same bytes from memory, as JSON.

The server allows 600 requests a minute per token, so the requests go round a few read tokens (each
request still passes the limiter). Printed: a table of p50/p95/max per row and the ratio to the floor.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

from bench import dashboard, load

PATH = "/api/v1/campaigns?limit=50"
PER_TOKEN = 500  # requests a token carries, under the server's 600 a minute


@dataclass(frozen=True)
class Sizes:
    campaigns: int
    requests: int  # closed-loop requests per row, after a first one


FULL = Sizes(campaigns=1_000, requests=500)
QUICK = Sizes(campaigns=100, requests=60)


def serve_floor(port: int, body_file: str) -> None:
    from aiohttp import web

    body = Path(body_file).read_bytes()

    async def page(_: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    web_app = web.Application()
    web_app.router.add_get("/health", page)
    web_app.router.add_get("/page", page)
    web.run_app(web_app, host="127.0.0.1", port=port, access_log=None, print=None)


async def read_tokens(url: str, count: int) -> list[str]:
    """`count` read tokens acting as the first seeded member (one is enough for its rights)."""
    from sqlalchemy import select

    from models import TeamMember
    from models.db import create_engine, create_session_factory
    from services import api_tokens

    engine = create_engine(url)
    try:
        async with create_session_factory(engine).begin() as db:
            member = await db.scalar(select(TeamMember).order_by(TeamMember.id).limit(1))
            assert member is not None
            return [(await api_tokens.issue(db=db, created_by=member, acting_as=member, label=f"bench {n}",
                                            scope="read", now=datetime.now(UTC))).token for n in range(count)]
    finally:
        await engine.dispose()


async def start_floor(body_file: Path) -> tuple[asyncio.subprocess.Process, str]:
    port = load._free_port()
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "bench.api", "--floor-server", str(port),
                                                   "--floor-file", str(body_file), cwd=load.ROOT)
    base = f"http://127.0.0.1:{port}"
    await load._until_up(f"{base}/health", process)
    return process, base


MCP_CALL = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "list_campaigns", "arguments": {"limit": 50}}}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-06-18"}


async def timed(http: aiohttp.ClientSession, url: str, headers: dict[str, str], expect: int) -> tuple[float, bytes]:
    began = time.monotonic()
    post = url.endswith("/mcp")
    async with (http.post(url, json=MCP_CALL, headers={**headers, **MCP_HEADERS}) if post
                else http.get(url, headers=headers)) as response:
        body = await response.read()
        took = time.monotonic() - began
        if response.status != expect or (post and b'"isError":true' in body):
            raise SystemExit(f"{url} answered {response.status}, not {expect}: {body[:300]!r}")
    return took, body


async def closed_loop(http: aiohttp.ClientSession, url: str, count: int, headers_of: list[dict[str, str]],
                      expect: int) -> list[float]:
    return [(await timed(http, url, headers_of[n // PER_TOKEN], expect))[0] for n in range(count)]


def row(name: str, times: list[float], floor: list[float] | None) -> str:
    p50, p95 = dashboard.pct(times, .5), dashboard.pct(times, .95)
    ratio = f"{p95 / dashboard.pct(floor, .95):>9.1f}x" if floor else f"{'':>10}"
    return f"{name:<12}{dashboard.ms(p50)}{dashboard.ms(p95)}{dashboard.ms(max(times))}{ratio}"


async def run(sizes: Sizes, url: str, templates: Path, fake: object) -> None:
    load.CAMPAIGNS = sizes.campaigns  # read by load.seed when it runs; a multiple of 100
    await load.seeded(url, templates)
    per_row = math.ceil(sizes.requests / PER_TOKEN)
    tokens = await read_tokens(url, 3 * per_row + 1)  # each row's own, one for the first calls
    serve, base = await dashboard.start_serve(url, templates, fake)
    floor: asyncio.subprocess.Process | None = None
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as http:
            auth = [{"Authorization": f"Bearer {token}"} for token in tokens]
            first, body = await timed(http, base + PATH, auth[-1], 200)
            async with http.get(base + PATH, headers=auth[-1]) as response:
                etag = response.headers["ETag"]
            body_file = templates / "page.json"
            body_file.write_bytes(body)
            floor, floor_base = await start_floor(body_file)
            await timed(http, floor_base + "/page", {}, 200)
            floor_times = await closed_loop(http, floor_base + "/page", sizes.requests, [{}] * len(auth), 200)
            served = await closed_loop(http, base + PATH, sizes.requests, auth[:per_row], 200)
            matched = [{**headers, "If-None-Match": etag} for headers in auth[per_row:2 * per_row]]
            not_modified = await closed_loop(http, base + PATH, sizes.requests, matched, 304)
            await timed(http, base + "/mcp", auth[-1], 200)
            through_mcp = await closed_loop(http, base + "/mcp", sizes.requests, auth[2 * per_row:3 * per_row], 200)
    finally:
        if floor is not None:
            await load._stop(floor)
        await load._stop(serve)
    print(f"\nAPI read: GET {PATH} (first page of {sizes.campaigns:,} campaigns, {len(body):,} bytes), read token, "
          f"closed loop, {sizes.requests} requests each after a first one ({dashboard.ms(first).strip()} ms)")
    print(f"{'':<12}{'p50':>8}{'p95':>8}{'max':>8}{'p95/floor':>10}   (ms)")
    print(row("serve", served, floor_times))
    print(row("serve 304", not_modified, floor_times))
    print(row("mcp", through_mcp, floor_times))
    print(row("floor", floor_times, None))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench.api", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 campaigns and 60 requests, for a smoke run")
    parser.add_argument("--campaigns", type=int, help="campaigns to seed (a multiple of 100)")
    parser.add_argument("--requests", type=int, help="closed-loop requests per row")
    parser.add_argument("--floor-server", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--floor-file", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.floor_server:
        serve_floor(args.floor_server, args.floor_file)
        return
    base = QUICK if args.quick else FULL
    sizes = Sizes(campaigns=args.campaigns or base.campaigns, requests=args.requests or base.requests)
    if sizes.campaigns % 100 or sizes.campaigns < 100:
        parser.error("--campaigns takes a multiple of 100")
    load.on_fresh_postgres("cm-api-", lambda url, templates, fake: run(sizes, url, templates, fake))


if __name__ == "__main__":
    main()
