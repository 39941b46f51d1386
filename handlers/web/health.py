"""`GET /health` (is the process up) and `GET /health/detailed` (can it reach what it needs).

`/health` is public and says only "ok". `/health/detailed` names the backends and their state: operators
only (`handlers.web.operators`: from this machine, or with OPS_TOKEN); anyone else gets a 404.
Each check has CHECK_TIMEOUT_SECONDS, all run at once: a database that is down answers 503 within
that, with `failing` naming what is broken (`["database", "outbox"]`) and each check saying why.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from sqlalchemy import text

from handlers.web import DEPS_KEY
from handlers.web.operators import may_see_internals, not_found
from models.db import is_unreachable
from services import notifications

CHECK_TIMEOUT_SECONDS = 2.0
STUCK_AFTER = timedelta(minutes=10)  # or five sweeps, whichever is longer


class OutboxStuck(Exception):
    """Due notifications are waiting far longer than a sweep and a delivery take."""


def register(app: web.Application) -> None:
    app.router.add_get("/health", health)
    app.router.add_get("/health/detailed", health_detailed)


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def health_detailed(request: web.Request) -> web.Response:
    if not may_see_internals(request):
        return not_found()
    deps = request.app[DEPS_KEY]

    async def database() -> dict[str, Any]:
        async with deps.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        return {"backend": deps.engine.dialect.name}

    async def outbox() -> dict[str, Any]:
        async with deps.sessions() as db:
            stats = await notifications.outbox_stats(db=db, now=datetime.now(UTC))
        stuck_after = max(STUCK_AFTER, timedelta(seconds=5 * deps.settings.sweep_interval_seconds))
        if stats.stuck(stuck_after):  # due rows nobody delivers: workers down, or the queue unreachable
            raise OutboxStuck(f"the oldest due notification has waited {stats.oldest_due_seconds:.0f} s")
        return asdict(stats)

    checks: dict[str, Callable[[], Awaitable[dict[str, Any]]]] = {"database": database, "outbox": outbox}
    if deps.redis is not None:
        redis = deps.redis

        async def redis_check() -> dict[str, Any]:
            await redis.ping()
            return {}

        checks["redis"] = redis_check
    if deps.queue is not None:
        queue = deps.queue

        async def queue_check() -> dict[str, Any]:
            # The Redis broker's client is synchronous: keep it off the event loop.
            return await asyncio.to_thread(queue.stats)

        checks["queue"] = queue_check

    results = dict(zip(checks, await asyncio.gather(*(_run(check) for check in checks.values())), strict=True))
    failing = [name for name, result in results.items() if not result["ok"]]
    body = {"status": "degraded" if failing else "ok", "mode": "embedded" if deps.settings.embedded else "redis",
            "failing": failing, "checks": results}
    return web.json_response(body, status=503 if failing else 200)


async def _run(check: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        details = await asyncio.wait_for(check(), CHECK_TIMEOUT_SECONDS)
    except OutboxStuck as stuck:
        return {"ok": False, "error": str(stuck), "latency_ms": _ms(started)}
    except TimeoutError:
        return {"ok": False, "error": f"no answer within {CHECK_TIMEOUT_SECONDS:g} s", "latency_ms": _ms(started)}
    except Exception as error:  # a failing dependency is the answer here, not an error of ours
        return {"ok": False, "error": _describe(error), "latency_ms": _ms(started)}
    return {"ok": True, "latency_ms": _ms(started), **details}


def _describe(error: Exception) -> str:
    name = type(error).__name__
    return f"unreachable ({name})" if is_unreachable(error) else name


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
