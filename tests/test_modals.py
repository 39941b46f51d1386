"""The forms end to end: `/campaign new` and `/task new` without arguments, the "Create task from message"
shortcut, and what their submissions create (a campaign with its plan; a task with its links, re-planned),
or refuse, under the field at fault."""

from __future__ import annotations

import itertools
import json
import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from models import (
    AuditEntry,
    Campaign,
    Priority,
    Task,
    TaskDependency,
    TeamMember,
    Timeline,
    TimelineSnapshot,
)
from services.planning.templates import load_library
from tests.conftest import RunningApp, app_settings, start_app
from tests.fake_slack import Call, FakeSlack, view_problems
from tests.slack_helpers import count, owner_today, reply_text, send_command
from tests.slack_requests import message_action_payload, view_submission_payload

LIBRARY = load_library()
LAUNCH = LIBRARY.templates["product_launch"]
SOON = owner_today() + timedelta(days=60)
PAST = owner_today() - timedelta(days=1)
# T-n of a fresh product launch (template order): brief 1, research 2, positioning 3, web_copy 6, launch 22.
BRIEF, RESEARCH, POSITIONING, WEB_COPY, GO_NO_GO, LAUNCH_MILESTONE = 1, 2, 3, 6, 21, 22
NEW_TASK = len(LAUNCH.tasks) + 1


def select_(value: str) -> dict[str, Any]:
    return {"type": "static_select", "selected_option": {"text": {"type": "plain_text", "text": value},
                                                          "value": value}}


def day(value: Any) -> dict[str, Any]:
    return {"type": "datepicker", "selected_date": str(value) if value else None}


def user(value: str | None) -> dict[str, Any]:
    return {"type": "users_select", "selected_user": value}


_VIEW_IDS = itertools.count(1)


async def submit(app: RunningApp, callback_id: str, values: dict[str, Any], *, user_id: str = "U0ALICE") -> dict:
    """Send a view submission as a form of its own; return the ack's JSON body ({} for a plain ack).

    Each call is another view: a task form sent again as the same view adds nothing (the idempotence is
    tested in test_form_submissions.py), and the fuzz in test_fuzz_commands.py means every example to
    reach the task form's checks."""
    payload = view_submission_payload(user_id=user_id, callback_id=callback_id, view_id=f"V0FORM{next(_VIEW_IDS)}",
                                      values={block: {"value": leaf} for block, leaf in values.items()})
    status, body = await app.slack.interaction(payload)
    assert status == 200, body
    return json.loads(body) if body else {}


# ---------------------------------------------------------------- the campaign form


def campaign_form(name: str = "Spring launch", template: str | None = "product_launch", launch: Any = SOON,
                  owner: str | None = "U0ALICE", channel: str | None = None) -> dict[str, Any]:
    return {
        "name": name, "template": select_(template) if template else {"type": "static_select", "selected_option": None},
        "launch_date": day(launch), "owner": user(owner),
        "channel": {"type": "conversations_select", "selected_conversation": channel},
    }


