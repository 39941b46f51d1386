"""`/api token …`: admins issue, list and revoke API tokens for integrations.

- `/api token new "CRM sync" scope=read|write [as=@someone]` issues a token acting as the admin, or as
  @someone; the token is shown once, in this reply, and never again (only its hash is stored);
- `/api token list` lists every token, working ones first;
- `/api token revoke 12` ends token 12 at once; a pasted token works too, so an admin shown a leaked one
  can end it without knowing its number.
- `/api webhook add https://example.com/hooks events=campaign.launched,task.done,approval.decided` registers
  an outgoing webhook; its signing secret is shown once, in this reply;
- `/api webhook list` lists the webhooks with their last delivery's status; `/api webhook remove 3` stops one.
Only the person who asked sees the answer. Admins only (`services.api_tokens.require_manager`,
`services.webhooks.require_manager`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from blocks.api_tokens import (
    api_help,
    token_issued,
    token_list,
    token_revoked,
    webhook_list,
    webhook_registered,
    webhook_removed,
)
from handlers.slack.args import mentioned_ids, resolve_person, split_words, truncate_word
from handlers.slack.context import Work, in_unit_of_work
from handlers.slack.errors import replying_errors
from services import api_tokens, team, webhooks
from services.errors import InvalidInput
from services.refs import parse_id

USAGE = 'Usage: `/api token new "CRM sync" scope=read|write [as=@someone]`, `/api token list`, `/api token revoke 12`.'
NEW_USAGE = 'Usage: `/api token new "CRM sync" scope=read|write [as=@someone]` (the label in quotes).'
WEBHOOK_USAGE = ("Usage: `/api webhook add https://example.com/hooks events=campaign.launched,task.done,approval.decided`, "
                 "`/api webhook list`, `/api webhook remove 3`.")
ADD_USAGE = ("Usage: `/api webhook add https://example.com/hooks events=campaign.launched,task.done,approval.decided` "
             "(one URL, and the events it gets).")
REMOVE_USAGE = "Say which webhook to remove: `/api webhook remove 3` (its number from `/api webhook list`)."
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
        if words[0].lower() == "webhook":
            await _webhook(words[1:], respond, context, client)
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



async def _webhook(words: list[str], respond: AsyncRespond, context: AsyncBoltContext, client: AsyncWebClient) -> None:
    verb = words[0].lower() if words else ""
    if verb == "add":
        await _webhook_add(words[1:], respond, context, client)
    elif verb == "list" and len(words) == 1:
        await _webhook_list(respond, context, client)
    elif verb == "remove":
        await _webhook_remove(words[1:], respond, context, client)
    else:
        raise InvalidInput(WEBHOOK_USAGE)


async def _webhook_add(words: list[str], respond: AsyncRespond, context: AsyncBoltContext,
                       client: AsyncWebClient) -> None:
    urls = [word for word in words if not word.lower().startswith("events=")]
    events = [word.partition("=")[2] for word in words if word.lower().startswith("events=")]
    if len(urls) != 1 or len(events) != 1:
        raise InvalidInput(ADD_USAGE)
    url = webhooks.clean_url(_unlinked(urls[0]))  # refused before any database work
    chosen = webhooks.parse_events(events[0])

    async def run(work: Work) -> dict[str, Any]:
        registered = await webhooks.register(db=work.db, actor=work.authz_actor, url=url, events=chosen,
                                             now=datetime.now(UTC))
        return webhook_registered(registered)

    await respond(**await in_unit_of_work(context, client, run), response_type="ephemeral")


def _unlinked(word: str) -> str:
    """A URL as typed; Slack may send it as a link, `<https://…>` or `<https://…|label>`."""
    if word.startswith("<") and word.endswith(">"):
        return word[1:-1].partition("|")[0]
    return word


async def _webhook_list(respond: AsyncRespond, context: AsyncBoltContext, client: AsyncWebClient) -> None:
    async def run(work: Work) -> dict[str, Any]:
        rows = await webhooks.webhooks(db=work.db, actor=work.authz_actor)
        return webhook_list(rows, people=await webhooks.people_of(db=work.db, rows=rows), limit=webhooks.LISTED)

    await respond(**await in_unit_of_work(context, client, run, reading=True), response_type="ephemeral")


async def _webhook_remove(words: list[str], respond: AsyncRespond, context: AsyncBoltContext,
                          client: AsyncWebClient) -> None:
    webhook_id = parse_id(words[0].removeprefix("#")) if len(words) == 1 else None
    if webhook_id is None:
        raise InvalidInput(REMOVE_USAGE)

    async def run(work: Work) -> dict[str, Any]:
        row = await webhooks.remove(db=work.db, actor=work.authz_actor, webhook_id=webhook_id, now=datetime.now(UTC))
        return webhook_removed(row)

    await respond(**await in_unit_of_work(context, client, run), response_type="ephemeral")
