"""What our buttons' values and our modals' private_metadata carry, written and read back in one place.

Slack returns these strings untouched, but anyone who can sign a request can send any string, so the
readers are strict and total: a string one of the writers below made is read back exactly, and anything
else (forged, stale, cut, unicode digits, `1:home:extra`, a megabyte of nines, not a string at all) raises
`UnreadableValue`, a `services.errors.InvalidInput` whose text the error path shows as it is. No reader
raises anything else.

A writer refuses (ValueError: our bug, not the person's) what its reader would refuse, and every written
string fits Slack's bounds: ACTION_VALUE_LIMIT for a button or option value, PRIVATE_METADATA_LIMIT for a
view's metadata. The formats are the ones the app has always written, so buttons on messages sent before
this module existed still work.

  task / campaign / approval id   "42"                    (button value, option value, or a form's metadata)
  approval form                   "42" or "42:home"       (where the click that opened the form came from)
  "Try again" target              "12:channel:C0GENERAL" or "12:member:5"
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from blocks.text import ACTION_VALUE_LIMIT, PRIVATE_METADATA_LIMIT
from services.errors import InvalidInput
from services.refs import MAX_ID


class UnreadableValue(InvalidInput):
    """A button value or form metadata none of our writers made; its text is short and safe to show."""


class Origin(StrEnum):
    """Where the click that opened a form came from, so its answer goes back there."""

    HOME = "home"  # the App Home tab: re-publish it afterwards
    MESSAGE = "message"  # a message (a request, `/approval mine`): it has its own way to be answered


@dataclass(frozen=True)
class ApprovalForm:
    """What a reject or delegate form carries: the approval, and where the click came from."""

    approval_id: int
    origin: Origin


@dataclass(frozen=True)
class RetryPointer:
    """What a "Try again" button points at: one campaign's failed messages to one channel or one member.

    Only a pointer: the listener re-reads the campaign and asks authz before anything.
    """

    campaign_id: int
    recipient_channel: str | None = None
    recipient_id: int | None = None


STALE_TASK = "That button does not point at a task any more. Reopen the Home tab."
STALE_TASK_FORM = "This form does not point at a task any more. Close it and click the button again."
STALE_CAMPAIGN = "That choice does not point at a campaign any more. Reopen the form."
STALE_APPROVAL = "That button does not point at an approval any more. See `/approval mine`."
STALE_APPROVAL_FORM = "This form does not point at an approval any more. Close it and click the button again."
STALE_RETRY = "That button does not point at failed messages any more."

# ASCII only (`re.ASCII`, and no `\d`): other scripts' digits and `²` are not ours. No leading zero, so
# each id has exactly one spelling; ten digits covers MAX_ID, the range check does the rest.
_ID = re.compile(r"[1-9][0-9]{0,9}", re.ASCII)
_CHANNEL = re.compile(r"[A-Z0-9]{1,32}", re.ASCII)  # Slack channel ids; the column holds 32
_HOME_SUFFIX = ":" + Origin.HOME.value
_LONGEST_ID = 10


# ---------------------------------------------------------------- ids (buttons, options, the block form)


def encode_id(row_id: int) -> str:
    """A task, campaign or approval id as a button value, option value or form metadata."""
    if isinstance(row_id, bool) or not isinstance(row_id, int) or not 1 <= row_id <= MAX_ID:
        raise ValueError(f"not a row id: {row_id!r}")
    return str(row_id)


def decode_task(value: object) -> int:
    """The task id a task button (Start, Done, Block, Snooze) carries."""
    return _decode_id(value, STALE_TASK)


def decode_task_form(metadata: object) -> int:
    """The task id the block-reason form carries in its private_metadata."""
    return _decode_id(metadata, STALE_TASK_FORM)


def decode_campaign(value: object) -> int:
    """The campaign id of a chosen campaign option (the task form)."""
    return _decode_id(value, STALE_CAMPAIGN)


def decode_approval(value: object) -> int:
    """The approval id an Approve, Reject or Delegate button carries."""
    return _decode_id(value, STALE_APPROVAL)


def _decode_id(text: object, stale: str) -> int:
    if not isinstance(text, str) or len(text) > _LONGEST_ID or not _ID.fullmatch(text):
        raise UnreadableValue(stale)
    row_id = int(text)
    if row_id > MAX_ID:
        raise UnreadableValue(stale)
    return row_id


# ---------------------------------------------------------------- the reject and delegate forms


def encode_approval_form(approval_id: int, origin: Origin) -> str:
    """private_metadata of a reject or delegate form."""
    text = encode_id(approval_id) + (_HOME_SUFFIX if origin is Origin.HOME else "")
    return _fits(text, PRIVATE_METADATA_LIMIT)


def decode_approval_form(metadata: object) -> ApprovalForm:
    if not isinstance(metadata, str) or len(metadata) > _LONGEST_ID + len(_HOME_SUFFIX):
        raise UnreadableValue(STALE_APPROVAL_FORM)
    origin = Origin.HOME if metadata.endswith(_HOME_SUFFIX) else Origin.MESSAGE
    approval_id = metadata.removesuffix(_HOME_SUFFIX) if origin is Origin.HOME else metadata
    return ApprovalForm(_decode_id(approval_id, STALE_APPROVAL_FORM), origin)


# ---------------------------------------------------------------- "Try again" on a delivery-failed notice


def encode_retry(campaign_id: int, *, recipient_channel: str | None = None, recipient_id: int | None = None) -> str:
    """The "Try again" button's value: exactly one of a channel id and a member's row id."""
    if recipient_channel is not None and recipient_id is None:
        if not _CHANNEL.fullmatch(recipient_channel):
            raise ValueError(f"not a channel id: {recipient_channel!r}")
        text = f"{encode_id(campaign_id)}:channel:{recipient_channel}"
    elif recipient_id is not None and recipient_channel is None:
        text = f"{encode_id(campaign_id)}:member:{encode_id(recipient_id)}"
    else:
        raise ValueError("a retry points at one channel or one member")
    return _fits(text, ACTION_VALUE_LIMIT)


def decode_retry(value: object) -> RetryPointer:
    if not isinstance(value, str) or len(value) > 64 or value.count(":") != 2:
        raise UnreadableValue(STALE_RETRY)
    campaign, what, who = value.split(":")
    campaign_id = _decode_id(campaign, STALE_RETRY)
    if what == "channel" and _CHANNEL.fullmatch(who):
        return RetryPointer(campaign_id, recipient_channel=who)
    if what == "member":
        return RetryPointer(campaign_id, recipient_id=_decode_id(who, STALE_RETRY))
    raise UnreadableValue(STALE_RETRY)


def _fits(text: str, limit: int) -> str:
    if len(text) > limit:  # unreachable with today's formats; the check keeps a future one honest
        raise ValueError(f"{len(text)} characters, over Slack's {limit}")
    return text