async def test_campaign_new_alone_opens_the_form(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    status, _ = await running_app.slack.command("/campaign", "new", user_id="U0ALICE")
    assert status == 200
    opened = await fake_slack.wait_for("views.open")
    assert opened.args["trigger_id"] == "trig.123" and opened.response["ok"], opened.response
    view = opened.args["view"]
    assert view["callback_id"] == "campaign_new_modal" and view["title"]["text"] == "New campaign"
    assert view_problems(view) == []
    inputs = {block["block_id"]: block["element"] for block in view["blocks"] if block["type"] == "input"}
    assert list(inputs) == ["name", "template", "launch_date", "owner", "channel"]
    assert {option["value"] for option in inputs["template"]["options"]} == set(LIBRARY.templates)
    assert all(len(option["text"]["text"]) <= 75 for option in inputs["template"]["options"])
    assert inputs["launch_date"]["type"] == "datepicker" and inputs["owner"]["initial_user"] == "U0ALICE"
    assert inputs["channel"]["type"] == "conversations_select"
    assert fake_slack.calls_to("response_url") == []  # the form is the answer
    assert await count(running_app, TeamMember) == 0  # nothing was looked up before the form opened


async def test_the_campaign_form_creates_the_campaign_with_its_plan(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    ack = await submit(running_app, "campaign_new_modal", campaign_form(channel="C0LAUNCH"))

    assert ack["response_action"] == "update" and view_problems(ack["view"]) == []
    assert ack["view"]["title"]["text"] == "Campaign created"
    assert "CM-1 created: *Spring launch*" in json.dumps(ack["view"]) and "Also posted to <#C0LAUNCH>" in json.dumps(ack["view"])
    async with running_app.sessions() as db:
        campaign = (await db.scalars(select(Campaign))).one()
        tasks = list(await db.scalars(select(Task)))
        timeline = (await db.scalars(select(Timeline))).one()
        entry = (await db.scalars(select(AuditEntry))).one()
    assert (campaign.name, campaign.template, campaign.launch_date, campaign.channel_id) == (
        "Spring launch", "product_launch", SOON, "C0LAUNCH")
    assert len(tasks) == len(LAUNCH.tasks) and all(task.due_at is not None for task in tasks)
    assert timeline.critical_path and timeline.projected_launch == SOON
    assert (entry.action, entry.actor) == ("campaign.created", "U0ALICE") and "owner" not in entry.details
    posted = await fake_slack.wait_for("chat.postMessage", lambda call: call.args.get("channel") == "C0LAUNCH")
    assert posted.args["text"] == f"CM-1 created: Spring launch: {sum(not s.milestone for s in LAUNCH.tasks)} tasks"


async def test_the_same_created_message_as_the_quick_form(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await submit(running_app, "campaign_new_modal", campaign_form(name="Formed", channel=None))
    dm = await fake_slack.wait_for("chat.postMessage", lambda call: "CM-1 created" in call.args["text"])
    quick = await send_command(running_app, fake_slack, "/campaign", f'new "Formed" product_launch {SOON}')
    assert dm.args["channel"] == "U0ALICE"  # no channel chosen: the requester hears it directly

    def same_refs(text: str) -> str:  # the second campaign's tasks have other numbers
        return re.sub(r"T-\d+", "T-n", text.replace("CM-1", "CM-2"))

    assert same_refs(dm.args["text"]) == same_refs(quick.args["text"])
    assert same_refs(json.dumps(dm.args["blocks"])) == same_refs(json.dumps(quick.args["blocks"]))


async def test_a_channel_the_bot_is_not_in_tells_the_owner_how_to_fix_it(db_url: str, fake_slack: FakeSlack) -> None:
    """The "created" message goes through the outbox: a channel the bot is not in fails it for good, and the
    delivery job's failure path tells the owner, with the "invite me" hint and a Try again button."""
    async with start_app(app_settings(db_url, fake_slack), fake_slack, run_worker=True) as app:
        async with app.sessions.begin() as db:  # the template's approvers exist: no notice comes first
            db.add_all(TeamMember(slack_user_id=f"U0{role.upper().replace(' ', '')}", name=role, role=role)
                       for role in ("marketing lead", "legal", "brand"))
        fake_slack.fail_next("chat.postMessage", error="not_in_channel")
        await submit(app, "campaign_new_modal", campaign_form(channel="C0SECRET"))
        notice = await fake_slack.wait_for("chat.postMessage", lambda call: call.args.get("channel") == "U0ALICE")
        async with app.sessions() as db:
            assert (await db.scalars(select(Campaign.channel_id))).one() == "C0SECRET"  # kept: invite and it works
    [refused] = [call for call in fake_slack.calls_to("chat.postMessage") if call.args.get("channel") == "C0SECRET"]
    assert refused.injected and "CM-1 created" in refused.args["text"]
    shown = reply_text(notice)
    assert "could not deliver a campaign created about CM-1 *Spring launch* to <#C0SECRET>" in shown, shown
    assert "Invite me to the channel (`/invite @Campaign Manager`)" in shown and "Try again" in shown


async def test_someone_else_can_be_named_owner(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await submit(running_app, "campaign_new_modal", campaign_form(owner="U0BOB"))
    async with running_app.sessions() as db:
        campaign = (await db.scalars(select(Campaign))).one()
        owner = await db.get(TeamMember, campaign.owner_id)
        entry = (await db.scalars(select(AuditEntry))).one()
    assert owner is not None and (owner.slack_user_id, owner.timezone) == ("U0BOB", "America/Chicago")
    assert entry.actor == "U0ALICE" and entry.details["owner"] == "U0BOB"


@pytest.mark.parametrize(
    ("form", "field", "says"),
    [
        (campaign_form(name="   "), "name", "Give the campaign a name."),
        (campaign_form(name="x" * 201), "name", "keep it under 201"),
        (campaign_form(template=None), "template", "Pick a template."),
        (campaign_form(template="billboard"), "template", "There is no template called `billboard`"),
        (campaign_form(launch=None), "launch_date", "Pick the launch date."),
        (campaign_form(launch=PAST), "launch_date", f"The launch date {PAST.isoformat()} is in the past"),
        (campaign_form(launch=owner_today() + timedelta(days=4000)), "launch_date", "years away"),
    ],
)
async def test_a_bad_campaign_form_is_refused_under_its_field(
    running_app: RunningApp, fake_slack: FakeSlack, form: dict[str, Any], field: str, says: str
) -> None:
    ack = await submit(running_app, "campaign_new_modal", form)
    assert ack["response_action"] == "errors" and list(ack["errors"]) == [field], ack
    assert says in ack["errors"][field]
    assert await count(running_app, Campaign) == 0 and await count(running_app, TeamMember) == 0
    assert fake_slack.calls_to("chat.postMessage") == []


async def test_typed_markup_in_the_form_never_fires(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    ack = await submit(running_app, "campaign_new_modal", campaign_form(name="Sale <!channel> & <@U0BOB>"))
    dm = await fake_slack.wait_for("chat.postMessage")
    for shown in (json.dumps(ack), json.dumps(dm.args)):
        assert "<!channel>" not in shown and "<@U0BOB>" not in shown
        assert "Sale &lt;!channel&gt; &amp; &lt;@U0BOB&gt;" in shown
    async with running_app.sessions() as db:
        assert (await db.scalars(select(Campaign.name))).one() == "Sale <!channel> & <@U0BOB>"


# ---------------------------------------------------------------- the task form


async def new_campaign(app: RunningApp, fake: FakeSlack, *, user_id: str = "U0ALICE", name: str = "Spring") -> None:
    reply = await send_command(app, fake, "/campaign", f'new "{name}" product_launch {SOON}', user_id=user_id)
    assert "created" in reply.args["text"], reply.args["text"]


def task_form(campaign: int | None = 1, title: str = "Partner webinar", *, estimate: str = "", due: Any = None,
              assignee: str | None = None, priority: str = "normal", after: str = "", before: str = "",
              description: str = "") -> dict[str, Any]:
    return {
        "campaign": select_(str(campaign)) if campaign else {"type": "static_select", "selected_option": None},
        "title": title, "description": description, "estimate": estimate, "due": day(due),
        "assignee": user(assignee), "priority": select_(priority), "after": after, "before": before,
    }


def inputs_of(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {block["block_id"]: block["element"] for block in view["blocks"] if block["type"] == "input"}


async def test_task_new_alone_opens_the_form(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await new_campaign(running_app, fake_slack, name="Spring")
    await new_campaign(running_app, fake_slack, user_id="U0BOB", name="Bob's")
    status, _ = await running_app.slack.command("/task", "new", user_id="U0ALICE")
    assert status == 200
    opened = await fake_slack.wait_for("views.open")
    view = opened.args["view"]
    assert opened.args["trigger_id"] == "trig.123" and opened.response["ok"] and view_problems(view) == []
    assert view["callback_id"] == "task_new_modal" and view["title"]["text"] == "New task"
    inputs = inputs_of(view)
    assert list(inputs) == ["campaign", "title", "description", "estimate", "due", "assignee", "priority", "after",
                            "before"]
    # Only what Alice may add to; the campaign of the channel she typed in is already chosen.
    assert [option["value"] for option in inputs["campaign"]["options"]] == ["1"]
    assert inputs["campaign"]["initial_option"]["text"]["text"] == "CM-1 Spring"
    assert inputs["due"]["type"] == "datepicker" and inputs["assignee"]["type"] == "users_select"
    assert [option["value"] for option in inputs["priority"]["options"]] == ["low", "normal", "high", "urgent"]
    assert inputs["priority"]["initial_option"]["value"] == "normal"


async def test_task_new_without_a_campaign_to_add_to_says_so(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await new_campaign(running_app, fake_slack)
    reply = await send_command(running_app, fake_slack, "/task", "new", user_id="U0BOB")
    assert reply.args["response_type"] == "ephemeral"
    assert "There is no open campaign you can add tasks to" in reply.args["text"]
    assert fake_slack.calls_to("views.open") == []


async def test_a_hundred_campaigns_at_most(db_url: str, fake_slack: FakeSlack) -> None:
    async with start_app(app_settings(db_url, fake_slack, admin_user_ids="U0ALICE"), fake_slack) as app:
        await new_campaign(app, fake_slack)
        async with app.sessions.begin() as db:
            db.add_all(Campaign(name="x" * 200, template="promo", launch_date=SOON, owner_id=1) for _ in range(110))
        await app.slack.command("/task", "new", user_id="U0ALICE")
        opened = await fake_slack.wait_for("views.open")
    options = inputs_of(opened.args["view"])["campaign"]["options"]
    assert len(options) == 100 and all(len(option["text"]["text"]) <= 75 for option in options)
    assert opened.response["ok"], opened.response


async def test_the_task_form_adds_the_task_links_it_and_replans(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await new_campaign(running_app, fake_slack)
    ack = await submit(running_app, "task_new_modal", task_form(
        title="Partner webinar <!here>", estimate="30d", after=f"T-{BRIEF}", before=f"t{LAUNCH_MILESTONE}",
        priority="high", assignee="U0BOB", description="Line one\nline two"))

    assert ack["response_action"] == "update" and view_problems(ack["view"]) == [], ack
    shown = json.dumps(ack["view"])
    assert f"T-{NEW_TASK} added to CM-1" in shown and "Partner webinar &lt;!here&gt;" in shown and "<!here>" not in shown
    assert f"Waits for `T-{BRIEF}`" in shown and f"Comes before `T-{LAUNCH_MILESTONE}`" in shown
    async with running_app.sessions() as db:
        task = await db.get(Task, NEW_TASK)
        links = {(d.predecessor_id, d.successor_id) for d in await db.scalars(select(TaskDependency))}
        timeline = (await db.scalars(select(Timeline))).one()
        snapshot = (await db.scalars(select(TimelineSnapshot).order_by(TimelineSnapshot.id.desc()))).first()
        bob = await db.scalar(select(TeamMember).where(TeamMember.slack_user_id == "U0BOB"))
        [entry] = await db.scalars(select(AuditEntry).where(AuditEntry.action == "task.created"))
    assert task is not None and bob is not None
    assert (task.campaign_id, task.title, task.duration_hours, task.priority) == (1, "Partner webinar <!here>", 240.0,
                                                                                  Priority.HIGH)
    assert task.description == "Line one\nline two" and task.assignee_id == bob.id
    assert {(BRIEF, NEW_TASK), (NEW_TASK, LAUNCH_MILESTONE)} <= links
    # Re-planned: thirty days of work between the brief and the launch is the longest chain now.
    assert snapshot is not None and snapshot.reason == f"T-{NEW_TASK} added"
    assert task.on_critical_path and NEW_TASK in timeline.critical_path
    assert task.start_at is not None and task.due_at is not None
    assert entry.actor == "U0ALICE" and entry.details["after"] == [BRIEF] and entry.details["before"] == [LAUNCH_MILESTONE]


async def test_an_empty_estimate_is_a_day(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await new_campaign(running_app, fake_slack)
    due = owner_today() + timedelta(days=20)
    ack = await submit(running_app, "task_new_modal", task_form(due=due))
    assert ack["response_action"] == "update", ack
    async with running_app.sessions() as db:
        task = await db.get(Task, NEW_TASK)
    assert task is not None and task.duration_hours == 8.0 and task.due_fixed and task.assignee_id is None
    assert task.due_at is not None and task.due_at.date() == due


async def test_a_loop_between_tasks_is_refused(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await new_campaign(running_app, fake_slack)
    ack = await submit(running_app, "task_new_modal", task_form(after=f"T-{WEB_COPY}", before=f"T-{RESEARCH}"))
    assert ack["response_action"] == "errors" and list(ack["errors"]) == ["before"], ack
    assert ack["errors"]["before"].startswith(
        f"That makes a loop: this task → T-{RESEARCH} → T-{POSITIONING} → T-{WEB_COPY} → this task")
    assert await count(running_app, Task) == len(LAUNCH.tasks)
    same = await submit(running_app, "task_new_modal", task_form(after="T-4", before="T-4"))
    assert same["errors"]["before"].startswith("That makes a loop: this task → T-4 → this task")


@pytest.mark.parametrize(
    ("form", "field", "says"),
    [
        (task_form(title="  "), "title", "Give the task a title."),
        (task_form(title="x" * 301), "title", "keep it under 301"),
        (task_form(campaign=None), "campaign", "Pick a campaign."),
        (task_form(campaign=9), "campaign", "There is no campaign CM-9."),
        (task_form(campaign=2), "campaign", "CM-2 is cancelled; it takes no new tasks."),
        (task_form(estimate="3x"), "estimate", "'3x' is not a duration"),
        (task_form(estimate="61d"), "estimate", "An estimate is between 30m and 60d"),
        (task_form(due=PAST), "due", f"{PAST.isoformat()} is in the past"),
        (task_form(after="T-999"), "after", "There is no task T-999."),
        (task_form(after="T-1, CM-1"), "after", "`CM-1` is not a task reference"),
        (task_form(after=f"T-{len(LAUNCH.tasks) * 2}"), "after", "belongs to CM-2, not CM-1"),
        (task_form(before="T-1", after=""), None, None),  # allowed: the brief now waits for it
        (task_form(priority="someday"), "priority", "Pick a priority."),
    ],
)
async def test_a_bad_task_form_is_refused_under_its_field(
    running_app: RunningApp, fake_slack: FakeSlack, form: dict[str, Any], field: str | None, says: str | None
) -> None:
    await new_campaign(running_app, fake_slack)
    await new_campaign(running_app, fake_slack, name="Second")
    await send_command(running_app, fake_slack, "/campaign", "cancel CM-2")
    ack = await submit(running_app, "task_new_modal", form)
    if field is None:
        assert ack["response_action"] == "update", ack
        return
    assert ack["response_action"] == "errors" and list(ack["errors"]) == [field], ack
    assert says is not None and says in ack["errors"][field], ack["errors"][field]
    assert await count(running_app, Task) == 2 * len(LAUNCH.tasks)


async def test_who_may_add_a_task(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await new_campaign(running_app, fake_slack)
    refused = await submit(running_app, "task_new_modal", task_form(), user_id="U0BOB")
    assert refused["errors"] == {
        "campaign": "Only the owner of CM-1, people with a task in it, or an admin can add tasks to it."}
    await send_command(running_app, fake_slack, "/task", "assign T-2 <@U0BOB|bob>")  # now Bob works on CM-1
    not_for_others = await submit(running_app, "task_new_modal", task_form(assignee="U0ALICE"), user_id="U0BOB")
    assert list(not_for_others["errors"]) == ["assignee"]
    assert "Only the campaign owner or an admin can give a task to someone else" in not_for_others["errors"]["assignee"]
    mine = await submit(running_app, "task_new_modal", task_form(assignee="U0BOB"), user_id="U0BOB")
    assert mine["response_action"] == "update", mine
    async with running_app.sessions() as db:
        task = await db.get(Task, NEW_TASK)
    assert task is not None and task.assignee_id is not None


# ---------------------------------------------------------------- the message shortcut


async def shortcut(app: RunningApp, text: str, *, user_id: str = "U0ALICE", **kw: Any) -> None:
    payload = message_action_payload(user_id=user_id, callback_id="create_task_from_message", text=text, **kw)
    status, _ = await app.slack.interaction(payload)
    assert status == 200


async def opened_form(fake: FakeSlack) -> tuple[Call, dict[str, dict[str, Any]]]:
    opened = await fake.wait_for("views.open")
    assert opened.response["ok"], opened.response
    return opened, inputs_of(opened.args["view"])


async def test_the_shortcut_opens_the_form_with_the_message(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await new_campaign(running_app, fake_slack)
    text = ("\n  Draft the &lt;launch&gt;   email for <@U0BOB|bob> &amp; <#C0PR|pr>  \nDetails: <https://docs.example.com|the doc>")
    await shortcut(running_app, text, message_ts="1700000123.000200")
    opened, inputs = await opened_form(fake_slack)

    assert opened.args["trigger_id"] == "trig.123" and opened.args["view"]["title"]["text"] == "Task from message"
    assert opened.args["view"]["callback_id"] == "task_new_modal"
    assert inputs["title"]["initial_value"] == "Draft the <launch> email for @bob & #pr"
    permalink = "https://test-team.slack.com/archives/C0GENERAL/p1700000123000200"
    assert inputs["description"]["initial_value"] == (
        "Draft the <launch>   email for @bob & #pr  \nDetails: the doc\n\nFrom " + permalink)
    assert inputs["campaign"]["initial_option"]["value"] == "1"  # the campaign of this channel
    [asked] = fake_slack.calls_to("chat.getPermalink")
    assert (asked.args["channel"], asked.args["message_ts"]) == ("C0GENERAL", "1700000123.000200")


async def test_without_a_permalink_the_description_says_where_it_came_from(
    running_app: RunningApp, fake_slack: FakeSlack
) -> None:
    await new_campaign(running_app, fake_slack)
    fake_slack.fail_next("chat.getPermalink", error="channel_not_found")
    long_line = "word " * 100
    await shortcut(running_app, long_line, channel_id="C0PRIVATE", channel_name="secret-plans")
    _, inputs = await opened_form(fake_slack)
    assert len(inputs["title"]["initial_value"]) == 300 and inputs["title"]["initial_value"].endswith("…")
    assert inputs["description"]["initial_value"].endswith(
        "From a message in #secret-plans (channel C0PRIVATE, message 1700000000.000100)")
    assert "initial_option" not in inputs["campaign"]


async def test_a_very_long_message_still_fits_the_form(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await new_campaign(running_app, fake_slack)
    await shortcut(running_app, "Title\n" + "x" * 5000)
    _, inputs = await opened_form(fake_slack)
    description = inputs["description"]["initial_value"]
    assert len(description) <= 3000 and description.endswith("p1700000000000100")


async def test_the_shortcut_without_a_campaign_explains_in_the_form(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await shortcut(running_app, "Do the thing")
    opened, _ = await opened_form(fake_slack)
    assert "There is no open campaign you can add tasks to" in json.dumps(opened.args["view"])


async def test_a_task_from_a_message_is_created_on_submit(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await new_campaign(running_app, fake_slack)
    await shortcut(running_app, "Ask legal about the claims")
    _, inputs = await opened_form(fake_slack)
    form = task_form(title=inputs["title"]["initial_value"], description=inputs["description"]["initial_value"],
                     after=f"T-{WEB_COPY}")
    ack = await submit(running_app, "task_new_modal", form)
    assert ack["response_action"] == "update", ack
    async with running_app.sessions() as db:
        task = await db.get(Task, NEW_TASK)
    assert task is not None and task.title == "Ask legal about the claims"
    assert task.description is not None and task.description.endswith("/archives/C0GENERAL/p1700000000000100")
