"""/mcp over HTTP: our bearer check and rate limit, then the SDK's streamable HTTP transport.

Stateless, with JSON answers: every POST carries one JSON-RPC message and gets its answer in the same
response, and no session lives in one process's memory, so any instance behind a load balancer can
answer any request (issue 16's fleet) and a deploy loses nothing. The SDK's session manager is ASGI;
`aiohttp_asgi` bridges one aiohttp request to it, and the caller our route authenticated rides along in
the ASGI scope's `state`, where the tools read it (`caller_in`).

The manager runs in a task of its own for the app's lifetime: it holds an anyio task group, which must
be left by the task that entered it, and aiohttp may start and clean up an app from different tasks.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp_asgi.resource import ASGIContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings

from handlers.slack import inflight
from handlers.slack.inflight import Busy
from handlers.web import DEPS_KEY
from handlers.web.api_v1.auth import Caller, caller_of
from handlers.web.api_v1.errors import ApiError, from_domain, json_error
from handlers.web.api_v1.registry import MAX_BODY_BYTES

PATH = "/mcp"
STATE_KEY = "campaign_manager"
MANAGER_KEY = web.AppKey("mcp_manager", StreamableHTTPSessionManager)


@dataclass(frozen=True)
class McpCaller:
    """Who sent this MCP request, and the aiohttp request it came in (the API's handlers read the app
    and the headers from it)."""

    caller: Caller
    request: web.Request


def caller_in(ctx: Context) -> McpCaller:
    found = getattr(getattr(ctx.request_context.request, "state", None), STATE_KEY, None)
    if not isinstance(found, McpCaller):  # only our route reaches the manager; this would be a wiring bug
        raise RuntimeError("an MCP request arrived without its caller")
    return found


class _WithCaller(ASGIContext):
    """The bridge's ASGI scope, with the authenticated caller in `state` (Starlette's `request.state`)."""

    def __init__(self, app: Any, request: web.Request, caller: McpCaller) -> None:
        super().__init__(app, request, root_path="")
        self._caller = caller

    @property
    def scope(self) -> Any:
        scope = super().scope
        # ASGI scopes may carry "state" (the lifespan-state extension); aiohttp-asgi's ScopeDict omits it.
        scope["state"] = {STATE_KEY: self._caller}  # type: ignore[typeddict-unknown-key]
        return scope


def mount(web_app: web.Application, server: MCPServer) -> None:
    manager = StreamableHTTPSessionManager(
        app=server._lowlevel_server,  # the SDK's own way to serve an MCPServer (its streamable_http_app does this)
        stateless=True, json_response=True, max_request_body_size=MAX_BODY_BYTES,
        # The Host/Origin checks guard servers that trust whoever can reach them; every request here
        # needs a bearer token, which a rebinding page does not have. Behind a proxy the Host varies.
        security_settings=TransportSecuritySettings(enable_dns_rebinding_protection=False))
    web_app[MANAGER_KEY] = manager
    web_app.cleanup_ctx.append(_running)
    web_app.router.add_route("*", PATH, endpoint)


async def _running(web_app: web.Application) -> AsyncIterator[None]:
    ready, stop = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with web_app[MANAGER_KEY].run():
            ready.set()
            await stop.wait()

    task = asyncio.create_task(hold(), name="mcp-session-manager")
    await asyncio.wait([task, asyncio.create_task(ready.wait())], return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()  # it failed to start: say why
    yield
    stop.set()
    await task


async def endpoint(request: web.Request) -> web.StreamResponse:
    try:
        # The pool's share, as for Slack's work and the REST API: the tool runs in a task the SDK starts
        # from this one, which inherits the slot (`inflight` lets a nested unit of work reuse it).
        async with inflight.slot(request.app[DEPS_KEY].inflight):
            # Reads and writes share one endpoint: a write tool checks the token's scope itself (`tools`).
            caller = await caller_of(request, scope="read")
            bridge = _WithCaller(request.app[MANAGER_KEY].handle_request, request,
                                 McpCaller(caller=caller, request=request))
            return await bridge.get_response()
    except ApiError as error:
        return json_error(error)
    except Busy as busy:
        return json_error(from_domain(busy))
