"""The door in front of Bolt on `POST /slack/events`: only signed, fresh, first-seen, readable requests pass.

Bolt parses a body before it checks the signature, and logs a badly signed body whole: a malformed
unsigned body raised inside Bolt (a 500 and a traceback) and a big one filled the log. So here, before
anything reads the body as Slack's: the size is capped, the headers must have Slack's shape, the HMAC
is checked on the raw body (slack_sdk's SignatureVerifier), a signature already seen is refused
(handlers/web/replays.py), and only then is the body parsed, the way Bolt parses it, and its shape checked
(handlers/web/slack_shapes.py). Every refusal is
one short log line and a short answer, never the body: 401 unsigned, not UTF-8 or replayed, 413 too
big, 400 signed but unreadable. Bolt still checks the signature again: a second, cheap lock.

Socket Mode requests never come through HTTP and are not seen here.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.signature import SignatureVerifier

from handlers.slack.inflight import BUSY_TEXT, ListenerWork
from handlers.web.replays import ReplayCache
from handlers.web.slack_shapes import is_slack_shaped

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024  # Slack's payloads are far smaller; anything bigger is not Slack
# ASCII only: `int()` reads other digits too (`١٧٠٠`), and a signature of non-ASCII text makes
# hmac.compare_digest raise instead of answering False.
_TIMESTAMP = re.compile(r"[0-9]{1,12}", re.ASCII)
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}", re.ASCII)


@dataclass(frozen=True)
class Refusal:
    status: int
    reason: str  # short and fixed: it is both the answer and the log line, never anything the sender wrote


TOO_LARGE = Refusal(413, "request body too large")
UNSIGNED = Refusal(401, "missing or malformed signature headers")
BAD_SIGNATURE = Refusal(401, "invalid signature or stale timestamp")
REPLAYED = Refusal(401, "request already received")
NOT_UTF8 = Refusal(401, "request body is not UTF-8, so not signed by Slack")
UNREADABLE = Refusal(400, "request body is not a Slack payload")


class SlackGate:
    def __init__(self, *, signing_secret: str, replays: ReplayCache, max_body_bytes: int = MAX_BODY_BYTES):
        self.verifier = SignatureVerifier(signing_secret)
        self.replays = replays
        self.max_body_bytes = max_body_bytes

    async def admit(self, request: web.Request) -> AsyncBoltRequest | Refusal:
        """The request as Bolt reads it, or why it is refused."""
        if request.content_length is not None and request.content_length > self.max_body_bytes:
            return TOO_LARGE
        timestamp, signature = _one(request, "X-Slack-Request-Timestamp"), _one(request, "X-Slack-Signature")
        if not (_TIMESTAMP.fullmatch(timestamp) and _SIGNATURE.fullmatch(signature)):
            return UNSIGNED
        try:
            raw = await request.read()  # bounded by the web app's client_max_size too (chunked bodies)
        except web.HTTPRequestEntityTooLarge:
            return TOO_LARGE
        if len(raw) > self.max_body_bytes:
            return TOO_LARGE
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            # Slack sends UTF-8, and SignatureVerifier decodes the body before the HMAC (it would raise):
            # bytes that are not UTF-8 cannot be shown to be Slack's.
            return NOT_UTF8
        if not self.verifier.is_valid(body=text, timestamp=timestamp, signature=signature):
            return BAD_SIGNATURE
        if not await self.replays.first_time(timestamp=timestamp, signature=signature):
            return REPLAYED
        return parse(text, request)


def _one(request: web.Request, header: str) -> str:
    """The header's value, or "" when it is missing or sent twice (Bolt might read the other copy)."""
    values = request.headers.getall(header, [])
    return values[0] if len(values) == 1 else ""


def parse(text: str, request: web.Request) -> AsyncBoltRequest | Refusal:
    """What Bolt would make of the body (its own parser), refused if it is not one JSON object."""
    try:
        bolt_request = AsyncBoltRequest(body=text, query=request.query_string, headers=request.headers)  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001  Bolt's parser raises whatever json or a missing key raises
        return UNREADABLE
    body = bolt_request.body
    return bolt_request if isinstance(body, dict) and is_slack_shaped(body) else UNREADABLE


# Slack ignores it; load balancers, logs and bench/load.py can count what was shed.
SHED_HEADERS = {"X-Campaign-Manager-Busy": "1"}


def busy_now(request: AsyncBoltRequest) -> web.Response | None:
    """Under full load, the answer that needs no listener at all, or None.

    A slash command gets the busy text as its HTTP answer (Slack shows it to the person at once); a Home
    tab opening gets a bare 200 (the Home keeps what it showed). Shedding these before Bolt saves the
    parse, the listener task and the response_url call that a busy answer costs later, which under a
    burst is what keeps the acks fast. Buttons and forms still go to Bolt: they are told by the slot wait.
    """
    body = request.body
    if body.get("command"):
        return web.json_response({"response_type": "ephemeral", "text": BUSY_TEXT}, headers=SHED_HEADERS)
    event = body.get("event") if body.get("type") == "event_callback" else None
    if isinstance(event, dict) and event.get("type") == "app_home_opened":
        return web.Response(status=200, headers=SHED_HEADERS)
    return None


Dispatch = Callable[[AsyncBoltRequest], Awaitable[Any]]


def slack_endpoint(
    dispatch: Dispatch, gate: SlackGate, work: ListenerWork | None = None
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The aiohttp handler: the gate, load shedding when every listener slot is taken, then Bolt
    (`AsyncApp.async_dispatch`)."""

    async def handle(request: web.Request) -> web.Response:
        admitted = await gate.admit(request)
        if isinstance(admitted, Refusal):
            log.warning("refused a request to %s from %s: %s", request.path, request.remote, admitted.reason)
            return web.Response(status=admitted.status, text=admitted.reason)
        if work is not None and work.full() and (busy := busy_now(admitted)) is not None:
            work.note_busy()
            return busy
        return await to_aiohttp_response(await dispatch(admitted))

    return handle
