"""How the API says no: one JSON shape, `{"error": <code>, "detail": <sentence>}` (plus `"fields"` for 422).

`ApiError` is raised by the API's own plumbing (auth, limits, parsing); domain errors from the services
(`services.errors`) are mapped here, so a handler never repeats try/except. The middleware acts only under
/api/v1 and turns anything unexpected into a 500 with a log line, never a stack trace in the answer.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

from aiohttp import web

from handlers.slack.inflight import Busy
from services.errors import DomainError, InvalidInput, NotAllowed, NotFound
from services.fields import InvalidField

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
BUSY_RETRY_AFTER = 1  # seconds: a slot frees within a request's time
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    def __init__(self, status: int, error: str, detail: str, *, fields: Mapping[str, str] | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail = status, error, detail
        self.fields = dict(fields or {})
        self.headers = dict(headers or {})


def json_error(error: ApiError) -> web.Response:
    body: dict[str, object] = {"error": error.error, "detail": error.detail}
    if error.fields:
        body["fields"] = error.fields
    return web.json_response(body, status=error.status, headers={"Cache-Control": "no-store", **error.headers})


def from_domain(error: DomainError) -> ApiError:
    """The services' refusals: a named field 422, bad input 400, nothing there 404, not allowed 403; no
    free slot for the work (`inflight.Busy`) 503, nothing done."""
    if isinstance(error, Busy):
        return ApiError(503, "busy", str(error), headers={"Retry-After": str(BUSY_RETRY_AFTER)})
    if isinstance(error, InvalidField):
        return ApiError(422, "invalid", str(error), fields={error.field: str(error)})
    if isinstance(error, NotFound):
        return ApiError(404, "not_found", str(error))
    if isinstance(error, NotAllowed):
        return ApiError(403, "forbidden", str(error))
    if isinstance(error, InvalidInput):
        return ApiError(400, "bad_request", str(error))
    return ApiError(409, "conflict", str(error))


@web.middleware
async def api_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith(API_PREFIX):
        return await handler(request)
    try:
        response = await handler(request)
    except ApiError as error:
        return json_error(error)
    except DomainError as error:
        return json_error(from_domain(error))
    except web.HTTPException as error:  # the router's own: no such route (404), wrong method (405)
        if error.status < 400:
            raise
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(error.status, "bad_request")
        headers = {"Allow": error.headers["Allow"]} if "Allow" in error.headers else None
        return json_error(ApiError(error.status, code, error.reason, headers=headers))
    except Exception:
        log.exception("API request %s %s failed", request.method, request.path)
        return json_error(ApiError(500, "internal", "Something went wrong on our side; it has been logged."))
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response


T = TypeVar("T")


def parsed(field: str, parse: Callable[[str], T], text: str) -> T:
    """`parse(text)`, or a 422 naming `field` with the parser's own words (a ref, a date, a duration)."""
    try:
        return parse(text)
    except DomainError as error:
        raise InvalidField(field, str(error)) from None
