"""Build and send Slack-signed requests (slash commands, interactions, events) to the app.

Payload builders mirror the fields Slack really sends, so Bolt's parsing, request
verification and context extraction (user, channel, team, response_url) run for real.
The ``*_envelope`` builders wrap the same payloads the way Socket Mode delivers them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import aiohttp

if TYPE_CHECKING:
    from tests.fake_slack import FakeSlack

TEAM_ID, TEAM_DOMAIN, APP_ID = "T0TEST", "test-team", "A0TEST"
BOT_USER_ID = "UBOT"
# Slack still sends the legacy verification token in payloads; Bolt ignores it.
VERIFICATION_TOKEN = "verification-token"
DEFAULT_MESSAGE_TS = "1700000000.000100"
# Used when no FakeSlack is attached: port 9 (discard) refuses quickly, so a stray
# respond() fails fast instead of reaching the real hooks.slack.com.
UNROUTABLE_RESPONSE_URL = "http://127.0.0.1:9/response/unused"


def sign_headers(body: str, secret: str, *, timestamp: int | None = None) -> dict[str, str]:
    """Slack v0 signature headers for ``body`` (Content-Type is left to the caller)."""
    ts = int(time.time()) if timestamp is None else timestamp
    base = f"v0:{ts}:{body}".encode()
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": f"v0={digest}"}


def _user(user_id: str) -> dict[str, str]:
    name = user_id.lower()
    return {"id": user_id, "username": name, "name": name, "team_id": TEAM_ID}


def _team() -> dict[str, str]:
    return {"id": TEAM_ID, "domain": TEAM_DOMAIN}


def slash_command_fields(
    *,
    command: str,
    text: str,
    user_id: str,
    response_url: str,
    channel_id: str = "C0GENERAL",
    team_id: str = "T0TEST",
    trigger_id: str = "trig.123",
    user_name: str = "someone",
) -> dict[str, str]:
    """The fields of a slash command, as Slack posts them (all strings)."""
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "team_domain": TEAM_DOMAIN,
        "channel_id": channel_id,
        "channel_name": "general",
        "user_id": user_id,
        "user_name": user_name,
        "command": command,
        "text": text,
        "api_app_id": APP_ID,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }


def slash_command_form(**fields: str) -> str:
    """URL-encoded body of a slash command over HTTP; takes ``slash_command_fields``' arguments."""
    return urlencode(slash_command_fields(**fields))


def slash_command_envelope(**fields: str) -> dict:
    """A slash command as Socket Mode delivers it; takes ``slash_command_fields``' arguments."""
    return {
        "envelope_id": str(uuid.uuid4()),
        "type": "slash_commands",
        "accepts_response_payload": True,
        "payload": slash_command_fields(**fields),
    }


def events_api_envelope(callback: dict, *, retry_attempt: int = 0, retry_reason: str = "") -> dict:
    """An ``event_envelope`` (event_callback) as Socket Mode delivers it."""
    return {
        "envelope_id": str(uuid.uuid4()),
        "type": "events_api",
        "accepts_response_payload": False,
        "retry_attempt": retry_attempt,
        "retry_reason": retry_reason,
        "payload": callback,
    }


def _message_stub(ts: str) -> dict[str, Any]:
    return {"type": "message", "user": BOT_USER_ID, "bot_id": "BBOT", "text": "", "ts": ts, "blocks": []}


def block_actions_payload(
    *,
    user_id: str,
    action_id: str,
    value: str = "",
    response_url: str | None = None,
    channel_id: str = "C0GENERAL",
    message_ts: str | None = None,
    view: dict | None = None,
    container: dict | None = None,
    block_id: str = "b1",
    trigger_id: str = "trig.123",
) -> dict:
    """A button click: in a message by default, or in a modal/home tab when ``view`` is given."""
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": _user(user_id),
        "api_app_id": APP_ID,
        "token": VERIFICATION_TOKEN,
        "trigger_id": trigger_id,
        "team": _team(),
        "enterprise": None,
        "is_enterprise_install": False,
        "state": {"values": {}},
    }
    if view is not None:
        # Clicks inside views carry the view and no channel/message/response_url.
        payload["container"] = container or {"type": "view", "view_id": view.get("id", "V0TEST")}
        payload["view"] = view
    else:
        ts = message_ts or DEFAULT_MESSAGE_TS
        payload["container"] = container or {
            "type": "message", "message_ts": ts, "channel_id": channel_id, "is_ephemeral": False,
        }  # fmt: skip
        payload["channel"] = {"id": channel_id, "name": "general"}
        payload["message"] = _message_stub(ts)
        payload["response_url"] = response_url or UNROUTABLE_RESPONSE_URL
    payload["actions"] = [
        {
            "action_id": action_id,
            "block_id": block_id,
            "text": {"type": "plain_text", "text": action_id, "emoji": True},
            "value": value,
            "type": "button",
            "action_ts": f"{int(time.time())}.000000",
        }
    ]
    return payload


def _state_values(values: dict) -> dict:
    # Convenience: {"block": {"action": "text"}} means a plain_text_input holding "text";
    # dict leaves are passed through untouched (already in Slack's shape).
    return {
        block_id: {
            action_id: leaf if isinstance(leaf, dict) else {"type": "plain_text_input", "value": leaf}
            for action_id, leaf in actions.items()
        }
        for block_id, actions in values.items()
    }


