"""HTTP routes other than Slack's: health now, the read-only dashboard later."""

from __future__ import annotations

from aiohttp import web

from handlers.deps import Deps

DEPS_KEY = web.AppKey("deps", Deps)
