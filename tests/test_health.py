"""Health endpoints: liveness for anyone, and a detailed view (operators only) that tells what is broken."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services import notifications
from tests import services
from tests.conftest import RunningApp, app_settings, start_app
from tests.fake_slack import FakeSlack


async def test_liveness(running_app: RunningApp) -> None:
    async with running_app.http.get(running_app.url("/health")) as response:
        assert response.status == 200
        assert await response.json() == {"status": "ok"}


async def test_detailed_in_embedded_mode(db_url: str, fake_slack: FakeSlack) -> None:
    async with start_app(app_settings(db_url, fake_slack), fake_slack, run_worker=True) as app:
        async with app.http.get(app.url("/health/detailed")) as response:
            body = await response.json()
    assert response.status == 200 and body["status"] == "ok" and body["mode"] == "embedded"
    assert body["checks"]["database"]["ok"] and body["checks"]["database"]["backend"] in ("sqlite", "postgresql")
    assert body["checks"]["queue"]["kind"] == "embedded" and body["checks"]["queue"]["worker_running"] is True
    assert "redis" not in body["checks"]


async def test_detailed_with_real_redis(db_url: str, fake_slack: FakeSlack, redis_prefix: str) -> None:
    async with start_app(app_settings(db_url, fake_slack, redis_url=services.REDIS_URL, redis_namespace=redis_prefix), fake_slack) as app:
        async with app.http.get(app.url("/health/detailed")) as response:
            body = await response.json()
    assert response.status == 200, body
    assert body["mode"] == "redis" and body["checks"]["redis"]["ok"] and body["checks"]["queue"]["kind"] == "redis"


async def test_detailed_reports_an_unreachable_redis_as_503(db_url: str, fake_slack: FakeSlack) -> None:
    # Port 9 (discard) refuses connections on loopback: a Redis that is down.
    settings = app_settings(db_url, fake_slack, redis_url="redis://127.0.0.1:9/0")
    async with start_app(settings, fake_slack) as app:
        async with app.http.get(app.url("/health/detailed")) as response:
            body = await response.json()
        async with app.http.get(app.url("/health")) as live:
            assert live.status == 200  # the process itself is fine
    assert response.status == 503 and body["status"] == "degraded"
    assert body["checks"]["redis"]["ok"] is False and body["checks"]["database"]["ok"] is True
    assert "error" in body["checks"]["redis"] and "Traceback" not in str(body)


async def test_detailed_reports_the_outbox_and_a_backlog_nobody_delivers(db_url: str, fake_slack: FakeSlack) -> None:
    # No worker runs: a notification due 11 minutes ago has not gone out, and that is what health says.
    async with start_app(app_settings(db_url, fake_slack), fake_slack) as app:
        async with app.http.get(app.url("/health/detailed")) as response:
            fresh = await response.json()
        now = datetime.now(UTC)
        async with app.sessions.begin() as db:
            await notifications.notify(db=db, dedupe_key="later", kind="generic", payload={"text": "x"},
                                       recipient_channel="C0LATER", scheduled_for=now + timedelta(hours=1), now=now)
            await notifications.notify(db=db, dedupe_key="old", kind="generic", payload={"text": "x"},
                                       recipient_channel="C0OLD", scheduled_for=now - timedelta(minutes=11), now=now)
        async with app.http.get(app.url("/health/detailed")) as response:
            stuck = await response.json()
    assert fresh["checks"]["outbox"] == {"ok": True, "latency_ms": fresh["checks"]["outbox"]["latency_ms"], "due": 0,
                                         "scheduled": 0, "sending": 0, "failed_last_day": 0,
                                         "oldest_due_seconds": None}
    assert response.status == 503 and stuck["status"] == "degraded"
    assert stuck["checks"]["outbox"]["ok"] is False and stuck["checks"]["database"]["ok"] is True
    assert stuck["checks"]["outbox"]["error"].startswith("the oldest due notification has waited 6")


async def test_detailed_is_for_operators_only(db_url: str, fake_slack: FakeSlack) -> None:
    # A proxy on this machine forwarding someone else's request: not this machine, so only with the token.
    stranger = {"X-Forwarded-For": "198.51.100.4"}
    async with start_app(app_settings(db_url, fake_slack, ops_token="an-ops-token"), fake_slack) as app:
        async with app.http.get(app.url("/health/detailed"), headers=stranger) as refused:
            assert refused.status == 404 and "checks" not in await refused.text()
        async with app.http.get(app.url("/health/detailed"),
                                headers={**stranger, "Authorization": "Bearer an-ops-token"}) as allowed:
            assert allowed.status == 200 and (await allowed.json())["checks"]["database"]["ok"]
        async with app.http.get(app.url("/health"), headers=stranger) as public:
            assert public.status == 200 and await public.json() == {"status": "ok"}
