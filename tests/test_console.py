"""`campaign-manager slash`: the console takes people and channels as a person types them, prints dates as
words and forms as their fields, and refuses an unknown command in one line."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.console import ConsoleReply, run_slash
from bot.render_text import Reader, render_message
from bot.settings import Settings
from models import Campaign, Task, TeamMember, migrate
from models.db import create_engine, create_session_factory
from tests.conftest import app_settings, start_app
from tests.fake_slack import FakeSlack
from tests.test_cli import cli_env, run_cli

SOON = (date.today() + timedelta(days=120)).isoformat()
PEOPLE = (("UMAYA", "Maya Chen", "America/New_York"), ("UJULIA", "Julia Weber", "Europe/Berlin"),
          ("UOMAR", "Omar Haddad", "Europe/Madrid"))


async def seed_people(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Members whose profiles are already read, so the console's stand-in does not rename them."""
    async with sessions.begin() as db:
        for slack_user_id, name, timezone in PEOPLE:
            db.add(TeamMember(slack_user_id=slack_user_id, name=name, timezone=timezone,
                              profile_synced_at=datetime.now(UTC)))


def console_settings(db_url: str) -> Settings:
    return Settings(database_url=db_url, redis_url=None, slack_bot_token=None, slack_signing_secret=None,  # type: ignore[arg-type]
                    slack_app_token=None)


async def slash(db_url: str, line: str, *, user: str = "UMAYA") -> str:
    replies: list[ConsoleReply] = await run_slash(console_settings(db_url), line, user_id=user)
    return "\n".join(f"--- {reply.visibility} ---\n{reply.text}" for reply in replies)


async def test_people_and_channels_as_typed(db_url: str, sessions: async_sessionmaker[AsyncSession]) -> None:
    await seed_people(sessions)
    assert "CM-1 created" in await slash(db_url, f'/campaign new "Console launch" webinar {SOON}')
    for typed, name in (("@julia", "Julia Weber"), ("@UOMAR", "Omar Haddad"), ("<@UJULIA|julia>", "Julia Weber"),
                        ('"@omar haddad"', "Omar Haddad")):
        shown = await slash(db_url, f"/task assign T-1 {typed}")
        assert f"is now {name}'s" in shown, shown
    shown = await slash(db_url, "/task assign T-1 @julja")
    assert "I don't know @julja; `/team list` shows who is here." in shown

    shown = await slash(db_url, "/campaign channel CM-1 #spring-launch")
    assert "now posts to #spring-launch" in shown and "<#" not in shown, shown
    async with sessions() as db:
        first = (await db.get(Campaign, 1)).channel_id  # type: ignore[union-attr]
    assert first and re.fullmatch(r"C[A-Z0-9]{8,}", first)
    await slash(db_url, "/campaign channel CM-1 none")
    await slash(db_url, "/campaign channel CM-1 <#CSPRING01|spring-launch>")
    await slash(db_url, "/campaign channel CM-1 #Spring-Launch")  # another run: the same name, the same id
    async with sessions() as db:
        assert (await db.get(Campaign, 1)).channel_id == first  # type: ignore[union-attr]

    shown = await slash(db_url, f'/campaign new "Julia\'s launch #2" webinar {SOON} owner=@julia')
    assert "CM-2 created" in shown, shown
    async with sessions() as db:
        campaign = await db.get(Campaign, 2)
        owner = await db.get(TeamMember, campaign.owner_id)  # type: ignore[union-attr]
    assert campaign is not None and campaign.name == "Julia's launch #2"  # a # inside quotes is not a channel
    assert owner is not None and owner.slack_user_id == "UJULIA"


async def test_two_members_of_one_name(db_url: str, sessions: async_sessionmaker[AsyncSession]) -> None:
    await seed_people(sessions)
    async with sessions.begin() as db:
        db.add(TeamMember(slack_user_id="UJULIA2", name="Julia Stone", profile_synced_at=datetime.now(UTC)))
    await slash(db_url, f'/campaign new "Console launch" webinar {SOON}')
    shown = await slash(db_url, "/task assign T-1 @julia")
    assert "@julia could be Julia Weber (@UJULIA), Julia Stone (@UJULIA2)" in shown, shown
    async with sessions() as db:
        assert (await db.get(Task, 1)).assignee_id is None  # type: ignore[union-attr]


def test_date_tokens_read_as_words() -> None:
    stamp = int(datetime(2027, 3, 12, 14, 5, tzinfo=UTC).timestamp())
    payload = {"text": f"Due <!date^{stamp}^{{date_short_pretty}} at {{time}}|2027-03-12 14:05 UTC>, "
                       f"asked <!date^{stamp}^{{date_num}} {{date_long}}^https://x.test|fallback>, "
                       f"then <!date^{stamp}^{{nonsense}}|as Slack falls back>, <!date^junk|kept fallback>"}
    berlin = Reader(timezone="Europe/Berlin", now=datetime(2027, 1, 1, tzinfo=UTC))
    assert render_message(payload, berlin) == (
        "Due Mar 12, 2027 at 15:05, asked 2027-03-12 Friday, March 12th, 2027, then as Slack falls back, kept fallback")
    today = Reader(timezone="Europe/Berlin", now=datetime(2027, 3, 12, 9, tzinfo=UTC))
    assert render_message({"text": f"<!date^{stamp}^{{date_pretty}}|x>"}, today) == "today"


