"""Block Kit / view validation and the per-method answers of the fake Slack Web API.

``tests.fake_slack`` runs the HTTP server, records calls and injects failures;
this module decides what Slack would say. ``block_problems`` and ``view_problems``
refuse payloads Slack refuses, with Slack-style ``[ERROR] ... [json-pointer:...]``
messages, and ``SlackMethods`` is the mixin that gives ``FakeSlack`` one answer
function per Web API method, shaped like the documented responses.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from typing import Any

from slack_sdk.models.basic_objects import JsonObject
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

TEAM_ID, TEAM_NAME, TEAM_DOMAIN = "T0TEST", "Test Team", "test-team"
BOT_USER_ID, BOT_USER_NAME, BOT_ID, APP_ID = "UBOT", "campaign-manager", "BBOT", "A0TEST"
MESSAGE_BLOCK_LIMIT, VIEW_BLOCK_LIMIT = 50, 100
MESSAGE_TEXT_LIMIT = 40_000


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


# ---------------------------------------------------------------- Slack methods


def _stable_id(prefix: str, *parts: str) -> str:
    digest = hashlib.sha1("|".join(sorted(parts)).encode()).hexdigest()
    return prefix + digest[:10].upper()


class SlackMethods:
    """The Web API methods ``FakeSlack`` answers: a mixin over the state its ``__init__`` sets up."""

    validate_blocks: bool
    users: dict[str, dict]
    messages: dict[tuple[str, str], dict]
    views: dict[str, dict]
    home_views: dict[str, str]
    _seq: Iterator[int]
    _new_socket_url: Callable[[], str]  # FakeSlack serves the Socket Mode websocket itself

    def _handlers(self) -> dict[str, Callable[[dict], dict]]:
        return {
            "auth.test": self._auth_test,
            "apps.connections.open": self._apps_connections_open,
            "chat.postMessage": self._chat_post_message,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.update": self._chat_update,
            "chat.getPermalink": self._chat_get_permalink,
            "chat.unfurl": self._chat_unfurl,
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

    def _apps_connections_open(self, args: dict) -> dict:
        # Slack: {"ok": true, "url": "wss://wss-primary.slack.com/link/?ticket=...&app_id=..."}
        return {"url": self._new_socket_url()}

    def _chat_unfurl(self, args: dict) -> dict:
        """Slack wants (channel, ts) or (unfurl_id, source), and `unfurls`: a URL -> {blocks} object."""
        if not ((args.get("channel") and args.get("ts")) or (args.get("unfurl_id") and args.get("source"))):
            raise _ApiError("invalid_arguments", ["[ERROR] channel and ts, or unfurl_id and source, are required"])
        unfurls = args.get("unfurls")
        if not isinstance(unfurls, dict) or not unfurls:
            raise _ApiError("invalid_unfurls")
        for card in unfurls.values():
            blocks = card.get("blocks") if isinstance(card, dict) else None
            if self.validate_blocks and (blocks is None or (problems := block_problems(blocks, MESSAGE_BLOCK_LIMIT))):
                raise _ApiError("invalid_blocks", problems if blocks is not None else None)
        return {}

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

    def _chat_get_permalink(self, args: dict) -> dict:
        # Slack: {"ok": true, "channel": "C1", "permalink": "https://<team>.slack.com/archives/C1/p1700000000000100"}
        channel = self._require(args, "channel", "channel_not_found")
        ts = self._require(args, "message_ts", "message_not_found")
        return {"channel": channel,
                "permalink": f"https://{TEAM_DOMAIN}.slack.com/archives/{channel}/p{str(ts).replace('.', '')}"}

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
