"""The OpenAPI 3.1 document and the docs page, both generated from the route registry and its pydantic
models (`registry.ROUTES`): nothing about a field is written twice.

Pydantic's JSON Schema is JSON Schema 2020-12, which OpenAPI 3.1 takes as is; the models' definitions
become `components.schemas`, a query model's fields become the operation's query parameters. The docs
page is plain HTML (autoescaped; no script, nothing from another origin).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any, Literal

from aiohttp import web
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from handlers.web.api_v1.errors import API_PREFIX
from handlers.web.api_v1.registry import ROUTES, Route
from handlers.web.api_v1.schemas import HEADER_SCHEMAS, SLACK_ID_PATTERN, ErrorOut, ref_pattern

TITLE = "Campaign manager API"
VERSION = "1.0.0"
REF_TEMPLATE = "#/components/schemas/{model}"
Mode = Literal["validation", "serialization"]
_pages = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=select_autoescape(["html"]))


def _models() -> list[tuple[type[BaseModel], Mode]]:
    wanted: dict[tuple[type[BaseModel], Mode], None] = {(ErrorOut, "serialization"): None}
    for each in ROUTES:
        wanted[(each.response, "serialization")] = None
        for model in (each.query, each.body):
            if model is not None:
                wanted[(model, "validation")] = None
    return list(wanted)


@cache
def document() -> dict[str, Any]:
    keys, definitions = models_json_schema(_models(), ref_template=REF_TEMPLATE)
    schemas = definitions.get("$defs", {})
    paths: dict[str, dict[str, Any]] = {}
    for each in ROUTES:
        paths.setdefault(API_PREFIX + each.path, {})[each.method.lower()] = _operation(each, keys, schemas)
    return {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": VERSION,
                 "description": "Campaigns, tasks, plans, the team and approvals, under the same rules as in Slack. "
                                "A token acts as one member and may do only what that member may."},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {"schemas": schemas,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                                      "description": "An API token, `cm_<id>_<secret>`"}}},
        "security": [{"bearer": []}],
    }


def _ref(keys: dict[tuple[type[BaseModel], Mode], Any], model: type[BaseModel], mode: Mode) -> dict[str, Any]:
    return dict(keys[(model, mode)])


def _operation(each: Route, keys: dict[Any, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    error = {"content": {"application/json": {"schema": _ref(keys, ErrorOut, "serialization")}}}
    parameters: list[dict[str, Any]] = []
    if each.ref_kind is not None:
        parameters.append({"name": "ref", "in": "path", "required": True, "description": f"A reference such as {each.ref_kind.value}-12",
                           "schema": {"type": "string", "pattern": ref_pattern(each.ref_kind)}})
    if each.query is not None:
        query_schema = schemas[_ref(keys, each.query, "validation")["$ref"].rsplit("/", 1)[1]]
        required = set(query_schema.get("required", ()))
        for name, prop in query_schema.get("properties", {}).items():
            parameters.append({"name": name, "in": "query", "required": name in required,
                               "schema": {k: v for k, v in prop.items() if k != "description"},
                               **({"description": prop["description"]} if "description" in prop else {})})
    if "{slack_user_id}" in each.path:
        parameters.append({"name": "slack_user_id", "in": "path", "required": True, "description": "A Slack user id",
                           "schema": {"type": "string", "pattern": SLACK_ID_PATTERN}})
    for header in each.headers:
        parameters.append({"name": header, "in": "header", "required": False,
                           "schema": HEADER_SCHEMAS.get(header, {"type": "string"})})
    responses: dict[str, Any] = {
        str(each.status): {"description": "OK",
                           "content": {"application/json": {"schema": _ref(keys, each.response, "serialization")}}},
        "401": {"description": "No token, or one that opens nothing", **error},
        "403": {"description": "Not allowed for this token's member (or a read token on a write)", **error},
        "429": {"description": "Too many requests; see Retry-After", **error},
    }
    if each.method == "GET":
        responses["304"] = {"description": "Not modified (If-None-Match matched the ETag)"}
    if each.ref_kind is not None or each.body is not None:
        responses["404"] = {"description": "No such thing", **error}
        responses["400"] = {"description": "Bad reference or input", **error}
    if each.query is not None or each.body is not None:
        responses["422"] = {"description": "A field is invalid; `fields` names each", **error}
    if each.method != "GET":
        responses["409"] = {"description": "A conflict with the current state", **error}
    operation: dict[str, Any] = {"operationId": each.operation_id, "summary": each.summary,
                                 "tags": [each.tag] if each.tag else [], "x-scope": each.scope,
                                 "parameters": parameters, "responses": responses}
    if each.body is not None:
        operation["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": _ref(keys, each.body, "validation")}}}
    return operation


def _fields(model: type[BaseModel] | None, mode: Mode) -> list[dict[str, Any]]:
    if model is None:
        return []
    schema = model.model_json_schema(mode=mode)
    required = set(schema.get("required", ()))
    return [{"name": name, "required": name in required, "type": _type_of(prop),
             "description": prop.get("description", "")} for name, prop in schema.get("properties", {}).items()]


def _type_of(prop: dict[str, Any]) -> str:
    if "$ref" in prop:
        return prop["$ref"].rsplit("/", 1)[1]
    if "enum" in prop:
        return " | ".join(str(v) for v in prop["enum"])
    if "anyOf" in prop:
        return " | ".join(_type_of(option) for option in prop["anyOf"])
    if prop.get("type") == "array":
        return f"list of {_type_of(prop.get('items', {}))}"
    return str(prop.get("format") or prop.get("type") or "any")


@cache
def docs_html() -> str:
    routes = [{"method": each.method, "path": API_PREFIX + each.path, "summary": each.summary, "scope": each.scope,
               "query": _fields(each.query, "validation"), "body": _fields(each.body, "validation"),
               "response": _fields(each.response, "serialization"), "response_name": each.response.__name__,
               "status": each.status, "headers": each.headers}
              for each in ROUTES]
    return _pages.get_template("docs.html").render(title=TITLE, version=VERSION, routes=routes,
                                                   openapi_path=API_PREFIX + "/openapi.json")


async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(document(), headers={"Cache-Control": "public, max-age=300"})


async def docs_page(request: web.Request) -> web.Response:
    return web.Response(text=docs_html(), content_type="text/html", charset="utf-8",
                        headers={"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
                                 "Cache-Control": "public, max-age=300", "X-Frame-Options": "DENY"})
