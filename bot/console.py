"""`campaign-manager slash "/campaign list" --user U123`: try the bot without a Slack workspace.

The command goes through the very same listeners as in production: a request signed with a
throw-away secret is dispatched in-process, and whatever the app sends back to "Slack" is captured
by a loopback stand-in and printed as text.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlencode

from pydantic import SecretStr
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.signature import SignatureVerifier

from bot.local_slack import LocalSlack
from bot.render_text import render_message
from bot.runtime import Runtime
from bot.settings import Settings
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


async def run_slash(settings: Settings, line: str, *, user_id: str, channel_id: str = "CLOCALCONSOLE") -> list[ConsoleReply]:
    command, text = split_command_line(line)
    stand_in = await LocalSlack().start()
    secret = secrets.token_hex(16)
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
        assert runtime.slack_app is not None
        body = urlencode(
            {
                "command": command, "text": text, "user_id": user_id, "user_name": user_id,
                "channel_id": channel_id, "channel_name": "console", "team_id": "TLOCAL",
                "response_url": stand_in.response_url, "trigger_id": "console.trigger", "api_app_id": "ALOCAL",
            }
        )
        timestamp = str(int(time.time()))
        signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
        headers = {
            "content-type": ["application/x-www-form-urlencoded"],
            "x-slack-request-timestamp": [timestamp],
            "x-slack-signature": [signature],
        }
        response = await runtime.slack_app.async_dispatch(AsyncBoltRequest(body=body, headers=headers))
        replies = [ConsoleReply("ack", response.body)] if response.body and response.status == 200 else []
        if response.status == 404:
            replies.append(ConsoleReply("error", f"No listener handles {command}."))
        for sent in stand_in.messages:
            visibility = sent.via
            if sent.via == "response_url":
                visibility = "channel" if sent.payload.get("response_type") == "in_channel" else "only you"
            replies.append(ConsoleReply(visibility, render_message(sent.payload)))
        return replies
    finally:
        await runtime.stop()
        await stand_in.stop()
