"""The REST API under /api/v1: campaigns, tasks, plans, the team and approvals for integrations.

It goes through the same services and `services.authz` rules as Slack: a token acts as one member
(`auth`). Routes are declared once in `registry` (by `reads`, `writes` and `profiles`), which fills
the router and the OpenAPI document (`openapi`). `errors.api_errors` answers every failure under /api/v1 as JSON.
"""

from __future__ import annotations

from aiohttp import web

from handlers.web import DEPS_KEY
from handlers.web.api_v1 import openapi, profiles, reads, writes
from handlers.web.api_v1.auth import LIMITER_KEY
from handlers.web.api_v1.errors import API_PREFIX, api_errors
from handlers.web.api_v1.limits import RateLimiter
from handlers.web.api_v1.registry import mount

__all__ = ["profiles", "reads", "register", "writes"]


def register(web_app: web.Application) -> None:
    deps = web_app[DEPS_KEY]
    web_app[LIMITER_KEY] = RateLimiter(redis=deps.redis, namespace=deps.settings.redis_namespace,
                                         limit=deps.settings.api_rate_limit_per_minute)
    web_app.middlewares.append(api_errors)
    web_app.router.add_get(API_PREFIX + "/openapi.json", openapi.openapi_json)
    web_app.router.add_get(API_PREFIX + "/docs", openapi.docs_page)
    mount(web_app)
