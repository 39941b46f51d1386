"""App factory: one AsyncApp with every listener registered once, mounted on one aiohttp app."""

from __future__ import annotations

import logging

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from handlers.deps import Deps
from handlers.slack import register_all
from handlers.slack.context import inject_deps
from handlers.slack.dedupe import drop_repeated_events
from handlers.slack.errors import handle_listener_error
from handlers.web import DEPS_KEY, health

log = logging.getLogger(__name__)

SLACK_EVENTS_PATH = "/slack/events"
MAX_BODY_BYTES = 1024 * 1024  # Slack payloads are far smaller; anything bigger is not Slack


def build_slack_client(*, token: str, base_url: str, session: aiohttp.ClientSession | None) -> AsyncWebClient:
    return AsyncWebClient(
        token=token,
        base_url=base_url,
        session=session,  # one shared connection pool instead of a new session per call
        retry_handlers=[AsyncConnectionErrorRetryHandler(), AsyncRateLimitErrorRetryHandler(max_retry_count=2)],
    )


def build_slack_app(
    deps: Deps,
    *,
    client: AsyncWebClient,
    signing_secret: str,
    process_before_response: bool = False,
) -> AsyncApp:
    app = AsyncApp(
        client=client,
        signing_secret=signing_secret,
        process_before_response=process_before_response,
        raise_error_for_unhandled_request=False,
    )
    app.use(inject_deps(deps))
    app.use(drop_repeated_events)
    app.error(handle_listener_error)
    register_all(app)
    return app


def build_web_app(deps: Deps, slack_app: AsyncApp | None) -> web.Application:
    web_app = web.Application(client_max_size=MAX_BODY_BYTES)
    web_app[DEPS_KEY] = deps
    if slack_app is not None:
        web_app.router.add_post(SLACK_EVENTS_PATH, slack_endpoint(slack_app))
    health.register(web_app)
    return web_app


def slack_endpoint(slack_app: AsyncApp):  # type: ignore[no-untyped-def]
    async def handle(request: web.Request) -> web.Response:
        try:
            bolt_request = await to_bolt_request(request)
        except UnicodeDecodeError:
            return web.Response(status=400, text="body is not UTF-8")
        bolt_response = await slack_app.async_dispatch(bolt_request)
        return await to_aiohttp_response(bolt_response)

    return handle
