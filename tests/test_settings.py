"""The configuration contract: names, defaults, and one clear line for a bad value."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bot.settings import SLACK_DEFAULT_API_URL, ConfigError, load_settings

CONTRACT = ("DATABASE_URL", "REDIS_URL", "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN",
            "SLACK_API_URL", "HOST", "PORT", "PUBLIC_URL", "DASHBOARD_SECRET", "LOG_LEVEL", "LOG_FORMAT",
            "SWEEP_INTERVAL_SECONDS", "ADMIN_USER_IDS", "TEMPLATES_DIR", "TEAM_HOLIDAYS", "REDIS_NAMESPACE",
            "DASHBOARD_LINK_DAYS")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> pytest.MonkeyPatch:  # type: ignore[no-untyped-def]
    for name in CONTRACT:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env
    return monkeypatch


def test_defaults_are_the_embedded_mode(clean_env: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert settings.database_url == "sqlite+aiosqlite:///./campaign_manager.db"
    assert settings.embedded and not settings.slack_enabled and not settings.socket_mode
    assert settings.port == 3000 and settings.sweep_interval_seconds == 60
    assert settings.dashboard_link_days == 7
    assert settings.slack_api_url == SLACK_DEFAULT_API_URL


def test_every_contract_name_is_read(clean_env: pytest.MonkeyPatch) -> None:
    values = {
        "DATABASE_URL": "postgresql+asyncpg://u@h/db", "REDIS_URL": "redis://h:1/0", "SLACK_BOT_TOKEN": "xoxb-1",
        "SLACK_SIGNING_SECRET": "s", "SLACK_APP_TOKEN": "xapp-1", "SLACK_API_URL": "http://127.0.0.1:9/api",
        "HOST": "127.0.0.1", "PORT": "8080", "PUBLIC_URL": "https://cm.example.com/", "DASHBOARD_SECRET": "d",
        "LOG_LEVEL": "debug", "LOG_FORMAT": "JSON", "SWEEP_INTERVAL_SECONDS": "15", "ADMIN_USER_IDS": "U1, U2,,",
        "DASHBOARD_LINK_DAYS": "30",
    }
    for name, value in values.items():
        clean_env.setenv(name, value)
    s = load_settings()
    assert (s.database_url, s.redis_url, s.host, s.port) == ("postgresql+asyncpg://u@h/db", "redis://h:1/0", "127.0.0.1", 8080)
    assert s.slack_bot_token and s.slack_bot_token.get_secret_value() == "xoxb-1"
    assert s.slack_api_url == "http://127.0.0.1:9/api/" and s.public_url == "https://cm.example.com"
    assert (s.log_level, s.log_format, s.sweep_interval_seconds) == ("DEBUG", "json", 15)
    assert s.admin_user_ids == {"U1", "U2"} and s.socket_mode and not s.embedded
    assert s.dashboard_secret and s.dashboard_secret.get_secret_value() == "d"
    assert s.dashboard_link_days == 30


def test_planning_settings(clean_env: pytest.MonkeyPatch) -> None:
    from datetime import date
    from pathlib import Path

    clean_env.setenv("TEAM_HOLIDAYS", "2026-12-25, 2027-01-01")
    clean_env.setenv("TEMPLATES_DIR", "/srv/templates")
    s = load_settings()
    assert s.team_holidays == {date(2026, 12, 25), date(2027, 1, 1)} and s.templates_dir == Path("/srv/templates")


@pytest.mark.parametrize(
    ("url", "expected"),
    [("postgres://u@h/db", "postgresql+asyncpg://u@h/db"), ("postgresql://u@h/db", "postgresql+asyncpg://u@h/db"),
     ("sqlite:///x.db", "sqlite+aiosqlite:///x.db")],
)
def test_pasted_database_urls_get_the_async_driver(clean_env: pytest.MonkeyPatch, url: str, expected: str) -> None:
    clean_env.setenv("DATABASE_URL", url)
    assert load_settings().database_url == expected


@pytest.mark.parametrize(
    ("name", "value", "named"),
    [("PORT", "abc", "PORT"), ("PORT", "70000", "PORT"), ("DATABASE_URL", "mysql://x", "DATABASE_URL"),
     ("REDIS_URL", "localhost:6379", "REDIS_URL"), ("LOG_FORMAT", "xml", "LOG_FORMAT"),
     ("SLACK_BOT_TOKEN", "xoxb-1", "SLACK_SIGNING_SECRET"), ("SLACK_API_URL", "slack.com", "SLACK_API_URL"),
     ("SWEEP_INTERVAL_SECONDS", "0", "SWEEP_INTERVAL_SECONDS"), ("TEAM_HOLIDAYS", "2026-12-25,Xmas", "TEAM_HOLIDAYS"),
     ("DASHBOARD_LINK_DAYS", "0", "DASHBOARD_LINK_DAYS"), ("DASHBOARD_LINK_DAYS", "366", "DASHBOARD_LINK_DAYS"),
     ("DASHBOARD_LINK_DAYS", "a week", "DASHBOARD_LINK_DAYS")],
)
def test_a_bad_value_names_its_variable(clean_env: pytest.MonkeyPatch, name: str, value: str, named: str) -> None:
    clean_env.setenv(name, value)
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert str(raised.value).startswith(f"Configuration error: {named}:")
    assert "\n" not in str(raised.value)


def test_the_cli_reports_bad_config_in_one_line_without_a_traceback(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {key: value for key, value in os.environ.items() if key not in CONTRACT}
    env["PORT"] = "not-a-port"
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "serve"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "Configuration error: PORT: Input should be a valid integer, unable to parse string as an integer"
    ]


def test_public_url_follows_where_serve_listens(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("PORT", "3917")
    assert load_settings().public_url == "http://localhost:3917"  # 0.0.0.0 is every interface: localhost
    clean_env.setenv("HOST", "127.0.0.1")
    assert load_settings().public_url == "http://127.0.0.1:3917"
    assert load_settings().listening_on(host=None, port=4000).public_url == "http://127.0.0.1:4000"
    clean_env.setenv("HOST", "::1")
    assert load_settings().public_url == "http://[::1]:3917"
    clean_env.setenv("PUBLIC_URL", " ")
    assert load_settings().public_url == "http://[::1]:3917"


def test_a_set_public_url_wins(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("PORT", "3917")
    clean_env.setenv("PUBLIC_URL", "https://cm.example.com/")
    settings = load_settings()
    assert settings.public_url == "https://cm.example.com"
    assert settings.listening_on(host="127.0.0.1", port=4000).public_url == "https://cm.example.com"
