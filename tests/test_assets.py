"""Assets and content checks through signed Slack requests to the real app, on both backends: adding links
and drafts, the stage held by content errors and opened once they are fixed, the warnings in the approval
request, the refused ad hoc request, the "Attach to campaign" shortcut, a task that hands over an asset, who
may add one, and hostile titles kept inert in Slack and on the dashboard."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from models import Approval, Asset, AssetStatus, Task, TaskStatus
from tests.approval_helpers import (
    CAROL,
    ERIN,
    MENTION,
    OWNER,
    approval,
    new_campaign,
    posts_in,
    requests_to,
    settled,
    task_id,
    text_of,
)
from tests.conftest import RunningApp
from tests.dashboard_helpers import fetch
from tests.fake_slack import Call, FakeSlack
from tests.fake_slack_blocks import view_problems
from tests.home_helpers import home_opened
from tests.slack_helpers import count, reply_text, send_command
from tests.slack_requests import block_actions_payload, message_action_payload, view_submission_payload
from tests.support.dashboard import dashboard_token

UNSUBSCRIBE = '<p><a href="https://example.com/unsubscribe">Unsubscribe</a></p>'
BODY = '<p>Spring is here.</p><a href="https://example.com/spring">Shop the collection</a>'  # no utm_, no way out
_views = iter(range(1, 10_000))


async def campaign(app: RunningApp, fake: FakeSlack, template: str = "webinar", name: str = "Spring") -> int:
    return await new_campaign(app, fake, name=name, template=template)


async def asset_command(app: RunningApp, fake: FakeSlack, text: str, user: str = OWNER) -> str:
    return reply_text(await send_command(app, fake, "/campaign", text, user_id=user))


async def open_draft_form(app: RunningApp, fake: FakeSlack, text: str, user: str = OWNER) -> dict[str, Any]:
    seen = len(fake.calls_to("views.open"))
    status, _ = await app.slack.command("/campaign", f"asset draft {text}", user_id=user,
                                        response_url=fake.response_url())
    assert status == 200
    opened = await fake.wait_for("views.open", count=seen + 1)
    assert opened.response["ok"], opened.response
    view = opened.args["view"]
    assert view_problems(view) == []
    return view


async def submit_form(app: RunningApp, view: dict[str, Any], values: dict[str, str | dict], user: str = OWNER) -> dict:
    payload = view_submission_payload(user_id=user, callback_id=view["callback_id"], view_id=f"V0ASSET{next(_views)}",
                                      private_metadata=view.get("private_metadata", ""),
                                      values={block: {"value": leaf} for block, leaf in values.items()})
    status, body = await app.slack.interaction(payload)
    assert status == 200, body
    return json.loads(body) if body else {}


def draft_values(**fields: str) -> dict[str, str]:
    values = {"title": "Spring issue", "subject": "Spring is here", "preheader": "", "body": BODY, "url": "",
              "deliverable": ""}
    values.update(fields)
    return values


async def assets_of(app: RunningApp) -> list[Asset]:
    async with app.sessions() as db:
        return list(await db.scalars(select(Asset).order_by(Asset.id)))


def held_notices(fake: FakeSlack) -> list[Call]:
    return [call for call in posts_in(fake, OWNER) if "content error" in text_of(call)]


# ---------------------------------------------------------------- adding, listing


async def test_a_link_and_a_draft_show_in_campaign_show(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await campaign(running_app, fake_slack)
    added = await asset_command(running_app, fake_slack,
                                "asset add CM-1 <https://example.com/spring?utm_source=slack> landing_page Spring page")
    assert "AS-1" in added and "Spring page" in added and "landing_page" in added, added
    again = await asset_command(running_app, fake_slack, "asset add CM-1 https://example.com/spring?utm_source=slack")
    assert "has it already" in again and await count(running_app, Asset) == 1

    form = await open_draft_form(running_app, fake_slack, "CM-1")
    assert form["callback_id"] == "asset_draft_modal" and form["private_metadata"] == "campaign:1"
    ack = await submit_form(running_app, form, draft_values(body=BODY + UNSUBSCRIBE, preheader="New colours"))
    assert ack["response_action"] == "update", ack
    assert "AS-2" in json.dumps(ack["view"]) and "no utm_ parameters" in json.dumps(ack["view"])
    [link, draft] = await assets_of(running_app)
    assert (link.kind, link.name, draft.kind, draft.subject) == ("landing_page", "Spring page", "email", "Spring is here")
    assert draft.created_by_id is not None

    shown = await asset_command(running_app, fake_slack, "show CM-1")
    assert "AS-1" in shown and "<https://example.com/spring?utm_source=slack|*Spring page*>" in shown
    assert "AS-2" in shown and "Spring is here" in shown and "1 warning" in shown
    listed = await asset_command(running_app, fake_slack, "asset list CM-1")
    assert "AS-2" in listed and "no utm_ parameters: https://example.com/spring" in listed
    checks = await asset_command(running_app, fake_slack, "checks CM-1")
    assert "1 warning" in checks and "2 assets checked" in checks

    removed = await asset_command(running_app, fake_slack, "asset remove AS-1")
    assert "Removed AS-1" in removed
    assert (await assets_of(running_app))[0].status is AssetStatus.ARCHIVED
    assert "AS-1" not in await asset_command(running_app, fake_slack, "asset list CM-1")


async def test_bad_input_is_refused_politely(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await campaign(running_app, fake_slack)
    for text, said in [("asset add CM-1 ftp://example.com/x", "should start with https://"),
                       ("asset add CM-1", "Give the asset's address"),
                       ("asset add CM-9 https://example.com", "There is no campaign CM-9"),
                       ("asset add CM-1 https://example.com kind=<b>", "A kind is a short word"),
                       ("asset add CM-1 https://example.com deliverable=T-999", "T-999 is not a task of CM-1"),
                       ("asset remove AS-3", "There is no asset AS-3"),
                       ("asset tie AS-1", "Usage: `/campaign asset tie"),
                       ("asset frobnicate", "is not a command I know"),
                       ("checks", "Which campaign?")]:
        reply = await asset_command(running_app, fake_slack, text)
        assert said in reply and "error id" not in reply, (text, reply)
    assert await count(running_app, Asset) == 0


async def test_an_outsider_cannot_add_assets(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await campaign(running_app, fake_slack)
    refused = await asset_command(running_app, fake_slack, "asset add CM-1 https://example.com/x", user=CAROL)
    assert "Only the owner of CM-1, people with a task in it, or an admin can add assets to it." in refused
    status, _ = await running_app.slack.command("/campaign", "asset draft CM-1", user_id=CAROL,
                                                response_url=fake_slack.response_url())
    assert status == 200
    told = await fake_slack.wait_for("response_url", lambda call: "write its drafts" in reply_text(call))
    assert "Only the owner of CM-1" in reply_text(told)
    await settled(running_app)
    assert await count(running_app, Asset) == 0 and fake_slack.calls_to("views.open") == []


# ---------------------------------------------------------------- held, told once, opened when fixed


async def test_content_errors_hold_the_stage_until_the_draft_is_fixed(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await campaign(running_app, fake_slack, template="newsletter")  # Erin is the marketing lead
    copy_edit = await task_id(running_app, "copy_edit")
    form = await open_draft_form(running_app, fake_slack, f"CM-1 deliverable=T-{copy_edit}")
    assert form["blocks"][-1]["element"]["initial_value"] == f"T-{copy_edit}"
    await submit_form(running_app, form, draft_values(deliverable=f"T-{copy_edit}"))  # no unsubscribe link: an error
    await asset_command(running_app, fake_slack, "asset add CM-1 https://example.com/x kind=email Other mail")  # no subject

    done = await send_command(running_app, fake_slack, "/task", f"done T-{copy_edit}")
    assert "is done" in reply_text(done)
    await settled(running_app)
    assert requests_to(fake_slack, ERIN) == []  # held: nobody is asked
    async with running_app.sessions() as db:
        assert list(await db.scalars(select(Approval.id))) == []
    [notice] = held_notices(fake_slack)  # one message, every error in it
    told = text_of(notice)
    assert "2 content errors hold" in told and "Editorial sign-off" in told
    assert "AS-1" in told and "The body has no unsubscribe link." in told
    assert "AS-2" in told and "The subject is empty." in told
    shown = await asset_command(running_app, fake_slack, "show CM-1")
    assert "held: 2 content errors to fix first" in shown
    page = await fetch(running_app, f"/dashboard/{await dashboard_token(running_app, campaign_id=1)}/campaigns/CM-1")
    assert '<span class="badge state-held">held</span>' in page.text and "The subject is empty." in page.text

    # Fewer errors, or another asset with none: nothing new to tell.
    await asset_command(running_app, fake_slack, "asset remove AS-2")
    await asset_command(running_app, fake_slack, "asset add CM-1 https://example.com/landing?utm_source=x Landing")
    await settled(running_app)
    assert len(held_notices(fake_slack)) == 1
    assert "held: 1 content error to fix first" in await asset_command(running_app, fake_slack, "show CM-1")
    # A new error is told, with the one still there.
    await asset_command(running_app, fake_slack, "asset add CM-1 https://example.com/y kind=email Another")
    await settled(running_app)
    assert len(held_notices(fake_slack)) == 2
    assert "The subject is empty." in text_of(held_notices(fake_slack)[-1])
    assert "no unsubscribe link" in text_of(held_notices(fake_slack)[-1])
    await asset_command(running_app, fake_slack, "asset remove AS-4")

    fix = await open_draft_form(running_app, fake_slack, "AS-1")
    assert fix["private_metadata"] == "asset:1" and "Change the draft" in fix["title"]["text"]
    ack = await submit_form(running_app, fix, draft_values(body=BODY + UNSUBSCRIBE, deliverable=f"T-{copy_edit}"))
    assert "Editorial sign-off" in json.dumps(ack["view"]) and "is open now" in json.dumps(ack["view"])
    await settled(running_app)
    [request] = requests_to(fake_slack, ERIN)
    shown = text_of(request)
    assert "Content checks" in shown and "no utm_ parameters" in shown and "There is no preheader" in shown
    assert "approval_approve" in shown
    assert len(held_notices(fake_slack)) == 2  # opening tells nobody about errors


async def test_an_ad_hoc_request_with_content_errors_is_refused(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await campaign(running_app, fake_slack, template="newsletter")
    refused = reply_text(await approval(running_app, fake_slack, f'request CM-1 "Legal check" {MENTION[CAROL]}'))
    assert "can't be asked for yet" in refused and "asks for an asset of kind email" in refused
    assert "/campaign checks CM-1" in refused
    async with running_app.sessions() as db:
        assert list(await db.scalars(select(Approval.id))) == []
    form = await open_draft_form(running_app, fake_slack, "CM-1")
    await submit_form(running_app, form, draft_values(body=BODY + UNSUBSCRIBE))
    asked = reply_text(await approval(running_app, fake_slack, f'request CM-1 "Legal check" {MENTION[CAROL]}'))
    assert "Asked" in asked, asked


async def test_an_open_stage_stays_open_and_its_copies_show_new_findings(
    running_app: RunningApp, fake_slack: FakeSlack
) -> None:
    await campaign(running_app, fake_slack)  # webinar: no required assets
    await approval(running_app, fake_slack, f'request CM-1 "Legal check" {MENTION[CAROL]}')
    await settled(running_app)
    [request] = requests_to(fake_slack, CAROL)
    await asset_command(running_app, fake_slack, "asset add CM-1 https://example.com/x kind=email TODO draft")
    await settled(running_app)
    updates = [call for call in fake_slack.calls_to("chat.update") if call.args.get("channel") == request.response["channel"]]
    assert updates and "The subject is empty." in text_of(updates[-1]) and "approval_approve" in text_of(updates[-1])


# ---------------------------------------------------------------- "Attach to campaign"


async def test_the_shortcut_attaches_a_messages_link(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await campaign(running_app, fake_slack)
    text = "Final page: <https://example.com/spring?utm_source=slack|the spring page> &amp; more"
    payload = message_action_payload(user_id=OWNER, callback_id="attach_to_campaign", text=text,
                                     message_ts="1700000123.000200")
    assert (await running_app.slack.interaction(payload))[0] == 200
    opened = await fake_slack.wait_for("views.open")
    view = opened.args["view"]
    assert view_problems(view) == [] and view["callback_id"] == "attach_to_campaign_modal"
    inputs = {block["block_id"]: block["element"] for block in view["blocks"] if block["type"] == "input"}
    assert inputs["url"]["initial_value"] == "https://example.com/spring?utm_source=slack"
    assert inputs["title"]["initial_value"] == "the spring page"
    assert inputs["campaign"]["initial_option"]["value"] == "1"  # the campaign of this channel
    permalink = "https://test-team.slack.com/archives/C0GENERAL/p1700000123000200"
    assert view["private_metadata"] == permalink

    ack = await submit_form(running_app, view, {"campaign": {"type": "static_select", "selected_option": {"value": "1"}},
                                                "url": inputs["url"]["initial_value"], "kind": "",
                                                "title": inputs["title"]["initial_value"], "deliverable": ""})
    assert ack["response_action"] == "update", ack
    [asset] = await assets_of(running_app)
    assert (asset.url, asset.name, asset.kind, asset.source) == (
        "https://example.com/spring?utm_source=slack", "the spring page", "link", permalink)


async def test_the_shortcut_takes_a_file_first(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await campaign(running_app, fake_slack)
    payload = message_action_payload(user_id=OWNER, callback_id="attach_to_campaign", text="see <https://e.com/x>")
    payload["message"]["files"] = [{"id": "F1", "name": "hero.png", "title": "Hero image", "mimetype": "image/png",
                                    "permalink": "https://test-team.slack.com/files/U0BOB/F1/hero.png"}]
    assert (await running_app.slack.interaction(payload))[0] == 200
    view = (await fake_slack.wait_for("views.open")).args["view"]
    inputs = {block["block_id"]: block["element"] for block in view["blocks"] if block["type"] == "input"}
    assert (inputs["url"]["initial_value"], inputs["kind"]["initial_value"], inputs["title"]["initial_value"]) == (
        "https://test-team.slack.com/files/U0BOB/F1/hero.png", "image", "Hero image")


async def test_the_shortcut_refuses_under_the_field(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await campaign(running_app, fake_slack)
    view = {"callback_id": "attach_to_campaign_modal", "private_metadata": "javascript:alert(1)"}
    ack = await submit_form(running_app, view, {"campaign": {"type": "static_select", "selected_option": {"value": "1"}},
                                                "url": "not a link", "kind": "", "title": "", "deliverable": ""})
    assert ack["response_action"] == "errors" and "url" in ack["errors"]
    ack = await submit_form(running_app, view, {"campaign": {"type": "static_select", "selected_option": {"value": "1"}},
                                                "url": "https://example.com/a", "kind": "", "title": "",
                                                "deliverable": ""}, user=CAROL)
    assert ack["response_action"] == "errors" and "Only the owner of CM-1" in ack["errors"]["campaign"]
    ack = await submit_form(running_app, view, {"campaign": {"type": "static_select", "selected_option": {"value": "1"}},
                                                "url": "https://example.com/a", "kind": "", "title": "",
                                                "deliverable": ""})
    assert ack["response_action"] == "update"
    [asset] = await assets_of(running_app)
    assert asset.source is None  # a forged source is dropped


# ---------------------------------------------------------------- a task that hands over an asset


async def test_finishing_a_deliverable_task_without_its_asset_asks_first(
    running_app: RunningApp, fake_slack: FakeSlack
) -> None:
    await campaign(running_app, fake_slack, template="newsletter")
    copy_edit = await task_id(running_app, "copy_edit")
    asked = reply_text(await send_command(running_app, fake_slack, "/task", f"done T-{copy_edit}"))
    assert "hands over an asset of kind email" in asked and "task_done_anyway" in asked
    assert f"/task done T-{copy_edit} anyway" in asked

    url = fake_slack.response_url()
    click = block_actions_payload(user_id=OWNER, action_id="task_done", value=str(copy_edit), response_url=url)
    assert (await running_app.slack.interaction(click))[0] == 200
    prompt = await fake_slack.wait_for("response_url", lambda call: call.url_id == url.rsplit("/", 1)[1])
    assert "task_done_anyway" in reply_text(prompt)
    async with running_app.sessions() as db:
        assert (await db.get(Task, copy_edit)).status is TaskStatus.TODO  # type: ignore[union-attr]

    url = fake_slack.response_url()
    anyway = block_actions_payload(user_id=OWNER, action_id="task_done_anyway", value=str(copy_edit), response_url=url)
    assert (await running_app.slack.interaction(anyway))[0] == 200
    answered = await fake_slack.wait_for("response_url", lambda call: call.url_id == url.rsplit("/", 1)[1])
    assert "is done, without its deliverable" in reply_text(answered)
    async with running_app.sessions() as db:
        assert (await db.get(Task, copy_edit)).status is TaskStatus.DONE  # type: ignore[union-attr]


async def test_anyway_finishes_it_and_a_tied_asset_needs_no_question(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await campaign(running_app, fake_slack, template="newsletter")
    copy_edit, lead = await task_id(running_app, "copy_edit"), await task_id(running_app, "lead_story")
    done = reply_text(await send_command(running_app, fake_slack, "/task", f"done T-{copy_edit} anyway"))
    assert f"T-{copy_edit} is done" in done
    # Any task someone tied an asset to, then removed, expects one too.
    await asset_command(running_app, fake_slack, f"asset add CM-1 https://docs.example.com/lead deliverable=T-{lead}")
    await asset_command(running_app, fake_slack, "asset remove AS-1")
    asked = reply_text(await send_command(running_app, fake_slack, "/task", f"done T-{lead}"))
    assert "hands over an asset, and none is tied" in asked
    await asset_command(running_app, fake_slack, "asset add CM-1 https://docs.example.com/lead2")
    tied = await asset_command(running_app, fake_slack, f"asset tie AS-2 T-{lead}")
    assert f"deliverable of T-{lead}" in tied
    assert f"T-{lead} is done" in reply_text(await send_command(running_app, fake_slack, "/task", f"done T-{lead}"))


# ---------------------------------------------------------------- hostile input


HOSTILE_TITLE = "<!channel> <script>alert(1)</script> & <@U0BOB>"


async def test_hostile_titles_are_inert_in_slack_and_on_the_dashboard(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await campaign(running_app, fake_slack)
    escaped = HOSTILE_TITLE.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    added = await asset_command(running_app, fake_slack, f"asset add CM-1 https://example.com/a?utm_source=x {escaped}")
    form = await open_draft_form(running_app, fake_slack, "CM-1")
    await submit_form(running_app, form, draft_values(title=HOSTILE_TITLE, subject=HOSTILE_TITLE + " TODO",
                                                      body=f"<p>{HOSTILE_TITLE}</p>" + UNSUBSCRIBE))
    [link, draft] = await assets_of(running_app)
    assert link.name == HOSTILE_TITLE and draft.name == HOSTILE_TITLE
    shown = await asset_command(running_app, fake_slack, "show CM-1")
    checks = await asset_command(running_app, fake_slack, "checks CM-1")
    for text in (added, shown, checks):
        assert "<!channel>" not in text and "<script>" not in text and "<@U0BOB>" not in text
        assert "&lt;!channel&gt;" in text
    refused = await asset_command(running_app, fake_slack, "asset add CM-1 https://example.com/<b>")
    assert "characters no address has" in refused and "<b>" not in refused

    token = await dashboard_token(running_app, campaign_id=1)
    page = await fetch(running_app, f"/dashboard/{token}/campaigns/CM-1")
    assert page.status == 200
    assert "<script>alert(1)</script>" not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert 'href="https://example.com/a?utm_source=x"' in page.text and "The subject still has placeholder text" in page.text


async def test_the_home_counts_assets_and_errors(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await campaign(running_app, fake_slack)
    await asset_command(running_app, fake_slack, "asset add CM-1 https://example.com/x kind=email Draft")
    status, _ = await running_app.slack.event(home_opened(OWNER))
    assert status == 200
    published = await fake_slack.wait_for("views.publish", lambda call: "1 asset" in json.dumps(call.args))
    assert "1 content error" in json.dumps(published.args["view"])


ASSET_WORDS = ["add", "list", "remove", "tie", "help", "CM-1", "CM-2", "AS-1", "T-1", "none", "kind=email", "kind=",
               "deliverable=T-1", "deliverable=", "email", "link", "<https://example.com/a?utm_source=x>",
               "https://example.com/<b>", "javascript:alert(1)", "&lt;!channel&gt;", "<@U0BOB|bob>", "\x00", "x" * 400]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(words=st.lists(st.sampled_from(ASSET_WORDS) | st.text(max_size=30), max_size=6))
async def test_any_asset_command_gets_a_short_escaped_answer(
    running_app: RunningApp, fake_slack: FakeSlack, words: list[str]
) -> None:
    if await count(running_app, Task) == 0:
        await campaign(running_app, fake_slack)
    for command in ("asset " + " ".join(words), "checks " + " ".join(words)):
        reply = await asset_command(running_app, fake_slack, command)
        assert "error id" not in reply, (command, reply)
        assert "<!channel>" not in reply and "<@U0BOB>" not in reply and "<b>" not in reply


def test_the_first_link_comes_from_an_unfurl_or_the_blocks_when_the_text_has_none() -> None:
    from handlers.slack.assets import first_attachment

    unfurl = {"text": "look", "attachments": [{"from_url": "https://example.com/u", "title": "U <b>"}]}
    assert first_attachment(unfurl) == {"url": "https://example.com/u", "kind": "", "title": "U <b>"}
    rich = {"text": "", "blocks": [{"type": "rich_text", "elements": [{"type": "rich_text_section", "elements": [
        {"type": "text", "text": "see "}, {"type": "link", "url": "https://example.com/b"}]}]}]}
    assert first_attachment(rich)["url"] == "https://example.com/b"
    forged = {"text": "<javascript:alert(1)|x>", "files": [{"permalink": "ftp://x"}], "attachments": ["x"]}
    assert first_attachment(forged) == {"url": "", "kind": "", "title": ""}
