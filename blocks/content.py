"""Assets and findings as Slack text, shared by every surface that shows them: the approval request, `/campaign
show`, the App Home's neighbours, the owner's notice that content errors hold a stage.

Titles, subjects, addresses and findings are typed by people (or pasted from the web): every one is escaped,
and an address becomes a link only when it is a plain http(s) address (`link`). No form or modal here, so the
message renderers (`blocks.approvals`, `blocks.campaigns`, `blocks.notifications`) can import it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from blocks.text import context, fit_escaped, message, section
from models import Asset, Task
from services.campaign_content import CampaignContent, asset_ref
from services.content_checks import EMAIL, Finding, Severity
from services.refs import RefKind, format_ref
from services.signoffs import ContentHeld

FINDINGS_SHOWN = 15
ASSETS_SHOWN = 20
ICONS = {Severity.ERROR: ":x:", Severity.WARNING: ":warning:"}
_SAFE_URL = re.compile(r"^https?://[^\s<>|]+$")


def link(url: str | None, label: str) -> str:
    """`label` (escaped already) as a link to `url` when that is a plain web address; else the label."""
    if url and len(url) <= 1000 and _SAFE_URL.match(url):
        return f"<{url.replace('&', '&amp;')}|{label}>"
    return label


def finding_line(finding: Finding) -> str:
    about = f"{finding.asset} *{fit_escaped(finding.title or '', 80)}*: " if finding.asset else ""
    return f"{ICONS.get(finding.severity, '•')} {about}{fit_escaped(finding.message, 400)}"


def findings_text(findings: Sequence[Finding], limit: int = FINDINGS_SHOWN) -> str:
    lines = [finding_line(finding) for finding in findings[:limit]]
    if len(findings) > limit:
        lines.append(f"…and {len(findings) - limit} more")
    return "\n".join(lines)


def check_summary(findings: Sequence[Finding]) -> str:
    errors = sum(finding.is_error for finding in findings)
    warnings = len(findings) - errors
    if not findings:
        return ":white_check_mark: no findings"
    parts = ([f":x: {plural(errors, 'error')}"] if errors else []) + (
        [f":warning: {plural(warnings, 'warning')}"] if warnings else [])
    return " · ".join(parts)


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


# ---------------------------------------------------------------- the owner's notice (CONTENT_CHECKS_FAILED)


def content_held(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Content errors hold sign-off stages: every error, and how the stage opens."""
    notice = ContentHeld.from_payload(payload)
    name = fit_escaped(notice.campaign_name, 120)
    stages = ", ".join(f'"{fit_escaped(stage, 100)}"' for stage in notice.stages)
    count = plural(len(notice.errors), "content error")
    verb, them = ("holds", "it is") if len(notice.errors) == 1 else ("hold", "they are")
    return message(
        f"{notice.ref} {fit_escaped(notice.campaign_name, 80)}: {count} {verb} {stages}",
        [section(f":no_entry: *{notice.ref} {name}*: {count} {verb} {stages}. Nobody is asked to sign off until "
                 f"{them} fixed."),
         section(findings_text(notice.errors)),
         context(f"Fix the assets (`/campaign asset list {notice.ref}` shows them with their refs, "
                 f"`/campaign asset draft {notice.ref}` writes an email draft) and the stage opens by itself. "
                 f"`/campaign checks {notice.ref}` shows every finding.")],
    )


def content_held_mail(payload: Mapping[str, Any]) -> tuple[str, list[str]]:
    """The same notice as an email's subject and plain lines (`blocks.emails` escapes them for HTML)."""
    notice = ContentHeld.from_payload(payload)
    lines = [notice.summary, "Nobody is asked to sign off until they are fixed:"]
    lines += [f"• {error.asset + ' ' + (error.title or '') + ': ' if error.asset else ''}{error.message}"
              for error in notice.errors]
    lines.append(f"Fix the assets in Slack and the stage opens by itself; /campaign checks {notice.ref} shows every "
                 "finding.")
    return notice.summary, lines


# ---------------------------------------------------------------- lists


def asset_line(asset: Asset, tasks: Mapping[int, Task]) -> str:
    title = link(asset.url, f"*{fit_escaped(asset.name, 120)}*")
    line = f"{asset_ref(asset.id)} {title} ({fit_escaped(asset.kind, 40)})"
    if asset.kind == EMAIL and asset.subject:
        line += f" · subject “{fit_escaped(asset.subject, 120)}”"
    task = tasks.get(asset.task_id) if asset.task_id is not None else None
    if task is not None:
        line += f" · deliverable of {format_ref(RefKind.TASK, task.id)}"
    return line


def assets_text(content: CampaignContent, tasks: Mapping[int, Task], campaign_ref: str) -> str:
    """`/campaign show`'s part: the assets and the checks' summary (`section` cuts it to fit)."""
    if not content.assets:
        head = f"*Assets* · none yet: `/campaign asset add {campaign_ref} <link>` or `/campaign asset draft {campaign_ref}`"
        return head + (f"\n{check_summary(content.findings)}\n{findings_text(content.findings, 5)}"
                       if content.findings else "")
    lines = [f"• {asset_line(asset, tasks)}" for asset in content.assets[:ASSETS_SHOWN]]
    if len(content.assets) > ASSETS_SHOWN:
        lines.append(f"…and {len(content.assets) - ASSETS_SHOWN} more: `/campaign asset list {campaign_ref}`")
    checks = f"*Content checks* · {check_summary(content.findings)}"
    if content.findings:
        checks += f" · `/campaign checks {campaign_ref}`"
    return f"*Assets* ({len(content.assets)})\n" + "\n".join(lines) + "\n" + checks
