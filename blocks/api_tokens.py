"""What `/api token …` and `/api webhook …` show: a new token or webhook secret (once), the admins' lists,
a revoked token, a removed webhook, the usage."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from blocks.help import when
from blocks.text import context, escape, fit_escaped, header, message, section, user_mention
from models import ApiToken, Webhook
from services.api_tokens import IssuedToken
from services.webhooks import RegisteredWebhook

USAGE = [
    ('`/api token new "CRM sync" scope=read|write [as=@someone]`',
     "a token for an integration, acting as you or as @someone (admins)"),
    ("`/api token list`", "every token: whom it acts as, its scope, when it was last used"),
    ("`/api token revoke 12`", "end token 12 at once (its number, or paste the token)"),
    ("`/api webhook add https://example.com/hooks events=campaign.launched,task.done,approval.decided`",
     "post those events, signed, to that URL"),
    ("`/api webhook list`", "every webhook, with its last delivery's status"),
    ("`/api webhook remove 3`", "stop webhook 3"),
]
URL_SHOWN = 120
LABEL_SHOWN = 80
_SCOPE_WORDS = {"read": "read only", "write": "read and write"}


def api_help(note: str | None = None) -> dict[str, Any]:
    """`note` is already escaped."""
    lines = "\n".join(f"{usage} · {what}" for usage, what in USAGE)
    blocks = [section(f"{note}\n\n{lines}" if note else lines),
              context("API tokens are for admins. A token acts as one member and can only ever do what they can.")]
    return message(note or "How to use /api", blocks)


def token_issued(issued: IssuedToken) -> dict[str, Any]:
    """The one time a token is shown: the text to copy, and why to keep it secret."""
    label = fit_escaped(issued.label, LABEL_SHOWN)
    scope = _SCOPE_WORDS.get(issued.scope, escape(issued.scope))
    who = user_mention(issued.acting_as)
    text = f"New API token {issued.token_id} for “{label}” ({scope}), acting as {who}."
    return message(text, [
        section(f":key: {text}"),
        section(f"```{issued.token}```"),
        context(f":warning: Copy it now: this is the only time it is shown, and it is not stored anywhere we can "
                f"show it again. Anyone who has it can do through the API what {who} can ({scope}). "
                f"`/api token revoke {issued.token_id}` ends it."),
    ])


def token_list(rows: Sequence[ApiToken], *, people: Mapping[int, str], limit: int) -> dict[str, Any]:
    """`/api token list`: working tokens first, then revoked ones. `people`: member id -> Slack id."""
    return _listing([_token_line(row, people) for row in rows], title="API tokens", limit=limit,
                    empty='There are no API tokens yet. `/api token new "CRM sync" scope=read` makes one.',
                    footer="`/api token revoke <number>` ends one now.")


def _listing(lines: Sequence[str], *, title: str, empty: str, footer: str, limit: int) -> dict[str, Any]:
    """A list answer: a header and a section per line, or `empty`; the footer says how many were left out."""
    if not lines:
        return message(empty, [section(empty)])
    more = f" Only the newest {limit} are shown." if len(lines) >= limit else ""
    blocks = [header(title), *(section(line) for line in lines), context(f"{footer}{more}")]
    return message(f"{title}: {len(lines)}", blocks)


def _token_line(row: ApiToken, people: Mapping[int, str]) -> str:
    acting = people.get(row.member_id)
    maker = people.get(row.created_by_id) if row.created_by_id is not None else None
    parts = [f"*{row.id}* · {fit_escaped(row.label, LABEL_SHOWN)}", _SCOPE_WORDS.get(row.scope, escape(row.scope)),
             f"acts as {user_mention(acting)}" if acting else "acts as a member no longer here"]
    if maker:
        parts.append(f"made by {user_mention(maker)} {when(row.created_at)}")
    parts.append(f"last used {when(row.last_used_at)}" if row.last_used_at else "never used")
    if row.revoked_at is not None:
        parts.append(f":no_entry_sign: revoked {when(row.revoked_at)}")
    return " · ".join(parts)


def token_revoked(row: ApiToken, *, changed: bool) -> dict[str, Any]:
    label = fit_escaped(row.label, LABEL_SHOWN)
    text = (f"API token {row.id} (“{label}”) is revoked: it opens nothing any more." if changed
            else f"API token {row.id} (“{label}”) was revoked already.")
    return message(text, [section(f":no_entry_sign: {text}")])


def webhook_registered(registered: RegisteredWebhook) -> dict[str, Any]:
    """The one time a webhook's signing secret is shown."""
    url = fit_escaped(registered.url, URL_SHOWN)
    events = ", ".join(f"`{event}`" for event in registered.events)
    text = f"Webhook {registered.webhook_id} posts {events} to {url}."
    return message(text, [
        section(f":satellite_antenna: {text}"),
        section(f"Signing secret:\n```{registered.secret}```"),
        context("Each POST has `X-CM-Event`, `X-CM-Delivery` (the same on every retry: dedupe on it), "
                "`X-CM-Timestamp` and `X-CM-Signature: sha256=<hex HMAC-SHA256 of \"<timestamp>.<body>\" with "
                "the secret>`. :warning: Copy the secret now: this is the only time it is shown. "
                f"`/api webhook remove {registered.webhook_id}` stops it."),
    ])


def webhook_list(rows: Sequence[Webhook], *, people: Mapping[int, str], limit: int) -> dict[str, Any]:
    """`/api webhook list`: each webhook's URL, events and how its last delivery went."""
    return _listing([_webhook_line(row, people) for row in rows], title="Webhooks", limit=limit,
                    empty="There are no webhooks yet. `/api webhook add https://example.com/hooks events=task.done` "
                          "adds one.",
                    footer="`/api webhook remove <number>` stops one.")


def _webhook_line(row: Webhook, people: Mapping[int, str]) -> str:
    events = ", ".join(f"`{escape(str(event))}`" for event in row.events or [])
    parts = [f"*{row.id}* · {fit_escaped(row.url, URL_SHOWN)}", events or "no events"]
    maker = people.get(row.created_by_id) if row.created_by_id is not None else None
    if maker:
        parts.append(f"added by {user_mention(maker)} {when(row.created_at)}")
    if row.last_delivery_at is None:
        parts.append("nothing sent yet")
    else:
        status = f"HTTP {row.last_status}" if row.last_status is not None else "no answer"
        ok = row.last_status is not None and 200 <= row.last_status < 300
        error = f" ({fit_escaped(row.last_error, 80)})" if row.last_error and not ok else ""
        parts.append(f"{':white_check_mark:' if ok else ':warning:'} last: {status}{error} {when(row.last_delivery_at)}")
    return " · ".join(parts)


def webhook_removed(row: Webhook) -> dict[str, Any]:
    text = f"Webhook {row.id} ({fit_escaped(row.url, URL_SHOWN)}) is removed: nothing more is posted to it."
    return message(text, [section(f":no_entry_sign: {text}")])
