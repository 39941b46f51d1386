"""`/dashboard`: read-only links to the dashboard, stored so each expires and can be revoked.

- `/dashboard` (every campaign) and `/dashboard CM-12` (one) issue a link that lasts DASHBOARD_LINK_DAYS;
- `/dashboard links` lists the links you made (still working, or ended this past week);
- `/dashboard revoke 12` ends link 12 at once (yours; admins can end any). A pasted link works too, so an
  admin who is shown a leaked link can end it without knowing its number.
Only the person who asked sees the answer. The App Home's "Open dashboard" button issues its link here
too (`issue_link`).

The signing key is DASHBOARD_SECRET, or, when that is unset, a key derived from SLACK_SIGNING_SECRET, so
links work on any install that talks to Slack over HTTP. Without either (Socket Mode with no signing
secret) the command says the dashboard is not configured.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from blocks.help import dashboard_help, dashboard_link, dashboard_links_list, link_revoked, not_configured
from blocks.text import escape, fit_escaped
from handlers.links import secret_of
from handlers.slack.args import split_words, truncate_word
from handlers.slack.context import Work, deps_of, in_unit_of_work
from handlers.slack.errors import replying_errors
from services import campaigns, dashboard_links, links
from services.errors import InvalidInput
from services.refs import RefKind, parse_id, parse_ref

NOT_CONFIGURED = "The dashboard is not configured yet: an admin sets DASHBOARD_SECRET (or SLACK_SIGNING_SECRET)."
USAGE = "Usage: `/dashboard` for every campaign, `/dashboard CM-12` for one, `/dashboard links`, `/dashboard revoke 12`."
REVOKE_USAGE = "Say which link to revoke: `/dashboard revoke 12` (its number from `/dashboard links`) or paste the link."
# A pasted link, as Slack sends it (`<https://…/dashboard/TOKEN/…|label>`) or as typed: the token after /dashboard/.
_PASTED = re.compile(r"/dashboard/([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)")


@dataclass(frozen=True)
class IssuedUrl:
    url: str
    link_id: int
    expires_at: datetime
    what: str  # escaped: "every campaign", "CM-3 *Spring*"


def register(app: AsyncApp) -> None:
    app.command("/dashboard")(dashboard_command)


async def dashboard_command(
    ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond, context: AsyncBoltContext, client: AsyncWebClient
) -> None:
    await ack()
    async with replying_errors(respond):
        words = split_words(command.get("text") or "")
        first = words[0].lower() if words else ""
        if first in ("help", "?"):
            await respond(**dashboard_help(), response_type="ephemeral")
            return
        secret = secret_of(deps_of(context).settings)
        if secret is None:
            await respond(**not_configured(NOT_CONFIGURED), response_type="ephemeral")
            return
        if first == "links":
            await _list(words, respond, context, client)
        elif first == "revoke":
            await _revoke(words, secret, respond, context, client)
        elif len(words) > 1:
            raise InvalidInput(USAGE)
        elif words and not _looks_like_ref(words[0]):
            note = f"`/dashboard {escape(truncate_word(words[0]))}` is not something I know."
            await respond(**dashboard_help(note), response_type="ephemeral")
        else:
            ref = words[0] if words else None

            async def run(work: Work) -> IssuedUrl:
                return await issue_link(work, secret, campaign_ref=ref)

            issued = await in_unit_of_work(context, client, run)
            await respond(**dashboard_link(issued.url, what=issued.what, link_id=issued.link_id,
                                           expires_at=issued.expires_at), response_type="ephemeral")


async def issue_link(work: Work, secret: bytes, *, campaign_ref: str | None = None) -> IssuedUrl:
    """A new link made by the actor, for every campaign or the one `campaign_ref` names."""
    settings = work.deps.settings
    if campaign_ref is not None:
        campaign = await campaigns.get_campaign(db=work.db, campaign_id=parse_ref(campaign_ref, RefKind.CAMPAIGN))
        scope = links.campaign_scope(campaign.id)
        label = f"{campaigns.campaign_ref(campaign)} {campaign.name}"
        what = f"{campaigns.campaign_ref(campaign)} *{fit_escaped(campaign.name, 150)}*"
    else:
        scope, label, what = links.SCOPE_ALL, "every campaign", "every campaign"
    link, token = await dashboard_links.issue(db=work.db, created_by=work.actor, scope=scope,
                                              days=settings.dashboard_link_days, now=datetime.now(UTC),
                                              secret=secret, label=label)
    return IssuedUrl(url=links.dashboard_url(settings.public_url, token), link_id=link.id,
                     expires_at=link.expires_at, what=what)


async def _list(words: list[str], respond: AsyncRespond, context: AsyncBoltContext, client: AsyncWebClient) -> None:
    if len(words) > 1:
        raise InvalidInput("`/dashboard links` takes nothing after it: it lists the links you made.")
    now = datetime.now(UTC)

    async def run(work: Work) -> dict[str, Any]:
        return dashboard_links_list(await dashboard_links.mine(db=work.db, member=work.actor, now=now), now=now)

    await respond(**await in_unit_of_work(context, client, run, reading=True), response_type="ephemeral")


async def _revoke(
    words: list[str], secret: bytes, respond: AsyncRespond, context: AsyncBoltContext, client: AsyncWebClient
) -> None:
    if len(words) != 2:
        raise InvalidInput(REVOKE_USAGE)
    link_id = _link_id_of(words[1], secret)

    async def run(work: Work) -> dict[str, Any]:
        link, changed = await dashboard_links.revoke(db=work.db, actor=work.authz_actor, link_id=link_id,
                                                     now=datetime.now(UTC))
        return link_revoked(link, changed=changed)

    await respond(**await in_unit_of_work(context, client, run), response_type="ephemeral")


def _link_id_of(word: str, secret: bytes) -> int:
    """A link's number (`12`, `#12`) or a pasted link of ours; anything else is refused in a line."""
    number = parse_id(word.removeprefix("#"))
    if number is not None:
        return number
    pasted = _PASTED.search(word)
    token = pasted.group(1) if pasted else word.strip("<>")
    claim = links.verify(secret, token) if "." in token else None
    if claim is None:
        # Not escaped here: the error handler escapes a domain error's whole message.
        raise InvalidInput(f"`{truncate_word(word)}` is neither a link number nor a dashboard link of ours. {REVOKE_USAGE}")
    return claim.link_id


def _looks_like_ref(word: str) -> bool:
    """A campaign ref, or another kind of ref (parse_ref then says which kind it wants)."""
    return any(char.isdigit() for char in word)
