"""The MCP server at /mcp, driven by the official SDK's own client over real HTTP to the running app:
the tools it lists, each one called, the resources read, and the refusals a member's token meets (the same
as in Slack and the REST API), on both backends and in both protocol generations the SDK speaks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import pytest
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client
from sqlalchemy import func, select

from handlers.web.mcp.tools import TOOLS
from models import Approval, Comment, Task, TaskStatus
from tests.api_helpers import call
from tests.conftest import RunningApp, app_settings, start_app
from tests.fake_slack import FakeSlack
from tests.home_helpers import planned_campaign
from tests.support.api import api_token

READS = {"list_campaigns", "show_campaign", "plan_health", "week_schedule", "campaign_metrics", "list_tasks",
         "show_task", "my_approvals", "list_team"}
WRITES = {"create_task", "update_task", "comment_on_task", "request_approval"}


@asynccontextmanager
async def mcp_client(app: RunningApp, token: str | None, *, mode: str = "auto") -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient(headers=headers) as http, \
            Client(streamable_http_client(app.url("/mcp"), http_client=http), mode=mode) as client:  # type: ignore[arg-type]
        yield client


async def tool(client: Client, name: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(name, arguments)
    assert not result.is_error, (name, result.content)
    assert result.structured_content is not None
    return result.structured_content


async def refusal(client: Client, name: str, **arguments: Any) -> str:
    """What the tool said, after the SDK's `Error executing tool <name>: ` (a crash says nothing more)."""
    result = await client.call_tool(name, arguments)
    assert result.is_error, (name, result.structured_content)
    text = " ".join(getattr(part, "text", "") for part in result.content)
    prefix, _, said = text.partition(": ")
    assert prefix == f"Error executing tool {name}" and said and "Traceback" not in said, text
    return said


async def count(app: RunningApp, model: type) -> int:
    async with app.sessions() as db:
        return int(await db.scalar(select(func.count()).select_from(model)) or 0)


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_the_tools_listed_are_the_routes_named_for_agents(running_app: RunningApp, mode: str) -> None:
    async with mcp_client(running_app, await api_token(running_app, scope="read"), mode=mode) as client:
        listed = {each.name: each for each in (await client.list_tools()).tools}
        templates = {str(each.uri_template) for each in (await client.list_resource_templates()).resource_templates}
    assert set(listed) == READS | WRITES == {each.name for each in TOOLS}
    for name, each in listed.items():
        assert each.description and each.output_schema, name
        assert each.annotations is not None and each.annotations.read_only_hint is (name in READS), name
    assert listed["update_task"].input_schema["required"] == ["ref"]
    assert set(listed["update_task"].input_schema["properties"]) == {"ref", "status", "reason", "estimate", "due",
                                                                     "assignee", "anyway"}
    assert templates == {"campaign://{ref}", "campaign://{ref}/plan"}


async def test_every_read_answers_what_the_rest_api_answers(running_app: RunningApp) -> None:
    ids = await planned_campaign(running_app, owner="U0ALICE", name="Spring <launch> & *sale*")
    token = await api_token(running_app, scope="read")
    task = f"T-{ids['brief']}"
    rest = (await call(running_app, "GET", f"/api/v1/tasks/{task}", token=token)).body
    campaign = rest["campaign"]
    async with mcp_client(running_app, token) as client:
        pairs = [
            (await tool(client, "show_campaign", ref=campaign), f"/api/v1/campaigns/{campaign}"),
            (await tool(client, "plan_health", ref=campaign), f"/api/v1/campaigns/{campaign}/plan"),
            (await tool(client, "show_task", ref=task), f"/api/v1/tasks/{task}"),
            (await tool(client, "list_campaigns", status="all", limit=5), "/api/v1/campaigns?status=all&limit=5"),
            (await tool(client, "list_tasks", campaign=campaign, status="todo"),
             f"/api/v1/tasks?campaign={campaign}&status=todo"),
            (await tool(client, "my_approvals"), "/api/v1/approvals/mine"),
            (await tool(client, "list_team"), "/api/v1/team"),
        ]
        week = await tool(client, "week_schedule", tz="Europe/Berlin", campaign=campaign)
        measured = await tool(client, "campaign_metrics", campaign=campaign)
        plan = await client.read_resource(f"campaign://{campaign}/plan")
    for answer, path in pairs:
        assert answer == (await call(running_app, "GET", path, token=token)).body, path
    assert pairs[0][0]["name"] == "Spring <launch> & *sale*"  # data, not markup: nothing escaped or lost
    assert len(pairs[4][0]["items"]) == len(ids)
    assert week["zone"] == "Europe/Berlin" and len(week["days"]) == 7
    assert measured["completion"]["whole"] >= 0 and measured["email"]["available"] is False
    assert plan.contents[0].text  # type: ignore[union-attr]
    assert plan.contents[0].mime_type == "application/json"
    assert '"critical_path"' in plan.contents[0].text  # type: ignore[union-attr]


