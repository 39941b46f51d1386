"""Any text typed after any slash command gets a 200 and a short, escaped answer, never an error id."""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import RunningApp
from tests.fake_slack import FakeSlack
from tests.slack_helpers import send_command

COMMANDS = [c["command"] for c in yaml.safe_load((Path(__file__).parent.parent / "manifest.yml").read_text())
            ["features"]["slash_commands"]]
# Words each command knows, so the fuzz reaches past "not a command I know" into the argument parsing.
WORDS = ["new", "list", "show", "assign", "templates", "launch", "pause", "cancel", "channel", "mine", "start",
         "done", "block", "due", "estimate", "comment", "me", "add", "request", "resubmit", "help", "CM-1", "T-1",
         "AP-1", "auto", "rule=any", "by", "skills=a,b", "tz=Europe/Berlin", "hours=mon-fri 9-17", "capacity=3",
         "&lt;!channel&gt;", "&lt;@U0BOB|bob&gt;", "<@U0BOB|bob>", "<#C0GENERAL|general>", "2027-02-30", "3d",
         "token", "revoke", "scope=read", "links"]
typed = st.lists(st.sampled_from(WORDS) | st.text(max_size=30), max_size=6).map(" ".join)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(command=st.sampled_from(COMMANDS), text=typed)
async def test_any_text_gets_a_helpful_answer(
    running_app: RunningApp, fake_slack: FakeSlack, command: str, text: str
) -> None:
    if [word.lower() for word in text.split()] == ["new"] and command in ("/campaign", "/task"):
        return  # opens a modal instead of replying: tests/test_modals.py covers it
    reply = await send_command(running_app, fake_slack, command, text)
    shown = repr(reply.args.get("blocks")) + reply.args.get("text", "")
    assert "error id" not in shown, (command, text, reply.args.get("text"))
    assert "<!channel>" not in shown and "<@U0BOB>" not in shown


FORM_TEXT = st.text(max_size=120) | st.sampled_from(["", " ", "T-1", "T-1, T-2", "T-999", "CM-1", "3d", "-2d",
                                                      "0h", "&lt;!channel&gt;", "<!channel>", "\x00"])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=FORM_TEXT, title=FORM_TEXT, estimate=FORM_TEXT, after=FORM_TEXT, before=FORM_TEXT)
async def test_any_form_input_gets_a_200_and_field_errors_or_a_result(
    running_app: RunningApp, fake_slack: FakeSlack, name: str, title: str, estimate: str, after: str, before: str
) -> None:
    from tests.test_modals import campaign_form, submit, task_form

    if not await _has_campaign(running_app):
        await send_command(running_app, fake_slack, "/campaign", 'new "Fuzzed" newsletter 2099-01-01')
        await submit(running_app, "campaign_new_modal", campaign_form(name="Fuzz base"))
    for callback, form in (("campaign_new_modal", campaign_form(name=name)),
                           ("task_new_modal", task_form(title=title, estimate=estimate, after=after, before=before))):
        ack = await submit(running_app, callback, form)  # asserts the 200
        assert ack.get("response_action") in ("errors", "update", None), ack
        shown = repr(ack)
        assert "error id" not in shown
        if ack.get("response_action") == "update":  # field errors are plain text; a result view is mrkdwn
            assert "<!channel>" not in shown


async def _has_campaign(app: RunningApp) -> bool:
    from sqlalchemy import func, select

    from models import Campaign

    async with app.sessions() as db:
        return bool(await db.scalar(select(func.count()).select_from(Campaign)))
