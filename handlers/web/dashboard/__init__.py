"""The read-only dashboard: pages, JSON, a calendar feed and live updates, opened with a signed link.

Every route reads; none changes anything. Each module registers its own routes (`register(web_app)`);
`access` turns the link's token into what it may see, `render` holds the templates and the headers every
answer carries (`security_headers`). Static files (CSS, the live-update script) are served by the app
itself under STATIC_PATH: nothing is loaded from another origin.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from handlers.web.dashboard import api, calendar, live, pages, timeline
from handlers.web.dashboard.render import STATIC_PATH, security_headers

STATIC_DIR = Path(__file__).parent / "static"


def register(web_app: web.Application) -> None:
    web_app.middlewares.append(security_headers)
    web_app.router.add_static(STATIC_PATH, STATIC_DIR, append_version=False, follow_symlinks=False)
    for module in (live, calendar, api, timeline, pages):  # pages last: its `/dashboard/{token}` is the catch-all
        module.register(web_app)
