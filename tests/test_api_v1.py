"""The REST API at /api/v1, over real HTTP to the running app: tokens, scopes and the member's own
rights (the same as in Slack), pages and cursors, ETags, the rate limit, field errors, idempotent creates,
and the OpenAPI document and docs page generated from the same models."""

from __future__ import annotations

import asyncio
import re

import pytest
from sqlalchemy import func, select

from handlers.web.api_v1 import limits
from handlers.web.api_v1.registry import ROUTES
from models import Approval, Campaign
from tests.api_helpers import call, campaigns_launching, launch_in
from tests.conftest import RunningApp, app_settings, start_app
from tests.fake_slack import FakeSlack
from tests.home_helpers import planned_campaign
from tests.support.api import api_token

# ---------------------------------------------------------------- who may call


async def test_no_token_or_a_bad_one_is_401_json(running_app: RunningApp) -> None:
    good = await api_token(running_app)
    token_id = good.split("_")[1]
    for token in (None, "nonsense", f"cm_{token_id}_" + "x" * 43, "cm_999999_" + "y" * 43, "a" * 5000):
        answer = await call(running_app, "GET", "/api/v1/campaigns", token=token)
        assert answer.status == 401, (token, answer.text)
        assert answer.body["error"] == "unauthorized"
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    basic = await call(running_app, "GET", "/api/v1/campaigns", headers={"Authorization": "Basic abc"})
    assert basic.status == 401
    assert (await call(running_app, "GET", "/api/v1/campaigns", token=good)).status == 200


async def test_a_read_token_may_not_write(running_app: RunningApp) -> None:
    ids = await planned_campaign(running_app)
    reader = await api_token(running_app, scope="read")
    answer = await call(running_app, "PATCH", f"/api/v1/tasks/T-{ids['brief']}", token=reader,
                        json={"status": "in_progress"})
    assert answer.status == 403, answer.text
    assert "read" in answer.body["detail"]


# ---------------------------------------------------------------- reads


async def test_campaign_pages_follow_cursors_without_repeats_or_gaps(running_app: RunningApp) -> None:
    made = await campaigns_launching(running_app, 5)
    token = await api_token(running_app, scope="read")
    seen: list[str] = []
    path = "/api/v1/campaigns?limit=2"
    pages = 0
    while True:
        answer = await call(running_app, "GET", path, token=token)
        assert answer.status == 200, answer.text
        pages += 1
        seen += [item["ref"] for item in answer.body["items"]]
        cursor = answer.body["next_cursor"]
        if cursor is None:
            break
        path = f"/api/v1/campaigns?limit=2&cursor={cursor}"
    assert pages == 3
    campaign_ids = sorted({task_id for ids in made for task_id in [ids["brief"]]})
    assert len(seen) == 5 == len(set(seen)) and len(campaign_ids) == 5
    first = (await call(running_app, "GET", "/api/v1/campaigns?limit=100", token=token)).body["items"]
    assert [item["ref"] for item in first] == seen  # soonest launch first, in one page or three
    assert [item["launch_date"] for item in first] == sorted(item["launch_date"] for item in first)


async def test_campaign_filters(running_app: RunningApp) -> None:
    await planned_campaign(running_app, owner="U0ALICE", name="Alice's")
    await planned_campaign(running_app, owner="U0BOB", assignee="U0BOB", name="Bob's")
    token = await api_token(running_app, scope="read")
    bobs = await call(running_app, "GET", "/api/v1/campaigns?owner=U0BOB", token=token)
    assert [item["name"] for item in bobs.body["items"]] == ["Bob's"]
    assert bobs.body["items"][0]["owner"] == {"slack_user_id": "U0BOB", "name": "Bob Baker"}
    nobody = await call(running_app, "GET", "/api/v1/campaigns?owner=U0NOBODY", token=token)
    assert nobody.status == 200 and nobody.body["items"] == []
    small = await call(running_app, "GET", "/api/v1/campaigns?template=small&status=planning", token=token)
    assert len(small.body["items"]) == 2
    done = await call(running_app, "GET", "/api/v1/campaigns?status=completed", token=token)
    assert done.body["items"] == []


