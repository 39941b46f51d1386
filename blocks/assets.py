"""Assets in Slack: the replies to `/campaign asset …` and `/campaign checks`, the email-draft and "Attach to
campaign" forms, and the question asked before a task that hands over an asset is finished without one.
The lines they are made of (assets, findings) are in `blocks.content`, escaped there.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from blocks.codec import UnreadableValue, encode_id
from blocks.content import asset_line, assets_text, check_summary, findings_text, plural
from blocks.ids import TASK_DONE_ANYWAY
from blocks.modals import (
    CAMPAIGN,
    OPTIONS_LIMIT,
    _input,
    _modal,
    _text_input,
    done_view,
    option,
    working_view,
)
from blocks.text import button, context, escape, fit_escaped, message, plain, section
from models import Asset, Campaign
from services.assets import (
    BODY,
    DELIVERABLE,
    KIND,
    MAX_SUBJECT,
    MAX_TITLE,
    PREHEADER,
    SUBJECT,
    TITLE,
    URL,
    AssetChange,
    AssetList,
)
from services.campaign_content import asset_ref
from services.content_checks import EMAIL
from services.refs import MAX_ID, RefKind, format_ref
from services.tasks import DeliverableMissing

DRAFT_MODAL, ATTACH_MODAL = "asset_draft_modal", "attach_to_campaign_modal"
SHORTCUT = "attach_to_campaign"
DRAFT_FIELDS = {TITLE, SUBJECT, PREHEADER, BODY, URL, DELIVERABLE}
ATTACH_FIELDS = {CAMPAIGN, URL, KIND, TITLE, DELIVERABLE}
FORM_BODY_LIMIT = 3000  # what a Slack text input holds
STALE_DRAFT_FORM = "This form does not point at a campaign or an asset any more. Close it and open it again."


# ---------------------------------------------------------------- lists


def asset_list(listing: AssetList) -> dict[str, Any]:
    """`/campaign asset list CM-12`."""
    ref = format_ref(RefKind.CAMPAIGN, listing.campaign.id)
    name = fit_escaped(listing.campaign.name, 120)
    blocks = [section(f":paperclip: *{ref} {name}*\n" + assets_text(listing.content, listing.tasks, ref))]
    if listing.content.findings:
        blocks.append(section(findings_text(listing.content.findings)))
    return message(f"{ref}: {len(listing.content.assets)} assets", blocks)


def checks_message(listing: AssetList) -> dict[str, Any]:
    """`/campaign checks CM-12`: every finding, errors first, and what errors do."""
    ref = format_ref(RefKind.CAMPAIGN, listing.campaign.id)
    content = listing.content
    title = f":mag: *Content checks of {ref} {fit_escaped(listing.campaign.name, 120)}*: {check_summary(content.findings)}"
    blocks = [section(title + f" ({plural(len(content.assets), 'asset')} checked)")]
    if content.findings:
        blocks.append(section(findings_text(content.findings, 30)))
        blocks.append(context("Errors hold a sign-off stage until they are fixed (and refuse `/approval request`); "
                              "warnings go into the approval request for the approvers to see."))
    return message(f"{ref}: {check_summary(content.findings)}", blocks)


def asset_changed(change: AssetChange) -> dict[str, Any]:
    """The reply to an asset added, changed, tied or removed: what it is now, and what the checks say."""
    ref = format_ref(RefKind.CAMPAIGN, change.campaign.id)
    asset = change.asset
    tasks = {change.deliverable.id: change.deliverable} if change.deliverable else {}
    if change.removed:
        head = f":wastebasket: Removed {asset_ref(asset.id)} *{fit_escaped(asset.name, 120)}* from {ref}."
    elif change.repeated:
        head = f":repeat: {ref} has it already: {asset_line(asset, tasks)}. Nothing new was added."
    else:
        head = f":paperclip: {ref}: {asset_line(asset, tasks)}"
    blocks = [section(head), section(f"*Content checks* · {check_summary(change.content.findings)}"
                                     + (f"\n{findings_text(change.content.findings)}" if change.content.findings else ""))]
    if change.opened:
        opened = ", ".join(f"*{fit_escaped(name, 100)}*" for name in change.opened)
        blocks.append(context(f":outbox_tray: The errors are gone: {opened} is open now; its approvers have the request."))
    return message(f"{asset_ref(asset.id)} · {ref}: {check_summary(change.content.findings)}", blocks)


ASSET_USAGE = [
    ("`/campaign asset add CM-12 https://… [kind] [title] [deliverable=T-12]`",
     "attach a link or a Slack file (kind: link, file, image, document, landing_page…, or `kind=`any)"),
    ("`/campaign asset draft CM-12` · `/campaign asset draft AS-4`", "write an email draft in a form, or change one"),
    ("`/campaign asset list CM-12`", "its assets and what the content checks find"),
    ("`/campaign asset tie AS-4 T-12` · `none`", "make it the deliverable of a task, or not"),
    ("`/campaign asset remove AS-4`", "take it out (a task it was tied to still expects one)"),
    ("`/campaign checks CM-12`", "run the content checks now"),
]


def asset_usage(unknown: str | None = None) -> dict[str, Any]:
    """`/campaign asset help`, or after a verb it does not know (`unknown`, as typed)."""
    lines = "\n".join(f"{usage}: {what}" for usage, what in ASSET_USAGE)
    blocks = [section(f":warning: `/campaign asset {fit_escaped(unknown, 30)}` is not a command I know.")] if unknown else []
    blocks += [section(lines), context("The campaign's team (its owner, people with a task in it) and admins change "
                                       "its assets. Message shortcut: *Attach to campaign*.")]
    return message("How to use /campaign asset", blocks)


# ---------------------------------------------------------------- the email-draft form


def encode_draft_form(*, campaign_id: int | None = None, asset_id: int | None = None) -> str:
    """The draft form's private_metadata: a new draft for a campaign, or a change to an asset."""
    if (campaign_id is None) == (asset_id is None):
        raise ValueError("a draft form is for one campaign or one asset")
    return f"campaign:{encode_id(campaign_id)}" if campaign_id is not None else f"asset:{encode_id(asset_id or 0)}"


