"""`POST /webhooks/mailjet`: Mailjet's event webhook (sent, open, click, bounce, blocked, spam, unsub).

Mailjet signs nothing; its callback URL carries the secret instead (MAILJET_WEBHOOK_SECRET), as the
password of basic auth (`https://mailjet:SECRET@host/webhooks/mailjet`) or as `?secret=SECRET`, compared
in constant time. With no secret set the endpoint is off: 404, as if it did not exist.

A body (one event, or an array of them with "group events" on) is answered as soon as it is safe: the
size is capped (read in chunks, MAX_BODY_BYTES), its shape checked (`email_events.check_body`, off the
event loop when large), then it is stored whole as a pending batch in one short transaction, and only
after that commit comes the 200. A job then stores its events (`handlers.jobs.email_events`); a lost
hand-out, or no worker at all, leaves the batch to the sweep. Mailjet re-posts whatever did not get a
200, so a refusal must mean "never send this again" (400, 401, 413) or "later" (503 when the database
cannot take it). Each refusal is one short log line, never the body or an address.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import logging
from datetime import UTC, datetime

from aiohttp import web

from handlers.deps import Deps
from handlers.jobs.email_events import hand_out
from handlers.web import DEPS_KEY
from services import email_events, transactions

log = logging.getLogger(__name__)

PATH = "/webhooks/mailjet"
MAX_BODY_BYTES = 16 * 1024 * 1024  # a grouped post of tens of thousands of events; far above what Mailjet sends
CHUNK_BYTES = 64 * 1024
CHECK_INLINE_BYTES = 256 * 1024  # a larger body is parsed on a thread: the event loop serves others meanwhile


def register(web_app: web.Application) -> None:
    # Its own bounded read: the app-wide client_max_size (Slack's 1 MB) does not apply to this route.
    web_app.router.add_post(PATH, receive)


def _refused(status: int, error: str, detail: str, request: web.Request) -> web.Response:
    log.warning("mailjet webhook refused a post from %s: %d %s", request.remote, status, detail)
    headers = {"WWW-Authenticate": 'Basic realm="mailjet"'} if status == 401 else None
    return web.json_response({"error": error, "detail": detail}, status=status, headers=headers)


async def receive(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    secret = deps.settings.mailjet_webhook_secret
    expected = secret.get_secret_value() if secret is not None else ""
    if not expected.strip():
        raise web.HTTPNotFound()
    if not _presents(request, expected):
        return _refused(401, "unauthorized", "missing or wrong secret", request)
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        return _refused(413, "too_large", f"the body is over {MAX_BODY_BYTES // (1024 * 1024)} MB", request)
    raw = await _read_bounded(request, MAX_BODY_BYTES)
    if raw is None:
        return _refused(413, "too_large", f"the body is over {MAX_BODY_BYTES // (1024 * 1024)} MB", request)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return _refused(400, "malformed", "the body is not UTF-8", request)
    try:
        events = (email_events.check_body(text) if len(raw) <= CHECK_INLINE_BYTES
                  else await asyncio.to_thread(email_events.check_body, text))
    except email_events.MalformedBody as problem:
        return _refused(400, "malformed", str(problem), request)
    batch_id = await _store(deps, text, events)
    if batch_id is None:
        return web.json_response({"error": "unavailable", "detail": "could not store the events; send again later"},
                                 status=503)
    await _hand_over(deps, batch_id)
    return web.json_response({"batch": batch_id, "events": events})


def _presents(request: web.Request, expected: str) -> bool:
    """The secret as basic auth's password or as `?secret=`; either one, compared in constant time."""
    wanted = expected.encode("utf-8")
    offered: list[str] = []
    header = request.headers.getall("Authorization", [])
    password = _basic_password(header[0]) if len(header) == 1 else None
    if password is not None:
        offered.append(password)
    in_query = request.query.getall("secret", [])
    if len(in_query) == 1:
        offered.append(in_query[0])
    # Every offer is compared, so the time taken does not say which one was close.
    matches = [hmac.compare_digest(offer.encode("utf-8", "surrogatepass"), wanted) for offer in offered]
    return any(matches)


def _basic_password(header: str) -> str | None:
    """The password of `Basic base64(user:password)`; None for another scheme or what does not decode."""
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
        return None
    _, colon, password = decoded.partition(":")
    return password if colon else None


async def _read_bounded(request: web.Request, limit: int) -> bytes | None:
    """The body, or None once it passes `limit` bytes (a chunked body has no Content-Length to check)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(CHUNK_BYTES):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def _store(deps: Deps, body: str, events: int) -> int | None:
    """The new batch's id once committed; None when the database cannot take it now."""

    async def once() -> int:
        async with deps.sessions.begin() as db:
            return await email_events.store_batch(db=db, body=body, events=events, now=datetime.now(UTC))

    try:
        return await transactions.retrying(once)
    except Exception as error:  # the database away or full: Mailjet posts it again later
        log.warning("mailjet webhook could not store a batch of %d events: %s", events, type(error).__name__)
        return None


async def _hand_over(deps: Deps, batch_id: int) -> None:
    queue = deps.queue
    if queue is None or not queue.has_consumer:
        return  # no worker in this process: the sweep hands the batch out
    try:
        await hand_out(queue, [batch_id])
    except Exception:  # the batch stays pending: the sweep hands it out
        log.warning("could not hand email event batch %d to the queue; the sweep will", batch_id, exc_info=True)
