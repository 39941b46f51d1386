"""`/campaign new|show|templates|assign` with the planning engine, end to end: the plan a new campaign gets,
how it is shown, the template catalogue, and who may staff a campaign."""

from __future__ import annotations

import math
import re
from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from models import AuditEntry, Campaign, Task, TaskDependency, TeamMember, Timeline
from services.planning.templates import load_library
from tests.conftest import RunningApp, app_settings, start_app
from tests.fake_slack import Call, FakeSlack
from tests.slack_helpers import owner_today, reply_text, send_command

LIBRARY = load_library()
LAUNCH = LIBRARY.templates["product_launch"]
BERLIN = ZoneInfo("Europe/Berlin")  # Alice's time zone in the fake Slack, so the plan's calendar


async def campaign(app: RunningApp, fake: FakeSlack, text: str, *, user_id: str = "U0ALICE") -> Call:
    return await send_command(app, fake, "/campaign", text, user_id=user_id)


async def new_launch(app: RunningApp, fake: FakeSlack, days_ahead: int, name: str = "X") -> Call:
    launch = owner_today() + timedelta(days=days_ahead)
    reply = await campaign(app, fake, f'new "{name}" product_launch {launch.isoformat()}')
    assert "created" in reply.args["text"], reply.args["text"]
    return reply


def days(hours: float) -> str:
    """Working days as the replies print them: one decimal, no `.0`."""
    return f"{hours / 8:.1f}".removesuffix(".0")


def fields(call: Call) -> dict[str, str]:
    """The first section's fields of a reply, `*Title*\\nvalue` -> {title: value}."""
    section = next(block for block in call.args["blocks"] if block.get("fields"))
    pairs = (field["text"].split("\n", 1) for field in section["fields"])
    return {title.strip("*"): value for title, value in pairs}


def context_starting(call: Call, prefix: str) -> str:
    texts = [element["text"] for block in call.args["blocks"] if block["type"] == "context"
             for element in block["elements"]]
    found = [text for text in texts if text.startswith(prefix)]
    assert found, f"no context line starting {prefix!r} in {texts}"
    return found[0]


def section_starting(call: Call, prefix: str) -> str:
    texts = [block["text"]["text"] for block in call.args["blocks"] if block["type"] == "section"]
    found = [text for text in texts if text.startswith(prefix)]
    assert found, f"no section starting {prefix!r} in {texts}"
    return found[0]


async def plan_rows(app: RunningApp) -> tuple[list[Task], list[TaskDependency], Timeline]:
    async with app.sessions() as db:
        tasks = list(await db.scalars(select(Task).order_by(Task.id)))
        links = list(await db.scalars(select(TaskDependency)))
        timeline = (await db.scalars(select(Timeline))).one()
    return tasks, links, timeline


# ---------------------------------------------------------------- /campaign new


