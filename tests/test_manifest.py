"""manifest.yml matches the app: every command it lists is answered, and what Slack needs is declared."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.conftest import RunningApp
from tests.fake_slack import FakeSlack

MANIFEST = yaml.safe_load((Path(__file__).parent.parent / "manifest.yml").read_text())


def test_manifest_declares_home_events_interactivity_and_scopes() -> None:
    features, settings = MANIFEST["features"], MANIFEST["settings"]
    assert features["app_home"]["home_tab_enabled"] is True
    assert "app_home_opened" in settings["event_subscriptions"]["bot_events"]
    assert settings["interactivity"]["is_enabled"] is True
    assert {"commands", "chat:write", "users:read", "users:read.email", "im:write"} <= set(
        MANIFEST["oauth_config"]["scopes"]["bot"]
    )
    for command in features["slash_commands"]:
        assert command["url"].endswith("/slack/events") and command["description"] and command["usage_hint"]


async def test_every_listed_command_is_answered(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    for command in MANIFEST["features"]["slash_commands"]:
        url = fake_slack.response_url()
        status, _ = await running_app.slack.command(command["command"], "help", response_url=url)
        assert status == 200, command["command"]
        reply = await fake_slack.wait_for("response_url", lambda call, url=url: url.endswith(call.url_id or "-"))
        assert command["command"] in reply.args["text"] + repr(reply.args.get("blocks"))
