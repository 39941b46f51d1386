"""The MCP face of the API, for AI agents: streamable HTTP at /mcp, on the official `mcp` SDK.

The same bearer tokens as /api/v1 (`api_v1.auth`), checked by our own route before the SDK sees the
request, and the same rate limit. Every tool is one of the REST API's routes (`tools`), run through the
same parsing, services and `services.authz` rules: an agent can do only what its token's member could
do in Slack. The SDK's transport is ASGI; `transport` runs it inside this aiohttp app.
"""

from __future__ import annotations

from aiohttp import web

from handlers.web.mcp import transport
from handlers.web.mcp.tools import build_server

__all__ = ["register"]


def register(web_app: web.Application) -> None:
    transport.mount(web_app, build_server())
