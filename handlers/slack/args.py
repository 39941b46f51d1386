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
    spaced = "".join(" " if char.isspace() else char for char in unescape_slack(text))
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
    shown = word if len(word) <= 30 else word[:29] + "…"
    raise InvalidInput(f"`{shown}` is not a date. Use YYYY-MM-DD, for example 2027-03-01.")