def decode_draft_form(metadata: object) -> tuple[str, int]:
    """("campaign", id) or ("asset", id); UnreadableValue for anything our writer did not make."""
    if not isinstance(metadata, str) or len(metadata) > 20 or metadata.count(":") != 1:
        raise UnreadableValue(STALE_DRAFT_FORM)
    what, _, number = metadata.partition(":")
    if what not in ("campaign", "asset") or not re.fullmatch(r"[1-9][0-9]{0,9}", number, re.ASCII) \
            or int(number) > MAX_ID:
        raise UnreadableValue(STALE_DRAFT_FORM)
    return what, int(number)


def draft_modal(campaign: Campaign, *, asset: Asset | None = None, deliverable: str = "") -> dict[str, Any]:
    """`/campaign asset draft CM-12` (a new draft) or `/campaign asset draft AS-4` (that draft, to change)."""
    ref = format_ref(RefKind.CAMPAIGN, campaign.id)
    metadata = encode_draft_form(asset_id=asset.id) if asset else encode_draft_form(campaign_id=campaign.id)
    task = format_ref(RefKind.TASK, asset.task_id) if asset and asset.task_id else deliverable
    blocks = [
        context(f"{ref} *{fit_escaped(campaign.name, 120)}*"
                + (f" · {asset_ref(asset.id)}" if asset else "") + " · the content checks run when you save."),
        _input(TITLE, "Title", _text_input("Spring newsletter", max_length=MAX_TITLE, initial=asset.name if asset else None),
               optional=True, hint="Empty: the subject."),
        _input(SUBJECT, "Subject", _text_input("Spring is here", max_length=MAX_SUBJECT,
                                               initial=asset.subject if asset else None)),
        _input(PREHEADER, "Preheader", _text_input("The preview text after the subject", max_length=MAX_SUBJECT,
                                                   initial=asset.preheader if asset else None), optional=True),
        _input(BODY, "Body", _text_input("Paste the HTML or the text", max_length=FORM_BODY_LIMIT, multiline=True,
                                         initial=asset.body if asset else None), optional=True,
               hint=f"HTML or plain text, up to {FORM_BODY_LIMIT:,} characters. Longer? Link to the draft below."),
        _input(URL, "Link to the draft", _text_input("https://app.mailjet.com/…", max_length=2000,
                                                     initial=asset.url if asset else None), optional=True),
        _input(DELIVERABLE, "Deliverable of", _text_input("T-12", max_length=20, initial=task or None), optional=True,
               hint="The task this draft is the result of."),
    ]
    title = "Change the draft" if asset else "Email draft"
    return _modal(DRAFT_MODAL, title, "Save", blocks, private_metadata=metadata)


