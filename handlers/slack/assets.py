"""Assets in Slack: `/campaign asset add|list|remove|tie|draft`, `/campaign checks`, the email-draft form and
the message shortcut "Attach to campaign".

`/campaign asset draft CM-12` (a new draft) and `/campaign asset draft AS-4` (change that one) open the
draft form: one short read first (the campaign, and whether the person is on its team), well inside the
trigger_id's 3 seconds. The shortcut opens its form filled in from the message: its first file (the file's
permalink) or else its first link, with the campaign of the channel chosen. Both forms save before their
ack when that is quick, so a bad value shows under its field (`forms.answer_in_time`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from blocks.assets import (
    ATTACH_FIELDS,
    ATTACH_MODAL,
    DRAFT_FIELDS,
    DRAFT_MODAL,
    SAVING_ASSET,
    SHORTCUT,
    asset_changed,
    asset_list,
    asset_saved_view,
    asset_usage,
    attach_modal,
    checks_message,
    decode_draft_form,
    draft_modal,
)
from blocks.modals import CAMPAIGN, notice_view
from handlers.slack.args import plain_message_text
from handlers.slack.context import Work, in_unit_of_work, unit_of_work
from handlers.slack.errors import form_refusal, replying_errors
from handlers.slack.forms import Answer, Form, answer_in_time
from handlers.slack.task_form import campaign_of_channel, chosen_campaign_id, shortcut_source
from services import assets, campaigns, tasks
from services.assets import BODY, DELIVERABLE, KIND, PREHEADER, SUBJECT, TITLE, URL, DraftChange, NewAsset
from services.content_checks import EMAIL
from services.errors import InvalidInput
from services.refs import RefKind, parse_ref

Reply = dict[str, Any]
NO_CAMPAIGNS = ("There is no open campaign you can attach things to: that takes owning one, or having a task "
                "in it. Start one with `/campaign new`.")
ADD_USAGE = "`/campaign asset add CM-12 https://… [kind] [title] [deliverable=T-12]`"


def register(app: AsyncApp) -> None:
    app.view(DRAFT_MODAL)(draft_submitted)
    app.view(ATTACH_MODAL)(attach_submitted)
    app.shortcut(SHORTCUT)(attach_from_message)


# ---------------------------------------------------------------- /campaign asset …, /campaign checks


async def asset_command(work: Work, args: list[str], command: dict[str, Any]) -> Reply:
    """`/campaign asset add|list|remove|tie …` (`draft` opens a form: `open_draft_form`)."""
    verb = args[0].lower() if args else "help"
    rest = args[1:]
    if verb == "add":
        if not rest:
            raise InvalidInput(f"Which campaign and what? Usage: {ADD_USAGE}")
        typed = split_add_words(rest[1:])
        new = NewAsset(campaign_id=parse_ref(rest[0], RefKind.CAMPAIGN), url=typed["url"], kind=typed["kind"],
                       title=typed["title"], deliverable=typed["deliverable"])
        return _reply(asset_changed(await assets.add_asset(db=work.db, ctx=work.task_context(), new=new)))
    if verb in ("list", "ls"):
        campaign = await _campaign(work, rest, "/campaign asset list CM-12")
        return _reply(asset_list(await assets.list_assets(db=work.db, campaign=campaign)))
    if verb in ("remove", "rm", "delete"):
        if len(rest) != 1:
            raise InvalidInput("Which asset? Usage: `/campaign asset remove AS-4`")
        change = await assets.remove_asset(db=work.db, ctx=work.task_context(), asset_id=parse_ref(rest[0], RefKind.ASSET))
        return _reply(asset_changed(change))
    if verb == "tie":
        if len(rest) != 2:
            raise InvalidInput("Which asset and task? Usage: `/campaign asset tie AS-4 T-12` (or `none` to untie it)")
        change = await assets.tie(db=work.db, ctx=work.task_context(), asset_id=parse_ref(rest[0], RefKind.ASSET),
                                  task_text=rest[1])
        return _reply(asset_changed(change))
    return _reply(asset_usage(None if verb == "help" else verb))


async def checks_command(work: Work, args: list[str], command: dict[str, Any]) -> Reply:
    """`/campaign checks CM-12`: the content checks, run now, every finding."""
    campaign = await _campaign(work, args, "/campaign checks CM-12")
    return _reply(checks_message(await assets.list_assets(db=work.db, campaign=campaign)))


def split_add_words(words: list[str]) -> dict[str, str]:
    """`<url> [kind] [title words] [deliverable=T-12] [kind=x]`: a known kind right after the address is the
    kind (`kind=` names any other); the other words are the title."""
    deliverable = kind = ""
    kept = []
    for word in words:
        lowered = word.lower()
        if lowered.startswith("deliverable="):
            deliverable = word.partition("=")[2]
        elif lowered.startswith("kind="):
            kind = word.partition("=")[2]
        else:
            kept.append(word)
    url = kept.pop(0) if kept else ""
    if not kind and kept and "_".join(kept[0].lower().split()) in assets.KNOWN_KINDS:
        kind = kept.pop(0)
    return {"url": url, "kind": kind, "title": " ".join(kept), "deliverable": deliverable}


async def _campaign(work: Work, args: list[str], usage: str) -> Any:
    if len(args) != 1:
        raise InvalidInput(f"Which campaign? Usage: `{usage}`")
    return await campaigns.get_campaign(db=work.db, campaign_id=parse_ref(args[0], RefKind.CAMPAIGN))


def _reply(message: dict[str, Any]) -> Reply:
    return {**message, "response_type": "ephemeral"}


# ---------------------------------------------------------------- the email-draft form


async def open_draft_form(
    args: list[str], command: dict[str, Any], respond: AsyncRespond, context: AsyncBoltContext, client: AsyncWebClient,
) -> None:
    """`/campaign asset draft CM-12 [deliverable=T-12]` or `/campaign asset draft AS-4`: refused here (not on
    the team, a closed campaign) before anyone types a draft."""
    async with replying_errors(respond):
        words = [word for word in args if not word.lower().startswith("deliverable=")]
        deliverable = next((word.partition("=")[2] for word in args if word.lower().startswith("deliverable=")), "")
        if len(words) != 1:
            raise InvalidInput("Which campaign, or which draft? Usage: `/campaign asset draft CM-12` (a new one) or "
                               "`/campaign asset draft AS-4` (change it)")
        async with unit_of_work(context, client, reading=True) as work:
            asset = None
            if words[0].upper().startswith("AS"):
                asset = await assets.get_asset(db=work.db, asset_id=parse_ref(words[0], RefKind.ASSET))
                campaign_id = asset.campaign_id
            else:
                campaign_id = parse_ref(words[0], RefKind.CAMPAIGN)
            campaign = await campaigns.get_campaign(db=work.db, campaign_id=campaign_id)
            await tasks.require_team(work.db, work.authz_actor, campaign, "write its drafts")
            if campaign.status in campaigns.FINAL_STATUSES:
                raise InvalidInput(f"{campaigns.campaign_ref(campaign)} is {campaign.status.value}; its assets can't "
                                   "change any more.")
        await client.views_open(trigger_id=command["trigger_id"],
                                view=draft_modal(campaign, asset=asset, deliverable=deliverable))


async def draft_submitted(
    ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient
) -> None:
    form = Form(view)

    async def run(work: Work) -> dict[str, Any]:
        what, number = decode_draft_form(form.private_metadata)
        ctx = work.task_context()
        if what == "campaign":
            new = NewAsset(campaign_id=number, kind=EMAIL, url=form.text(URL), title=form.text(TITLE),
                           subject=form.text(SUBJECT), preheader=form.text(PREHEADER), body=form.text(BODY),
                           deliverable=form.text(DELIVERABLE))
            change = await assets.add_asset(db=work.db, ctx=ctx, new=new)
        else:
            draft = DraftChange(title=form.text(TITLE), url=form.text(URL), subject=form.text(SUBJECT),
                                preheader=form.text(PREHEADER), body=form.text(BODY), deliverable=form.text(DELIVERABLE))
            change = await assets.update_draft(db=work.db, ctx=ctx, asset_id=number, change=draft)
        return asset_saved_view(change)

    await _save(ack, client, form, context, run, fields=DRAFT_FIELDS, fallback=SUBJECT)


# ---------------------------------------------------------------- "Attach to campaign"


async def attach_from_message(
    ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, context: AsyncBoltContext, client: AsyncWebClient
) -> None:
    await ack()
    async with replying_errors(respond):
        source = await shortcut_source(body, context, client)
        if not source.choices:
            await client.views_open(trigger_id=body["trigger_id"], view=notice_view(NO_CAMPAIGNS))
            return
        found = first_attachment(source.message)
        note = None if found["url"] else "The message has no link or file of its own: paste the address here."
        view = attach_modal(source.choices, selected=campaign_of_channel(source.choices, source.channel_id),
                            url=found["url"], kind=found["kind"], title=found["title"], source=source.permalink,
                            note=note)
        await client.views_open(trigger_id=body["trigger_id"], view=view)


async def attach_submitted(
    ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient
) -> None:
    form = Form(view)

    async def run(work: Work) -> dict[str, Any]:
        new = NewAsset(campaign_id=chosen_campaign_id(form.option(CAMPAIGN)), url=form.text(URL), kind=form.text(KIND),
                       title=form.text(TITLE), deliverable=form.text(DELIVERABLE), source=_source(form.private_metadata))
        return asset_saved_view(await assets.add_asset(db=work.db, ctx=work.task_context(), new=new))

    await _save(ack, client, form, context, run, fields=ATTACH_FIELDS, fallback=CAMPAIGN)


def first_attachment(message: Mapping[str, Any]) -> dict[str, str]:
    """The message's first file (its permalink), else its first link (in the text, an unfurl, or the blocks)."""
    for file in message.get("files") or ():
        if isinstance(file, dict) and _web(file.get("permalink")):
            mimetype = str(file.get("mimetype") or "")
            return {"url": str(file["permalink"]), "kind": assets.IMAGE if mimetype.startswith("image/") else assets.FILE,
                    "title": str(file.get("title") or file.get("name") or "")}
    links = _links_in_text(str(message.get("text") or ""))
    if links:
        return {"url": links[0][0], "kind": "", "title": links[0][1]}
    for attachment in message.get("attachments") or ():
        if isinstance(attachment, dict):
            unfurled = attachment.get("from_url") or attachment.get("original_url") or attachment.get("title_link")
            if _web(unfurled):
                return {"url": str(unfurled), "kind": "", "title": str(attachment.get("title") or "")}
    in_blocks = _links_in_blocks(message.get("blocks"))
    if in_blocks:
        return {"url": in_blocks[0], "kind": "", "title": ""}
    return {"url": "", "kind": "", "title": ""}