def view_submission_payload(
    *,
    user_id: str,
    callback_id: str,
    values: dict,
    private_metadata: str = "",
    view_id: str = "V0TEST",
    hash: str = "h1",
    trigger_id: str = "trig.123",
) -> dict:
    """A modal submit. ``values`` is view.state.values (string leaves are wrapped, see above)."""
    view = {
        "id": view_id,
        "team_id": TEAM_ID,
        "type": "modal",
        "title": {"type": "plain_text", "text": "Modal"},
        "submit": {"type": "plain_text", "text": "Submit"},
        "close": None,
        "blocks": [],
        "private_metadata": private_metadata,
        "callback_id": callback_id,
        "state": {"values": _state_values(values)},
        "hash": hash,
        "clear_on_close": False,
        "notify_on_close": False,
        "root_view_id": view_id,
        "previous_view_id": None,
        "app_id": APP_ID,
        "external_id": "",
        "app_installed_team_id": TEAM_ID,
        "bot_id": "BBOT",
    }
    return {
        "type": "view_submission",
        "team": _team(),
        "user": _user(user_id),
        "api_app_id": APP_ID,
        "token": VERIFICATION_TOKEN,
        "trigger_id": trigger_id,
        "view": view,
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }


def message_action_payload(
    *,
    user_id: str,
    callback_id: str,
    text: str,
    channel_id: str = "C0GENERAL",
    channel_name: str = "general",
    message_ts: str = DEFAULT_MESSAGE_TS,
    author_id: str = "U0BOB",
    response_url: str | None = None,
    trigger_id: str = "trig.123",
) -> dict:
    """A message shortcut ("Create task from message"): the message it was used on comes along."""
    return {
        "type": "message_action",
        "token": VERIFICATION_TOKEN,
        "action_ts": f"{int(time.time())}.000000",
        "team": _team(),
        "user": _user(user_id),
        "channel": {"id": channel_id, "name": channel_name},
        "is_enterprise_install": False,
        "enterprise": None,
        "callback_id": callback_id,
        "trigger_id": trigger_id,
        "response_url": response_url or UNROUTABLE_RESPONSE_URL,
        "message_ts": message_ts,
        "message": {"type": "message", "user": author_id, "ts": message_ts, "text": text, "team": TEAM_ID},
    }


def event_envelope(*, event: dict, event_id: str = "Ev0001", team_id: str = "T0TEST") -> dict:
    """Events API ``event_callback`` wrapper around ``event``."""
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "api_app_id": APP_ID,
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(time.time()),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": BOT_USER_ID,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
    }


class SlackSender:
    """Posts signed requests to the app's Slack endpoint and returns (status, body text)."""

    def __init__(
        self,
        *,
        session: aiohttp.ClientSession,
        url: str,
        secret: str,
        fake: FakeSlack | None = None,
    ) -> None:
        self.session, self.url, self.secret, self.fake = session, url, secret, fake
        self._signed: set[tuple[int, str]] = set()

    def _fresh_timestamp(self, body: str) -> int:
        """Now, or a later second when this body already went out signed with it. Slack never sends the same
        signed bytes twice (a retry is re-signed later, a second click has its own action_ts), and the app
        refuses an exact copy as a replay; tests that mean to replay pass `timestamp=` themselves."""
        timestamp = int(time.time())
        while (timestamp, body) in self._signed:
            timestamp += 1
        self._signed.add((timestamp, body))
        return timestamp

    async def _post(
        self,
        body: str,
        content_type: str,
        *,
        secret: str | None = None,
        timestamp: int | None = None,
        extra_headers: dict[str, str] | None = None,
    ) -> tuple[int, str]:
        if timestamp is None:
            timestamp = self._fresh_timestamp(body)
        headers = sign_headers(body, secret or self.secret, timestamp=timestamp)
        headers["Content-Type"] = content_type
        headers.update(extra_headers or {})
        async with self.session.post(self.url, data=body.encode(), headers=headers) as resp:
            return resp.status, await resp.text()

    async def command(
        self,
        command: str,
        text: str = "",
        *,
        user_id: str = "U0ALICE",
        channel_id: str = "C0GENERAL",
        response_url: str | None = None,
        secret: str | None = None,
        timestamp: int | None = None,
        retry_num: int | None = None,
    ) -> tuple[int, str]:
        if response_url is None:
            response_url = self.fake.response_url() if self.fake else UNROUTABLE_RESPONSE_URL
        body = slash_command_form(
            command=command, text=text, user_id=user_id, response_url=response_url, channel_id=channel_id
        )
        retry = {"X-Slack-Retry-Num": str(retry_num)} if retry_num is not None else None
        return await self._post(
            body, "application/x-www-form-urlencoded", secret=secret, timestamp=timestamp, extra_headers=retry
        )

    async def interaction(self, payload: dict, **sign_kw: Any) -> tuple[int, str]:
        """block_actions / view_submission etc.; ``sign_kw``: secret=, timestamp=.

        A payload built without an explicit response_url gets one on the attached fake,
        so Bolt's respond() is observable instead of failing against the placeholder.
        """
        if self.fake is not None and payload.get("response_url") == UNROUTABLE_RESPONSE_URL:
            payload = {**payload, "response_url": self.fake.response_url()}
        body = urlencode({"payload": json.dumps(payload)})
        return await self._post(body, "application/x-www-form-urlencoded", **sign_kw)

    async def event(
        self,
        envelope: dict,
        *,
        retry_num: int | None = None,
        retry_reason: str | None = None,
        **sign_kw: Any,
    ) -> tuple[int, str]:
        headers = {}
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
        if retry_reason is not None:
            headers["X-Slack-Retry-Reason"] = retry_reason
        return await self._post(json.dumps(envelope), "application/json", extra_headers=headers, **sign_kw)
