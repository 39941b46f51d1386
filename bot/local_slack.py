"""A stand-in for Slack on loopback, so the local console can run commands without a workspace.

It answers the few Web API methods the listeners call and keeps every message the app sends,
whether through the Web API or a command's response_url. It also knows channels by name, as Slack's
client does when it turns a typed `#spring-launch` into `<#C123|spring-launch>` before sending a command.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class SentMessage:
    via: str  # "response_url" or the Web API method
    payload: dict[str, Any]


def local_channel_id(name: str) -> str:
    """A Slack-shaped id for a channel named in the console: the same name gives the same id in every run,
    so a campaign's channel set today is still its channel tomorrow. Slack's channel names are lower case."""
    digest = base64.b32encode(hashlib.sha256(name.lower().encode()).digest()).decode()
    return "C" + digest[:10]


@dataclass
class LocalSlack:
    messages: list[SentMessage] = field(default_factory=list)
    channel_names: dict[str, str] = field(default_factory=dict)  # id -> name, for the channels named so far
    _runner: web.AppRunner | None = None
    _port: int = 0
    _ts: itertools.count = field(default_factory=lambda: itertools.count(1))

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self._port}/api/"

    @property
    def response_url(self) -> str:
        return f"http://127.0.0.1:{self._port}/response"

    def channel(self, name: str) -> str:
        """The id of the channel `#name` (remembered, so replies can show the name again)."""
        channel_id = local_channel_id(name)
        self.channel_names[channel_id] = name.lower()
        return channel_id

    async def start(self) -> LocalSlack:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/response", self._response)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _response(self, request: web.Request) -> web.Response:
        self.messages.append(SentMessage("response_url", await request.json()))
        return web.Response(text="ok")

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            args.update(await request.json())
        elif request.can_read_body:
            args.update(await request.post())
        return web.json_response(self._answer(method, args))

    def _answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {"ok": True, "user_id": "ULOCALBOT", "bot_id": "BLOCAL", "team_id": "TLOCAL", "team": "Local"}
        if method == "users.info":
            user = str(args.get("user", ""))
            return {"ok": True, "user": {"id": user, "name": user, "tz": "UTC", "profile": {"real_name": f"Local user {user}"}}}
        if method == "conversations.open":
            return {"ok": True, "channel": {"id": "D" + str(args.get("users", "LOCAL")).split(",")[0]}}
        if method.startswith(("chat.", "views.")):
            payload = {key: _decode(value) for key, value in args.items() if key != "token"}
            self.messages.append(SentMessage(method, payload))
            ts = f"1700000000.{next(self._ts):06d}"
            return {"ok": True, "channel": payload.get("channel", "CLOCAL"), "ts": ts, "message_ts": ts,
                    "view": {"id": "VLOCAL", "hash": ts}}
        return {"ok": False, "error": "unknown_method"}


def _decode(value: Any) -> Any:
    # Form-encoded calls carry blocks as a JSON string.
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