SAVING_ASSET = working_view("Asset", "Saving the asset…")


def asset_saved_view(change: AssetChange) -> dict[str, Any]:
    return done_view("Asset saved", asset_changed(change)["blocks"])


# ---------------------------------------------------------------- "Attach to campaign"


def attach_modal(
    campaigns: Sequence[Campaign], *, selected: int | None, url: str, kind: str, title: str, source: str | None,
    note: str | None = None,
) -> dict[str, Any]:
    """The message shortcut's form: the campaign, and the message's first link or file, filled in."""
    choices = [option(f"{format_ref(RefKind.CAMPAIGN, c.id)} {c.name}", encode_id(c.id)) for c in campaigns[:OPTIONS_LIMIT]]
    select: dict[str, Any] = {"type": "static_select", "placeholder": plain("Pick a campaign"), "options": choices}
    chosen = next((choice for choice, c in zip(choices, campaigns, strict=False) if c.id == selected), None)
    if chosen is not None:
        select["initial_option"] = chosen
    blocks = [
        _input(CAMPAIGN, "Campaign", select),
        _input(URL, "Link or file", _text_input("https://…", max_length=2000, initial=url or None),
               hint=note or "The message's first link or file."),
        _input(KIND, "Kind", _text_input("link, file, image, document, landing_page…", max_length=40,
                                         initial=kind or None), optional=True, hint="Empty: guessed from the address."),
        _input(TITLE, "Title", _text_input("Spring landing page", max_length=MAX_TITLE, initial=title or None),
               optional=True),
        _input(DELIVERABLE, "Deliverable of", _text_input("T-12", max_length=20), optional=True,
               hint="The task this is the result of."),
        context("The content checks run when you attach it."),
    ]
    return _modal(ATTACH_MODAL, "Attach to campaign", "Attach", blocks, private_metadata=(source or "")[:2000])


# ---------------------------------------------------------------- finishing a task without its deliverable


def deliverable_prompt(missing: DeliverableMissing) -> dict[str, Any]:
    """Asked before a task that hands over an asset is finished without one: attach it, or finish anyway."""
    task, campaign = format_ref(RefKind.TASK, missing.task_id), format_ref(RefKind.CAMPAIGN, missing.campaign_id)
    what = "an asset" if missing.kind == "any" else f"an asset of kind {escape(missing.kind)}"
    ways = f"`/campaign asset add {campaign} <link> deliverable={task}`"
    if missing.kind == EMAIL:
        ways += f", or write the draft: `/campaign asset draft {campaign} deliverable={task}`"
    blocks = [
        section(f":paperclip: {task} hands over {what}, and none is tied to it yet. Attach it first: {ways}."),
        {"type": "actions", "block_id": f"deliverable_{missing.task_id}",
         "elements": [button("Done anyway", TASK_DONE_ANYWAY, encode_id(missing.task_id))]},
        context(f"Or type `/task done {task} anyway`."),
    ]
    return message(f"{task} hands over {what}: attach it first, or finish it anyway", blocks)
