"""The REST API fuzzed against its own OpenAPI document (schemathesis), over real HTTP to the running app.

Every operation gets valid and invalid requests (some aimed at a real campaign, task or approval of a
seeded workspace) with a write token. Each answer must be no 5xx, a status the document lists, and a body
matching the documented schema. A write that was refused must leave no row behind, and after the run
every campaign must still have its timeline and its tasks (nothing half-written).

The app serves in the test's event loop; hypothesis and schemathesis's synchronous client run in a thread
(`asyncio.to_thread`), and reach back into the loop only to count rows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi import checks as openapi_checks
from sqlalchemy import func, select

from handlers.web.api_v1 import limits
from models import (
    ApiIdempotencyKey,
    Approval,
    AuditEntry,
    Campaign,
    Comment,
    Notification,
    Task,
    TaskDependency,
    TeamMember,
    Timeline,
)
from tests.api_helpers import call, launch_in
from tests.conftest import RunningApp
from tests.home_helpers import planned_campaign
from tests.support.api import api_token

EXAMPLES_PER_MODE = 25  # per operation, valid and invalid each: about 30 s a backend on two shared cores
WRITES = {"POST", "PATCH", "PUT", "DELETE"}
COUNTED = (Campaign, Timeline, Task, TaskDependency, Comment, Approval, Notification, AuditEntry, ApiIdempotencyKey,
           TeamMember)
CHECKS = [schemathesis.checks.not_a_server_error, openapi_checks.status_code_conformance,
          openapi_checks.content_type_conformance, openapi_checks.response_schema_conformance,
          openapi_checks.negative_data_rejection]


async def row_counts(app: RunningApp) -> dict[str, int]:
    async with app.sessions() as db:
        return {model.__tablename__: int(await db.scalar(select(func.count()).select_from(model)) or 0)
                for model in COUNTED}


async def seeded_refs(app: RunningApp, token: str) -> dict[str, list[str]]:
    """A campaign from the small template, one from a real template through the API, an approval waiting on
    Alice, Bob on the team: the refs to aim at."""
    ids = await planned_campaign(app, owner="U0ALICE", assignee="U0ALICE")
    made = await call(app, "POST", "/api/v1/campaigns", token=token,
                      json={"name": "Fuzzed launch", "template": "product_launch", "launch_date": launch_in(90).isoformat()})
    assert made.status == 201, made.text
    async with app.sessions() as db:
        campaign_ids = list(await db.scalars(select(Campaign.id)))
        task_ids = list(await db.scalars(select(Task.id).order_by(Task.id).limit(8)))
    assert ids["brief"] in task_ids
    await api_token(app, user="U0BOB")  # Bob on the team too
    asked = await call(app, "POST", "/api/v1/approvals", token=token,
                       json={"campaign": f"CM-{campaign_ids[0]}", "stage": "Seeded review", "approvers": ["U0ALICE"]})
    assert asked.status == 201, asked.text
    return {"campaign": [f"CM-{i}" for i in campaign_ids], "task": [f"T-{i}" for i in task_ids],
            "approval": [item["ref"] for item in asked.body["approvals"]] + ["AP-999"], "person": PEOPLE}


def _path_kind(path: str) -> str | None:
    if "{slack_user_id}" in path:
        return "person"
    if "{ref}" not in path:
        return None
    return "approval" if path.startswith("/api/v1/approvals") else "task" if path.startswith("/api/v1/tasks") \
        else "campaign"


PEOPLE = ["U0ALICE", "U0BOB", "U0NOBODY"]
ESTIMATES = ["6h", "1.5d", "", "2w", "0h", "-1d", "99999d", "1e9h", "nan h"]


def _aimed_fields(method: str, path: str, refs: dict[str, list[str]]) -> dict[str, st.SearchStrategy[Any]]:
    """Values for body fields a random string would never get right, so creates and updates also succeed."""
    dates = st.integers(min_value=-3, max_value=800).map(lambda days: launch_in(days).isoformat())
    task_refs = st.lists(st.sampled_from(refs["task"]), max_size=3)
    if (method, path) == ("POST", "/api/v1/campaigns"):
        return {"template": st.sampled_from(["product_launch", "webinar", "newsletter", "promo", "event"]),
                "launch_date": dates, "owner": st.sampled_from(PEOPLE)}
    if (method, path) == ("POST", "/api/v1/tasks"):
        return {"campaign": st.sampled_from(refs["campaign"]), "after": task_refs, "before": task_refs,
                "assignee": st.sampled_from(PEOPLE), "estimate": st.sampled_from(ESTIMATES), "due": dates}
    if (method, path) == ("PATCH", "/api/v1/tasks/{ref}"):
        return {"assignee": st.sampled_from(PEOPLE), "estimate": st.sampled_from(ESTIMATES), "due": dates}
    if method == "PATCH" and path.startswith("/api/v1/team/"):
        return {"timezone": st.sampled_from(["Europe/Berlin", "america/chicago", "Mars/Olympus"]),
                "weekly_hours": st.sampled_from(["mon-fri 9-17", "mon-thu 9-17, fri 9-13", "sun 25-3", "x"]),
                "capacity": st.integers(min_value=1, max_value=50)}
    if (method, path) == ("POST", "/api/v1/approvals"):
        return {"campaign": st.sampled_from(refs["campaign"]), "approvers": st.lists(st.sampled_from(PEOPLE), max_size=3),
                "stage": st.sampled_from(["Legal review", "Brand", "legal REVIEW"]), "deadline": dates,
                "rule": st.sampled_from(["all", "any"])}
    if (method, path) == ("POST", "/api/v1/campaigns/{ref}/lifecycle"):
        return {"action": st.sampled_from(["launch", "pause", "resume", "complete", "cancel"])}
    return {}


def _aim(case: schemathesis.Case, fields: dict[str, Any]) -> schemathesis.Case:
    if isinstance(case.body, dict):
        case.body.update(fields)
    return case


def _strategy(operation: Any, mode: GenerationMode, auth: dict[str, str],
              refs: dict[str, list[str]]) -> st.SearchStrategy[schemathesis.Case]:
    strategy = operation.as_strategy(generation_mode=mode, headers=auth)
    if mode is not GenerationMode.POSITIVE:
        return strategy
    kind = _path_kind(operation.path)
    aimed = strategy
    if kind is not None:  # at rows and people that exist
        name = "slack_user_id" if kind == "person" else "ref"
        aimed = st.sampled_from(refs[kind]).flatmap(
            lambda value: operation.as_strategy(generation_mode=mode, headers=auth, path_parameters={name: value}))
    fields = _aimed_fields(operation.method.upper(), operation.path, refs)
    if fields:
        aimed = st.tuples(aimed, st.fixed_dictionaries(fields)).map(lambda pair: _aim(*pair))
    return strategy if aimed is strategy else st.one_of(strategy, aimed, aimed)


def _fuzz_one(operation: Any, mode: GenerationMode, *, base_url: str, auth: dict[str, str],
              refs: dict[str, list[str]], count_rows: Callable[[], dict[str, int]]) -> None:
    write = operation.method.upper() in WRITES

    @settings(max_examples=EXAMPLES_PER_MODE, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=_strategy(operation, mode, auth, refs))
    def one(case: schemathesis.Case) -> None:
        before = count_rows() if write else None
        response = case.call(base_url=base_url, headers=auth)
        case.validate_response(response, checks=CHECKS)
        if before is not None and response.status_code >= 400:
            after = count_rows()
            assert after == before, (f"answered {response.status_code} but wrote rows: {before} -> {after}; "
                                     f"{response.text}")

    one()


def _fuzz(schema: Any, *, base_url: str, token: str, refs: dict[str, list[str]],
          count_rows: Callable[[], dict[str, int]]) -> list[str]:
    """Runs in a worker thread: every operation, valid then invalid requests; the failures, one per line."""
    auth = {"Authorization": f"Bearer {token}"}
    problems: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _fuzz_one(operation, mode, base_url=base_url, auth=auth, refs=refs, count_rows=count_rows)
            except Unsatisfiable:  # nothing to get wrong: an operation without parameters or a body
                continue
            except (Exception, BaseExceptionGroup) as failure:  # collect: one report names each failing operation
                problems.append(f"{operation.method.upper()} {operation.path} ({mode.value}): {failure}")
    return problems


async def test_every_operation_survives_its_own_schema(running_app: RunningApp, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "LIMIT_PER_WINDOW", 1_000_000)  # the fuzzer is not the runaway client
    token = await api_token(running_app, scope="write")
    refs = await seeded_refs(running_app, token)
    document = (await call(running_app, "GET", "/api/v1/openapi.json")).body
    schema = schemathesis.openapi.from_dict(document)
    loop = asyncio.get_running_loop()

    def count_rows() -> dict[str, int]:  # from the fuzzing thread, in the loop that serves the app
        return asyncio.run_coroutine_threadsafe(row_counts(running_app), loop).result(timeout=30)

    problems = await asyncio.to_thread(_fuzz, schema, base_url=running_app.url("/").rstrip("/"), token=token,
                                       refs=refs, count_rows=count_rows)
    assert not problems, "\n\n".join(problems)

    async with running_app.sessions() as db:  # nothing half-written: every campaign has its plan
        campaigns = list(await db.scalars(select(Campaign.id)))
        timelines = set(await db.scalars(select(Timeline.campaign_id)))
        with_tasks = set(await db.scalars(select(Task.campaign_id).distinct()))
    assert len(campaigns) >= 2
    assert set(campaigns) <= timelines and set(campaigns) <= with_tasks
