"""Templates and headers of the dashboard: HTML by Jinja2 with autoescape on, JSON by aiohttp.

Every answer under the dashboard's paths carries a strict Content-Security-Policy (scripts, styles,
images and fonts from this origin only, no inline script, no framing), `Referrer-Policy: no-referrer`
(the token is in the URL), `X-Content-Type-Options: nosniff` and `X-Frame-Options: DENY`. A refused link
and a request no route knows get a short plain page; an unexpected error gets one with an error id
(logged with the traceback), never a stack trace.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import jinja2
from aiohttp import web

from handlers.web.dashboard.access import Refused
from handlers.web.request_ids import route_of

log = logging.getLogger(__name__)

STATIC_PATH = "/static"
DASHBOARD_PREFIXES = ("/dashboard", "/api/dashboard", STATIC_PATH)
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
       "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
HEADERS = {
    "Content-Security-Policy": CSP,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}
FRESH_LINK = "Ask for a fresh link in Slack with /dashboard (or /dashboard CM-12 for one campaign)."

templates = jinja2.Environment(
    loader=jinja2.PackageLoader("handlers.web.dashboard", "templates"),
    autoescape=jinja2.select_autoescape(["html", "svg", "xml"], default_for_string=True, default=True),
    undefined=jinja2.StrictUndefined,  # a misspelt name fails the test that renders it, not silently
    trim_blocks=True,
    lstrip_blocks=True,
)


def page(template: str, *, status: int = 200, **context: Any) -> web.Response:
    """An HTML page from `template` (the headers are added by `security_headers`)."""
    html = templates.get_template(template).render(**context)
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8",
                        headers={"Cache-Control": "no-store"})


def refusal(status: int, reason: str, *, json: bool = False) -> web.Response:
    """A refused link or a bad request: what went wrong and how to get a fresh link, nothing else."""
    hint = FRESH_LINK if status in (401, 403) else ""
    if json:
        return web.json_response({"error": reason, "hint": hint} if hint else {"error": reason}, status=status)
    return page("refused.html", status=status, reason=reason, hint=hint)


def wants_json(request: web.Request) -> bool:
    return request.path.startswith("/api/")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith(DASHBOARD_PREFIXES):
        return await handler(request)
    try:
        response = await handler(request)
    except Refused as refused:
        response = refusal(refused.status, refused.reason, json=wants_json(request))
    except web.HTTPException as error:
        if error.status >= 400:
            response = refusal(error.status, error.reason or "Not found", json=wants_json(request))
        else:
            raise _with_headers(error) from None
    except Exception:
        error_id = uuid.uuid4().hex[:8]
        # The route, not the path: a dashboard path holds its link's token.
        log.exception("dashboard request %s %s failed (error id %s)", request.method, route_of(request), error_id)
        response = refusal(500, f"Something went wrong on our side (error id {error_id}).", json=wants_json(request))
    return _with_headers(response)


def _with_headers(response: web.StreamResponse) -> Any:
    if not response.prepared:
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
    return response