async def test_one_campaign_its_plan_and_its_tasks(running_app: RunningApp) -> None:
    ids = await planned_campaign(running_app)
    token = await api_token(running_app, scope="read")
    campaign_ref = (await call(running_app, "GET", "/api/v1/campaigns", token=token)).body["items"][0]["ref"]
    shown = await call(running_app, "GET", f"/api/v1/campaigns/{campaign_ref}", token=token)
    assert shown.status == 200 and shown.body["name"] == "Summer launch" and shown.body["status"] == "planning"
    plan = await call(running_app, "GET", f"/api/v1/campaigns/{campaign_ref.lower()}/plan", token=token)
    assert plan.status == 200, plan.text
    assert plan.body["risk"] in ("on track", "at risk", "late")
    assert [task["ref"] for task in plan.body["critical_path"]][-1] == f"T-{ids['launch']}"
    assert plan.body["projected_launch"] is not None
    listed = await call(running_app, "GET", f"/api/v1/tasks?campaign={campaign_ref}&limit=2", token=token)
    assert [item["ref"] for item in listed.body["items"]] == [f"T-{ids['brief']}", f"T-{ids['copy']}"]
    rest = await call(running_app, "GET", f"/api/v1/tasks?campaign={campaign_ref}&cursor={listed.body['next_cursor']}",
                      token=token)
    assert len(rest.body["items"]) == 3 and rest.body["next_cursor"] is None
    task = await call(running_app, "GET", f"/api/v1/tasks/T-{ids['copy']}", token=token)
    assert task.body["title"] == "Copy" and task.body["assignee"]["slack_user_id"] == "U0ALICE"
    assert task.body["campaign"] == campaign_ref
    mine = await call(running_app, "GET", "/api/v1/tasks?assignee=U0ALICE&status=todo", token=token)
    assert len(mine.body["items"]) == 5


async def test_bad_refs_are_400_and_missing_ones_404(running_app: RunningApp) -> None:
    token = await api_token(running_app, scope="read")
    assert (await call(running_app, "GET", "/api/v1/campaigns/T-3", token=token)).status == 400
    assert (await call(running_app, "GET", "/api/v1/campaigns/<script>", token=token)).status == 400
    missing = await call(running_app, "GET", "/api/v1/campaigns/CM-999999", token=token)
    assert missing.status == 404 and missing.body["error"] == "not_found"
    assert (await call(running_app, "GET", "/api/v1/campaigns/CM-99999999999", token=token)).status == 404
    assert (await call(running_app, "GET", "/api/v1/tasks/T-424242", token=token)).status == 404
    assert (await call(running_app, "GET", "/api/v1/nothing-here", token=token)).body["error"] == "not_found"


async def test_bad_queries_name_their_fields(running_app: RunningApp) -> None:
    token = await api_token(running_app, scope="read")
    for query, field in (("limit=0", "limit"), ("limit=abc", "limit"), ("status=sleeping", "status"),
                         ("cursor=%%%", "cursor"), ("cursor=WzFd", "cursor"), ("colour=red", "colour"),
                         ("owner=not-a-user", "owner"), ("limit=1&limit=2", "limit")):
        answer = await call(running_app, "GET", f"/api/v1/campaigns?{query}", token=token)
        assert answer.status == 422, (query, answer.text)
        assert answer.body["error"] == "invalid" and field in answer.body["fields"], (query, answer.body)
    bad_campaign = await call(running_app, "GET", "/api/v1/tasks?campaign=T-4", token=token)
    assert bad_campaign.status == 422 and "campaign" in bad_campaign.body["fields"]


