"""Hostile requests on `POST /slack/events`: unsigned, oversized, unreadable or replayed.

The signature is checked first, on the raw bytes, before anything reads the body; every refusal is one
short log line without the body, never a 500 or a traceback.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from datetime import date, timedelta
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select

from models import Approval, ApprovalStatus, AuditEntry, Campaign, Task, TeamMember
from tests import services
from tests.conftest import SIGNING_SECRET, RunningApp, app_settings, start_app
from tests.fake_slack import Call, FakeSlack
from tests.slack_helpers import reply_text, send_command
from tests.slack_requests import (
    block_actions_payload,
    event_envelope,
    sign_headers,
    slash_command_form,
    view_submission_payload,
)

FORM = "application/x-www-form-urlencoded"
MARKER = "HOSTILE-BODY-MARKER"
NEW = f'new "Replayed" promo {(date.today() + timedelta(days=100)).isoformat()}'


async def post(app: RunningApp, body: bytes | str, headers: dict[str, str]) -> tuple[int, str, dict[str, str]]:
    data = body.encode() if isinstance(body, str) else body
    async with app.http.post(app.url("/slack/events"), data=data, headers=headers) as response:
        return response.status, await response.text(), dict(response.headers)


def signed(body: str, *, content_type: str = FORM, secret: str = SIGNING_SECRET, **kw: int) -> dict[str, str]:
    return {**sign_headers(body, secret, **kw), "Content-Type": content_type}


def app_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """What the app logged (the access log is aiohttp's own record of every request, refused or not)."""
    return [record for record in caplog.records if record.name != "aiohttp.access"]


def assert_one_short_line(caplog: pytest.LogCaptureFixture) -> None:
    lines = app_lines(caplog)
    assert len(lines) == 1, [record.getMessage() for record in lines]
    (line,) = lines
    assert line.exc_info is None and len(line.getMessage()) < 200, line.getMessage()
    assert MARKER not in line.getMessage() and line.levelno <= logging.WARNING


async def campaigns(app: RunningApp) -> int:
    async with app.sessions() as db:
        return await db.scalar(select(func.count()).select_from(Campaign)) or 0


NOW = object()  # stands for "a fresh timestamp", taken when the test runs
UNSIGNED = [
    ({}, "payload=%7B" + MARKER),
    ({"X-Slack-Request-Timestamp": "abc", "X-Slack-Signature": "v0=" + "0" * 64}, "payload=%7B" + MARKER),
    ({"X-Slack-Request-Timestamp": "\u0661\u0667\u0660\u0660", "X-Slack-Signature": "v0=" + "0" * 64}, MARKER),
    ({"X-Slack-Request-Timestamp": "9" * 40, "X-Slack-Signature": "v0=" + "0" * 64}, MARKER),
    ({"X-Slack-Request-Timestamp": NOW, "X-Slack-Signature": "v0=\u00e9\u00e9"}, MARKER),
    ({"X-Slack-Request-Timestamp": NOW}, "command=%2Fcampaign&text=" + MARKER),
    ({"X-Slack-Request-Timestamp": NOW, "X-Slack-Signature": "v0=" + "0" * 64}, b"\xff\xfe" + MARKER.encode()),
]


@pytest.mark.parametrize(("headers", "body"), UNSIGNED,
                         ids=["no-headers", "timestamp-abc", "arabic-digits", "huge-timestamp", "non-ascii-signature",
                              "no-signature", "not-utf8"])
async def test_unsigned_requests_get_401_and_one_short_line(
    running_app: RunningApp, caplog: pytest.LogCaptureFixture, headers: dict, body: str | bytes
) -> None:
    headers = {name: str(int(time.time())) if value is NOW else value for name, value in headers.items()}
    caplog.set_level(logging.INFO)
    status, text, _ = await post(running_app, body, {"Content-Type": FORM, **headers})
    assert status == 401 and MARKER not in text
    assert_one_short_line(caplog)


async def test_a_badly_signed_request_is_not_logged_whole(
    running_app: RunningApp, caplog: pytest.LogCaptureFixture
) -> None:
    body = slash_command_form(command="/campaign", text=MARKER * 5000, user_id="U0ALICE",
                              response_url="http://127.0.0.1:9/r")
    caplog.set_level(logging.DEBUG, logger="slack_bolt")
    caplog.set_level(logging.INFO)
    status, _, _ = await post(running_app, body, signed(body, secret="not-the-secret"))
    assert status == 401
    assert_one_short_line(caplog)
    assert await campaigns(running_app) == 0


async def test_an_oversized_body_gets_413_before_it_is_read(
    running_app: RunningApp, caplog: pytest.LogCaptureFixture
) -> None:
    body = "payload=" + MARKER * 200_000  # 3.8 MB
    caplog.set_level(logging.INFO)
    status, _, _ = await post(running_app, body, signed(body))
    assert status == 413
    assert_one_short_line(caplog)


@pytest.mark.parametrize(("body", "content_type"), [
    ("payload=%7B" + MARKER, FORM),
    ("payload=" + json.dumps([MARKER]), FORM),
    ("payload=" + json.dumps(MARKER), FORM),
    ('{"type": "event_callback", "' + MARKER, "application/json"),
    (json.dumps([MARKER]), "application/json"),
], ids=["payload-not-json", "payload-a-list", "payload-a-string", "json-cut-short", "json-a-list"])
async def test_a_signed_body_nobody_can_read_gets_400_and_one_short_line(
    running_app: RunningApp, caplog: pytest.LogCaptureFixture, body: str, content_type: str
) -> None:
    caplog.set_level(logging.INFO)
    status, text, _ = await post(running_app, body, signed(body, content_type=content_type))
    assert status == 400 and MARKER not in text
    assert_one_short_line(caplog)


async def test_a_body_that_is_not_utf8_is_refused_even_signed_over_its_bytes(running_app: RunningApp) -> None:
    # Slack sends UTF-8; slack_sdk's verifier decodes before the HMAC, so such bytes cannot be Slack's.
    raw = b"payload=\xff\xfe"
    timestamp = str(int(time.time()))
    digest = hmac.new(SIGNING_SECRET.encode(), f"v0:{timestamp}:".encode() + raw, hashlib.sha256).hexdigest()
    headers = {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": f"v0={digest}", "Content-Type": FORM}
    status, _, _ = await post(running_app, raw, headers)
    assert status == 401


# ---------------------------------------------------------------- replays


async def test_an_exact_replay_is_refused(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    body = slash_command_form(command="/campaign", text=NEW, user_id="U0ALICE", response_url=fake_slack.response_url())
    headers = signed(body)
    assert (await post(running_app, body, headers))[0] == 200
    await fake_slack.wait_for("response_url")
    status, _, _ = await post(running_app, body, headers)
    assert status == 401
    assert await campaigns(running_app) == 1


async def test_a_replayed_click_is_refused_but_a_second_click_counts(
    running_app: RunningApp, fake_slack: FakeSlack
) -> None:
    # A person's second click is a new request (new action_ts, new signature); a copy of the first is not.
    payload = block_actions_payload(user_id="U0ALICE", action_id="task_done", value="1",
                                    response_url=fake_slack.response_url())
    body = urlencode({"payload": json.dumps(payload)})
    headers = signed(body)
    assert (await post(running_app, body, headers))[0] == 200
    assert (await post(running_app, body, headers))[0] == 401
    assert (await post(running_app, body, signed(body, timestamp=int(time.time()) + 1)))[0] == 200


async def test_a_replay_to_another_instance_is_refused_through_redis(
    db_url: str, fake_slack: FakeSlack, redis_prefix: str
) -> None:
    settings = app_settings(db_url, fake_slack, redis_url=services.REDIS_URL, redis_namespace=redis_prefix)
    body = slash_command_form(command="/campaign", text=NEW, user_id="U0ALICE", response_url=fake_slack.response_url())
    headers = signed(body)
    async with start_app(settings, fake_slack) as first, start_app(settings, fake_slack) as second:
        assert (await post(first, body, headers))[0] == 200
        await fake_slack.wait_for("response_url")
        assert (await post(second, body, headers))[0] == 401
        assert await campaigns(second) == 1


# ---------------------------------------------------------------- what responses say about us


@pytest.mark.parametrize("path", ["/health", "/slack/events", "/no-such-page"])
async def test_responses_do_not_announce_versions(running_app: RunningApp, path: str) -> None:
    async with running_app.http.get(running_app.url(path)) as response:
        server = response.headers.get("Server", "")
    assert "Python" not in server and "aiohttp" not in server
    body = slash_command_form(command="/team", text="list", user_id="U0ALICE", response_url="http://127.0.0.1:9/r")
    _, _, headers = await post(running_app, body, signed(body))
    assert "Python" not in headers.get("Server", "") and "aiohttp" not in headers.get("Server", "")


# ---------------------------------------------------------------- signed, but forged values

HUGE = "9" * 20  # past every integer column
LONG_ID = "U" + "A" * 40  # past the 32 characters a Slack id column holds


async def stored_rows(app: RunningApp) -> dict[str, int]:
    async with app.sessions() as db:
        return {model.__name__: await db.scalar(select(func.count()).select_from(model)) or 0
                for model in (TeamMember, AuditEntry, Campaign, Task)}


def polite(reply: Call) -> str:
    shown = reply_text(reply)
    assert reply.args.get("response_type") == "ephemeral", reply.args
    assert "error id" not in shown and "Traceback" not in shown, shown
    return shown


async def test_forged_command_fields_get_a_polite_answer_and_store_nothing(
    running_app: RunningApp, fake_slack: FakeSlack
) -> None:
    await send_command(running_app, fake_slack, "/campaign", NEW)  # Alice and a campaign with tasks
    before = await stored_rows(running_app)
    for user_id, command, text in [
        ("", "/team", "me skills=x"), ("", "/campaign", NEW), (LONG_ID, "/team", "me"), ("u0lower", "/task", "mine"),
        ("U0ALICE", "/team", f"add @{LONG_ID}"), ("U0ALICE", "/team", f"add <@{LONG_ID}>"),
        ("U0ALICE", "/task", f"assign T-1 @{LONG_ID}"), ("U0ALICE", "/team", "me capacity=\u00b2"),
        ("U0ALICE", "/task", f"done T-{HUGE}"), ("U0ALICE", "/campaign", f"show CM-{HUGE}"),
        ("U0ALICE", "/task", "done T-\u0661"), ("U0ALICE", "/approval", f"resubmit CM-{HUGE} x"),
    ]:
        polite(await send_command(running_app, fake_slack, command, text, user_id=user_id))
    assert await stored_rows(running_app) == before


FORGED_VALUES = [HUGE, "\u00b2", "-1", "0", "1.5", " ", "T-1", "\u0661"]


@pytest.mark.parametrize("action_id", ["task_start", "task_done", "task_block", "task_snooze_hour",
                                       "approval_approve", "approval_reject", "approval_delegate",
                                       "delivery_retry"])
async def test_forged_button_values_get_a_polite_answer_and_store_nothing(
    running_app: RunningApp, fake_slack: FakeSlack, action_id: str
) -> None:
    await send_command(running_app, fake_slack, "/campaign", NEW)
    before = await stored_rows(running_app)
    values = [*FORGED_VALUES, f"{HUGE}:channel:C0GENERAL", f"1:member:{HUGE}", f"AP-{HUGE}"]
    for value in values:
        url = fake_slack.response_url()
        payload = block_actions_payload(user_id="U0ALICE", action_id=action_id, value=value, response_url=url)
        status, _ = await running_app.slack.interaction(payload)
        assert status == 200
        polite(await fake_slack.wait_for("response_url", lambda call, url=url: url.endswith(call.url_id or "-")))
    assert await stored_rows(running_app) == before


@pytest.mark.parametrize("action_id", ["task_start", "task_done", "task_block", "approval_approve",
                                       "approval_reject", "approval_delegate", "delivery_retry"])
async def test_forged_button_values_on_the_home_tab_get_a_notice(
    running_app: RunningApp, fake_slack: FakeSlack, action_id: str
) -> None:
    """The Home tab has no response_url: the answer is a notice modal opened with the click's trigger_id."""
    await send_command(running_app, fake_slack, "/campaign", NEW)
    before = await stored_rows(running_app)
    for number, value in enumerate(["1:home:extra", HUGE, "\u00b2", ""]):
        trigger = f"trig.home.{action_id}.{number}"
        payload = block_actions_payload(user_id="U0ALICE", action_id=action_id, value=value, trigger_id=trigger,
                                        view={"id": "V0HOME", "type": "home"})
        status, _ = await running_app.slack.interaction(payload)
        assert status == 200
        notice = await fake_slack.wait_for(
            "views.open", lambda call, trigger=trigger: call.args.get("trigger_id") == trigger)
        shown = repr(notice.args["view"])
        assert ":warning:" in shown and "error id" not in shown and "Traceback" not in shown, shown
    assert await stored_rows(running_app) == before


def _click(**changes: object) -> dict:
    payload = block_actions_payload(user_id="U0ALICE", action_id="task_done", value="1")
    payload.update(changes)
    return payload


SHAPES = {
    "view-a-string": _click(view="x"), "user-a-string": _click(user="x"), "user-id-empty": _click(user={"id": ""}),
    "user-id-long": _click(user={"id": LONG_ID}), "user-null": _click(user=None), "actions-a-string": _click(actions="x"),
    "actions-empty": _click(actions=[]), "action-a-string": _click(actions=["x"]),
    "action-id-a-list": _click(actions=[{"action_id": ["task_done"], "value": "1"}]),
    "value-a-dict": _click(actions=[{"action_id": "task_done", "value": {"id": 1}}]),
    "container-a-string": _click(container="x"), "channel-a-string": _click(channel="x"), "team-a-string": _click(team="x"),
    "message-a-string": _click(message="x"), "type-a-list": _click(type=["block_actions"]),
    "submission-view-a-string": {"type": "view_submission", "user": {"id": "U0ALICE"}, "view": "x"},
    "submission-state-a-string": {"type": "view_submission", "user": {"id": "U0ALICE"},
                                  "view": {"callback_id": "task_new_modal", "state": "x"}},
    "submission-values-a-string": {"type": "view_submission", "user": {"id": "U0ALICE"},
                                   "view": {"type": "modal", "callback_id": "task_block_modal", "private_metadata": HUGE,
                                            "state": {"values": "x"}}},
    "submission-view-untyped": {"type": "view_submission", "user": {"id": "U0ALICE"},
                                "view": {"callback_id": "approval_reject_modal", "private_metadata": "1"}},
    "submission-input-a-dict": view_submission_payload(user_id="U0ALICE", callback_id="task_block_modal",
                                                       values={"reason": {"reason": {"value": {"x": 1}}}},
                                                       private_metadata="1"),
    "submission-metadata-superscript": {"type": "view_submission", "user": {"id": "U0ALICE"},
                                        "view": {"type": "modal", "callback_id": "approval_reject_modal", "private_metadata": "\u00b2",
                                                 "state": {"values": {}}}},
}


@pytest.mark.parametrize("payload", SHAPES.values(), ids=SHAPES.keys())
async def test_forged_payload_shapes_never_get_a_500_or_an_error_id(
    running_app: RunningApp, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture, payload: dict
) -> None:
    await send_command(running_app, fake_slack, "/campaign", NEW)
    before = await stored_rows(running_app)
    caplog.set_level(logging.INFO)
    url = fake_slack.response_url()
    if "response_url" in payload:
        payload = {**payload, "response_url": url}
    status, body = await running_app.slack.interaction(payload)
    assert status in (200, 400), (status, body)
    assert "error id" not in body
    if status == 200 and "response_url" in payload:  # the listener's answer is the signal that it is done
        polite(await fake_slack.wait_for("response_url", lambda call: url.endswith(call.url_id or "-")))
    assert [record.getMessage() for record in app_lines(caplog) if record.levelno >= logging.ERROR] == []
    assert await stored_rows(running_app) == before


@pytest.mark.parametrize("metadata", [HUGE, "\u00b2", "", "0", "1:home:x", "AP-" + HUGE])
async def test_forged_modal_metadata_gets_a_polite_answer(
    running_app: RunningApp, fake_slack: FakeSlack, metadata: str
) -> None:
    await send_command(running_app, fake_slack, "/campaign", NEW)
    before = await stored_rows(running_app)
    # The block-reason form answers on the form itself...
    status, body = await running_app.slack.interaction(view_submission_payload(
        user_id="U0ALICE", callback_id="task_block_modal", values={"reason": {"reason": "legal"}},
        private_metadata=metadata))
    assert status == 200 and json.loads(body)["response_action"] == "errors" and "error id" not in body
    # ... and so does a sign-off decision's.
    status, body = await running_app.slack.interaction(view_submission_payload(
        user_id="U0ALICE", callback_id="approval_reject_modal", values={"reason": {"reason": "no"}},
        private_metadata=metadata))
    assert status == 200 and json.loads(body)["response_action"] == "errors" and "error id" not in body
    assert list(json.loads(body)["errors"]) == ["reason"]
    assert await stored_rows(running_app) == before


# ---------------------------------------------------------------- forged approval clicks and forms

# None of these is a value our buttons write or metadata our forms carry; each one a loose reader could take
# for AP-1, which waits for Alice's decision in these tests (`:home` marks a form opened on the Home tab).
FORGED_APPROVAL_VALUES = [HUGE, "1:home:extra", "1:home", "\u0661", "\u00b2", "AP-1", "01", " 1", "1.0", ""]
FORGED_APPROVAL_FORMS = [HUGE, f"{HUGE}:home", "9" * 5000, "1:home:extra", "1:home:", "1:HOME", "1:message",
                         "\u0661", "\u0661:home", "\u00b2:home", "AP-1", "01:home", " 1", ""]
APPROVAL_BUTTONS = ["approval_approve", "approval_reject", "approval_delegate"]


async def alice_decides(app: RunningApp, fake: FakeSlack) -> None:
    """A campaign of Alice's whose "Legal" stage (AP-1) waits for Alice herself, so a forgery has a target."""
    await send_command(app, fake, "/campaign", NEW)
    reply = await send_command(app, fake, "/approval", 'request CM-1 "Legal" <@U0ALICE|alice>')
    assert "Legal" in reply_text(reply), reply_text(reply)


async def decisions(app: RunningApp) -> list[tuple]:
    async with app.sessions() as db:
        rows = await db.scalars(select(Approval).order_by(Approval.id))
        return [(row.id, row.status, row.comments, row.delegated_to_id, row.decided_at) for row in rows]


@pytest.mark.parametrize("action_id", APPROVAL_BUTTONS)
async def test_forged_approval_buttons_under_a_message_get_a_short_reply(
    running_app: RunningApp, fake_slack: FakeSlack, action_id: str
) -> None:
    app, fake = running_app, fake_slack
    await alice_decides(app, fake)
    before, decided = await stored_rows(app), await decisions(app)
    assert decided[0][:2] == (1, ApprovalStatus.PENDING)  # AP-1, Alice's to decide
    for value in FORGED_APPROVAL_VALUES:
        url = fake.response_url()
        payload = block_actions_payload(user_id="U0ALICE", action_id=action_id, value=value, response_url=url)
        assert (await app.slack.interaction(payload))[0] == 200
        shown = polite(await fake.wait_for("response_url", lambda call, url=url: url.endswith(call.url_id or "-")))
        assert "does not point at an approval" in shown and len(shown) < 300, (value, shown)
    # Each reply came after the listener read the value: no form was opened for any of them.
    assert fake.calls_to("views.open") == []
    assert await stored_rows(app) == before and await decisions(app) == decided


@pytest.mark.parametrize("action_id", APPROVAL_BUTTONS)
async def test_forged_approval_buttons_on_the_home_tab_get_a_notice(
    running_app: RunningApp, fake_slack: FakeSlack, action_id: str
) -> None:
    app, fake = running_app, fake_slack
    await alice_decides(app, fake)
    before, decided = await stored_rows(app), await decisions(app)
    for number, value in enumerate(FORGED_APPROVAL_VALUES):
        trigger = f"trig.forged.{action_id}.{number}"
        payload = block_actions_payload(user_id="U0ALICE", action_id=action_id, value=value, trigger_id=trigger,
                                        view={"id": "V0HOME", "type": "home"})
        assert (await app.slack.interaction(payload))[0] == 200
        opened = await fake.wait_for("views.open", lambda call, trigger=trigger: call.args.get("trigger_id") == trigger)
        view = opened.args["view"]
        shown = repr(view["blocks"])
        assert not view.get("callback_id"), view  # a notice, not the reject or delegate form
        assert "does not point at an approval" in shown and "error id" not in shown, (value, shown)
    assert len(fake.calls_to("views.open")) == len(FORGED_APPROVAL_VALUES)
    assert await stored_rows(app) == before and await decisions(app) == decided


@pytest.mark.parametrize(("callback_id", "field", "values"), [
    ("approval_reject_modal", "reason", {"reason": {"reason": "Not like this."}}),
    ("approval_delegate_modal", "delegate",
     {"delegate": {"delegate_to": {"type": "users_select", "selected_user": "U0BOB"}}}),
], ids=["reject", "delegate"])
async def test_forged_approval_form_metadata_is_refused_on_the_form(
    running_app: RunningApp, fake_slack: FakeSlack, callback_id: str, field: str, values: dict
) -> None:
    """Forms opened from a message or from the Home tab alike: the answer is a short line under the field."""
    app, fake = running_app, fake_slack
    await alice_decides(app, fake)
    before, decided = await stored_rows(app), await decisions(app)
    for metadata in FORGED_APPROVAL_FORMS:
        status, body = await app.slack.interaction(view_submission_payload(
            user_id="U0ALICE", callback_id=callback_id, values=values, private_metadata=metadata))
        assert status == 200, (metadata, body)
        answer = json.loads(body)
        assert answer["response_action"] == "errors" and list(answer["errors"]) == [field], (metadata, answer)
        shown = answer["errors"][field]
        assert "does not point at an approval" in shown and "error id" not in shown, (metadata, shown)
    assert await stored_rows(app) == before and await decisions(app) == decided


@pytest.mark.parametrize("event", ["x", {"type": "app_home_opened", "user": "", "tab": "home"},
                                   {"type": "app_home_opened", "user": LONG_ID, "tab": "home"},
                                   {"type": "app_home_opened", "user": ["U0ALICE"], "tab": "home"}])
async def test_forged_events_store_nothing(
    running_app: RunningApp, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture, event: object
) -> None:
    caplog.set_level(logging.INFO)
    envelope = event_envelope(event={"type": "app_home_opened", "user": "U0ALICE", "tab": "home"},
                              event_id="Ev0FORGED")
    envelope["event"] = event
    status, _ = await running_app.slack.event(envelope)
    assert status in (200, 400)
    assert [record.getMessage() for record in app_lines(caplog) if record.levelno >= logging.ERROR] == []
    assert (await stored_rows(running_app))["TeamMember"] == 0