def test_mentions_and_links_read_as_words() -> None:
    reader = Reader(channel_names={"CSPRING1": "spring-launch"})
    text = "<@U1|bob> and <@U2> in <#CSPRING1>, <#C9|general>, <!here>, <https://x.test|the plan>, <https://y.test>"
    assert render_message({"text": text}, reader) == (
        "@bob and @U2 in #spring-launch, #general, @here, the plan (https://x.test), https://y.test")


def test_campaign_form_prints_its_fields(tmp_path: Path) -> None:
    env = cli_env(DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'cm.db'}")
    result = run_cli("slash", "/campaign new", "--user", "UMAYA", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "New campaign" in out, out
    for field in ("Name (text)", "Template (one of: ", "Launch date (date)", "Owner (person: @UMAYA)",
                  "Channel (channel, optional)"):
        assert field in out, out
    assert "Traceback" not in result.stderr


def test_an_unknown_command_is_one_line_and_fails(tmp_path: Path) -> None:
    env = cli_env(DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'cm.db'}")
    result = run_cli("slash", "/nosuch foo", env=env, cwd=tmp_path)
    assert result.returncode != 0
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "/nosuch" in result.stderr, result.stderr
    assert "Unhandled request" not in result.stderr and "@app.command" not in result.stderr


@pytest.fixture
async def seeded_sqlite(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cm.db'}"
    engine = create_engine(url)
    try:
        await migrate.upgrade(engine)
        await seed_people(create_session_factory(engine))
    finally:
        await engine.dispose()
    return url


async def test_a_real_console_run_prints_dates_as_words(seeded_sqlite: str, tmp_path: Path) -> None:
    env = cli_env(DATABASE_URL=seeded_sqlite)
    created = run_cli("slash", f'/campaign new "Dated" webinar {SOON}', "--user", "UMAYA", env=env, cwd=tmp_path)
    assert "CM-1 created" in created.stdout, created.stdout + created.stderr
    asked = run_cli("slash", f'/approval request CM-1 "Legal review" @julia by {SOON}', "--user", "UMAYA",
                    env=env, cwd=tmp_path)
    assert asked.returncode == 0 and "Legal review" in asked.stdout, asked.stdout + asked.stderr
    assert "!date" not in asked.stdout and "<" not in asked.stdout, asked.stdout
    assert re.search(r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun)|today|tomorrow|[A-Z][a-z]{2} \d{1,2}, \d{4}", asked.stdout)
    assert "Traceback" not in asked.stderr
    engine = create_engine(seeded_sqlite)
    try:
        async with create_session_factory(engine)() as db:
            assert (await db.scalars(select(Campaign.name))).all() == ["Dated"]
    finally:
        await engine.dispose()


async def test_a_dashboard_link_from_the_console_opens_on_serve(db_url: str, fake_slack: FakeSlack) -> None:
    """The console signs its own request; the link it hands out is signed with the configured key, so the
    server run with the same configuration opens it."""
    settings = app_settings(db_url, fake_slack)
    console = settings.model_copy(update={"slack_bot_token": None})
    replies = await run_slash(console, "/dashboard", user_id="UMAYA")
    found = re.search(r"/dashboard/([A-Za-z0-9_.-]+)", "\n".join(reply.text for reply in replies))
    assert found, replies
    async with start_app(settings, fake_slack) as app, app.http.get(app.url(f"/dashboard/{found.group(1)}")) as page:
        assert page.status == 200, await page.text()


async def test_with_no_secret_configured_the_dashboard_still_works(db_url: str, fake_slack: FakeSlack) -> None:
    """The embedded default (`make run`: no DASHBOARD_SECRET, no Slack): a key is made once and kept in the
    database, so the console's links open on `serve`, and on a second `serve` (another instance, or after a
    restart) too."""
    settings = app_settings(db_url, fake_slack, slack_bot_token=None, slack_signing_secret=None, dashboard_secret=None)
    replies = await run_slash(settings, "/dashboard", user_id="UMAYA")
    found = re.search(r"/dashboard/([A-Za-z0-9_.-]+)", "\n".join(reply.text for reply in replies))
    assert found, replies
    for _ in range(2):
        async with start_app(settings, fake_slack) as app, app.http.get(app.url(f"/dashboard/{found.group(1)}")) as page:
            assert page.status == 200, await page.text()
