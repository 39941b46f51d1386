"""App factory: one AsyncApp with every listener registered once, mounted on one aiohttp app."""

from __future__ import annotations

import logging

import aiohttp
from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from handlers import metrics as counted
from handlers.deps import Deps
from handlers.slack import register_all
from handlers.slack.context import inject_deps
from handlers.slack.dedupe import drop_repeated_events
from handlers.slack.errors import handle_listener_error
from handlers.slack.replies import replies_on_shared_session
from handlers.web import DEPS_KEY, api_v1, dashboard, health, mailjet, mcp, request_ids
from handlers.web import metrics as metrics_route
from handlers.web.replays import replay_cache
from handlers.web.slack_gate import MAX_BODY_BYTES, SlackGate
from handlers.web.slack_gate import slack_endpoint as gated_endpoint
from services import plans

log = logging.getLogger(__name__)

SLACK_EVENTS_PATH = "/slack/events"


def build_slack_client(*, token: str, base_url: str, session: aiohttp.ClientSession | None) -> AsyncWebClient:
    return AsyncWebClient(
        token=token,
        base_url=base_url,
        session=session,  # one shared connection pool instead of a new session per call
        retry_handlers=counted.counting(
            [AsyncConnectionErrorRetryHandler(), AsyncRateLimitErrorRetryHandler(max_retry_count=2)]),
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
    app.use(counted.count_slack_requests)
    app.use(inject_deps(deps))
    app.use(drop_repeated_events(deps))
    app.use(replies_on_shared_session())
    app.error(handle_listener_error)
    register_all(app)
    return app


def build_web_app(deps: Deps, slack_app: AsyncApp | None) -> web.Application:
    web_app = web.Application(client_max_size=MAX_BODY_BYTES)
    web_app[DEPS_KEY] = deps
    web_app.on_response_prepare.append(_plain_server_header)
    request_ids.install(web_app)  # first middleware: every later one's log lines carry the id
    metrics_route.register(web_app)  # before the routes' own middlewares: it counts the status they settle on
    plans.observe_replans(counted.observe_replan)
    if slack_app is not None:
        web_app.router.add_post(SLACK_EVENTS_PATH, slack_endpoint(slack_app, deps))
    health.register(web_app)
    dashboard.register(web_app)
    api_v1.register(web_app)
    mcp.register(web_app)
    mailjet.register(web_app)
    return web_app


def slack_endpoint(slack_app: AsyncApp, deps: Deps):  # type: ignore[no-untyped-def]
    """Bolt behind the gate: size, signature on the raw bytes and replays are checked first."""
    secret = deps.settings.slack_signing_secret
    assert secret is not None, "settings require SLACK_SIGNING_SECRET for Slack over HTTP"
    replays = replay_cache(redis=deps.redis, namespace=deps.settings.redis_namespace)
    gate = SlackGate(signing_secret=secret.get_secret_value(), replays=replays, max_body_bytes=MAX_BODY_BYTES)
    return gated_endpoint(slack_app.async_dispatch, gate, deps.inflight)


async def _plain_server_header(request: web.Request, response: web.StreamResponse) -> None:
    # aiohttp would announce `Python/3.x aiohttp/3.x`; it only fills the header in when it is unset.
    response.headers["Server"] = "campaign-manager"