async def test_writes_go_through_the_same_services(running_app: RunningApp) -> None:
    ids = await planned_campaign(running_app, owner="U0ALICE", assignee="U0ALICE")
    token = await api_token(running_app)
    await api_token(running_app, user="U0BOB")  # on the team, so he can be asked to approve
    async with mcp_client(running_app, token) as client:
        campaign = (await tool(client, "show_task", ref=f"T-{ids['brief']}"))["campaign"]
        created = await tool(client, "create_task", campaign=campaign, title="Press kit", estimate="6h",
                             after=[f"T-{ids['brief']}"])
        started = await tool(client, "update_task", ref=created["ref"], status="in_progress")
        done = await tool(client, "update_task", ref=f"T-{ids['brief']}", status="done")
        comment = await tool(client, "comment_on_task", ref=created["ref"], body="<b>Ready</b>")
        asked = await tool(client, "request_approval", campaign=campaign, stage="Legal review", approvers=["U0BOB"])
    assert created["title"] == "Press kit" and created["estimate_hours"] == 6
    assert started["status"] == "in_progress" and done["status"] == "done" and done["completed_at"]
    assert comment["body"] == "<b>Ready</b>"
    assert [each["stage"] for each in asked["approvals"]] == ["Legal review"]
    async with running_app.sessions() as db:
        brief = await db.get(Task, ids["brief"])
        assert brief is not None and brief.status is TaskStatus.DONE
        assert await db.scalar(select(func.count()).select_from(Comment)) == 1
        assert await db.scalar(select(func.count()).select_from(Approval).where(Approval.stage == "Legal review")) == 1


async def test_a_member_meets_the_same_refusals_as_in_slack(running_app: RunningApp) -> None:
    ids = await planned_campaign(running_app, owner="U0ALICE", assignee="U0ALICE")
    alice_reads = await api_token(running_app, scope="read")
    bob = await api_token(running_app, user="U0BOB")
    task = f"T-{ids['brief']}"
    tasks_before, approvals_before = await count(running_app, Task), await count(running_app, Approval)
    async with mcp_client(running_app, alice_reads) as client:
        campaign = (await tool(client, "show_task", ref=task))["campaign"]
        read_only = await refusal(client, "create_task", campaign=campaign, title="Sneaky")
    async with mcp_client(running_app, bob) as client:
        not_yours = await refusal(client, "update_task", ref=task, status="done")
        not_owner = await refusal(client, "request_approval", campaign=campaign, stage="Legal", approvers=["U0BOB"])
        not_on_team = await refusal(client, "create_task", campaign=campaign, title="Sneaky")
    assert "may only read" in read_only
    # Word for word what the REST API says to the same member asking the same thing.
    for said, (method, path, body) in ((not_yours, ("PATCH", f"/api/v1/tasks/{task}", {"status": "done"})),
                                       (not_owner, ("POST", "/api/v1/approvals", {"campaign": campaign, "stage": "Legal",
                                                                                   "approvers": ["U0BOB"]})),
                                       (not_on_team, ("POST", "/api/v1/tasks", {"campaign": campaign, "title": "Sneaky"}))):
        rest = await call(running_app, method, path, token=bob, json=body)
        assert rest.status in (403, 422) and said.startswith(rest.body["detail"]), (said, rest.text)
    assert (await count(running_app, Task), await count(running_app, Approval)) == (tasks_before, approvals_before)
    async with running_app.sessions() as db:
        brief = await db.get(Task, ids["brief"])
        assert brief is not None and brief.status is TaskStatus.TODO  # nothing half-done


