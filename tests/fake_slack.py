"""A fake Slack Web API served by a real aiohttp server on 127.0.0.1.

The point is to exercise the *real* ``slack_sdk`` clients and Bolt's ``respond()``
over real HTTP, so request encoding (GET query / form / JSON), auth headers,
retries and error handling are all tested as they happen in production.
Responses mimic the shapes documented for each Slack method; only the fields
our bot plausibly reads are filled in.

Socket Mode: ``apps.connections.open`` (app-level ``xapp-`` token) hands out a ``ws://`` URL on
the same server; a client that connects gets Slack's ``hello``, tests push envelopes with
``socket_send`` and read the client's acks back as ``socket_mode.ack`` calls.

Block Kit / view validation and the per-method answers live in ``tests.fake_slack_blocks``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import secrets
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import WSCloseCode, WSMsgType, web

from tests.fake_slack_blocks import (
    APP_ID,
    BOT_ID,
    BOT_USER_ID,
    BOT_USER_NAME,
    MESSAGE_BLOCK_LIMIT,
    MESSAGE_TEXT_LIMIT,
    TEAM_DOMAIN,
    TEAM_ID,
    TEAM_NAME,
    VIEW_BLOCK_LIMIT,
    SlackMethods,
    _ApiError,
    block_problems,
    view_problems,
)

# Re-exported so tests can keep importing them from here.
__all__ = [
    "APP_ID", "BOT_ID", "BOT_USER_ID", "BOT_USER_NAME", "MESSAGE_BLOCK_LIMIT", "MESSAGE_TEXT_LIMIT",
    "TEAM_DOMAIN", "TEAM_ID", "TEAM_NAME", "VIEW_BLOCK_LIMIT", "Call", "FakeSlack", "block_problems",
    "view_problems",
]  # fmt: skip

# Only these take the app-level (xapp-) token; every other method refuses it.
APP_TOKEN_METHODS = frozenset({"apps.connections.open"})
SOCKET_PATH = "/socket-mode"
SOCKET_ACK = "socket_mode.ack"  # method name of the Calls that record Socket Mode acks

# Form-encoded requests carry these as JSON strings; decode them so tests see structures.
JSON_FIELDS = frozenset({"blocks", "attachments", "view", "metadata", "unfurls", "user_auth_blocks"})


@dataclass
class Call:
    """One request the fake received (API method or response_url post)."""

    method: str
    args: dict
    headers: dict
    url_id: str | None = None
    injected: bool = False  # answered by a fail_next() injection
    http_method: str = "POST"  # "WS" for socket_mode.ack, whose args are the client's ack message
    response: Any = None  # what the fake answered: dict for API calls, str for response_url
    at: float = field(default_factory=time.monotonic)  # when it arrived


@dataclass
class _Failure:
    error: str | None
    status: int | None
    retry_after: int | None


def _tz_offset(tz: str) -> tuple[int, str]:
    try:
        now = datetime.now(ZoneInfo(tz))
    except (ZoneInfoNotFoundError, ValueError):
        return 0, "UTC"
    return int(now.utcoffset().total_seconds()), now.tzname() or tz


class FakeSlack(SlackMethods):
    """In-process Slack Web API + response_url endpoint. Use as ``async with FakeSlack() as fake``."""

    def __init__(self, *, validate_blocks: bool = True) -> None:
        self.validate_blocks = validate_blocks
        self.calls: list[Call] = []
        self.users: dict[str, dict] = {}
        self.messages: dict[tuple[str, str], dict] = {}  # (channel, ts) -> message
        self.views: dict[str, dict] = {}  # view id -> current view (modals and home tabs)
        self.home_views: dict[str, str] = {}  # user id -> view id of their published home
        self._failures: dict[str, deque[_Failure]] = {}
        self._holds: dict[str, deque[float]] = {}  # method -> seconds the next calls hang before answering
        self.held: list[Call] = []  # calls that hung and whose client had gone when they would have run
        self.holding: list[Call] = []  # calls hanging right now
        self._seq = itertools.count(1)
        self._cond = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._origin = ""
        self._sockets: list[web.WebSocketResponse] = []  # open Socket Mode connections, oldest first
        self._tickets: set[str] = set()  # issued by apps.connections.open
        self.add_user(BOT_USER_ID, name=BOT_USER_NAME, real_name="Campaign Manager")
        self.users[BOT_USER_ID]["is_bot"] = True

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> FakeSlack:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_post("/response/{url_id}", self._handle_response_url)
        app.router.add_get(SOCKET_PATH, self._handle_socket)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        # Bind the socket ourselves so the OS-chosen port is known without private attributes.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        await web.SockSite(self._runner, sock).start()
        self._origin = f"http://127.0.0.1:{sock.getsockname()[1]}"
        return self

    async def stop(self) -> None:
        for ws in list(self._sockets):  # or the runner's cleanup waits for the handlers to end
            await ws.close(code=WSCloseCode.GOING_AWAY)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeSlack:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        if not self._origin:
            raise RuntimeError("FakeSlack not started")
        return f"{self._origin}/api/"

    def response_url(self, url_id: str | None = None) -> str:
        if not self._origin:
            raise RuntimeError("FakeSlack not started")
        return f"{self._origin}/response/{url_id or secrets.token_hex(8)}"

    # ------------------------------------------------------------ test controls

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    async def wait_for(
        self,
        method: str,
        predicate: Callable[[Call], bool] | None = None,
        *,
        # A wait for something that must happen: generous, so a machine under load is slow, not red.
        timeout: float = 20.0,  # noqa: ASYNC109 - part of the public interface other tests use
        count: int = 1,
    ) -> Call:
        """Wait until ``count`` calls match (injected ones included); return the last match."""

        def matching() -> list[Call]:
            return [c for c in self.calls_to(method) if predicate is None or predicate(c)]

        try:
            async with asyncio.timeout(timeout), self._cond:
                await self._cond.wait_for(lambda: len(matching()) >= count)
        except TimeoutError:
            seen = "\n  ".join(f"{c.method} {c.args!r}" for c in self.calls) or "(none)"
            raise AssertionError(
                f"timed out after {timeout}s waiting for {count} x {method} "
                f"(matched {len(matching())}); calls seen:\n  {seen}"
            ) from None
        return matching()[-1]

    async def wait_until(self, ready: Callable[[], bool], *, what: str, timeout: float = 20.0) -> None:  # noqa: ASYNC109
        """Wait until `ready()` holds, checked again after every call the fake receives."""
        await self._wait_until(ready, timeout, what)

    def add_user(
        self,
        user_id: str,
        *,
        name: str | None = None,
        real_name: str | None = None,
        email: str | None = None,
        tz: str = "America/New_York",
        deleted: bool = False,
    ) -> None:
        name = name or user_id.lower()
        real_name = real_name or name
        offset, label = _tz_offset(tz)
        profile = {
            "real_name": real_name, "real_name_normalized": real_name, "display_name": name,
            "display_name_normalized": name, "image_72": f"https://avatars.example.com/{user_id}_72.png",
            "team": TEAM_ID, **({"email": email} if email is not None else {}),
        }  # fmt: skip
        self.users[user_id] = {
            "id": user_id, "team_id": TEAM_ID, "name": name, "real_name": real_name,
            "deleted": deleted, "tz": tz, "tz_label": label, "tz_offset": offset,
            "is_bot": False, "is_app_user": False, "is_admin": False, "is_owner": False,
            "updated": 1700000000, "profile": profile,
        }  # fmt: skip

    def fail_next(
        self,
        method: str,
        *,
        error: str | None = None,
        status: int | None = None,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """Queue a failure for the next ``times`` calls of ``method`` (may be "response_url")."""
        if error is None and status is None:
            raise ValueError("fail_next needs error= or status=")
        if status == 429 and retry_after is None:
            retry_after = 1
        self._failures.setdefault(method, deque()).extend(
            _Failure(error, status, retry_after) for _ in range(times)
        )

    def hold_next(self, method: str, *, seconds: float, times: int = 1) -> None:
        """Make the next ``times`` calls of ``method`` hang for ``seconds`` before Slack acts on them.

        A caller that disconnects meanwhile (a killed worker) leaves the call undone, as Slack would:
        it is recorded in ``held``, not in ``calls``.
        """
        self._holds.setdefault(method, deque()).extend([seconds] * times)

    # ------------------------------------------------------------ Socket Mode controls

    async def wait_for_socket_connection(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until a Socket Mode client is connected (and has been sent ``hello``)."""
        await self._wait_until(lambda: bool(self._sockets), timeout, "a Socket Mode connection")

    async def wait_for_socket_close(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until every Socket Mode connection is closed."""
        await self._wait_until(lambda: not self._sockets, timeout, "all Socket Mode connections to close")

    async def socket_send(self, envelope: dict) -> str:
        """Push an envelope to the newest connection, as Slack does; returns its envelope_id."""
        if not envelope.get("envelope_id"):
            raise ValueError("a Socket Mode envelope needs an envelope_id")
        if not self._sockets:
            raise AssertionError("no Socket Mode connection to send to")
        await self._sockets[-1].send_json(envelope)
        return str(envelope["envelope_id"])

    async def wait_for_socket_ack(self, envelope_id: str, timeout: float = 5.0) -> dict:  # noqa: ASYNC109
        """The client's ack, ``{"envelope_id": ..., "payload": ...}`` (payload only when it sent one)."""
        call = await self.wait_for(SOCKET_ACK, lambda c: c.args.get("envelope_id") == envelope_id, timeout=timeout)
        return call.args

    def reset(self) -> None:
        """Forget calls and pending failures; users, messages and views stay."""
        self.calls.clear()
        self._failures.clear()

    # ------------------------------------------------------------ HTTP plumbing

    async def _record(self, call: Call) -> None:
        self.calls.append(call)
        await self._notify()

    async def _notify(self) -> None:
        async with self._cond:
            self._cond.notify_all()

    async def _wait_until(self, ready: Callable[[], bool], timeout: float, what: str) -> None:  # noqa: ASYNC109
        try:
            async with asyncio.timeout(timeout), self._cond:
                await self._cond.wait_for(ready)
        except TimeoutError:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}") from None

    @staticmethod
    async def _request_args(request: web.Request) -> dict:
        args: dict[str, Any] = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            if request.content_type == "application/json":
                args.update(await request.json())
            else:
                args.update(await request.post())
        for key in JSON_FIELDS & args.keys():
            if isinstance(args[key], str):
                # leave undecodable values as-is; validation then refuses them like Slack would
                with contextlib.suppress(ValueError):
                    args[key] = json.loads(args[key])
        return args

    def _pop_failure(self, method: str) -> _Failure | None:
        queue = self._failures.get(method)
        return queue.popleft() if queue else None

    @staticmethod
    def _failure_response(failure: _Failure, *, api: bool) -> tuple[web.Response, Any]:
        headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
        if failure.status == 429 or (api and failure.status in (None, 200)):
            body = {"ok": False, "error": "ratelimited" if failure.status == 429 else failure.error}
            return web.json_response(body, status=failure.status or 200, headers=headers), body
        # 5xx answers are plain text; response_url errors are plain text too (404 "expired_url")
        text = failure.error or f"{failure.status} Server Error"
        return web.Response(text=text, status=failure.status or 404, headers=headers), text

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args = await self._request_args(request)
        token = args.pop("token", None)
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            token = auth.removeprefix("Bearer ")
        call = Call(method, args, dict(request.headers), http_method=request.method)
        if holds := self._holds.get(method):
            self.holding.append(call)
            await self._notify()  # a test may wait for the call to be hanging
            gone = await self._held_until_gone(request, holds.popleft())
            self.holding.remove(call)
            if gone:
                self.held.append(call)
                return web.Response(status=499, text="client went away")
        if failure := self._pop_failure(method):
            call.injected = True
            response, call.response = self._failure_response(failure, api=True)
        else:
            call.response = self._dispatch(method, token, args)
            response = web.json_response(call.response)
        await self._record(call)
        return response

    @staticmethod
    async def _held_until_gone(request: web.Request, seconds: float) -> bool:
        """Hang for ``seconds``; True when the client disconnected meanwhile."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if request.transport is None or request.transport.is_closing():
                return True
            await asyncio.sleep(0.05)
        return request.transport is None or request.transport.is_closing()

    def _dispatch(self, method: str, token: str | None, args: dict) -> dict:
        handler = self._handlers().get(method)
        try:
            if handler is None:
                raise _ApiError("unknown_method")
            if not token:
                raise _ApiError("not_authed")
            if not token.startswith(("xox", "xapp-")):
                raise _ApiError("invalid_auth")
            if token.startswith("xapp-") != (method in APP_TOKEN_METHODS):
                raise _ApiError("not_allowed_token_type")
            return {"ok": True, **handler(args)}
        except _ApiError as exc:
            body: dict[str, Any] = {"ok": False, "error": exc.error}
            if exc.messages:
                body["response_metadata"] = {"messages": exc.messages}
            return body

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        url_id = request.match_info["url_id"]
        raw = await request.text()
        try:
            body = json.loads(raw)  # Bolt / AsyncWebhookClient always send a JSON body
        except ValueError:
            body = {"_raw": raw}
        call = Call("response_url", body, dict(request.headers), url_id=url_id)
        if failure := self._pop_failure("response_url"):
            call.injected = True
            response, call.response = self._failure_response(failure, api=False)
        else:
            call.response = self._response_url_verdict(body)
            response = web.Response(text=call.response, status=200 if call.response == "ok" else 400)
        await self._record(call)
        return response

    def _response_url_verdict(self, body: Any) -> str:
        if not isinstance(body, dict) or "_raw" in body:
            return "invalid_payload"
        if self.validate_blocks and block_problems(body.get("blocks", []), MESSAGE_BLOCK_LIMIT):
            return "invalid_blocks"
        return "ok"

    # ------------------------------------------------------------ Socket Mode plumbing

    def _new_socket_url(self) -> str:
        ticket = secrets.token_hex(8)
        self._tickets.add(ticket)
        return f"{self._origin.replace('http://', 'ws://')}{SOCKET_PATH}?ticket={ticket}&app_id={APP_ID}"

    def _hello(self) -> dict:
        # The first message on every connection, shaped like Slack's (docs: "Using Socket Mode").
        return {
            "type": "hello", "num_connections": len(self._sockets),
            "debug_info": {"host": "applink-fake", "build_number": 1, "approximate_connection_time": 18060},
            "connection_info": {"app_id": APP_ID},
        }  # fmt: skip

    async def _handle_socket(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("ticket") not in self._tickets:
            return web.Response(status=401, text="invalid_ticket")
        ws = web.WebSocketResponse()  # answers the client's pings with pongs by itself
        await ws.prepare(request)
        self._sockets.append(ws)
        try:
            await ws.send_json(self._hello())
            await self._notify()
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    await self._record_socket_reply(message.data)
        finally:
            self._sockets.remove(ws)
            await self._notify()
        return ws

    async def _record_socket_reply(self, raw: str) -> None:
        try:
            body = json.loads(raw)
        except ValueError:
            body = {"_raw": raw}
        await self._record(Call(SOCKET_ACK, body if isinstance(body, dict) else {"_raw": raw}, {}, http_method="WS"))
