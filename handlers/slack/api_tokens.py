"""`/api token …`: admins issue, list and revoke API tokens for integrations.

- `/api token new "CRM sync" scope=read|write [as=@someone]` issues a token acting as the admin, or as
  @someone; the token is shown once, in this reply, and never again (only its hash is stored);
- `/api token list` lists every token, working ones first;
- `/api token revoke 12` ends token 12 at once; a pasted token works too, so an admin shown a leaked one
  can end it without knowing its number.
Only the person who asked sees the answer. Admins only (`services.api_tokens.require_manager`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from blocks.api_tokens import api_help, token_issued, token_list, token_revoked
from handlers.slack.args import mentioned_ids, resolve_person, split_words, truncate_word
from handlers.slack.context import Work, in_unit_of_work
from handlers.slack.errors import replying_errors
from services import api_tokens, team
from services.errors import InvalidInput
from services.refs import parse_id

USAGE = 'Usage: `/api token new "CRM sync" scope=read|write [as=@someone]`, `/api token list`, `/api token revoke 12`.'
NEW_USAGE = 'Usage: `/api token new "CRM sync" scope=read|write [as=@someone]` (the label in quotes).'
REVOKE_USAGE = "Say which token to revoke: `/api token revoke 12` (its number from `/api token list`) or paste it."


def register(app: AsyncApp) -> None:
    app.command("/api")(api_command)


async def api_command(
    ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond, context: AsyncBoltContext, client: AsyncWebClient
) -> None:
    await ack()
    async with replying_errors(respond):
        words = split_words(command.get("text") or "")
        if not words or words[0].lower() in ("help", "?"):
            await respond(**api_help(), response_type="ephemeral")
            return
        verb = words[1].lower() if len(words) > 1 and words[0].lower() == "token" else ""
        if verb == "new":
            await _new(words[2:], respond, context, client)
        elif verb == "list" and len(words) == 2:
            await _list(respond, context, client)
        elif verb == "revoke":
            await _revoke(words[2:], respond, context, client)
        else:
            raise InvalidInput(USAGE)


async def _new(words: list[str], respond: AsyncRespond, context: AsyncBoltContext, client: AsyncWebClient) -> None:
    options: dict[str, str] = {}
    labels: list[str] = []
    for word in words:
        key, _, value = word.partition("=")
        if key.lower() in ("scope", "as") and value:
            if key.lower() in options:
                raise InvalidInput(f"`{key.lower()}=` is given twice. {NEW_USAGE}")
            options[key.lower()] = value
        else:
            labels.append(word)
    if len(labels) != 1 or "scope" not in options:
        raise InvalidInput(NEW_USAGE)
    scope = api_tokens.parse_scope(options["scope"])  # refused before any database work
    label = api_tokens.clean_label(labels[0])
    person = options.get("as")

    async def run(work: Work) -> dict[str, Any]:
        api_tokens.require_manager(work.authz_actor)  # before a name is looked up: nothing to learn by trying
        acting_as = work.actor
        if person is not None:
            slack_user_id = await resolve_person(person, db=work.db)
            acting_as = await team.ensure_member(db=work.db, slack_user_id=slack_user_id,
                                                 profile=work.profile_of(slack_user_id))
        issued = await api_tokens.issue(db=work.db, created_by=work.actor, acting_as=acting_as, label=label,
                                        scope=scope.value, now=datetime.now(UTC))
        return token_issued(issued)

    people = mentioned_ids([person]) if person is not None else []
    await respond(**await in_unit_of_work(context, client, run, people=people), response_type="ephemeral")


async def _list(respond: AsyncRespond, context: AsyncBoltContext, client: AsyncWebClient) -> None:
    async def run(work: Work) -> dict[str, Any]:
        api_tokens.require_manager(work.authz_actor)
        rows = await api_tokens.tokens(db=work.db)
        return token_list(rows, people=await api_tokens.people_of(db=work.db, rows=rows), limit=api_tokens.LISTED)

    await respond(**await in_unit_of_work(context, client, run, reading=True), response_type="ephemeral")


async def _revoke(words: list[str], respond: AsyncRespond, context: AsyncBoltContext, client: AsyncWebClient) -> None:
    if len(words) != 1:
        raise InvalidInput(REVOKE_USAGE)
    token_id = parse_id(words[0].removeprefix("#")) or api_tokens.token_id_of(words[0])
    if token_id is None:
        # Not escaped here: the error handler escapes a domain error's whole message.
        raise InvalidInput(f"`{truncate_word(words[0])}` is neither a token number nor an API token. {REVOKE_USAGE}")
    now = datetime.now(UTC)

    async def run(work: Work) -> dict[str, Any]:
        row = await api_tokens.revoke(db=work.db, actor=work.authz_actor, token_id=token_id, now=now)
        return token_revoked(row, changed=row.revoked_at == now)

    await respond(**await in_unit_of_work(context, client, run), response_type="ephemeral")