async def test_bad_arguments_are_tool_errors_not_crashes(running_app: RunningApp) -> None:
    ids = await planned_campaign(running_app, owner="U0ALICE")
    async with mcp_client(running_app, await api_token(running_app)) as client:
        missing = await refusal(client, "show_campaign", ref="CM-424242")
        bad_ref = await refusal(client, "show_task", ref="nonsense")
        bad_status = await refusal(client, "update_task", ref=f"T-{ids['brief']}", status="sleeping")
        nothing = await refusal(client, "update_task", ref=f"T-{ids['brief']}")
        no_reason = await refusal(client, "update_task", ref=f"T-{ids['brief']}", status="blocked")
        long_title = await refusal(client, "create_task", campaign="CM-1", title="x" * 400)
        bad_zone = await refusal(client, "week_schedule", tz="Mars/Olympus")
        backwards = await refusal(client, "campaign_metrics", start="2026-05-01", end="2026-04-01")
        unknown = await client.call_tool("drop_tables", {})
        with pytest.raises(MCPError):
            await client.read_resource("campaign://CM-424242/plan")
    assert unknown.is_error and "Unknown tool" in str(unknown.content)
    assert "There is no" in missing and "ref" in bad_ref and "status" in bad_status and "title" in long_title
    assert "Say what to change" in nothing and "reason" in no_reason and "Mars/Olympus" in bad_zone
    assert "start must be on or before end" in backwards
    assert await count(running_app, Task) == len(ids)


async def test_no_token_or_a_bad_one_is_refused_before_the_sdk(running_app: RunningApp) -> None:
    hello = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-06-18"}
    for token in (None, "cm_1_not-a-real-secret", "x" * 500):
        answer = await call(running_app, "POST", "/mcp", token=token, json=hello, headers=headers)
        assert answer.status == 401 and answer.headers["WWW-Authenticate"].startswith("Bearer"), answer.text
        assert answer.body["error"] == "unauthorized"
    with pytest.raises(Exception):  # noqa: B017, PT011  (the SDK's client fails to connect; which error is its own)
        async with mcp_client(running_app, None) as client:
            await client.list_tools()
    good = await api_token(running_app, scope="read")
    garbage = await call(running_app, "POST", "/mcp", token=good, data=b"{not json", headers={
        **headers, "Content-Type": "application/json"})
    assert 400 <= garbage.status < 500, garbage.text


async def test_both_api_faces_share_the_pool_and_say_busy_when_it_is_full(db_url: str, fake_slack: FakeSlack) -> None:
    """With every slot held, a REST read and an MCP call answer 503 busy, having done nothing; once a slot
    is free they are served. Slack's work, the REST API and MCP draw on one bound sized to the pool."""
    settings = app_settings(db_url, fake_slack, max_inflight=1, slot_wait_seconds=0.1)
    async with start_app(settings, fake_slack) as app:
        token = await api_token(app, scope="read")
        hello = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
        headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-06-18"}
        work = app.runtime.deps.inflight if app.runtime.deps else None
        assert work is not None
        async with work.slot():  # the only slot, held by someone else's long unit of work
            rest = await call(app, "GET", "/api/v1/campaigns", token=token)
            mcp = await call(app, "POST", "/mcp", token=token, json=hello, headers=headers)
        for busy in (rest, mcp):
            assert busy.status == 503 and busy.headers["Retry-After"] == "1" and busy.body["error"] == "busy"
        assert (await call(app, "GET", "/api/v1/campaigns", token=token)).status == 200
        async with mcp_client(app, token) as client:
            assert len((await client.list_tools()).tools) == len(TOOLS)
