"""What `/api token …` shows: a new token (once), the admins' list, a revoked token, the usage."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from blocks.help import when
from blocks.text import context, escape, fit_escaped, header, message, section, user_mention
from models import ApiToken
from services.api_tokens import IssuedToken

USAGE = [
    ('`/api token new "CRM sync" scope=read|write [as=@someone]`',
     "a token for an integration, acting as you or as @someone (admins)"),
    ("`/api token list`", "every token: whom it acts as, its scope, when it was last used"),
    ("`/api token revoke 12`", "end token 12 at once (its number, or paste the token)"),
]
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
    if not rows:
        text = 'There are no API tokens yet. `/api token new "CRM sync" scope=read` makes one.'
        return message(text, [section(text)])
    blocks = [header("API tokens"), *(section(_token_line(row, people)) for row in rows)]
    more = f" Only the newest {limit} are shown." if len(rows) >= limit else ""
    blocks.append(context(f"`/api token revoke <number>` ends one now.{more}"))
    return message(f"API tokens: {len(rows)}", blocks)


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
