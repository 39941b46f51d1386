"""Every HTTP request gets an id: the caller's `X-Request-Id` when well-formed, else a new one.

The id is bound for the request's handler (`handlers.request_ids`), so each log line the request causes,
in its listeners and in the jobs it queues, carries it; the answer echoes it as `X-Request-Id`, so a
person reporting a problem can quote it. The header is set when the response is prepared, which covers
streamed answers (the dashboard's live events, MCP) and error pages alike.

One DEBUG line per request names the route by its template (`/dashboard/{token}/week`), never the path
a caller sent: the dashboard's paths hold its link's token.
"""

from __future__ import annotations

import logging
import time

from aiohttp import web
from aiohttp.typedefs import Handler

from handlers import request_ids

log = logging.getLogger(__name__)

REQUEST_ID_KEY = web.RequestKey("request_id", str)


def install(web_app: web.Application) -> None:
    web_app.middlewares.append(bind_request_id)
    web_app.on_response_prepare.append(_answer_with_id)


@web.middleware
async def bind_request_id(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = request_ids.accepted(request.headers.get(request_ids.HEADER)) or request_ids.new_id()
    request[REQUEST_ID_KEY] = request_id
    started = time.perf_counter()
    status = 500
    with request_ids.bound(request_id):
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as answer:
            status = answer.status
            raise
        finally:
            log.debug("%s %s answered %d", request.method, route_of(request), status,
                      extra={"duration_ms": round((time.perf_counter() - started) * 1000, 1)})


def route_of(request: web.Request) -> str:
    """The route's template, safe to log; `(no route)` for a path no route matches."""
    info = request.match_info
    route = info.route if info is not None else None
    resource = route.resource if route is not None else None
    return resource.canonical if resource is not None else "(no route)"


async def _answer_with_id(request: web.Request, response: web.StreamResponse) -> None:
    request_id = request.get(REQUEST_ID_KEY)
    if request_id is not None:
        response.headers[request_ids.HEADER] = request_id
