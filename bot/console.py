"""`campaign-manager slash "/campaign list" --user U123`: try the bot without a Slack workspace.

The command goes through the very same listeners as in production: a request signed with a
throw-away secret is dispatched in-process, and whatever the app sends back to "Slack" is captured
by a loopback stand-in and printed as text.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlencode

from pydantic import SecretStr
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.signature import SignatureVerifier

from bot.local_slack import LocalSlack
from bot.render_text import Reader, render_message
from bot.runtime import Runtime, with_stored_link_secret
from bot.settings import Settings
from handlers.links import secret_of
from services import team
from services.errors import InvalidInput


@dataclass
class ConsoleReply:
    visibility: str  # "only you", "channel" or the Web API method used
    text: str


def split_command_line(line: str) -> tuple[str, str]:
    line = line.strip()
    if not line.startswith("/") or len(line) < 2:
        raise InvalidInput('Start with the slash command, for example: "/campaign list"')
    command, _, text = line.partition(" ")
    return command, text.strip()


# A quoted phrase (left as typed), or a `#name` word: at the start, after a space or after `key=`.
_QUOTED_OR_CHANNEL = re.compile(r'("[^"]*"|\u201c[^\u201d]*\u201d)|(?<![^\s=])#([^\s"\u201c\u201d<>#|]+)')
_CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{2,}$")


def escape_channels(text: str, stand_in: LocalSlack) -> str:
    """Do what Slack's client does before it sends a command: a typed `#spring-launch` becomes
    `<#C…|spring-launch>`. Quoted phrases are names people chose ("Launch #2") and stay as typed; `#C123`
    is already an id."""

    def channel(match: re.Match[str]) -> str:
        quoted, name = match.group(1), match.group(2)
        if quoted is not None or _CHANNEL_ID.match(name):
            return match.group(0)
        return f"<#{stand_in.channel(name)}|{name.lower()}>"

    return _QUOTED_OR_CHANNEL.sub(channel, text)


CONSOLE_CHANNEL = "CLOCALCONSOLE"  # where console commands are typed unless --channel says otherwise


async def run_slash(settings: Settings, line: str, *, user_id: str, channel_id: str = CONSOLE_CHANNEL) -> list[ConsoleReply]:
    command, text = split_command_line(line)
    stand_in = await LocalSlack(channel_names={CONSOLE_CHANNEL: "console"}).start()
    # The configured secret when there is one: the dashboard's links are signed with a key derived from it
    # (unless DASHBOARD_SECRET is set), so a link the console hands out must open on `serve`.
    configured = settings.slack_signing_secret
    secret = configured.get_secret_value() if configured is not None else secrets.token_hex(16)
    local = settings.model_copy(
        update={
            "slack_api_url": stand_in.api_url,
            "slack_bot_token": SecretStr("xoxb-local-console"),
            "slack_signing_secret": SecretStr(secret),
            "slack_app_token": None,
        }
    )
    # process_before_response: the dispatch returns only when the listener is done, so nothing is missed.
    runtime = Runtime(local, run_worker=False, process_before_response=True)
    try:
        await runtime.start()
        assert runtime.slack_app is not None and runtime.deps is not None
        if secret_of(settings) is None:  # as `serve` does: the database's own key, not one from the stand-in secret
            runtime.deps.settings = await with_stored_link_secret(runtime.settings, runtime.deps.sessions)
        body = urlencode(
            {
                "command": command, "text": escape_channels(text, stand_in), "user_id": user_id, "user_name": user_id,
                "channel_id": channel_id, "channel_name": "console", "team_id": "TLOCAL",
                "response_url": stand_in.response_url, "trigger_id": "console.trigger", "api_app_id": "ALOCAL",
            }
        )
        timestamp = str(int(time.time()))
        signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body) or ""
        headers: dict[str, str | Sequence[str]] = {
            "content-type": ["application/x-www-form-urlencoded"],
            "x-slack-request-timestamp": [timestamp],
            "x-slack-signature": [signature],
        }
        with _quiet_about_unhandled(runtime.slack_app.logger):
            response = await runtime.slack_app.async_dispatch(AsyncBoltRequest(body=body, headers=headers))
        if response.status == 404:
            raise InvalidInput(f"{command[:40]} is not a command here. Try /campaign help.")
        async with runtime.deps.sessions() as db:
            member = await team.find_member(db=db, slack_user_id=user_id)
        reader = Reader(timezone=member.timezone if member else "UTC", channel_names=stand_in.channel_names)
        return _replies(response.body if response.status == 200 else "", stand_in, reader)
    finally:
        await runtime.stop()
        await stand_in.stop()


def _replies(ack_body: str, stand_in: LocalSlack, reader: Reader) -> list[ConsoleReply]:
    replies = [ConsoleReply("ack", ack_body)] if ack_body else []
    for sent in stand_in.messages:
        visibility = sent.via
        if sent.via == "response_url":
            visibility = "channel" if sent.payload.get("response_type") == "in_channel" else "only you"
        replies.append(ConsoleReply(visibility, render_message(sent.payload, reader)))
    return replies


@contextmanager
def _quiet_about_unhandled(logger: logging.Logger) -> Iterator[None]:
    """Bolt logs a command nobody handles as a warning with a code sample for the developer; the console
    tells the person in one line instead."""

    def keep(record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Unhandled request")

    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)