def _links_in_text(text: str) -> list[tuple[str, str]]:
    """Slack's `<https://x|label>` and `<https://x>` in message text (it marks every link it shows)."""
    found = []
    start = text.find("<")
    while start != -1:
        end = text.find(">", start)
        if end == -1:
            break
        target, _, label = text[start + 1:end].partition("|")
        if _web(target):
            found.append((target, plain_message_text(label).strip()))
        start = text.find("<", end)
    return found


def _links_in_blocks(blocks: object) -> list[str]:
    """`link` elements of rich text blocks, depth first."""
    found: list[str] = []
    if isinstance(blocks, list):
        for item in blocks:
            found += _links_in_blocks(item)
    elif isinstance(blocks, dict):
        if blocks.get("type") == "link" and _web(blocks.get("url")):
            found.append(str(blocks["url"]))
        for key in ("elements", "text"):
            found += _links_in_blocks(blocks.get(key))
    return found


def _web(value: object) -> bool:
    return isinstance(value, str) and value.startswith(("https://", "http://")) and len(value) <= assets.MAX_URL


def _source(metadata: str) -> str | None:
    """The message's permalink, as the form carried it; anything else (forged, cut) is dropped."""
    return metadata if metadata.startswith("https://") and len(metadata) <= assets.MAX_URL and not any(
        char.isspace() for char in metadata) else None


async def _save(ack: AsyncAck, client: AsyncWebClient, form: Form, context: AsyncBoltContext,
                run: Callable[[Work], Awaitable[dict[str, Any]]], *, fields: set[str], fallback: str) -> None:
    def answer(shown: dict[str, Any]) -> Answer:
        return Answer(ack={"response_action": "update", "view": shown}, view=shown)

    def refusal(error: Exception) -> dict[str, Any]:
        return form_refusal(error, fields=fields, fallback=fallback)

    saving = in_unit_of_work(context, client, run)
    await answer_in_time(ack, client, form.view_id, saving, working=SAVING_ASSET, answer=answer, refusal=refusal,
                         not_done="The asset was not saved:")
