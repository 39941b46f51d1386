"""A fake Slack Web API served by a real aiohttp server on 127.0.0.1.

The point is to exercise the *real* ``slack_sdk`` clients and Bolt's ``respond()``
over real HTTP, so request encoding (GET query / form / JSON), auth headers,
retries and error handling are all tested as they happen in production.
Responses mimic the shapes documented for each Slack method; only the fields
our bot plausibly reads are filled in.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import secrets
import socket
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web
from slack_sdk.models.basic_objects import JsonObject
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

TEAM_ID, TEAM_NAME, TEAM_DOMAIN = "T0TEST", "Test Team", "test-team"
BOT_USER_ID, BOT_USER_NAME, BOT_ID, APP_ID = "UBOT", "campaign-manager", "BBOT", "A0TEST"
MESSAGE_BLOCK_LIMIT, VIEW_BLOCK_LIMIT = 50, 100
MESSAGE_TEXT_LIMIT = 40_000
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
    http_method: str = "POST"
    response: Any = None  # what the fake answered: dict for API calls, str for response_url


@dataclass
class _Failure:
    error: str | None
    status: int | None
    retry_after: int | None


class _ApiError(Exception):
    """Raised by method handlers; becomes {"ok": false, "error": ...}."""

    def __init__(self, error: str, messages: list[str] | None = None) -> None:
        super().__init__(error)
        self.error, self.messages = error, messages or []


# ---------------------------------------------------------------- validation


def _deep_validate(obj: Any) -> None:
    # JsonObject.validate_json() is shallow (a button's 75-char text limit is only
    # checked on the element itself), so walk nested model objects too.
    if isinstance(obj, JsonObject):
        obj.validate_json()
        for value in vars(obj).values():
            _deep_validate(value)
    elif isinstance(obj, list | tuple):
        for item in obj:
            _deep_validate(item)


def _block_problem(raw: Any) -> str | None:
    if not isinstance(raw, dict):
        return "block must be an object"
    if raw.get("type") == "header" and (raw.get("text") or {}).get("type") != "plain_text":
        return "header text must be plain_text"  # slack_sdk accepts mrkdwn here; Slack doesn't
    try:
        block = Block.parse(raw)
        if block is None:  # slack_sdk returns None (with a warning) for unknown types
            return f"unsupported block type {raw.get('type')!r}"
        _deep_validate(block)
    except Exception as exc:  # any parse crash means Slack would refuse it too
        return str(exc) or type(exc).__name__
    return None


def block_problems(blocks: Any, limit: int, pointer: str = "/blocks") -> list[str]:
    """Slack-style "[ERROR] reason [json-pointer:...]" messages; empty when valid."""
    if not isinstance(blocks, list):
        return [f"[ERROR] must be an array [json-pointer:{pointer}]"]
    if len(blocks) > limit:
        return [f"[ERROR] no more than {limit} items allowed [json-pointer:{pointer}]"]
    problems = []
    for i, raw in enumerate(blocks):
        if reason := _block_problem(raw):
            problems.append(f"[ERROR] {reason} [json-pointer:{pointer}/{i}]")
    ids = [b.get("block_id") for b in blocks if isinstance(b, dict) and b.get("block_id")]
    if len(ids) != len(set(ids)):
        problems.append(f"[ERROR] duplicate block_id [json-pointer:{pointer}]")
    return problems


def view_problems(view: Any) -> list[str]:
    if not isinstance(view, dict):
        return ["[ERROR] view must be an object [json-pointer:/view]"]
    problems = block_problems(view.get("blocks", []), VIEW_BLOCK_LIMIT, "/view/blocks")
    if view.get("type") == "modal" and not view.get("title"):
        problems.append("[ERROR] missing required field: title [json-pointer:/view]")
    try:  # View covers type, title/submit/close <= 24 chars, private_metadata, callback_id
        View(**view).validate_json()
    except Exception as exc:
        problems.append(f"[ERROR] {exc} [json-pointer:/view]")
    return problems


# ---------------------------------------------------------------- the fake


def _stable_id(prefix: str, *parts: str) -> str:
    digest = hashlib.sha1("|".join(sorted(parts)).encode()).hexdigest()
    return prefix + digest[:10].upper()


def _tz_offset(tz: str) -> tuple[int, str]:
    try:
        now = datetime.now(ZoneInfo(tz))
    except (ZoneInfoNotFoundError, ValueError):
        return 0, "UTC"
    return int(now.utcoffset().total_seconds()), now.tzname() or tz


class FakeSlack:
    """In-process Slack Web API + response_url endpoint. Use as ``async with FakeSlack() as fake``."""

    def __init__(self, *, validate_blocks: bool = True) -> None:
        self.validate_blocks = validate_blocks
        self.calls: list[Call] = []
        self.users: dict[str, dict] = {}
        self.messages: dict[tuple[str, str], dict] = {}  # (channel, ts) -> message
        self.views: dict[str, dict] = {}  # view id -> current view (modals and home tabs)
        self.home_views: dict[str, str] = {}  # user id -> view id of their published home
        self._failures: dict[str, deque[_Failure]] = {}
        self._seq = itertools.count(1)
        self._cond = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._origin = ""
        self.add_user(BOT_USER_ID, name=BOT_USER_NAME, real_name="Campaign Manager")
        self.users[BOT_USER_ID]["is_bot"] = True

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> FakeSlack:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_post("/response/{url_id}", self._handle_response_url)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        # Bind the socket ourselves so the OS-chosen port is known without private attributes.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        await web.SockSite(self._runner, sock).start()
        self._origin = f"http://127.0.0.1:{sock.getsockname()[1]}"
        return self

    async def stop(self) -> None:
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
        timeout: float = 5.0,  # noqa: ASYNC109 - part of the public interface other tests use
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

    def reset(self) -> None:
        """Forget calls and pending failures; users, messages and views stay."""
        self.calls.clear()
        self._failures.clear()

    # ------------------------------------------------------------ HTTP plumbing

    async def _record(self, call: Call) -> None:
        self.calls.append(call)
        async with self._cond:
            self._cond.notify_all()

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
        if failure := self._pop_failure(method):
            call.injected = True
            response, call.response = self._failure_response(failure, api=True)
        else:
            call.response = self._dispatch(method, token, args)
            response = web.json_response(call.response)
        await self._record(call)
        return response

    def _dispatch(self, method: str, token: str | None, args: dict) -> dict:
        handler = self._handlers().get(method)
        try:
            if handler is None:
                raise _ApiError("unknown_method")
            if not token:
                raise _ApiError("not_authed")
            if not token.startswith("xox"):
                raise _ApiError("invalid_auth")
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

    # ------------------------------------------------------------ Slack methods

    def _handlers(self) -> dict[str, Callable[[dict], dict]]:
        return {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.update": self._chat_update,
            "views.open": self._views_open,
            "views.push": self._views_open,
            "views.update": self._views_update,
            "views.publish": self._views_publish,
            "users.info": self._users_info,
            "conversations.open": self._conversations_open,
        }

    @staticmethod
    def _require(args: dict, key: str, error: str = "invalid_arguments") -> Any:
        if not args.get(key):  # Slack only explains itself for invalid_arguments
            detail = [f"[ERROR] missing required field: {key}"] if error == "invalid_arguments" else None
            raise _ApiError(error, detail)
        return args[key]

    def _next_ts(self) -> str:
        micros = next(self._seq) * 100  # "1700000000.000100", "1700000000.000200", ...
        return f"{1700000000 + micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _check_message(self, args: dict, *, need_content: bool = True) -> None:
        if need_content and not (args.get("text") or args.get("blocks") or args.get("attachments")):
            raise _ApiError("no_text")
        if len(str(args.get("text") or "")) > MESSAGE_TEXT_LIMIT:
            raise _ApiError("msg_too_long")
        blocks = args.get("blocks")
        if (
            self.validate_blocks
            and blocks is not None
            and (problems := block_problems(blocks, MESSAGE_BLOCK_LIMIT))
        ):
            raise _ApiError("invalid_blocks", problems)

    def _check_view(self, args: dict) -> None:
        view = self._require(args, "view")
        if self.validate_blocks and (problems := view_problems(view)):
            raise _ApiError("invalid_arguments", problems)

    def _auth_test(self, args: dict) -> dict:
        return {
            "url": f"https://{TEAM_DOMAIN}.slack.com/", "team": TEAM_NAME, "user": BOT_USER_NAME,
            "team_id": TEAM_ID, "user_id": BOT_USER_ID, "bot_id": BOT_ID, "is_enterprise_install": False,
        }  # fmt: skip

    def _chat_post_message(self, args: dict) -> dict:
        channel = self._require(args, "channel", "channel_not_found")
        self._check_message(args)
        if channel[0] in "UW":  # posting to a user id lands in the bot's DM with them
            channel = _stable_id("D", channel)
        ts = self._next_ts()
        message = {"type": "message", "text": args.get("text", ""), "user": BOT_USER_ID,
                   "bot_id": BOT_ID, "app_id": APP_ID, "team": TEAM_ID, "ts": ts}  # fmt: skip
        for key in ("blocks", "attachments", "thread_ts", "metadata"):
            if key in args:
                message[key] = args[key]
        self.messages[(channel, ts)] = message
        return {"channel": channel, "ts": ts, "message": message}

    def _chat_post_ephemeral(self, args: dict) -> dict:
        self._require(args, "channel", "channel_not_found")
        self._require(args, "user")
        self._check_message(args)
        return {"message_ts": self._next_ts()}

    def _chat_update(self, args: dict) -> dict:
        channel, ts = args.get("channel"), args.get("ts")
        if not channel or channel[0] in "UW":  # Slack wants the D... id here, not a user id
            raise _ApiError("channel_not_found")
        message = self.messages.get((channel, str(ts)))
        if message is None:
            raise _ApiError("message_not_found")
        self._check_message(args, need_content=False)
        for key in ("text", "blocks", "attachments", "metadata"):
            if key in args:
                message[key] = args[key]
        return {"channel": channel, "ts": ts, "text": message.get("text", ""), "message": message}

    def _store_view(self, view: dict, view_id: str, **extra: Any) -> dict:
        n = next(self._seq)
        stored = {
            "callback_id": "", "private_metadata": "", "external_id": "", "blocks": [],
            **view,
            "id": view_id, "team_id": TEAM_ID, "app_id": APP_ID, "bot_id": BOT_ID,
            "state": {"values": {}}, "hash": f"{1700000000 + n}.{n:08x}", **extra,
        }  # fmt: skip
        self.views[view_id] = stored
        return stored

    def _views_open(self, args: dict) -> dict:
        if not (args.get("trigger_id") or args.get("interactivity_pointer")):
            raise _ApiError("invalid_arguments", ["[ERROR] missing required field: trigger_id"])
        self._check_view(args)
        view_id = _stable_id("V", "view", str(next(self._seq)))
        return {"view": self._store_view(args["view"], view_id, root_view_id=view_id)}

    def _views_update(self, args: dict) -> dict:
        view_id, external_id = args.get("view_id"), args.get("external_id")
        if not (view_id or external_id):
            raise _ApiError("invalid_arguments", ["[ERROR] view_id or external_id is required"])
        by_external = (v for v in self.views.values() if v.get("external_id") == external_id)
        current = self.views.get(view_id) if view_id else next(by_external, None)
        if current is None:
            raise _ApiError("not_found")
        if args.get("hash") and args["hash"] != current["hash"]:
            raise _ApiError("hash_conflict")
        self._check_view(args)
        keep = {k: current[k] for k in ("root_view_id",) if k in current}
        return {"view": self._store_view(args["view"], current["id"], **keep)}

    def _views_publish(self, args: dict) -> dict:
        user_id = self._require(args, "user_id")
        self._check_view(args)
        if args["view"].get("type") != "home":
            raise _ApiError("invalid_arguments", ["[ERROR] view type must be home [json-pointer:/view/type]"])
        view_id = self.home_views.setdefault(user_id, _stable_id("V", "home", user_id))
        current = self.views.get(view_id)
        if current and args.get("hash") and args["hash"] != current["hash"]:
            raise _ApiError("hash_conflict")
        return {"view": self._store_view(args["view"], view_id)}

    def _users_info(self, args: dict) -> dict:
        if (user := self.users.get(args.get("user", ""))) is None:
            raise _ApiError("user_not_found")
        return {"user": user}

    def _conversations_open(self, args: dict) -> dict:
        if args.get("channel"):
            return {"channel": {"id": args["channel"]}, "no_op": True, "already_open": True}
        users = [u.strip() for u in str(args.get("users") or "").split(",") if u.strip()]
        if not users:
            raise _ApiError("users_list_not_supplied")
        channel_id = _stable_id("D", users[0]) if len(users) == 1 else _stable_id("G", *users)
        return {"channel": {"id": channel_id}}
