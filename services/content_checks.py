"""Content checks: rules over a campaign's assets, run before a sign-off stage opens. Pure: no database.

`check(assets, rules)` returns findings: (severity, rule, asset ref and title, message, stages). An error
holds a template stage that is due to open (`services.approval_stages`, state HELD) and refuses an ad hoc
request; a warning goes into the approval request beside Approve/Reject. A finding with `stages` is about
those stages only (a required asset the template asks for before "Legal review", say); one without is
about every stage.

The rules, with their default severity (a template may set another, or `off`; see `parse_rules`):

- subject_empty (error), subject_too_long (warning, over `subject_max_length`, 60 by default),
  preheader_missing (warning): email drafts (kind `email`).
- unsubscribe_missing (error): an email draft with a body and no way out. What counts: a link whose
  address or text says "unsub…" (`Unsubscribe`, `/unsub?u=…`), or a sending tool's own unsubscribe
  placeholder anywhere in the body: Mailjet's `[[UNSUB_LINK_EN]]`, Mailchimp's `*|UNSUB|*`, or a
  `{{ … }}` tag naming unsubscribe (`{{unsubscribe}}`, `{{ unsubscribe_url }}`). In a plain-text body,
  a line that says "unsub…" and holds a web address or such a placeholder.
- placeholder_text (error): `lorem ipsum`, `TODO`, an unfilled `{{ … }}` tag (not an unsubscribe one)
  or a bracketed capital `[NAME]`/`[FIRST NAME]` left in the subject, the preheader or the body (its
  text, its images' alt text and its link addresses).
- malformed_url (error) and link_without_utm (warning): the addresses of `link` assets and the links in
  email bodies (mailto:, tel:, #anchors, unsubscribe links and sending tools' placeholders are left alone).
- required_asset_missing (error): a kind of asset the template asks for, and none is attached.
- image_without_alt (warning): an `<img>` in an HTML body with no alt attribute (`alt=""` marks a
  decorative image and is fine).

HTML bodies are read with the standard library's `html.parser.HTMLParser` (tags and attribute names in any
case, entities decoded, broken markup read as far as it goes), never with regular expressions. A body with
no tag at all is plain text.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, urlsplit


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    OFF = "off"  # a template turned the rule off


class Rule(StrEnum):
    SUBJECT_EMPTY = "subject_empty"
    SUBJECT_TOO_LONG = "subject_too_long"
    PREHEADER_MISSING = "preheader_missing"
    UNSUBSCRIBE_MISSING = "unsubscribe_missing"
    PLACEHOLDER_TEXT = "placeholder_text"
    MALFORMED_URL = "malformed_url"
    LINK_WITHOUT_UTM = "link_without_utm"
    REQUIRED_ASSET_MISSING = "required_asset_missing"
    IMAGE_WITHOUT_ALT = "image_without_alt"


DEFAULT_SEVERITY: Mapping[Rule, Severity] = {
    Rule.SUBJECT_EMPTY: Severity.ERROR,
    Rule.SUBJECT_TOO_LONG: Severity.WARNING,
    Rule.PREHEADER_MISSING: Severity.WARNING,
    Rule.UNSUBSCRIBE_MISSING: Severity.ERROR,
    Rule.PLACEHOLDER_TEXT: Severity.ERROR,
    Rule.MALFORMED_URL: Severity.ERROR,
    Rule.LINK_WITHOUT_UTM: Severity.WARNING,
    Rule.REQUIRED_ASSET_MISSING: Severity.ERROR,
    Rule.IMAGE_WITHOUT_ALT: Severity.WARNING,
}
DEFAULT_SUBJECT_MAX = 60  # what most inboxes show of a subject on a phone
SUBJECT_MAX_RANGE = (10, 300)
EMAIL = "email"  # the kind of an email draft
LINK = "link"
MAX_URL = 2000  # the column's length
URLS_NAMED = 3  # a finding about many links names the first few
KIND_LIMIT = 40
_KIND = re.compile(r"[a-z][a-z0-9_-]{0,39}", re.ASCII)


def normalize_kind(text: str) -> str:
    """How kinds compare and are stored: ``Landing page`` is ``landing_page``."""
    return "_".join(text.lower().split())


def valid_kind(text: str) -> bool:
    return bool(_KIND.fullmatch(text))


# ---------------------------------------------------------------- the rules as data


@dataclass(frozen=True)
class Requirement:
    """A kind of asset the campaign must have; before the named stages only, or (none named) every stage."""

    kind: str
    stages: tuple[str, ...] = ()


@dataclass(frozen=True)
class ContentRules:
    required: tuple[Requirement, ...] = ()
    subject_max_length: int = DEFAULT_SUBJECT_MAX
    overrides: tuple[tuple[Rule, Severity], ...] = ()  # a template's own severities, by rule

    def severity(self, rule: Rule) -> Severity:
        return dict(self.overrides).get(rule, DEFAULT_SEVERITY[rule])

    def to_stored(self) -> dict[str, Any]:
        """As kept with the plan (`Timeline.content_rules`), so a later template edit changes no running campaign."""
        return {"required": [{"kind": req.kind, "stages": list(req.stages)} for req in self.required],
                "subject_max_length": self.subject_max_length,
                "severity": {rule.value: severity.value for rule, severity in self.overrides}}

    @classmethod
    def from_stored(cls, stored: object) -> ContentRules:
        """The rules a campaign keeps; anything unreadable (or no snapshot at all) is the default."""
        if not isinstance(stored, Mapping):
            return cls()
        required = []
        for item in stored.get("required") or ():
            if isinstance(item, Mapping) and isinstance(item.get("kind"), str) and valid_kind(item["kind"]):
                stages = tuple(str(name) for name in item.get("stages") or () if isinstance(name, str))
                required.append(Requirement(item["kind"], stages))
        length = stored.get("subject_max_length")
        low, high = SUBJECT_MAX_RANGE
        if isinstance(length, bool) or not isinstance(length, int) or not low <= length <= high:
            length = DEFAULT_SUBJECT_MAX
        overrides = []
        severities = stored.get("severity")
        for name, value in (severities.items() if isinstance(severities, Mapping) else ()):
            if name in Rule._value2member_map_ and value in Severity._value2member_map_:
                overrides.append((Rule(name), Severity(value)))
        return cls(tuple(required), length, tuple(overrides))


def parse_rules(data: object, stages: Collection[str] = ()) -> tuple[ContentRules, list[str]]:
    """A template's `content_checks:` block (plain data, as YAML reads it) and what is wrong with it.

    ```yaml
    content_checks:
      required_assets: [email]                      # or [{kind: email, stages: [Legal review]}]
      subject_max_length: 50
      rules: {preheader_missing: error, link_without_utm: off}
    ```
    `stages`: the template's stage names, which a requirement may name. Problems are sentences; the
    rules returned keep the defaults where a value was wrong.
    """
    if data is None:
        return ContentRules(), []
    if not isinstance(data, Mapping):
        return ContentRules(), ["content_checks: expected a mapping of required_assets, subject_max_length, rules"]
    problems: list[str] = []
    known = ("required_assets", "subject_max_length", "rules")
    for name in sorted(str(key) for key in data if key not in known):
        problems.append(f"content_checks: unknown field '{name}' (known: {', '.join(known)})")
    required = _requirements(data.get("required_assets"), stages, problems)
    length = data.get("subject_max_length", DEFAULT_SUBJECT_MAX)
    low, high = SUBJECT_MAX_RANGE
    if isinstance(length, bool) or not isinstance(length, int) or not low <= length <= high:
        problems.append(f"content_checks: subject_max_length should be a whole number from {low} to {high}")
        length = DEFAULT_SUBJECT_MAX
    overrides = _overrides(data.get("rules"), problems)
    return ContentRules(required, length, overrides), problems


def _requirements(value: object, stages: Collection[str], problems: list[str]) -> tuple[Requirement, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        problems.append("content_checks: required_assets should be a list of kinds, like [email]")
        return ()
    found: list[Requirement] = []
    for item in value:
        kind, named = (item, []) if isinstance(item, str) else (
            (item.get("kind"), item.get("stages", [])) if isinstance(item, Mapping) else (None, []))
        if isinstance(item, Mapping) and set(item) - {"kind", "stages"}:
            problems.append(f"content_checks: required_assets: {item!r} takes only kind and stages")
            continue
        if not isinstance(kind, str) or not valid_kind(normalize_kind(kind)):
            problems.append(f"content_checks: required_assets: {item!r} should be a kind of asset "
                            "(a short lower-case word, like email or landing_page)")
            continue
        names = [named] if isinstance(named, str) else named
        if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
            problems.append(f"content_checks: required_assets: the stages of '{kind}' should be a list of stage names")
            continue
        unknown = [name for name in names if name not in stages]
        if unknown:
            problems.append(f"content_checks: required_assets: '{kind}' names unknown stage '{unknown[0]}' "
                            f"(stages: {', '.join(stages) or 'none'})")
            continue
        found.append(Requirement(normalize_kind(kind), tuple(names)))
    return tuple(found)


def _overrides(value: object, problems: list[str]) -> tuple[tuple[Rule, Severity], ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        problems.append("content_checks: rules should map a rule to error, warning or off")
        return ()
    overrides: list[tuple[Rule, Severity]] = []
    for name, severity in value.items():
        if name not in Rule._value2member_map_:
            problems.append(f"content_checks: rules: unknown rule '{name}' (known: {', '.join(Rule)})")
            continue
        if severity is False:  # YAML reads a bare `off` as false
            severity = Severity.OFF.value
        if severity not in Severity._value2member_map_:
            problems.append(f"content_checks: rules: {name}: {severity!r} is not one of: error, warning, off")
            continue
        overrides.append((Rule(name), Severity(severity)))
    return tuple(overrides)


# ---------------------------------------------------------------- what is checked, and what is found


@dataclass(frozen=True)
class AssetContent:
    """One asset as the rules read it (no ORM object, so the rules stay pure and testable)."""

    ref: str  # AS-4
    title: str
    kind: str
    url: str | None = None
    subject: str | None = None
    preheader: str | None = None
    body: str | None = None


@dataclass(frozen=True)
class Finding:
    severity: Severity
    rule: Rule
    asset: str | None  # the asset's ref; None for the campaign as a whole (a required asset missing)
    title: str | None  # the asset's title, as typed
    message: str  # plain text, as typed parts included: renderers escape it
    stages: tuple[str, ...] = ()  # only about these stages (none: every stage)

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def applies_to(self, stage: str | None) -> bool:
        """About `stage` (a template stage's name; None for a stage asked for ad hoc)?"""
        if not self.stages:
            return True
        wanted = " ".join((stage or "").split()).casefold()
        return any(" ".join(name.split()).casefold() == wanted for name in self.stages) if wanted else False

    @property
    def key(self) -> str:
        """What makes two findings the same one (the owner is not told the same finding twice)."""
        return f"{self.rule.value}|{self.asset or ''}|{self.message}"

    def to_payload(self) -> dict[str, Any]:
        return {"severity": self.severity.value, "rule": self.rule.value, "asset": self.asset, "title": self.title,
                "message": self.message, "stages": list(self.stages)}

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> Finding | None:
        """None for anything that is not a finding this module wrote (an old or a forged payload)."""
        severity, rule = payload.get("severity"), payload.get("rule")
        if not isinstance(severity, str) or not isinstance(rule, str) or severity not in Severity._value2member_map_ \
                or rule not in Rule._value2member_map_:
            return None
        asset, title = payload.get("asset"), payload.get("title")
        return cls(Severity(severity), Rule(rule), asset if isinstance(asset, str) else None,
                   title if isinstance(title, str) else None, str(payload.get("message") or ""),
                   tuple(str(name) for name in payload.get("stages") or () if isinstance(name, str)))


def errors_of(findings: Iterable[Finding], stage: str | None = None, *, every_stage: bool = False) -> list[Finding]:
    """The errors about `stage` (None: a stage asked for ad hoc); `every_stage`: all errors."""
    return [found for found in findings if found.is_error and (every_stage or found.applies_to(stage))]


def check(assets: Sequence[AssetContent], rules: ContentRules) -> tuple[Finding, ...]:
    """Every finding about `assets` (the campaign's assets that are not archived), errors first."""
    found: list[Finding] = []
    for asset in assets:
        found += _asset_findings(asset, rules)
    kinds = {asset.kind for asset in assets}
    for requirement in rules.required:
        if requirement.kind not in kinds:
            before = (" before " + ", ".join(f'"{name}"' for name in requirement.stages)) if requirement.stages else ""
            found.append(Finding(Severity.ERROR, Rule.REQUIRED_ASSET_MISSING, None, None,
                                 f"The template asks for an asset of kind {requirement.kind}{before}, "
                                 "and none is attached.", requirement.stages))
    kept = []
    for finding in found:
        severity = rules.severity(finding.rule)
        if severity is not Severity.OFF:
            kept.append(Finding(severity, finding.rule, finding.asset, finding.title, finding.message, finding.stages))
    # Stable: within errors (then warnings), the campaign's own findings first, then each asset's in turn.
    return tuple(sorted(kept, key=lambda f: (not f.is_error, f.asset is not None)))


def _asset_findings(asset: AssetContent, rules: ContentRules) -> list[Finding]:
    found: list[Finding] = []

    def finding(rule: Rule, message: str) -> None:
        found.append(Finding(DEFAULT_SEVERITY[rule], rule, asset.ref, asset.title, message))

    if asset.kind == EMAIL:
        subject = " ".join((asset.subject or "").split())
        if not subject:
            finding(Rule.SUBJECT_EMPTY, "The subject is empty.")
        elif len(subject) > rules.subject_max_length:
            finding(Rule.SUBJECT_TOO_LONG, f"The subject has {len(subject)} characters; inboxes show about "
                                           f"{rules.subject_max_length}.")
        if not (asset.preheader or "").strip():
            finding(Rule.PREHEADER_MISSING, "There is no preheader (the preview text after the subject).")
    for where, text in (("subject", asset.subject), ("preheader", asset.preheader)):
        left = placeholders_in(text or "")
        if left:
            finding(Rule.PLACEHOLDER_TEXT, f"The {where} still has placeholder text: {_listed(left)}.")
    links: list[str] = []
    if asset.url and asset.kind == LINK:
        links.append(asset.url)
    elif asset.url and url_problem(asset.url):
        finding(Rule.MALFORMED_URL, f"Its address is not a web address: {url_problem(asset.url)}.")
    if asset.body and asset.body.strip():
        body = read_body(asset.body)
        if asset.kind == EMAIL and not body.has_unsubscribe:
            finding(Rule.UNSUBSCRIBE_MISSING, "The body has no unsubscribe link.")
        left = placeholders_in("\n".join([body.text, *body.alt_texts, *body.links]))
        if left:
            finding(Rule.PLACEHOLDER_TEXT, f"The body still has placeholder text: {_listed(left)}.")
        if body.images_without_alt:
            count = len(body.images_without_alt)
            names = _listed([_short(src or "(no src)") for src in body.images_without_alt])
            finding(Rule.IMAGE_WITHOUT_ALT, f"{count} image{'s have' if count != 1 else ' has'} no alt text: {names}.")
        links += [link for link in body.links if not _exempt_link(link)]
    malformed = [link for link in dict.fromkeys(links) if url_problem(link)]
    if malformed:
        finding(Rule.MALFORMED_URL, f"{_count(malformed, 'link')} not a working web address: {_listed(map(_short, malformed))}.")
    untagged = [link for link in dict.fromkeys(links) if link not in malformed and not has_utm(link)]
    if untagged:
        finding(Rule.LINK_WITHOUT_UTM, f"{_count(untagged, 'link')} no utm_ parameters: {_listed(map(_short, untagged))}.")
    return found


def _count(items: Sequence[str], noun: str) -> str:
    return f"1 {noun} has" if len(items) == 1 else f"{len(items)} {noun}s have"


def _listed(items: Iterable[str]) -> str:
    shown = list(dict.fromkeys(items))
    named = ", ".join(shown[:URLS_NAMED])
    return named + (f" and {len(shown) - URLS_NAMED} more" if len(shown) > URLS_NAMED else "")


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---------------------------------------------------------------- addresses


def url_problem(url: str) -> str | None:
    """Why `url` is not a web address people can open (None: it is one): http or https, a host, no spaces."""
    if len(url) > MAX_URL:
        return f"longer than {MAX_URL} characters"
    if any(char.isspace() or ord(char) < 32 or ord(char) == 127 for char in url):
        return f"{_short(url)} has spaces or control characters in it"
    if any(char in _NOT_IN_URLS for char in url):  # never unencoded in an address; markup pasted in is
        return f"{_short(url)} has characters no address has (<, >, quotes or backslashes)"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        return f"{_short(url)} is not readable as an address"
    if parts.scheme.lower() not in ("http", "https"):
        return f"{_short(url)} should start with https:// (or http://)"
    host = parts.hostname or ""
    if not host or (not host.startswith("[") and "." not in host and ":" not in host) or not _host_chars(host):
        return f"{_short(url)} has no proper host name"
    return None


_NOT_IN_URLS = frozenset('<>"`\\')


def _host_chars(host: str) -> bool:
    return all(char.isalnum() or char in ".-_:[]" for char in host) and ".." not in host


def has_utm(url: str) -> bool:
    try:
        return any(key.lower().startswith("utm_") for key, _ in parse_qsl(urlsplit(url).query, keep_blank_values=True))
    except ValueError:
        return False


def _is_provider_tag(text: str) -> bool:
    """A sending tool's merge tag in place of an address (`[[UNSUB_LINK_EN]]`, `*|UNSUB|*`, `{{ x }}`)."""
    stripped = text.strip()
    return stripped.startswith(("[[", "*|", "{{", "%%", "%5B%5B", "%7B%7B"))


def _exempt_link(link: str) -> bool:
    lowered = link.strip().lower()
    return (lowered.startswith(("mailto:", "tel:", "sms:", "#")) or "unsub" in lowered or _is_provider_tag(link)
            or not lowered)


# ---------------------------------------------------------------- placeholders


_TODO = re.compile(r"\bTODO\b")
_BRACKETED = re.compile(r"(?<!\[)\[[A-Z][A-Z0-9 _]{1,30}\](?!\])")  # [NAME], not Mailjet's [[UNSUB_LINK_EN]]


def placeholders_in(text: str) -> list[str]:
    """The placeholder text left in `text` (plain text, already taken out of any HTML): what, once each."""
    found = []
    if "lorem ipsum" in " ".join(text.split()).casefold():
        found.append('"lorem ipsum"')
    if _TODO.search(text):
        found.append('"TODO"')
    if any("unsub" not in tag.casefold() for tag in _brace_tags(text)):
        found.append('"{{"')
    bracketed = _BRACKETED.search(text)
    if bracketed:
        found.append(f'"{bracketed.group(0)}"')
    return found


def _brace_tags(text: str) -> list[str]:
    """What follows each `{{`, up to its `}}` (or the line's end when it is not closed)."""
    tags = []
    start = text.find("{{")
    while start != -1:
        end = text.find("}}", start + 2)
        line_end = text.find("\n", start + 2)
        stop = end if end != -1 and (line_end == -1 or end < line_end) else (line_end if line_end != -1 else len(text))
        tags.append(text[start + 2:stop])
        start = text.find("{{", stop)
    return tags


def _unsubscribe_tag(text: str) -> bool:
    lowered = text.casefold()
    return "[[unsub_link" in lowered or "*|unsub|*" in lowered or any("unsub" in tag for tag in _brace_tags(lowered))


# ---------------------------------------------------------------- bodies


@dataclass
class Body:
    """What the rules need of an email body."""

    is_html: bool = False
    text: str = ""  # the visible text (no script or style)
    links: list[str] = field(default_factory=list)  # hrefs in HTML; web addresses in plain text
    alt_texts: list[str] = field(default_factory=list)
    images_without_alt: list[str | None] = field(default_factory=list)  # their src
    has_unsubscribe: bool = False


_BLOCKS = frozenset({"p", "div", "br", "hr", "li", "ul", "ol", "table", "tr", "td", "th", "h1", "h2", "h3", "h4",
                     "h5", "h6", "section", "header", "footer", "blockquote", "center"})


class _BodyReader(HTMLParser):
    """Collects links (with their text), images and visible text; forgiving of broken markup."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags = 0
        self.text: list[str] = []
        self.anchors: list[tuple[str, list[str]]] = []  # (href, text pieces)
        self.open_anchor: tuple[str, list[str]] | None = None
        self.attribute_text: list[str] = []
        self.alt_texts: list[str] = []
        self.images_without_alt: list[str | None] = []
        self.hidden = 0  # inside script or style

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags += 1
        if tag in _BLOCKS:
            self.text.append("\n")  # `<p>lorem</p><p>ipsum</p>` reads as two lines; `<b>Un</b>sub` as one word
        values = dict(attrs)  # names come lower-cased; a repeated attribute: the last one wins
        self.attribute_text += [value for value in values.values() if value]
        if tag in ("script", "style"):
            self.hidden += 1
        elif tag == "a":
            self.open_anchor = (values.get("href") or "", [])  # an unclosed <a> ends at the next one
            self.anchors.append(self.open_anchor)
        elif tag == "img":
            if "alt" not in values:
                self.images_without_alt.append(values.get("src"))
            else:
                self.alt_texts.append(values.get("alt") or "")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag in ("script", "style", "a"):
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _BLOCKS:
            self.text.append("\n")
        if tag in ("script", "style") and self.hidden:
            self.hidden -= 1
        elif tag == "a":
            self.open_anchor = None

    def handle_data(self, data: str) -> None:
        if self.hidden:
            return
        self.text.append(data)
        if self.open_anchor is not None:
            self.open_anchor[1].append(data)


def read_body(body: str) -> Body:
    """An email body, HTML or plain text (plain when it has no tag at all)."""
    reader = _BodyReader()
    try:
        reader.feed(body)
        reader.close()
    except Exception:  # noqa: BLE001 - markup the parser gives up on: keep what it read so far
        pass
    if reader.tags == 0:
        return _plain_body(body)
    text = "".join(reader.text)
    anchors = [(href.strip(), " ".join("".join(pieces).split())) for href, pieces in reader.anchors]
    unsubscribe = any("unsub" in href.casefold() or "unsub" in words.casefold() for href, words in anchors)
    unsubscribe = unsubscribe or _unsubscribe_tag(text) or any(_unsubscribe_tag(value) for value in reader.attribute_text)
    return Body(is_html=True, text=text, links=[href for href, _ in anchors if href], alt_texts=reader.alt_texts,
                images_without_alt=reader.images_without_alt, has_unsubscribe=unsubscribe)


def _plain_body(body: str) -> Body:
    links = [word.rstrip(".,;:!?)]'\"") for word in body.split() if word.lower().startswith(("http://", "https://"))]
    unsubscribe = False
    for line in body.splitlines():
        lowered = line.casefold()
        if _unsubscribe_tag(line) or ("unsub" in lowered and ("http://" in lowered or "https://" in lowered)):
            unsubscribe = True
    return Body(is_html=False, text=body, links=links, has_unsubscribe=unsubscribe)
