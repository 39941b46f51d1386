"""Health endpoints: liveness, and a detailed view that tells what is broken."""

from __future__ import annotations

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
