"""The API's routes, declared once: method, path, summary, scope and the pydantic models of the query,
the body and the answer. The router is filled from this list (`mount`) and so is the OpenAPI document
(`openapi`), so a route cannot exist without its documentation, nor the documentation without its route.

Every route runs the same steps before its handler: the token and its scope (`auth`), the rate limit,
the path's ref, the query and the body validated by their models (a bad one is a 422 naming each field).
Reads answer with an `ETag` (a hash of the body) and a 304 to a matching `If-None-Match`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ValidationError

from handlers.slack import inflight
from handlers.web import DEPS_KEY
from handlers.web.api_v1.auth import Caller, caller_of
from handlers.web.api_v1.errors import API_PREFIX, ApiError
from handlers.web.api_v1.schemas import SLACK_ID_PATTERN, ref_pattern
from services.errors import DomainError
from services.refs import RefKind, format_ref, parse_ref

Scope = Literal["read", "write"]
MAX_BODY_BYTES = 64 * 1024


@dataclass(frozen=True)
class Call:
    """What a handler gets: the caller, the path's ref as a row id, the validated query and body."""

    request: web.Request
    caller: Caller
    ref_id: int | None
    query: Any
    body: Any
    person: str | None = None  # the path's `{slack_user_id}`, checked against its pattern


@dataclass(frozen=True)
class Answer:
    body: BaseModel
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)


Handler = Callable[[Call], Awaitable[BaseModel | Answer]]


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # under API_PREFIX; `{ref}` (of the kind `ref_kind`) or `{slack_user_id}` the path parameter
    summary: str
    handler: Handler
    response: type[BaseModel]
    scope: Scope = "read"
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    ref_kind: RefKind | None = None
    status: int = 200
    tag: str = ""
    headers: tuple[str, ...] = ()  # request headers the route reads, for the documentation

    @property
    def operation_id(self) -> str:
        return self.handler.__name__


ROUTES: list[Route] = []


def route(method: str, path: str, summary: str, *, response: type[BaseModel], **options: Any) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        ROUTES.append(Route(method=method, path=path, summary=summary, handler=handler, response=response, **options))
        return handler

    return register


def mount(web_app: web.Application) -> None:
    for each in ROUTES:
        web_app.router.add_route(each.method, API_PREFIX + each.path, endpoint(each))


def field_errors(error: ValidationError, *, where: str = "") -> dict[str, str]:
    fields: dict[str, str] = {}
    for problem in error.errors(include_url=False, include_input=False):
        name = ".".join(str(part) for part in problem["loc"]) or where or "body"
        fields.setdefault(name, problem["msg"])
    return fields


def call_of(spec: Route, request: web.Request, caller: Caller, *, ref: str | None = None, person: str | None = None,
            query: Any = None, body: Any = None) -> Call:
    """The handler's input from raw values (the path's ref, the query's and the body's data), each checked
    as the route declares; the one way in for both faces of the API, REST (`endpoint`) and MCP."""
    return Call(request=request, caller=caller, ref_id=_ref(spec, ref), person=_person(person),
                query=_validated(spec.query, query or {}, "query") if spec.query else None,
                body=_validated(spec.body, body if body is not None else {}, "body") if spec.body else None)


async def answer_of(spec: Route, call: Call) -> Answer:
    answer = await spec.handler(call)
    return Answer(answer, status=spec.status) if isinstance(answer, BaseModel) else answer


def endpoint(spec: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        async with inflight.slot(request.app[DEPS_KEY].inflight):  # the pool's share, as Slack's work; else 503
            caller = await caller_of(request, scope=spec.scope)
            call = call_of(spec, request, caller, ref=request.match_info.get("ref"),
                           person=request.match_info.get("slack_user_id"),
                           query=_single_values(request) if spec.query else None,
                           body=await _json_body(request) if spec.body else None)
            answer = await answer_of(spec, call)
        text = answer.body.model_dump_json()
        headers = dict(answer.headers)
        if request.method == "GET":
            tag = '"' + hashlib.sha256(text.encode()).hexdigest()[:32] + '"'
            headers["ETag"] = tag
            headers["Cache-Control"] = "private, no-cache"  # keep it, but ask again (with If-None-Match)
            if _matches(request.headers.get("If-None-Match"), tag):
                return web.Response(status=304, headers=headers)
        return web.Response(text=text, status=answer.status, content_type="application/json", headers=headers)

    handle.__name__ = spec.operation_id
    return handle


def _ref(spec: Route, text: str | None) -> int | None:
    if spec.ref_kind is None:
        return None
    if text is None:
        raise ApiError(422, "invalid", "`ref`: say which one.", fields={"ref": "Required."})
    try:
        number = parse_ref(text, spec.ref_kind)
    except DomainError as error:
        status, code = (404, "not_found") if "There is no" in str(error) else (400, "bad_ref")
        raise ApiError(status, code, str(error)) from None
    if not re.fullmatch(ref_pattern(spec.ref_kind), text):  # Slack's leniency (`CM-12` in backticks) is not documented
        raise ApiError(400, "bad_ref", f"Write the reference plainly, like {format_ref(spec.ref_kind, number)}.")
    return number


def _person(text: str | None) -> str | None:
    if text is None:
        return None
    if not re.fullmatch(SLACK_ID_PATTERN, text):
        shown = text if len(text) <= 40 else text[:39] + "…"
        raise ApiError(400, "bad_person", f"`{shown}` is not a Slack user id; they look like U0ALICE.")
    return text


def _single_values(request: web.Request) -> dict[str, str]:
    values: dict[str, str] = {}
    for key in request.query:
        given = request.query.getall(key)
        if len(given) > 1:
            raise ApiError(422, "invalid", f"`{key}` is given {len(given)} times.", fields={key: "Give it once."})
        values[key] = given[0]
    return values


async def _json_body(request: web.Request) -> Any:
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise ApiError(413, "too_large", f"A request body holds at most {MAX_BODY_BYTES // 1024} KB.")
    raw = await request.content.read(MAX_BODY_BYTES + 1)
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(413, "too_large", f"A request body holds at most {MAX_BODY_BYTES // 1024} KB.")
    try:
        return json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "bad_json", "The body is not JSON.") from None


def _validated(model: type[BaseModel], data: Any, where: str) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        fields = field_errors(error, where=where)
        first = next(iter(fields.items()))
        raise ApiError(422, "invalid", f"`{first[0]}`: {first[1]}", fields=fields) from None


def _matches(if_none_match: str | None, tag: str) -> bool:
    if not if_none_match:
        return False
    offered = [item.strip().removeprefix("W/") for item in if_none_match.split(",")]
    return "*" in offered or tag in offered
