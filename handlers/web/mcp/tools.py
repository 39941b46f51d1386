"""The MCP server's tools and resources: each one is a REST route of /api/v1, named for an agent.

A tool's arguments are its route's path ref and the fields of its route's query or body model, and its
output schema is the route's response model, so the two faces cannot drift apart. A call goes through
`registry.call_of` and the route's own handler, exactly as the REST request would: the same checks, the
same services, the same `services.authz` refusals. A refusal is answered as the tool's error (an MCP
result with `isError`, the sentence Slack or the API would say), never as a crash; the SDK answers
malformed arguments the same way.

Left to people on purpose: deciding approvals (a sign-off is a person's), creating, launching or cancelling
campaigns. The REST API offers those to integrations that act for a person.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field
from pydantic.fields import FieldInfo

from handlers.web.api_v1.errors import ApiError, from_domain
from handlers.web.api_v1.openapi import VERSION
from handlers.web.api_v1.registry import ROUTES, Route, answer_of, call_of
from handlers.web.api_v1.schemas import ref_pattern
from handlers.web.mcp.transport import McpCaller, caller_in
from services.errors import DomainError

NAME = "campaign-manager"
INSTRUCTIONS = (
    "Marketing campaigns planned toward a launch date: their tasks, plan health, approvals and schedule. "
    "Refs are the ones people use in Slack: CM-12 (campaign), T-7 (task), AP-3 (approval); people are "
    "Slack user ids (U0ALICE). You act as the member your token belongs to and may do only what they may."
)


@dataclass(frozen=True)
class Tool:
    name: str
    operation: str  # the REST route's operation id (its handler's name)
    hint: str = ""  # what an agent should know beyond the route's summary


TOOLS = (
    Tool("list_campaigns", "list_campaigns", "Open campaigns by default; page with `cursor`."),
    Tool("show_campaign", "show_campaign"),
    Tool("plan_health", "show_plan", "Risk, buffer left, projected launch and the critical path."),
    Tool("week_schedule", "week_schedule", "Launches, milestones and tasks due each day of one week."),
    Tool("campaign_metrics", "campaign_metrics"),
    Tool("list_tasks", "list_tasks", "Filter by campaign, assignee or status; page with `cursor`."),
    Tool("show_task", "show_task"),
    Tool("create_task", "create_task", "The campaign is re-planned; its owner and team may add tasks."),
    Tool("update_task", "update_task",
         "Change the status (in_progress, done, blocked with a reason), assignee, estimate or due date."),
    Tool("comment_on_task", "comment_on_task"),
    Tool("request_approval", "request_approval", "The campaign's owner may; approvers are asked in Slack."),
    Tool("my_approvals", "my_approvals"),
    Tool("list_team", "list_team"),
)


class Refused(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status


def build_server() -> MCPServer:
    with _logging_left_alone():
        server: MCPServer = MCPServer(name=NAME, instructions=INSTRUCTIONS, version=VERSION, log_level="WARNING")
    routes = {route.operation_id: route for route in ROUTES}
    for tool in TOOLS:
        route = routes[tool.operation]
        server.add_tool(
            _tool_function(route), name=tool.name, description=" ".join(filter(None, (route.summary + ".", tool.hint))),
            annotations=ToolAnnotations(read_only_hint=route.scope == "read", destructive_hint=False,
                                        idempotent_hint=route.method == "GET", open_world_hint=False))
    _add_resources(server, routes)
    return server


async def invoke(route: Route, who: McpCaller, arguments: dict[str, Any]) -> BaseModel:
    """Run `route` for `who` with the tool's arguments, as its REST request would run; a refusal is `Refused`."""
    try:
        if route.scope == "write" and who.caller.scope != "write":
            raise ApiError(403, "forbidden", "This token may only read; ask an admin for a token with scope=write.")
        given = {name: value for name, value in arguments.items() if name != "ref"}
        call = call_of(route, who.request, who.caller, ref=arguments.get("ref"),
                       query=given if route.query else None, body=given if route.body else None)
        return (await answer_of(route, call)).body
    except ApiError as error:
        raise Refused(error.status, _sentence(error)) from None
    except DomainError as error:
        refusal = from_domain(error)
        raise Refused(refusal.status, _sentence(refusal)) from None


def _sentence(error: ApiError) -> str:
    others = [f"`{name}`: {text}" for name, text in error.fields.items()
              if name not in error.detail and text not in error.detail]
    return " ".join([error.detail, *others])


# ---------------------------------------------------------------- tools from routes


def _tool_function(route: Route) -> Callable[..., Any]:
    """An async function whose signature is the route's ref and model fields (the SDK reads the tool's
    input schema from it) and whose return annotation is the route's response (its output schema)."""
    defaults: dict[str, Any] = {}
    parameters = []
    if route.ref_kind is not None:
        described = Field(pattern=ref_pattern(route.ref_kind), description=f"A reference such as {route.ref_kind.value}-12")
        parameters.append(inspect.Parameter("ref", inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[str, described]))
    for model in (route.query, route.body):
        for name, field in (model.model_fields if model is not None else {}).items():
            default = _default(field)
            if default is not inspect.Parameter.empty:
                defaults[name] = default
            parameters.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                                annotation=_annotation(field)))
    parameters.append(inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=Context))

    async def run(ctx: Context, **arguments: Any) -> BaseModel:
        # What was left at its default is left out, as a REST client would leave it out: a PATCH
        # changes only the fields it names.
        given = {name: value for name, value in arguments.items() if name not in defaults or value != defaults[name]}
        try:
            return await invoke(route, caller_in(ctx), given)
        except Refused as refused:
            raise ToolError(str(refused)) from None

    run.__signature__ = inspect.Signature(parameters, return_annotation=route.response)  # type: ignore[attr-defined]
    run.__name__ = route.operation_id
    return run


def _default(field: FieldInfo) -> Any:
    if field.default_factory is not None:
        return field.default_factory()  # type: ignore[call-arg]
    return inspect.Parameter.empty if field.is_required() else field.default


def _annotation(field: FieldInfo) -> Any:
    """The field's type with its constraints and documentation, for the SDK's argument model."""
    documented = Field(description=field.description, examples=field.examples)
    return Annotated[(field.annotation, *field.metadata, documented)]  # type: ignore[valid-type]


# ---------------------------------------------------------------- resources


def _add_resources(server: MCPServer, routes: dict[str, Route]) -> None:
    def reader(route: Route) -> Callable[..., Any]:
        async def read(ref: str, ctx: Context) -> str:
            try:
                return (await invoke(route, caller_in(ctx), {"ref": ref})).model_dump_json()
            except Refused as refused:
                raise (ResourceNotFoundError if refused.status == 404 else ResourceError)(str(refused)) from None

        read.__name__ = route.operation_id
        return read

    server.resource("campaign://{ref}", name="campaign", mime_type="application/json",
                    description="A campaign: name, template, status, launch date, owner")(reader(routes["show_campaign"]))
    server.resource("campaign://{ref}/plan", name="campaign_plan", mime_type="application/json",
                    description="A campaign's plan: risk, buffer, projected launch, critical path, milestones",
                    )(reader(routes["show_plan"]))


@contextmanager
def _logging_left_alone() -> Iterator[None]:
    """`MCPServer()` calls `logging.basicConfig`; the process's logging is `bot.logs`' to set up."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