async def test_team_and_my_approvals(running_app: RunningApp) -> None:
    await planned_campaign(running_app, owner="U0BOB", assignee="U0ALICE")
    token = await api_token(running_app, user="U0ALICE", scope="read")
    members = await call(running_app, "GET", "/api/v1/team", token=token)
    by_id = {item["slack_user_id"]: item for item in members.body["items"]}
    assert by_id["U0ALICE"]["open_tasks"] == 5 and by_id["U0BOB"]["open_tasks"] == 0
    approvals = await call(running_app, "GET", "/api/v1/approvals/mine", token=token)
    assert approvals.status == 200 and approvals.body == {"items": []}


async def test_reads_carry_an_etag_and_answer_304_while_nothing_changed(running_app: RunningApp) -> None:
    ids = await planned_campaign(running_app)
    token = await api_token(running_app)
    first = await call(running_app, "GET", f"/api/v1/tasks/T-{ids['brief']}", token=token)
    tag = first.headers["ETag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', tag)
    again = await call(running_app, "GET", f"/api/v1/tasks/T-{ids['brief']}", token=token,
                       headers={"If-None-Match": tag})
    assert again.status == 304 and again.text == ""
    started = await call(running_app, "PATCH", f"/api/v1/tasks/T-{ids['brief']}", token=token,
                         json={"status": "in_progress"})
    assert started.status == 200, started.text
    changed = await call(running_app, "GET", f"/api/v1/tasks/T-{ids['brief']}", token=token,
                         headers={"If-None-Match": tag})
    assert changed.status == 200 and changed.headers["ETag"] != tag
    assert changed.body["status"] == "in_progress"


async def test_too_many_requests_are_429_with_retry_after(running_app: RunningApp,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "LIMIT_PER_WINDOW", 3)
    token = await api_token(running_app, scope="read")
    other = await api_token(running_app, user="U0BOB", scope="read")
    statuses = [(await call(running_app, "GET", "/api/v1/team", token=token)).status for _ in range(3)]
    refused = await call(running_app, "GET", "/api/v1/team", token=token)
    if refused.status != 429:  # the three may have straddled a window's edge: the next window holds 3 more
        statuses += [refused.status, *[(await call(running_app, "GET", "/api/v1/team", token=token)).status
                                       for _ in range(2)]]
        refused = await call(running_app, "GET", "/api/v1/team", token=token)
    assert set(statuses) == {200}
    assert refused.status == 429 and refused.body["error"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= limits.WINDOW_SECONDS
    assert (await call(running_app, "GET", "/api/v1/team", token=other)).status == 200  # per token


# ---------------------------------------------------------------- the document


async def test_openapi_document_describes_every_route(running_app: RunningApp) -> None:
    answer = await call(running_app, "GET", "/api/v1/openapi.json")
    assert answer.status == 200
    document = answer.body
    assert document["openapi"] == "3.1.0"
    for each in ROUTES:
        operation = document["paths"]["/api/v1" + each.path][each.method.lower()]
        assert operation["summary"] == each.summary
    schemas = document["components"]["schemas"]

    def refs(node: object) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
            return found + [ref for value in node.values() for ref in refs(value)]
        if isinstance(node, list):
            return [ref for value in node for ref in refs(value)]
        return []

    every = refs(document)
    assert every
    for ref in every:
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas, ref
    limit = next(p for p in document["paths"]["/api/v1/campaigns"]["get"]["parameters"] if p["name"] == "limit")
    assert limit["in"] == "query" and limit["schema"]["maximum"] == 100


async def test_docs_page_lists_the_routes_and_runs_no_script(running_app: RunningApp) -> None:
    answer = await call(running_app, "GET", "/api/v1/docs")
    assert answer.status == 200 and answer.headers["Content-Type"].startswith("text/html")
    assert "<script" not in answer.text and "default-src 'none'" in answer.headers["Content-Security-Policy"]
    for each in ROUTES:
        assert f"/api/v1{each.path}" in answer.text


# ---------------------------------------------------------------- writes


async def campaign_count(app: RunningApp) -> int:
    async with app.sessions() as db:
        return int(await db.scalar(select(func.count()).select_from(Campaign)) or 0)


async def test_create_campaign_from_a_template(running_app: RunningApp) -> None:
    token = await api_token(running_app)
    answer = await call(running_app, "POST", "/api/v1/campaigns", token=token,
                        json={"name": "  Spring   launch ", "template": "product_launch",
                              "launch_date": launch_in(90).isoformat()})
    assert answer.status == 201, answer.text
    assert answer.body["name"] == "Spring launch" and answer.body["owner"]["slack_user_id"] == "U0ALICE"
    plan = await call(running_app, "GET", f"/api/v1/campaigns/{answer.body['ref']}/plan", token=token)
    assert plan.status == 200 and plan.body["critical_path"]


async def test_the_same_idempotency_key_makes_one_campaign(running_app: RunningApp) -> None:
    token = await api_token(running_app)
    body = {"name": "Retried", "template": "product_launch", "launch_date": launch_in(60).isoformat()}
    key = {"Idempotency-Key": "retry-7f3a"}
    first = await call(running_app, "POST", "/api/v1/campaigns", token=token, json=body, headers=key)
    second = await call(running_app, "POST", "/api/v1/campaigns", token=token, json=body, headers=key)
    assert first.status == second.status == 201, (first.text, second.text)
    assert first.body == second.body and second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    together = await asyncio.gather(*[call(running_app, "POST", "/api/v1/campaigns", token=token, json=body,
                                           headers={"Idempotency-Key": "at-once"}) for _ in range(3)])
    assert {answer.status for answer in together} == {201}
    assert len({answer.body["ref"] for answer in together}) == 1
    assert await campaign_count(running_app) == 2
    other = await call(running_app, "POST", "/api/v1/campaigns", token=token, json=body,
                       headers={"Idempotency-Key": "another"})
    assert other.status == 201 and await campaign_count(running_app) == 3
    # The key again with another request: a client's mistake, refused, nothing made.
    changed = await call(running_app, "POST", "/api/v1/campaigns", token=token, json={**body, "name": "Other"},
                         headers=key)
    assert changed.status == 400 and "different request" in changed.text
    assert await campaign_count(running_app) == 3
    # Another integration's token with the same key is another key.
    theirs = await call(running_app, "POST", "/api/v1/campaigns", token=await api_token(running_app), json=body,
                        headers=key)
    assert theirs.status == 201 and "Idempotent-Replayed" not in theirs.headers
    assert await campaign_count(running_app) == 4


async def test_bad_bodies_are_422_naming_each_field(running_app: RunningApp) -> None:
    token = await api_token(running_app)
    cases = [
        ({"template": "product_launch", "launch_date": "2030-01-01"}, "name"),
        ({"name": "X", "template": "product_launch", "launch_date": "next week"}, "launch_date"),
        ({"name": "X", "template": "no_such_template", "launch_date": launch_in(30).isoformat()}, "template"),
        ({"name": "X", "template": "product_launch", "launch_date": "2001-01-01"}, "launch_date"),
        ({"name": "X", "template": "product_launch", "launch_date": launch_in(30).isoformat(), "colour": 1}, "colour"),
        ({"name": "X", "template": "product_launch", "launch_date": launch_in(30).isoformat(), "owner": "U0NOBODY"},
         "owner"),
        ({"name": "x" * 201, "template": "product_launch", "launch_date": launch_in(30).isoformat()}, "name"),
        ([1, 2], "body"),
    ]
    for body, field in cases:
        answer = await call(running_app, "POST", "/api/v1/campaigns", token=token, json=body)
        assert answer.status == 422, (body, answer.text)
        assert field in answer.body["fields"], (body, answer.body)
    not_json = await call(running_app, "POST", "/api/v1/campaigns", token=token, data=b"{nope",
                          headers={"Content-Type": "application/json"})
    assert not_json.status == 400 and not_json.body["error"] == "bad_json"
    assert await campaign_count(running_app) == 0


async def test_lifecycle_moves_follow_the_owners_rights(running_app: RunningApp) -> None:
    await planned_campaign(running_app, owner="U0ALICE")
    alice, bob = await api_token(running_app), await api_token(running_app, user="U0BOB")
    ref = (await call(running_app, "GET", "/api/v1/campaigns", token=alice)).body["items"][0]["ref"]
    refused = await call(running_app, "POST", f"/api/v1/campaigns/{ref}/lifecycle", token=bob, json={"action": "launch"})
    assert refused.status == 403 and "owner" in refused.body["detail"]
    launched = await call(running_app, "POST", f"/api/v1/campaigns/{ref}/lifecycle", token=alice,
                          json={"action": "launch"})
    assert launched.status == 200 and launched.body["status"] == "active"
    again = await call(running_app, "POST", f"/api/v1/campaigns/{ref}/lifecycle", token=alice,
                       json={"action": "launch"})
    assert again.status == 400 and "already active" in again.body["detail"]
    bad = await call(running_app, "POST", f"/api/v1/campaigns/{ref}/lifecycle", token=alice, json={"action": "explode"})
    assert bad.status == 422 and "action" in bad.body["fields"]


async def test_a_member_may_not_finish_someone_elses_task(running_app: RunningApp) -> None:
    ids = await planned_campaign(running_app, owner="U0ALICE", assignee="U0ALICE")
    bob = await api_token(running_app, user="U0BOB")
    refused = await call(running_app, "PATCH", f"/api/v1/tasks/T-{ids['brief']}", token=bob, json={"status": "done"})
    assert refused.status == 403, refused.text
    alice = await api_token(running_app)
    task = await call(running_app, "GET", f"/api/v1/tasks/T-{ids['brief']}", token=alice)
    assert task.body["status"] == "todo"  # nothing half-done
    done = await call(running_app, "PATCH", f"/api/v1/tasks/T-{ids['brief']}", token=alice, json={"status": "done"})
    assert done.status == 200 and done.body["status"] == "done" and done.body["completed_at"]


async def test_task_updates_and_their_errors(running_app: RunningApp) -> None:
    ids = await planned_campaign(running_app, owner="U0ALICE", assignee=None)
    alice = await api_token(running_app)
    path = f"/api/v1/tasks/T-{ids['copy']}"
    changed = await call(running_app, "PATCH", path, token=alice,
                         json={"assignee": "U0ALICE", "estimate": "3d", "status": "in_progress"})
    assert changed.status == 200, changed.text
    assert changed.body["assignee"]["slack_user_id"] == "U0ALICE" and changed.body["estimate_hours"] == 24
    assert changed.body["status"] == "in_progress"
    for body, field in (({"status": "blocked"}, "reason"), ({"estimate": "forever"}, "estimate"),
                        ({}, "body"), ({"status": "sleeping"}, "status"), ({"due": "soon"}, "due")):
        answer = await call(running_app, "PATCH", path, token=alice, json=body)
        assert answer.status == 422 and field in answer.body["fields"], (body, answer.text)
    blocked = await call(running_app, "PATCH", path, token=alice, json={"status": "blocked", "reason": "legal"})
    assert blocked.body["status"] == "blocked" and blocked.body["blocked_reason"] == "legal"


async def test_create_a_task_and_comment_on_it(running_app: RunningApp) -> None:
    ids = await planned_campaign(running_app, owner="U0ALICE")
    alice, bob = await api_token(running_app), await api_token(running_app, user="U0BOB")
    campaign = (await call(running_app, "GET", f"/api/v1/tasks/T-{ids['brief']}", token=alice)).body["campaign"]
    new = {"campaign": campaign, "title": "Press kit", "estimate": "6h", "after": [f"T-{ids['brief']}"]}
    created = await call(running_app, "POST", "/api/v1/tasks", token=alice, json=new,
                         headers={"Idempotency-Key": "kit"})
    assert created.status == 201, created.text
    repeat = await call(running_app, "POST", "/api/v1/tasks", token=alice, json=new, headers={"Idempotency-Key": "kit"})
    assert repeat.body["ref"] == created.body["ref"] and repeat.headers["Idempotent-Replayed"] == "true"
    outsider = await call(running_app, "POST", "/api/v1/tasks", token=bob, json={**new, "title": "Sneaky"})
    assert outsider.status == 422 and "campaign" in outsider.body["fields"]
    loop = await call(running_app, "POST", "/api/v1/tasks", token=alice, json={**new, "after": ["T-x"]})
    assert loop.status == 422 and "after" in loop.body["fields"]
    comment = await call(running_app, "POST", f"/api/v1/tasks/{created.body['ref']}/comments", token=alice,
                         json={"body": "<b>Ready</b> for review"})
    assert comment.status == 201 and comment.body["body"] == "<b>Ready</b> for review"
    refused = await call(running_app, "POST", f"/api/v1/tasks/{created.body['ref']}/comments", token=bob,
                         json={"body": "hi"})
    assert refused.status == 403


async def test_deciding_an_approval_that_is_not_yours_or_not_there(running_app: RunningApp) -> None:
    alice = await api_token(running_app)
    missing = await call(running_app, "POST", "/api/v1/approvals/AP-4242/decision", token=alice,
                         json={"decision": "approve"})
    assert missing.status == 404, missing.text
    no_reason = await call(running_app, "POST", "/api/v1/approvals/AP-4242/decision", token=alice,
                           json={"decision": "reject"})
    assert no_reason.status == 422 and "reason" in no_reason.body["fields"]


# ---------------------------------------------------------------- profiles and approval requests


async def test_my_own_profile(running_app: RunningApp) -> None:
    alice = await api_token(running_app)
    changed = await call(running_app, "PATCH", "/api/v1/team/me", token=alice, json={
        "skills": ["Design", " video ", "design"], "timezone": "america/chicago", "weekly_hours": "mon-thu 9-17, fri 9-13",
        "capacity": 4, "out_of_office": {"start": "2031-01-05", "end": "2031-01-09"}})
    assert changed.status == 200, changed.text
    body = changed.body
    assert body["slack_user_id"] == "U0ALICE" and body["skills"] == ["design", "video"]
    assert body["timezone"] == "America/Chicago" and body["max_concurrent_tasks"] == 4
    assert body["weekly_hours"]["fri"] == [["09:00", "13:00"]] and "sat" not in body["weekly_hours"]
    assert body["out_of_office"] == {"start": "2031-01-05", "end": "2031-01-09"}
    assert set(body["changed"]) == {"skills", "timezone", "weekly_availability", "max_concurrent_tasks", "out_of_office"}
    listed = await call(running_app, "GET", "/api/v1/team", token=alice)
    assert listed.body["items"][0]["timezone"] == "America/Chicago"
    cleared = await call(running_app, "PATCH", "/api/v1/team/me", token=alice, json={"out_of_office": None})
    assert cleared.body["out_of_office"] is None and cleared.body["changed"] == ["out_of_office"]
    again = await call(running_app, "PATCH", "/api/v1/team/me", token=alice, json={"capacity": 4})
    assert again.status == 200 and again.body["changed"] == []
    for bad, field in (({"timezone": "Mars/Olympus"}, "timezone"), ({"weekly_hours": "sun 25-3"}, "weekly_hours"),
                       ({"out_of_office": {"start": "2031-01-09", "end": "2031-01-05"}}, "out_of_office"),
                       ({"capacity": 0}, "capacity"), ({}, "body"), ({"role": "boss"}, "role"),
                       ({"skills": ["x" * 41]}, "skills.0")):
        refused = await call(running_app, "PATCH", "/api/v1/team/me", token=alice, json=bad)
        assert refused.status == 422 and field in refused.body["fields"], (bad, refused.text)
    reader = await api_token(running_app, scope="read")
    assert (await call(running_app, "PATCH", "/api/v1/team/me", token=reader, json={"capacity": 2})).status == 403
    assert (await call(running_app, "GET", "/api/v1/team", token=alice)).body["items"][0]["max_concurrent_tasks"] == 4


async def test_admins_change_anyones_profile_and_others_only_their_own(db_url: str, fake_slack: FakeSlack) -> None:
    async with start_app(app_settings(db_url, fake_slack, admin_user_ids="U0ADMIN"), fake_slack) as app:
        admin, alice, bob = (await api_token(app, user="U0ADMIN"), await api_token(app),
                             await api_token(app, user="U0BOB"))
        refused = await call(app, "PATCH", "/api/v1/team/U0BOB", token=alice, json={"capacity": 9})
        assert refused.status == 403 and "admin" in refused.body["detail"], refused.text
        own = await call(app, "PATCH", "/api/v1/team/U0ALICE", token=alice, json={"capacity": 2})
        assert own.status == 200 and own.body["max_concurrent_tasks"] == 2
        done = await call(app, "PATCH", "/api/v1/team/U0BOB", token=admin, json={"skills": ["copy"], "capacity": 9})
        assert done.status == 200 and done.body["skills"] == ["copy"] and done.body["max_concurrent_tasks"] == 9
        team = {m["slack_user_id"]: m for m in (await call(app, "GET", "/api/v1/team", token=bob)).body["items"]}
        assert team["U0BOB"]["max_concurrent_tasks"] == 9
        missing = await call(app, "PATCH", "/api/v1/team/U0NOBODY", token=admin, json={"capacity": 3})
        assert missing.status == 404 and missing.body["error"] == "not_found"
        bad = await call(app, "PATCH", "/api/v1/team/not-a-user", token=admin, json={"capacity": 3})
        assert bad.status == 400 and bad.body["error"] == "bad_person"
        assert (await call(app, "GET", "/api/v1/team", token=bob)).body["items"] == list(team.values())


async def test_request_an_approval_stage_then_decide_it(running_app: RunningApp) -> None:
    await planned_campaign(running_app, owner="U0ALICE")
    alice, bob = await api_token(running_app), await api_token(running_app, user="U0BOB")
    ref = (await call(running_app, "GET", "/api/v1/campaigns", token=alice)).body["items"][0]["ref"]
    ask = {"campaign": ref, "stage": "  Legal review ", "approvers": ["U0BOB", "U0BOB"], "rule": "any",
           "deadline": launch_in(20).isoformat()}
    not_owner = await call(running_app, "POST", "/api/v1/approvals", token=bob, json=ask)
    assert not_owner.status == 403, not_owner.text
    asked = await call(running_app, "POST", "/api/v1/approvals", token=alice, json=ask)
    assert asked.status == 201, asked.text
    assert asked.body["campaign"] == ref and asked.body["stage"] == "Legal review" and asked.body["opened"] == ["Legal review"]
    [approval] = asked.body["approvals"]
    assert approval["status"] == "pending" and approval["deadline"].startswith(launch_in(20).isoformat())
    waiting = await call(running_app, "GET", "/api/v1/approvals/mine", token=bob)
    assert [item["ref"] for item in waiting.body["items"]] == [approval["ref"]]
    twice = await call(running_app, "POST", "/api/v1/approvals", token=alice, json={**ask, "stage": "legal REVIEW"})
    assert twice.status == 400 and "already has" in twice.body["detail"]
    for bad, field in (({**ask, "approvers": ["U0NOBODY"]}, "approvers"), ({**ask, "campaign": "T-3"}, "campaign"),
                       ({**ask, "rule": "most"}, "rule"), ({**ask, "stage": ""}, "stage")):
        refused = await call(running_app, "POST", "/api/v1/approvals", token=alice, json=bad)
        assert refused.status == 422 and field in refused.body["fields"], (bad, refused.text)
    missing = await call(running_app, "POST", "/api/v1/approvals", token=alice, json={**ask, "campaign": "CM-999999"})
    assert missing.status == 404
    async with running_app.sessions() as db:
        assert await db.scalar(select(func.count()).select_from(Approval)) == 1  # the refusals wrote nothing
    decided = await call(running_app, "POST", f"/api/v1/approvals/{approval['ref']}/decision", token=bob,
                         json={"decision": "approve"})
    assert decided.status == 200 and decided.body["outcome"] == "passed" and decided.body["campaign_approved"]


# ---------------------------------------------------------------- what the fuzzer showed (tests/test_api_fuzz.py)


async def test_the_document_says_exactly_which_refs_and_keys_pass(running_app: RunningApp) -> None:
    """Valid-by-the-document requests were refused: refs and `Idempotency-Key` were documented as any string."""
    ids = await planned_campaign(running_app)
    token = await api_token(running_app)
    document = (await call(running_app, "GET", "/api/v1/openapi.json")).body
    operation = document["paths"]["/api/v1/tasks/{ref}"]["get"]
    [ref] = [p for p in operation["parameters"] if p["name"] == "ref"]
    for text in (f"T-{ids['brief']}", f"t{ids['brief']}", str(ids["brief"])):
        assert re.fullmatch(ref["schema"]["pattern"], text)
        assert (await call(running_app, "GET", f"/api/v1/tasks/{text}", token=token)).status == 200
    for text in (f"%60T-{ids['brief']}%60", f"T-{ids['brief']}%20", "CM-3"):
        answer = await call(running_app, "GET", f"/api/v1/tasks/{text}", token=token)
        assert answer.status == 400 and answer.body["error"] == "bad_ref", (text, answer.text)
    create = document["paths"]["/api/v1/campaigns"]["post"]
    [key] = [p for p in create["parameters"] if p["name"] == "Idempotency-Key"]
    assert key["in"] == "header" and key["schema"]["maxLength"] == 200
    body = {"name": "Keyed", "template": "product_launch", "launch_date": launch_in(60).isoformat()}
    for good in ("a b", "x" * 200, "~!"):
        assert re.fullmatch(key["schema"]["pattern"], good)
        made = await call(running_app, "POST", "/api/v1/campaigns", token=token, json=body,
                          headers={"Idempotency-Key": good})
        assert made.status == 201, (good, made.text)
    before = await campaign_count(running_app)
    for bad in ("x" * 201, "caf\u00e9", "tab\there"):
        assert not re.fullmatch(key["schema"]["pattern"], bad)
        refused = await call(running_app, "POST", "/api/v1/campaigns", token=token, json=body,
                             headers={"Idempotency-Key": bad})
        assert refused.status == 422 and "Idempotency-Key" in refused.body["fields"], (bad, refused.text)
    assert await campaign_count(running_app) == before
    tasks = await call(running_app, "GET", "/api/v1/tasks?campaign=%60CM-1%60", token=token)
    assert tasks.status == 422 and "campaign" in tasks.body["fields"]


async def test_finishing_a_task_without_its_deliverable_asks_for_anyway(running_app: RunningApp) -> None:
    """The newsletter's copy edit hands over the email draft: as `/task done` asks first in Slack, the API
    answers 409 naming what is missing, and finishes it with `"anyway": true`."""
    alice = await api_token(running_app)
    made = await call(running_app, "POST", "/api/v1/campaigns", token=alice,
                      json={"name": "March issue", "template": "newsletter", "launch_date": launch_in(60).isoformat()})
    assert made.status == 201, made.text
    listed = await call(running_app, "GET", f"/api/v1/tasks?campaign={made.body['ref']}&limit=100", token=alice)
    copy_edit = next(task["ref"] for task in listed.body["items"] if task["title"].startswith("Copy edit"))
    refused = await call(running_app, "PATCH", f"/api/v1/tasks/{copy_edit}", token=alice, json={"status": "done"})
    assert refused.status == 409 and refused.body["error"] == "deliverable_missing", refused.text
    assert "email" in refused.body["detail"] and '"anyway": true' in refused.body["detail"]
    assert (await call(running_app, "GET", f"/api/v1/tasks/{copy_edit}", token=alice)).body["status"] != "done"
    done = await call(running_app, "PATCH", f"/api/v1/tasks/{copy_edit}", token=alice,
                      json={"status": "done", "anyway": True})
    assert done.status == 200 and done.body["status"] == "done", done.text
