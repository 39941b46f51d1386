"""Logging set-up: readable lines for people, one JSON object per line for log collectors.

Every line carries the id of the request or sweep that caused it (`request_id`, from
`handlers.request_ids`), in the web process and in the jobs it queued (`RequestIdMiddleware` carries the
id in the Dramatiq message). Filters sit on the handler, not on our loggers, so library records get them.

Secrets never reach the output. The first defence is at the source: our log calls name ids, never tokens
or message text, and the libraries that would print request and response bodies at DEBUG (the Slack SDK,
Bolt) are held at INFO. `Redactor` is the backstop: it blanks the configured secrets wherever they
appear, and anything shaped like a token (Slack's `xox…`, our `cm_…`, a dashboard link's path, `?token=`,
`?secret=`, a URL's password, a bearer credential), in the message, its extras and its traceback.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote, urlsplit

import dramatiq
from dramatiq.broker import Broker, MessageProxy
from dramatiq.message import Message
from pydantic import SecretStr

from bot.settings import Settings
from handlers import request_ids

# Attributes every LogRecord has; anything else was passed through `extra=` and belongs in the output.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}
REDACTED = "[redacted]"
MESSAGE_OPTION = "request_id"  # the Dramatiq message option that carries the id to the worker
# A configured secret shorter than this is not looked for: blanking every "dev" or "1234" would garble lines.
MIN_SECRET_LENGTH = 8

# Per-request chatter from libraries drowns our own lines at INFO.
_CHATTY = ("aiohttp.access", "slack_bolt.AsyncApp", "dramatiq", "alembic", "mcp", "httpx2", "httpcore2")
# These print request and response bodies or SQL parameters (message text, tokens) at DEBUG: never below INFO.
_BODY_PRINTING = ("slack_sdk", "slack_bolt", "aiosqlite")

_TOKEN_SHAPES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\bxox[a-z]-[A-Za-z0-9-]+"), REDACTED),  # Slack bot, user and config tokens
    (re.compile(r"\bxapp-[A-Za-z0-9-]+"), REDACTED),  # Slack app-level (Socket Mode) tokens
    (re.compile(r"\b(cm_[1-9][0-9]{0,9}_)[A-Za-z0-9_-]{20,}"), rf"\g<1>{REDACTED}"),  # our API tokens
    (re.compile(r"(/dashboard/)[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}"), rf"\g<1>{REDACTED}"),  # link tokens
    (re.compile(r"([?&;](?:token|secret|access_token|api_key|key|password|signature)=)[^&\s\"'<>]+", re.IGNORECASE),
     rf"\g<1>{REDACTED}"),
    (re.compile(r"\b([a-z][a-z0-9+.-]*://[^/\s:@\"']*:)[^@\s/\"']+@", re.IGNORECASE), rf"\g<1>{REDACTED}@"),
    (re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE), rf"\g<1> {REDACTED}"),
)


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to each record written while a request, a sweep or a job caused by one runs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            request_id = request_ids.current.get()
            if request_id is not None:
                record.request_id = request_id
        return True


class LibraryFloors(logging.Filter):
    """Drops library records below their floor. Logger levels alone do not hold: Bolt sets its loggers'
    levels to the root's when an app is built, which let its DEBUG lines (request bodies) through."""

    def __init__(self, floors: dict[str, int]):
        super().__init__()
        self.floors = floors

    def filter(self, record: logging.LogRecord) -> bool:
        name = record.name
        while True:
            floor = self.floors.get(name)
            if floor is not None:
                return record.levelno >= floor
            name, dot, _ = name.rpartition(".")
            if not dot:
                return True


class Redactor(logging.Filter):
    """Blanks `secrets` and token-shaped text in a record before any formatter sees it."""

    def __init__(self, secrets: Iterable[str] = ()):
        super().__init__()
        # Longest first, so a secret that contains another is blanked whole.
        self.secrets = sorted({value for value in secrets if len(value) >= MIN_SECRET_LENGTH}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        for pattern, replacement in _TOKEN_SHAPES:
            text = pattern.sub(replacement, text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: show it raw rather than lose the record
            message = f"{record.msg!r} {record.args!r}"
        record.msg, record.args = self.redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        for key, value in list(record.__dict__.items()):
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, self.redact(value))
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({key: value for key, value in record.__dict__.items() if key not in _STANDARD})
        if record.exc_info or record.exc_text:
            # The redactor leaves the traceback's text, already cleaned, in exc_text.
            entry["exception"] = record.exc_text or self.formatException(record.exc_info)  # type: ignore[arg-type]
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, default=str)


class RequestIdMiddleware(dramatiq.Middleware):
    """Carries the id of whatever queued a job into the message, and binds it while the job runs.

    `before_enqueue` runs in the sending thread (`Queue.enqueue`'s `asyncio.to_thread` copies the caller's
    context); `before_process_message` runs in the worker thread that then runs the actor, and the AsyncIO
    middleware's loop copies that thread's context into the job's task. A retry is re-enqueued with its
    options, so it keeps the id of the request that started it.
    """

    def before_enqueue(self, broker: Broker, message: Message[Any], delay: int) -> None:
        request_id = request_ids.current.get()
        if request_id is not None and MESSAGE_OPTION not in message.options:
            message.options[MESSAGE_OPTION] = request_id

    def before_process_message(self, broker: Broker, message: MessageProxy) -> None:
        request_ids.current.set(request_ids.accepted(message.options.get(MESSAGE_OPTION)))

    def after_process_message(self, broker: Broker, message: MessageProxy, *,
                              result: Any = None, exception: BaseException | None = None) -> None:
        request_ids.current.set(None)  # worker threads live on: the next job must not inherit this one's id

    def after_skip_message(self, broker: Broker, message: MessageProxy) -> None:
        request_ids.current.set(None)


def secrets_of(settings: Settings) -> list[str]:
    """The configured secrets the redactor blanks wherever they appear: every SecretStr setting (a new one
    is covered without a change here) and the passwords in the database, Redis and SMTP URLs."""
    found = [value.get_secret_value() for value in (getattr(settings, name) for name in type(settings).model_fields)
             if isinstance(value, SecretStr)]
    for url in (settings.database_url, settings.redis_url, settings.smtp_url):
        password = _url_password(url)
        if password:
            found.append(password)
    return found


def _url_password(url: str | None) -> str | None:
    if not url:
        return None
    try:
        password = urlsplit(url).password
    except ValueError:
        return None
    return unquote(password) if password else None


def configure_logging(level: str, fmt: str, *, secrets: Iterable[str] = ()) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S"))
    numeric = logging.getLevelName(level)
    floors = {name: max(logging.INFO, numeric) for name in _BODY_PRINTING}
    floors.update({name: max(logging.WARNING, numeric) for name in _CHATTY})
    for name, floor in floors.items():
        logging.getLogger(name).setLevel(floor)  # spares the libraries building lines that would be dropped
    handler.addFilter(LibraryFloors(floors))
    handler.addFilter(RequestIdFilter())
    handler.addFilter(Redactor(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