async def test_new_campaign_announces_its_plan(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    reply = await new_launch(running_app, fake_slack, 60)
    work = [spec for spec in LAUNCH.tasks if not spec.milestone]
    milestones = [spec for spec in LAUNCH.tasks if spec.milestone]
    assert reply.args["response_type"] == "in_channel"
    assert reply.args["text"] == f"CM-1 created: X: {len(work)} tasks"
    shown = fields(reply)
    assert shown["Plan"] == f"{len(work)} tasks, {len(milestones)} milestones"
    # By hand (test_plan_truth): 114h of work and 32h of lags on the path, 18.25 working days.
    assert LAUNCH.critical_hours() == 146
    assert shown["Critical path"] == "18.25 working days"
    first_plan = context_starting(reply, "Planned:")
    assert f"launch {owner_today() + timedelta(days=60):%a %d %b} on target" in first_plan
    assert "buffer left 100%" in first_plan
    assert shown["Buffer"] == f"{days(LAUNCH.buffer_hours)} days before launch"
    assert shown["Template"] == "Product launch" and shown["Owner"] == "<@U0ALICE>"
    assert "(in 60 days)" in shown["Launch"]
    assert "Compressed" not in reply_text(reply)


async def test_new_campaign_stores_tasks_links_and_timeline(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await new_launch(running_app, fake_slack, 60)
    tasks, links, timeline = await plan_rows(running_app)
    async with running_app.sessions() as db:
        stored = (await db.scalars(select(Campaign))).one()

    assert [task.template_key for task in tasks] == [spec.key for spec in LAUNCH.tasks]
    assert all(task.campaign_id == stored.id and task.status.value == "todo" for task in tasks)
    assert all(task.start_at and task.due_at and task.start_at <= task.due_at for task in tasks)
    assert [task.is_milestone for task in tasks] == [spec.milestone for spec in LAUNCH.tasks]
    key = {task.id: task.template_key for task in tasks}
    assert {(key[link.predecessor_id], key[link.successor_id], link.lag_hours) for link in links} == {
        (after.task, spec.key, after.lag_hours) for spec in LAUNCH.tasks for after in spec.after
    }
    assert (timeline.campaign_id, timeline.template, timeline.buffer_hours) == (stored.id, "product_launch", 24.0)
    assert timeline.projected_launch == stored.launch_date and timeline.compressed_days == 0
    assert timeline.buffer_consumed_pct == 0 and len(timeline.approval_stages) == len(LAUNCH.approvals)
    assert [entry["name"] for entry in timeline.milestones] == [spec.title for spec in LAUNCH.tasks if spec.milestone]
    # The critical path is a chain of links whose durations and lags add up to the template's longest chain.
    lag = {(link.predecessor_id, link.successor_id): link.lag_hours for link in links}
    chain = timeline.critical_path
    assert all(pair in lag for pair in zip(chain, chain[1:], strict=False))
    by_id = {task.id: task for task in tasks}
    length = sum(by_id[task_id].duration_hours for task_id in chain) + sum(lag[p] for p in zip(chain, chain[1:], strict=False))
    assert length == LAUNCH.critical_hours()
    assert {task.id for task in tasks if task.on_critical_path} == set(chain)
    launch = next(task for task in tasks if task.template_key == LAUNCH.final_task().key)
    assert launch.due_at is not None and launch.due_at.astimezone(BERLIN).date() == stored.launch_date


async def test_a_launch_days_away_is_flagged_compressed_with_its_culprits(
    running_app: RunningApp, fake_slack: FakeSlack
) -> None:
    reply = await new_launch(running_app, fake_slack, 5)
    tasks, _, timeline = await plan_rows(running_app)
    assert reply.args["response_type"] == "in_channel"
    assert reply.args["text"].endswith("(compressed)")
    warning = section_starting(reply, ":warning: *Compressed:*")
    assert f"{timeline.compressed_days} working days short" in warning and timeline.compressed_days > 0
    named = re.findall(r"`T-(\d+)`", warning)
    by_id = {task.id: task for task in tasks}
    assert named, warning
    assert all(by_id[int(number)].on_critical_path and not by_id[int(number)].is_milestone for number in named)
    longest = max(task.duration_hours for task in tasks if task.on_critical_path)
    assert by_id[int(named[0])].duration_hours == longest  # the longest critical work is named first


async def test_a_nul_typed_into_a_name_is_dropped(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    # PostgreSQL text can't hold NUL: it used to be an "error id" there (and stored as is on SQLite).
    reply = await campaign(running_app, fake_slack, f'new "Spring\x00 sale" promo {owner_today() + timedelta(days=60)}')
    assert reply.args["text"].startswith("CM-1 created: Spring sale:")
    async with running_app.sessions() as db:
        assert (await db.scalars(select(Campaign.name))).one() == "Spring sale"


# ---------------------------------------------------------------- /campaign show


async def test_show_gives_milestones_critical_path_buffer_and_risk(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await new_launch(running_app, fake_slack, 60)
    shown = await campaign(running_app, fake_slack, "show CM-1")
    tasks, _, timeline = await plan_rows(running_app)
    by_id = {task.id: task for task in tasks}

    assert shown.args["response_type"] == "ephemeral"
    assert fields(shown)["Risk"] == ":large_green_circle: on track"
    assert fields(shown)["Buffer left"] == f"100% of {days(LAUNCH.buffer_hours)} days"
    assert "Projected launch" not in fields(shown)
    milestones = section_starting(shown, "*Milestones* (by due date)")
    ordered = sorted((task for task in tasks if task.is_milestone), key=lambda task: (task.due_at, task.id))
    for task in ordered:
        assert task.due_at is not None
        assert f"• {task.title}: {task.due_at.astimezone(BERLIN):%a %d %b}" in milestones
    assert [milestones.index(f"• {task.title}:") for task in ordered] == sorted(
        milestones.index(f"• {task.title}:") for task in ordered)
    critical = section_starting(shown, "*Critical path*")
    expected = [f"T-{task_id}" for task_id in timeline.critical_path if not by_id[task_id].is_milestone]
    assert re.findall(r"`(T-\d+)`", critical) == expected
    assert critical.startswith("*Critical path* (18.25 working days, in plan order)")


async def test_show_gives_the_latest_replan(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await new_launch(running_app, fake_slack, 60)
    assert "Last re-plan" not in reply_text(await campaign(running_app, fake_slack, "show CM-1"))
    await send_command(running_app, fake_slack, "/task", "estimate T-1 3d")
    shown = await campaign(running_app, fake_slack, "show CM-1")
    line = context_starting(shown, "Last re-plan (T-1 re-estimated 8h → 24h, ")
    launch = owner_today() + timedelta(days=60)
    assert line.endswith(f"): launch unchanged ({launch:%a %d %b}) · buffer left 100% → 100%")


async def test_show_of_a_compressed_campaign_says_late_and_when(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await new_launch(running_app, fake_slack, 5)
    shown = await campaign(running_app, fake_slack, "show CM-1")
    _, _, timeline = await plan_rows(running_app)
    assert timeline.projected_launch is not None
    assert fields(shown)["Risk"] == ":red_circle: late"
    assert fields(shown)["Projected launch"] == f"{timeline.projected_launch:%a %d %b %Y}"
    assert fields(shown)["Buffer left"].startswith("0% of")
    assert ":warning: *Compressed:*" in reply_text(shown)


async def test_a_compressed_plan_lists_its_tasks_by_due_date_with_what_is_possible(
    running_app: RunningApp, fake_slack: FakeSlack
) -> None:
    await new_launch(running_app, fake_slack, 5)
    reply = await send_command(running_app, fake_slack, "/task", "list CM-1")
    tasks, links, timeline = await plan_rows(running_app)
    by_id = {task.id: task for task in tasks}
    assert timeline.compressed_days > 0
    lines = [line for block in reply.args["blocks"] if block["type"] == "section"
             for line in block["text"]["text"].split("\n")]
    shown = [int(number) for line in lines for number in re.findall(r"^\S+ `T-(\d+)`", line)]
    assert sorted(shown) == sorted(by_id)
    dues = [by_id[task_id].due_at for task_id in shown]
    assert dues == sorted(dues)  # by due date, top to bottom
    assert "in plan order, by due date" in reply_text(reply)
    for link in links:  # nothing is due before what it waits for
        before, after = by_id[link.predecessor_id].due_at, by_id[link.successor_id].due_at
        assert before is not None and after is not None and before <= after
    # Every late task says when it can really finish and by how much it misses what the launch needs.
    late = [task for task in tasks if task.float_hours < 0 and not task.is_milestone]
    assert late
    for task in late:
        [line] = [line for line in lines if f"`T-{task.id}`" in line]
        assert task.earliest_finish_at is not None
        assert f"can finish {task.earliest_finish_at.astimezone(BERLIN):%a %d %b}" in line
        late_days = math.ceil(-task.float_hours / 8)
        assert f"{late_days} working day{'s' if late_days != 1 else ''} late" in line, line
    # The critical tasks miss it by as much as the plan is short.
    assert all(math.ceil(-task.float_hours / 8) == timeline.compressed_days for task in late if task.on_critical_path)


# ---------------------------------------------------------------- /campaign templates


async def test_templates_lists_every_built_in_with_its_length(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    reply = await campaign(running_app, fake_slack, "templates")
    text = reply_text(reply)
    assert reply.args["response_type"] == "ephemeral"
    assert reply.args["text"] == "5 templates"
    assert sorted(LIBRARY.templates) == ["event", "newsletter", "product_launch", "promo", "webinar"]
    for template in LIBRARY.templates.values():
        assert (f"`{template.name}` *{template.title}*" in text
                and f"(about {template.typical_length_days()} working days, {len(template.tasks)} tasks)" in text)
    positions = [text.index(f"`{t.name}`") for t in sorted(LIBRARY.templates.values(), key=lambda t: t.typical_length_days())]
    assert positions == sorted(positions)  # shortest first


# ---------------------------------------------------------------- /campaign assign

TEAM = {  # Slack id -> (real name, skills); nobody has `pr` or `approvals`
    "U0ALICE": ("Alice Archer", "strategy,positioning"),
    "U0CAROL": ("Carol Cook", "copywriting,email"),
    "U0DAVE": ("Dave Dunn", "design,video"),
    "U0ERIN": ("Erin Ede", "web,ads,analytics,social"),
}
UNCOVERED = {"pr", "approvals"}


async def build_team(app: RunningApp, fake: FakeSlack) -> None:
    for user_id, (name, skills) in TEAM.items():
        if user_id not in fake.users:
            fake.add_user(user_id, name=name.split()[0].lower(), real_name=name, tz="Europe/London")
        reply = await send_command(app, fake, "/team", f"me skills={skills} capacity=10", user_id=user_id)
        assert "Updated" in reply.args["text"], reply.args["text"]


async def assigned_state(app: RunningApp) -> list[tuple[int, int | None, str | None]]:
    async with app.sessions() as db:
        return [(task.id, task.assignee_id, task.assignment_reason)
                for task in await db.scalars(select(Task).order_by(Task.id))]


async def check_assignment(app: RunningApp, reply: Call, actor: str) -> None:
    """Every task whose skill someone has went to that person, with the reason; the others stay open."""
    lines = [line for block in reply.args["blocks"] if block["type"] == "section"
             for line in block["text"]["text"].split("\n")]
    async with app.sessions() as db:
        tasks = list(await db.scalars(select(Task).order_by(Task.id)))
        members = {m.id: m for m in await db.scalars(select(TeamMember))}
        assigned_audit = list(await db.scalars(select(AuditEntry).where(AuditEntry.action == "task.assigned")))
    work = [task for task in tasks if not task.is_milestone]
    covered = [task for task in work if task.required_skill not in UNCOVERED]
    assert reply.args["response_type"] == "ephemeral"
    assert reply.args["text"] == f"CM-1: assigned {len(covered)} of {len(work)} tasks"
    for task in work:
        [line] = [line for line in lines if f"`T-{task.id}`" in line]
        if task.required_skill in UNCOVERED:
            assert task.assignee_id is None and task.assignment_reason is None
            assert f"Nobody fits: no one has the skill '{task.required_skill}'" in line
            continue
        member = members[task.assignee_id] if task.assignee_id else None
        assert member is not None, f"T-{task.id} ({task.required_skill}) was not assigned"
        assert task.required_skill in member.skills
        assert task.assignment_reason is not None
        assert task.assignment_reason.startswith(f"{member.name}: {task.required_skill}, ")
        assert "slots busy" in task.assignment_reason and "works Mon-Fri 9-17" in task.assignment_reason
        assert task.assignment_reason in line
    assert all(task.assignee_id is None for task in tasks if task.is_milestone)
    assert len(assigned_audit) == len(covered) and {entry.actor for entry in assigned_audit} == {actor}


async def test_owner_assigns_the_campaign_with_reasons(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await new_launch(running_app, fake_slack, 60)
    await build_team(running_app, fake_slack)
    reply = await campaign(running_app, fake_slack, "assign CM-1")
    await check_assignment(running_app, reply, "U0ALICE")
    again = await campaign(running_app, fake_slack, "assign CM-1")  # only the still-open tasks are tried
    open_work = [spec for spec in LAUNCH.tasks if not spec.milestone and spec.skill in UNCOVERED]
    assert again.args["text"] == f"CM-1: assigned 0 of {len(open_work)} tasks"


async def test_someone_else_may_not_assign(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await new_launch(running_app, fake_slack, 60)
    await build_team(running_app, fake_slack)
    before = await assigned_state(running_app)
    reply = await campaign(running_app, fake_slack, "assign CM-1", user_id="U0CAROL")
    assert reply.args["response_type"] == "ephemeral"
    assert "Only the campaign owner or an admin" in reply.args["text"]
    assert await assigned_state(running_app) == before
    async with running_app.sessions() as db:
        assert (await db.scalars(select(AuditEntry).where(AuditEntry.action == "task.assigned"))).all() == []


async def test_an_admin_may_assign_anyones_campaign(db_url: str, fake_slack: FakeSlack) -> None:
    async with start_app(app_settings(db_url, fake_slack, admin_user_ids="U0BOB"), fake_slack) as app:
        await new_launch(app, fake_slack, 60)
        await build_team(app, fake_slack)
        reply = await campaign(app, fake_slack, "assign CM-1", user_id="U0BOB")
        await check_assignment(app, reply, "U0BOB")
