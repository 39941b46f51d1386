"""Block builders: user text is escaped, limits are respected, Slack's own validator accepts the output."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from slack_sdk.models.blocks import Block

from blocks.campaigns import campaign_created, campaign_detail, campaign_list
from blocks.help import campaign_help
from blocks.tasks import task_list
from blocks.text import escape, fit_escaped, section, truncate
from models import Campaign, CampaignStatus, Task, TaskStatus, TeamMember, Timeline
from services.campaign_created import CampaignCreated
from services.plans import PlanSummary

TODAY = date(2027, 1, 10)


def make_campaign(name: str, *, description: str | None = None, campaign_id: int = 7) -> Campaign:
    owner = TeamMember(id=1, slack_user_id="U0ALICE", name="Alice")
    campaign = Campaign(
        id=campaign_id, name=name, template="product_launch", launch_date=date(2027, 3, 1),
        status=CampaignStatus.PLANNING, owner_id=1, channel_id="C0GENERAL", description=description,
    )
    campaign.owner = owner
    campaign.created_at = datetime(2027, 1, 1, tzinfo=UTC)
    return campaign


def make_plan(campaign: Campaign, titles: list[str], *, compressed_days: int = 0) -> PlanSummary:
    tasks = [
        Task(id=i + 1, campaign_id=campaign.id, title=title, duration_hours=16.0, status=TaskStatus.TODO,
             is_milestone=i == len(titles) - 1, on_critical_path=True, due_at=datetime(2027, 2, 1, 17, tzinfo=UTC))
        for i, title in enumerate(titles)
    ]
    timeline = Timeline(campaign_id=campaign.id, template="product_launch", buffer_hours=24.0,
                        critical_path=[task.id for task in tasks], compressed_days=compressed_days,
                        buffer_consumed_pct=0.0, progress_pct=0.0, projected_launch=campaign.launch_date)
    return PlanSummary(campaign=campaign, timeline=timeline, tasks=tasks)


def created(plan: PlanSummary, *, template_title: str) -> dict[str, Any]:
    """The "created" message as delivery renders it: from the payload stored with its outbox row."""
    return campaign_created(CampaignCreated.of(plan, template_title=template_title, created_on=TODAY).to_payload())


def assert_valid(payload: dict[str, Any]) -> None:
    blocks = payload.get("blocks", [])
    assert len(blocks) <= 50
    for block in blocks:
        Block.parse(block).validate_json()  # raises SlackObjectFormationError when Slack would refuse


def all_text(payload: dict[str, Any]) -> str:
    return repr(payload)


def mrkdwn_texts(node: Any) -> list[str]:
    """Every string Slack would parse for markup: mrkdwn objects and the fallback text."""
    found: list[str] = []
    if isinstance(node, dict):
        if node.get("type") == "mrkdwn" or ("blocks" in node and "text" in node and isinstance(node["text"], str)):
            found.append(node["text"] if isinstance(node["text"], str) else "")
        for value in node.values():
            found += mrkdwn_texts(value)
    elif isinstance(node, list):
        for item in node:
            found += mrkdwn_texts(item)
    return found


def assert_no_markup_but_ours(payload: dict[str, Any]) -> None:
    for text in mrkdwn_texts(payload):
        stripped = text.replace("<@U0ALICE>", "").replace("<#C0GENERAL>", "")
        assert "<" not in stripped and ">" not in stripped, text


def test_escape_defuses_mentions() -> None:
    assert escape("<!channel> <@U123> a&b") == "&lt;!channel&gt; &lt;@U123&gt; a&amp;b"


def test_truncate_adds_ellipsis_within_limit() -> None:
    assert truncate("abcdef", 4) == "abc…"
    assert truncate("abc", 4) == "abc"


def test_fit_escaped_never_cuts_an_entity() -> None:
    fitted = fit_escaped("a" * 8 + "&" * 5, 12)
    assert len(fitted) <= 12 and fitted.endswith("…")
    body = fitted[:-1]
    assert body.count("&") == body.count("&amp;")


def test_section_text_is_capped_at_slack_limit() -> None:
    assert len(section("x" * 5000)["text"]["text"]) == 3000


def test_created_message_escapes_the_name() -> None:
    campaign = make_campaign("Launch <!channel> & <@U999>")
    payload = created(make_plan(campaign, ["Brief", "Launch"]), template_title="Product launch")
    text = all_text(payload)
    assert "<!channel>" not in text and "<@U999>" not in text
    assert "&lt;!channel&gt; &amp; &lt;@U999&gt;" in text
    assert "<@U0ALICE>" in text  # the owner mention we build ourselves does ping
    assert_valid(payload)


@settings(max_examples=60, deadline=None)
@given(name=st.text(min_size=1, max_size=400), description=st.none() | st.text(max_size=5000),
       titles=st.lists(st.text(min_size=1, max_size=300), min_size=1, max_size=60), compressed=st.integers(0, 40))
def test_any_text_renders_valid_blocks(name: str, description: str | None, titles: list[str], compressed: int) -> None:
    campaign = make_campaign(name, description=description)
    plan = make_plan(campaign, titles, compressed_days=compressed)
    for payload in (created(plan, template_title="<Launch>"),
                    campaign_detail(campaign, plan, template_title="<Launch>", today=TODAY, viewer_tz="Asia/Tokyo"),
                    campaign_detail(campaign, None, template_title="x", today=TODAY, viewer_tz="UTC"),
                    campaign_list([campaign], total=1, today=TODAY, filter_label="open"),
                    task_list(campaign, plan.tasks, viewer_tz="Europe/Berlin")):
        assert_valid(payload)
        assert_no_markup_but_ours(payload)


def test_list_says_when_it_is_cut() -> None:
    campaigns = [make_campaign(f"C{i}", campaign_id=i) for i in range(1, 21)]
    payload = campaign_list(campaigns, total=35, today=TODAY, filter_label="open")
    assert "first 20 of 35" in all_text(payload)
    assert_valid(payload)


def test_empty_list_suggests_how_to_start() -> None:
    payload = campaign_list([], total=0, today=TODAY, filter_label="open")
    assert "/campaign new" in payload["blocks"][0]["text"]["text"]


def test_help_is_valid_and_mentions_every_subcommand() -> None:
    payload = campaign_help("`/campaign x` is not a command I know.", templates=["product_launch", "webinar"])
    assert_valid(payload)
    for word in ("new", "list", "show", "help", "product_launch", "webinar"):
        assert word in all_text(payload)
