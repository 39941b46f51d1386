"""Turn what people type after a slash command into words, dates, people, channels and references."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services import team
from services.errors import InvalidInput

# Phones and Slack's own editor turn quotes curly; they count as quotes all the same.
_CURLY = str.maketrans({"\u201c": '"', "\u201d": '"', "\u201e": '"', "\u00ab": '"', "\u00bb": '"',
                        "\u2018": "'", "\u2019": "'"})
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def unescape_slack(text: str) -> str:
    """Slack sends `&`, `<`, `>` in command text as entities; store what the person typed."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def split_words(text: str) -> list[str]:
    """Split on spaces, keeping "double quoted" phrases together; apostrophes stay literal (Dave's)."""
    # Any Unicode space separates words (phones insert no-break spaces); shlex only knows ASCII ones.
    # NUL is dropped: nobody means one, and PostgreSQL text cannot store it.
    spaced = "".join(" " if char.isspace() else char for char in unescape_slack(text) if char != "\x00")
    lexer = shlex.shlex(spaced.translate(_CURLY), posix=True)
    lexer.whitespace_split = True
    lexer.quotes = '"'
    lexer.escape = ""
    lexer.commenters = ""
    try:
        return list(lexer)
    except ValueError:
        raise InvalidInput('A quote is not closed. Put the name in a pair of quotes: "Spring launch".') from None


def looks_like_date(word: str) -> bool:
    return bool(_ISO_DATE.match(word))


def parse_date(word: str) -> date:
    if looks_like_date(word):
        try:
            return date.fromisoformat(word)
        except ValueError:
            pass
    raise InvalidInput(f"`{truncate_word(word)}` is not a date. Use YYYY-MM-DD, for example 2027-03-01.")


# Slack user ids: `U` (or `W` on Enterprise Grid) and capitals or digits. Channel ids: `C`, or `G` for old private ones.
_USER_ID = re.compile(rf"^{team.SLACK_USER_ID.pattern}$", re.ASCII)
_MENTION = re.compile(rf"^<@({team.SLACK_USER_ID.pattern})(?:\|[^>]*)?>$", re.ASCII)
# Bounded like user ids: a channel id column holds 32 characters.
_CHANNEL = re.compile(r"^<#([CG][A-Z0-9]{2,31})(?:\|[^>]*)?>$", re.ASCII)
_CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{2,31}$", re.ASCII)
_BARE_CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{8,31}$", re.ASCII)  # without `#`, only as long as Slack's own ids
MENTION_USAGE = "Mention the person with @, like `@alice`."


@dataclass(frozen=True)
class PersonRef:
    """A person as typed. `name` is looked up on the team; `slack_user_id` is an id Slack sent or that was
    typed (`@U123`). A typed word that looks like an id has both: a member of that name or id comes first,
    else it is taken as the id of someone not on the team yet."""

    slack_user_id: str | None = None
    name: str | None = None


def parse_person(word: str) -> PersonRef:
    """`<@U123|alice>` (Slack's escaped mention), `@U123`, `@alice` or `"@Alice Archer"`."""
    cleaned = word.strip()
    mention = _MENTION.match(cleaned)
    if mention:
        return PersonRef(slack_user_id=mention.group(1))
    name = cleaned[1:].strip() if cleaned.startswith("@") else ""
    if not name:
        raise InvalidInput(MENTION_USAGE)
    return PersonRef(slack_user_id=name if _USER_ID.match(name) else None, name=name)


def mentioned_ids(words: Iterable[str]) -> list[str]:
    """The Slack ids among `words` (mentions, or ids typed with @), for looking newcomers up early."""
    found = []
    for word in words:
        cleaned = word.strip()
        mention = _MENTION.match(cleaned)
        typed = cleaned[1:] if cleaned.startswith("@") else ""
        if mention:
            found.append(mention.group(1))
        elif _USER_ID.match(typed):
            found.append(typed)
    return found


