"""The `campaign-manager` command, run as a newcomer would: real processes, real databases."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import aiohttp
import pytest

from models import migrate
from tests import services
from tests.conftest import BOT_TOKEN, SIGNING_SECRET
from tests.fake_slack import FakeSlack
from tests.slack_requests import SlackSender
from tests.support.network import free_port
from tests.test_settings import CONTRACT

SOON = (date.today() + timedelta(days=120)).isoformat()
CLI = str(Path(sys.executable).parent / "campaign-manager")


def cli_env(**values: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in CONTRACT}
    env.update(values)
    return env


def run_cli(*args: str, env: dict[str, str], cwd: Path, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture
def fresh_postgres_url() -> str:
    url = services.create_postgres_database()
    yield url
    services.drop_postgres_database(url)


def test_demo_then_slash_on_a_fresh_sqlite_file(tmp_path: Path) -> None:
    env = cli_env(DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'cm.db'}")
    seeded = run_cli("demo", env=env, cwd=tmp_path)
    assert seeded.returncode == 0, seeded.stderr
    assert "seeded the demo workspace: 6 members, 3 campaigns" in seeded.stdout
    again = run_cli("demo", "--if-empty", env=env, cwd=tmp_path)
    assert again.returncode == 0 and "already there" in again.stdout

    listing = run_cli("slash", "/campaign list", "--user", "UDEMOMAYA", env=env, cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    assert "Aurora 2.0 product launch" in listing.stdout and "CM-1" in listing.stdout
    created = run_cli("slash", f'/campaign new "Console launch" webinar {SOON}', "--user", "U0NEW", env=env, cwd=tmp_path)
    assert "CM-4 created" in created.stdout and "--- channel ---" in created.stdout
    shown = run_cli("slash", "/campaign show CM-4", env=env, cwd=tmp_path)
    assert "Console launch" in shown.stdout and "@U0NEW" in shown.stdout


def test_slash_refuses_a_line_without_a_command(tmp_path: Path) -> None:
    env = cli_env(DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'cm.db'}")
    result = run_cli("slash", "campaign list", env=env, cwd=tmp_path)
    assert result.returncode == 2 and "Start with the slash command" in result.stderr
    assert "Traceback" not in result.stderr


def test_migrate_postgres_and_serve_refuses_an_unmigrated_one(tmp_path: Path, fresh_postgres_url: str) -> None:
    env = cli_env(DATABASE_URL=fresh_postgres_url, PORT=str(free_port()))
    refused = run_cli("serve", env=env, cwd=tmp_path)
    assert refused.returncode == 2 and "run `campaign-manager migrate`" in refused.stderr
    assert "Traceback" not in refused.stderr
    migrated = run_cli("migrate", env=env, cwd=tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    assert f"database at revision {migrate.head_revision()}" in migrated.stdout


def test_migrate_reports_an_unreachable_database_in_one_line(tmp_path: Path) -> None:
    env = cli_env(DATABASE_URL="postgresql+asyncpg://postgres@127.0.0.1:9/nothing")
    result = run_cli("migrate", env=env, cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.startswith("DATABASE_URL: cannot connect")
    assert "Traceback" not in result.stderr


def test_worker_needs_redis(tmp_path: Path) -> None:
    result = run_cli("worker", env=cli_env(), cwd=tmp_path)
    assert result.returncode == 2 and "REDIS_URL is not set" in result.stderr


async def test_serve_answers_health_and_signed_slack_commands(tmp_path: Path, fake_slack: FakeSlack) -> None:
    port = free_port()
    env = cli_env(
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'serve.db'}", HOST="127.0.0.1", PORT=str(port),
        SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=fake_slack.base_url,
        LOG_FORMAT="json",
    )
    process = await asyncio.create_subprocess_exec(CLI, "serve", env=env, cwd=tmp_path, stderr=asyncio.subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            await _wait_until_up(http, f"{base}/health", process)
            async with http.get(f"{base}/health/detailed") as response:
                detailed = await response.json()
            assert detailed["checks"]["queue"]["worker_running"] is True  # embedded mode runs the worker
            sender = SlackSender(session=http, url=f"{base}/slack/events", secret=SIGNING_SECRET, fake=fake_slack)
            status, _ = await sender.command("/campaign", f'new "Served" event {SOON}')
            assert status == 200
            reply = await fake_slack.wait_for("response_url")
            assert "CM-1 created" in reply.args["text"]
            status, _ = await sender.command("/campaign", "list", secret="forged")
            assert status == 401
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, stderr.decode()
    assert b"Traceback" not in stderr


async def test_serve_links_point_where_it_listens(tmp_path: Path, fake_slack: FakeSlack) -> None:
    """No PUBLIC_URL: the links a server hands out lead back to its own host and port (here, --port)."""
    port = free_port()
    env = cli_env(
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'serve.db'}", HOST="127.0.0.1",
        SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=fake_slack.base_url,
    )
    process = await asyncio.create_subprocess_exec(CLI, "serve", "--port", str(port), env=env, cwd=tmp_path,
                                                   stderr=asyncio.subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            await _wait_until_up(http, f"{base}/health", process)
            sender = SlackSender(session=http, url=f"{base}/slack/events", secret=SIGNING_SECRET, fake=fake_slack)
            status, _ = await sender.command("/dashboard", "")
            assert status == 200
            reply = await fake_slack.wait_for("response_url")
            assert re.search(rf"{re.escape(base)}/dashboard/[A-Za-z0-9_.-]+", repr(reply.args)), reply.args
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, stderr.decode()


async def _wait_until_up(http: aiohttp.ClientSession, url: str, process: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.returncode is None, "serve exited early"
        try:
            async with http.get(url) as response:
                if response.status == 200:
                    return
        except aiohttp.ClientConnectionError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError("serve did not come up within 30 s")
