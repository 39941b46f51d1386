"""Turn what people type after a slash command into words, dates and references."""

from __future__ import annotations

import re
import shlex
from datetime import date

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


_MENTION = re.compile(r"^<@([UW][A-Z0-9]{2,})(?:\|[^>]*)?>$")


def parse_user_mention(word: str) -> str:
    """`<@U123>` or `<@U123|alice>` (Slack escapes mentions so) -> `U123`."""
    match = _MENTION.match(word.strip())
    if not match:
        raise InvalidInput("Mention the person with @, like `@alice`.")
    return match.group(1)


_CHANNEL = re.compile(r"^<#([CG][A-Z0-9]{2,})(?:\|[^>]*)?>$")
_CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{8,}$")


def parse_channel_mention(word: str) -> str:
    """`<#C123>` or `<#C123|launch>` (Slack escapes channels so), or a bare channel id -> `C123`."""
    cleaned = word.strip()
    match = _CHANNEL.match(cleaned)
    if match:
        return match.group(1)
    if _CHANNEL_ID.match(cleaned):
        return cleaned
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