async def person_id(ref: PersonRef, *, db: AsyncSession) -> str:
    """The Slack user id a typed person means; InvalidInput names an unknown or ambiguous name."""
    if ref.name is None and ref.slack_user_id is not None:  # a mention Slack resolved: nothing to look up
        return ref.slack_user_id
    found = await team.find_members_by_name(db=db, name=ref.name or "")
    if not found and ref.slack_user_id is not None:  # an id typed by hand, for someone not on the team yet
        return ref.slack_user_id
    return team.only_member(found, typed=ref.name or "").slack_user_id


async def resolve_person(word: str, *, db: AsyncSession) -> str:
    """The one way every command reads a person: parse what was typed, then look a name up."""
    return await person_id(parse_person(word), db=db)


async def resolve_people(refs: Sequence[PersonRef], *, sessions: async_sessionmaker[AsyncSession]) -> list[str]:
    """Several people, once each and in order, before any transaction opens (a short read, only for names)."""
    if all(ref.name is None for ref in refs):
        ids = [ref.slack_user_id for ref in refs if ref.slack_user_id is not None]
    else:
        async with sessions() as db:
            ids = [await person_id(ref, db=db) for ref in refs]
    return list(dict.fromkeys(ids))


def parse_channel(word: str) -> str:
    """`<#C123|launch>` (Slack's escaped channel), `#C123` or a bare channel id -> `C123`.

    The app has no channels:read scope, so a plain `#launch` (one Slack did not turn into its id) cannot be
    looked up: the answer says how to get Slack to send the id.
    """
    cleaned = word.strip()
    escaped = _CHANNEL.match(cleaned)
    if escaped:
        return escaped.group(1)
    if cleaned.startswith("#") and _CHANNEL_ID.match(cleaned[1:]):
        return cleaned[1:]
    if _BARE_CHANNEL_ID.match(cleaned):
        return cleaned
    if cleaned.startswith("#") and len(cleaned) > 1:
        raise InvalidInput(f"I don't know the channel {truncate_word(cleaned)}. Pick it from the list Slack shows "
                           "as you type #, so Slack sends me which channel it is.")
    raise InvalidInput("Name the channel with #, like `#spring-launch`.")


# What Slack puts in message text: <@U1|name>, <#C1|name>, <!here>, <https://x|label>, <https://x>.
_MARKUP = re.compile(r"<([@#!]?)([^<>|]*)(?:\|([^<>]*))?>")


def plain_message_text(text: str) -> str:
    """A message's text as a person reads it: `@name`, `#channel`, link labels, entities decoded."""

    def readable(match: re.Match[str]) -> str:
        sigil, target, label = match.group(1), match.group(2), match.group(3)
        if sigil == "!":  # <!here>, <!subteam^S1|@team>, <!date^...|fallback>
            return label or "@" + target.split("^")[0]
        if sigil in ("@", "#"):
            return sigil + (label or target)
        return label or target

    return unescape_slack(_MARKUP.sub(readable, text))


def parse_options(words: list[str], known: tuple[str, ...]) -> dict[str, str]:
    """`role=designer skills=design,video hours=mon-fri 9-17` -> {"role": ..., "hours": "mon-fri 9-17"}.

    Words without `=` continue the previous value, so multi-word values need no quotes.
    """
    options: dict[str, str] = {}
    current: str | None = None
    for word in words:
        key, sep, value = word.partition("=")
        if sep and key.lower() in known:
            current = key.lower()
            if current in options:
                raise InvalidInput(f"`{current}=` is given twice.")
            options[current] = value
        elif sep and current is None:
            allowed = ", ".join(f"`{name}=`" for name in known)
            raise InvalidInput(f"`{truncate_word(key)}=` is not something I can set. Use {allowed}.")
        elif current is not None:
            options[current] = f"{options[current]} {word}".strip()
        else:
            allowed = ", ".join(f"`{name}=`" for name in known)
            raise InvalidInput(f"I don't know what `{truncate_word(word)}` means here. Use {allowed}.")
    return options


def truncate_word(word: str, limit: int = 30) -> str:
    return word if len(word) <= limit else word[: limit - 1] + "…"
