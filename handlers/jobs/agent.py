"""The marketing agent's call: one MCP session over streamable HTTP, one `cm_campaign_launched` tool call.

The I/O half of `services.agent_handoff`: open a session to the agent's URL (with `Authorization: Bearer`
when a token is set), call the tool, close it, all bounded by one timeout. What comes back is turned into
plain facts for the policy (`services.delivery`): the HTTP status of a refused request (the MCP client
folds every status into one JSON-RPC error, so the responses are watched on the way in), a JSON-RPC error
code, or the tool's own error result.

The SDK runs its transport in anyio task groups, so what it raises arrives wrapped in (nested) exception
groups: they are unwrapped to the first error that says something. Reasons stay short and never carry the
token (it is only ever in a header).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx2
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, TextContent
from pydantic import SecretStr, ValidationError

from services import delivery as policy
from services.agent_handoff import TOOL
from services.delivery import Fault

log = logging.getLogger(__name__)

MAX_REASON = 200  # characters of the agent's own words kept in a reason


@dataclass(frozen=True)
class AgentTarget:
    """Where hand-offs go: the agent's MCP endpoint and its bearer token (None: no Authorization header)."""

    url: str
    token: SecretStr | None = field(default=None, repr=False)

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token.get_secret_value()}"} if self.token is not None else {}


@dataclass
class _Refusal:
    """The status of the last POST's answer when it was 400 or more (None after one that was not), its
    Retry-After, and whether it had a JSON body (which may hold the JSON-RPC error the client raises):
    the client's error says nothing of the status."""

    status: int | None = None
    retry_after: int | None = None
    json: bool = False


async def call_launched(target: AgentTarget, arguments: Mapping[str, Any], *,
                        timeout: float) -> Fault | None:  # noqa: ASYNC109 - the whole session, not one await
    """Call `cm_campaign_launched` with `arguments` on the agent; None when the agent took it, else the fault."""
    refusal = _Refusal()

    async def watch(response: httpx2.Response) -> None:
        if response.request.method != "POST":  # the notification stream's GET, the closing DELETE
            return
        refused = response.status_code >= 400
        raw = response.headers.get("Retry-After") if refused else None
        refusal.status = response.status_code if refused else None
        refusal.retry_after = int(raw) if raw is not None and raw.strip().isdigit() else None
        refusal.json = refused and response.headers.get("content-type", "").lower().startswith("application/json")

    result: CallToolResult | None = None
    try:
        async with asyncio.timeout(timeout):
            async with httpx2.AsyncClient(headers=target.headers(), timeout=httpx2.Timeout(timeout),
                                          event_hooks={"response": [watch]}) as http:
                async with Client(streamable_http_client(target.url, http_client=http)) as client:
                    result = await client.call_tool(TOOL, dict(arguments))
    except Exception as error:  # every failure becomes a fault the row records; cancellation passes
        if result is None:
            return _fault(error, refusal, timeout=timeout)
        # The agent answered; only closing the session failed. The answer is what counts.
        log.info("the marketing agent answered, then closing its session failed: %s", _describe(_cause(error)))
    assert result is not None
    if result.is_error:
        return policy.refused(f"the agent refused it: {_said(result)}")
    return None


def _fault(error: BaseException, refusal: _Refusal, *, timeout: float) -> Fault:
    cause = _cause(error)
    if refusal.status is not None:  # an HTTP refusal: its status decides (401/403/404 fail, 5xx retries, ...)
        said = ""
        if refusal.json and isinstance(cause, MCPError):  # the body held the agent's JSON-RPC error
            said = f": error {cause.code}: {_bounded(cause.message)}"
        return policy.http_fault(status=refusal.status, reason=f"HTTP {refusal.status}{said}",
                                 retry_after=refusal.retry_after)
    if isinstance(cause, TimeoutError):
        return policy.network_fault(f"no answer within {timeout:g} s")
    if isinstance(cause, MCPError):
        return policy.rpc_fault(code=cause.code, reason=f"error {cause.code}: {_bounded(cause.message)}")
    if isinstance(cause, ValidationError):  # an answer that is not MCP: no retry will make it one
        return policy.refused("the agent's answer is not MCP")
    # Refused or dropped connections, DNS, TLS, a reset: maybe next time.
    return policy.network_fault(_describe(cause))


def _cause(error: BaseException) -> BaseException:
    """The first error inside (nested) exception groups that is not a cancellation, or `error` itself."""
    leaves = list(_leaves(error))
    telling = [leaf for leaf in leaves if not isinstance(leaf, asyncio.CancelledError)]
    return (telling or leaves or [error])[0]


def _leaves(error: BaseException) -> Iterator[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            yield from _leaves(inner)
    else:
        yield error


def _describe(error: BaseException) -> str:
    text = str(error)
    return _bounded(f"{type(error).__name__}: {text}" if text else type(error).__name__)


def _said(result: CallToolResult) -> str:
    """What the tool said in its error result: its text, on one line, bounded."""
    texts = [block.text for block in result.content if isinstance(block, TextContent)]
    return _bounded(" ".join(texts)) or "no reason given"


def _bounded(text: str) -> str:
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= MAX_REASON else one_line[:MAX_REASON - 1] + "…"
