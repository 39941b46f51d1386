"""The dashboard's pages over real HTTP: overview, week, day, campaign list and detail, metrics.

Each test seeds a workspace through the real services (`tests.dashboard_helpers`) and reads the pages
from the running app, on SQLite and PostgreSQL: what a link may open, the headers every answer carries,
names that try to break out of HTML, the reader's time zone, bad query values, and the render cache.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from urllib.parse import unquote
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update

from handlers.web.dashboard import cache
from handlers.web.dashboard.pages import HEALTH_CHOICES, STATUS_CHOICES, Links, filter_query
from handlers.web.dashboard.render import templates
from models import Campaign, CampaignStatus
from services.dashboard import CampaignCard, Health, Person
from services.dashboard_campaigns import CampaignFilters, CampaignList
from services.dashboard_params import parse_status
from services.refs import RefKind, format_ref
from tests.conftest import RunningApp
from tests.dashboard_helpers import (
    APPROVED_STAGE,
    ESCAPED,
    MIDNIGHT_TITLE,
    Answer,
    assert_no_inline_code,
    assert_no_raw_hostile_text,
    day_section,
    fetch,
    live_scope_of,
    main_of,
    seed_workspace,
)
from tests.support.dashboard import dashboard_token as token_for

SECURITY_HEADERS = ("Content-Security-Policy", "Referrer-Policy", "X-Content-Type-Options", "X-Frame-Options")


def ref(campaign_id: int) -> str:
    return format_ref(RefKind.CAMPAIGN, campaign_id)


def monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def assert_safe_page(answer: Answer) -> None:
    assert answer.headers["Content-Type"].startswith("text/html")
    for name in SECURITY_HEADERS:
        assert name in answer.headers, name
    assert "script-src 'self'" in answer.headers["Content-Security-Policy"]
    assert answer.headers["Referrer-Policy"] == "no-referrer"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert "Traceback" not in answer.text
    assert_no_raw_hostile_text(answer.text)
    assert_no_inline_code(answer.text)


async def test_every_page_answers_safely_with_its_live_scope(running_app: RunningApp) -> None:
    seeded = await seed_workspace(running_app)
    token = await token_for(running_app)
    base = f"/dashboard/{token}"
    pages = {
        base: "all", f"{base}/week": "all", f"{base}/day": "all", f"{base}/campaigns": "all",
        f"{base}/metrics": "all", f"{base}/campaigns/{ref(seeded.webinar)}": f"campaign:{seeded.webinar}",
    }
    for path, scope in pages.items():
        answer = await fetch(running_app, path)
        assert answer.status == 200, (path, answer.text[:300])
        assert_safe_page(answer)
        assert live_scope_of(answer.text) == scope, path
        assert '<script src="/static/live.js" defer></script>' in answer.text
        assert f'href="/dashboard/{token}/week"' in answer.text  # the nav carries the reader's own token
        assert cache.TOKEN_MARK not in answer.text
    stylesheet = await fetch(running_app, "/static/dashboard.css")
    assert stylesheet.status == 200 and ".week-grid" in stylesheet.text


async def test_links_that_are_missing_forged_or_cut_short_are_refused(running_app: RunningApp) -> None:
    await seed_workspace(running_app)
    token = await token_for(running_app)
    forged = token.split(".")[0] + "." + "A" * 43  # the payload of a good link, a signature of nothing
    for path in ("/dashboard", f"/dashboard/{token[:-4]}", f"/dashboard/{forged}/week",
                 "/dashboard/not-a-token/campaigns", f"/dashboard/{token}x/metrics", "/dashboard/%00/day"):
        answer = await fetch(running_app, path)
        assert answer.status == 401, (path, answer.status)
        assert "fresh link" in answer.text
        assert "newsletter" not in answer.text.lower() and ESCAPED[0] not in answer.text
        for name in ("Content-Security-Policy", "Referrer-Policy"):
            assert name in answer.headers


async def test_a_campaign_link_opens_its_campaign_only(running_app: RunningApp) -> None:
    seeded = await seed_workspace(running_app)
    token = await token_for(running_app, campaign_id=seeded.webinar)
    base = f"/dashboard/{token}"

    overview = await fetch(running_app, base, tz="Europe/Berlin")
    assert overview.status == 302
    assert unquote(overview.headers["Location"]) == f"{base}/campaigns/{ref(seeded.webinar)}?tz=Europe/Berlin"
    assert "Content-Security-Policy" in overview.headers

    own = await fetch(running_app, f"{base}/campaigns/{ref(seeded.webinar)}")
    assert own.status == 200 and ESCAPED[0] in own.text
    assert live_scope_of(own.text) == f"campaign:{seeded.webinar}"
    for other in (seeded.launch, seeded.newsletter, 999_999):
        refused = await fetch(running_app, f"{base}/campaigns/{ref(other)}")
        assert refused.status == 403, other  # a campaign link cannot even tell which campaigns exist
        assert "Autumn newsletter" not in refused.text

    listing = await fetch(running_app, f"{base}/campaigns", status="all")
    assert listing.status == 200 and ref(seeded.webinar) in listing.text
    assert ref(seeded.launch) not in listing.text and "Autumn newsletter" not in listing.text
    assert live_scope_of(listing.text) == f"campaign:{seeded.webinar}"

    week = await fetch(running_app, f"{base}/week", start=seeded.midnight_day.isoformat())
    assert week.status == 200 and MIDNIGHT_TITLE not in week.text  # the newsletter's task
    metrics = await fetch(running_app, f"{base}/metrics")
    assert metrics.status == 200 and live_scope_of(metrics.text) == f"campaign:{seeded.webinar}"


async def test_names_people_typed_are_escaped_on_every_page(running_app: RunningApp) -> None:
    seeded = await seed_workspace(running_app)
    token = await token_for(running_app)
    base = f"/dashboard/{token}"
    launch_day = (seeded.now.date() + timedelta(days=21)).isoformat()
    for path, query in ((base, {}), (f"{base}/campaigns", {}), (f"{base}/campaigns/{ref(seeded.webinar)}", {}),
                        (f"{base}/campaigns/{ref(seeded.launch)}", {}), (f"{base}/week", {"start": launch_day}),
                        (f"{base}/day", {"date": launch_day})):
        answer = await fetch(running_app, path, **query)
        assert answer.status == 200, path
        assert_safe_page(answer)
        assert ESCAPED[0] in answer.text, path
    detail = await fetch(running_app, f"{base}/campaigns/{ref(seeded.launch)}")
    assert ESCAPED[1] in detail.text  # the campaign's own name, quotes and all
    hostile_owner = await fetch(running_app, f"{base}/campaigns", owner="<script>alert(1)</script>")
    assert hostile_owner.status == 200 and ESCAPED[1] in hostile_owner.text  # matched by name, shown escaped


async def test_days_are_the_readers_a_task_due_at_2330_utc_is_tomorrow_in_berlin(running_app: RunningApp) -> None:
    seeded = await seed_workspace(running_app)
    token = await token_for(running_app)
    base = f"/dashboard/{token}"
    day, next_day = seeded.midnight_day, seeded.midnight_day + timedelta(days=1)

    utc_week = await fetch(running_app, f"{base}/week", start=day.isoformat(), tz="UTC")
    assert MIDNIGHT_TITLE in day_section(utc_week.text, day)
    berlin_week = await fetch(running_app, f"{base}/week", start=next_day.isoformat(), tz="Europe/Berlin")
    assert MIDNIGHT_TITLE in day_section(berlin_week.text, next_day)
    assert MIDNIGHT_TITLE not in day_section(berlin_week.text, day)
    assert 'datetime="' + f"{next_day.isoformat()}T0" in day_section(berlin_week.text, next_day)  # 00:30 or 01:30

    assert MIDNIGHT_TITLE in (await fetch(running_app, f"{base}/day", date=day.isoformat())).text  # UTC by default
    assert MIDNIGHT_TITLE not in (await fetch(running_app, f"{base}/day", date=day.isoformat(),
                                              tz="Europe/Berlin")).text
    berlin_day = await fetch(running_app, f"{base}/day", date=next_day.isoformat(), tz="Europe/Berlin")
    assert MIDNIGHT_TITLE in berlin_day.text
    assert f'href="{base}/day?date={next_day + timedelta(days=1)}&amp;tz=Europe%2FBerlin"' in berlin_day.text


async def test_the_week_starts_on_monday_and_steps_by_weeks(running_app: RunningApp) -> None:
    await seed_workspace(running_app)
    token = await token_for(running_app)
    base = f"/dashboard/{token}"
    today_in_tokyo = datetime.now(ZoneInfo("Asia/Tokyo")).date()
    this_week = monday(today_in_tokyo)
    answer = await fetch(running_app, f"{base}/week", tz="Asia/Tokyo")
    assert answer.status == 200
    for offset in range(7):
        assert f'id="day-{this_week + timedelta(days=offset)}"' in answer.text
    assert 'class="day is-today"' in answer.text
    for step in (-7, 7):
        assert f'href="{base}/week?start={this_week + timedelta(days=step)}&amp;tz=Asia%2FTokyo"' in answer.text
    wednesday = await fetch(running_app, f"{base}/week", start=(this_week + timedelta(days=2)).isoformat())
    assert f'id="day-{this_week}"' in wednesday.text  # any day asks for its Monday-based week


async def test_bad_query_values_get_a_400_page_not_an_error(running_app: RunningApp) -> None:
    seeded = await seed_workspace(running_app)
    token = await token_for(running_app)
    base = f"/dashboard/{token}"
    cases = [
        (f"{base}/week", {"tz": "Mars/Olympus_Mons"}), (f"{base}/week", {"tz": "../../etc/passwd"}),
        (f"{base}/week", {"tz": "America"}), (base, {"tz": "x" * 5000}),
        (f"{base}/week", {"start": "2025-02-30"}), (f"{base}/week", {"start": "yesterday"}),
        (f"{base}/week", {"start": "9999-01-01"}), (f"{base}/day", {"date": "2025-1-1"}),
        (f"{base}/day", {"date": "２０２５-01-01"}), (f"{base}/campaigns", {"status": "<script>"}),
        (f"{base}/campaigns", {"month": "2025-13"}), (f"{base}/campaigns", {"month": "March"}),
        (f"{base}/campaigns", {"template": "<b>bold</b>"}), (f"{base}/campaigns", {"owner": "bob\x00"}),
        (f"{base}/campaigns", {"owner": "x" * 201}), (f"{base}/campaigns", {"page": "0"}),
        (f"{base}/campaigns", {"page": "-1"}), (f"{base}/campaigns", {"health": "great"}),
        (f"{base}/metrics", {"from": "2025-06-01", "to": "2025-01-01"}),
        (f"{base}/metrics", {"from": "2020-01-01", "to": "2025-01-01"}), (f"{base}/metrics", {"to": "soon"}),
        (f"{base}/campaigns/XY-1", {}), (f"{base}/campaigns/CM-0", {}), (f"{base}/campaigns/%3Cscript%3E", {}),
        (f"{base}/campaigns/{ref(seeded.webinar)}", {"tz": "Nowhere/Land"}),
    ]
    for path, query in cases:
        answer = await fetch(running_app, path, **query)
        assert answer.status == 400, (path, query, answer.status)
        assert_safe_page(answer)
        assert "<script>" not in main_of(answer.text) and "<b>bold" not in answer.text
    for missing in (f"{base}/campaigns/{ref(999_999)}", f"{base}/campaigns/CM-99999999999", f"{base}/nowhere"):
        answer = await fetch(running_app, missing)
        assert answer.status == 404, missing
        assert_safe_page(answer)


async def test_the_campaign_list_filters(running_app: RunningApp) -> None:
    seeded = await seed_workspace(running_app)
    token = await token_for(running_app)
    path = f"/dashboard/{token}/campaigns"

    async def listed(**query: str) -> set[int]:
        answer = await fetch(running_app, path, **query)
        assert answer.status == 200, (query, answer.text[:300])
        return {campaign for campaign in (seeded.webinar, seeded.launch, seeded.newsletter)
                if f">{ref(campaign)}</span>" in answer.text}

    everyone = {seeded.webinar, seeded.launch, seeded.newsletter}
    assert await listed() == everyone
    assert await listed(owner="U0BOB") == {seeded.newsletter}
    assert await listed(owner="bob baker") == {seeded.newsletter}  # a whole name, any case
    assert await listed(owner="@U0ALICE") == {seeded.webinar}
    assert await listed(template="Product launch") == {seeded.launch}
    launch_month = seeded.now.date() + timedelta(days=90)
    assert seeded.launch in await listed(month=launch_month.strftime("%Y-%m"))
    assert await listed(status="completed") == set()
    assert await listed(status="all") == everyone
    # Well formed, but nobody, no template and no month like that: nothing matches, and the page says so.
    for query in ({"owner": "Nobody Here"}, {"template": "banana"}, {"month": "2099-01"}, {"owner": "U0NOBODY"}):
        answer = await fetch(running_app, path, **query)
        assert answer.status == 200 and "No campaign matches" in answer.text, query
    on_track = await fetch(running_app, path, health="on-track")
    assert on_track.status == 200
    timeline = f'href="/dashboard/{token}/campaigns/{ref(seeded.webinar)}/timeline"'
    assert timeline in (await fetch(running_app, path)).text


async def test_campaign_detail_shows_tasks_stages_and_activity(running_app: RunningApp) -> None:
    seeded = await seed_workspace(running_app)
    token = await token_for(running_app)
    answer = await fetch(running_app, f"/dashboard/{token}/campaigns/{ref(seeded.webinar)}", tz="Europe/Berlin")
    assert answer.status == 200
    html = answer.text
    assert f'href="/dashboard/{token}/campaigns/{ref(seeded.webinar)}/timeline?tz=Europe%2FBerlin"' in html
    for task_id in (seeded.done_task, seeded.started_task, seeded.blocked_task, seeded.late_task):
        assert f">{format_ref(RefKind.TASK, task_id)}</span>" in html
    assert "Alice Archer" in html and ESCAPED[0] in html  # assignees, the hostile one escaped
    assert "Overdue &lt;b&gt;press&lt;/b&gt; list" in html and 'class="badge overdue"' in html
    assert "status-done" in html and "status-in_progress" in html and "status-blocked" in html
    assert APPROVED_STAGE in html and "Bob Baker" in html and "vote-approved" in html
    assert "Brand &lt;check&gt; &amp; &#34;tone&#34;" in html and "state-open" in html
    assert "Audit trail" in html and "asked for sign-off" in html and "approved" in html
    assert "created the campaign" in html and f"marked {format_ref(RefKind.TASK, seeded.blocked_task)} " in html
    assert "waiting on &lt;script&gt;" in html  # the blocked task's reason, from the audit log
    assert "+01:00" in html or "+02:00" in html  # times in Berlin
    assert '<th scope="col">' in html and '<th scope="row">' in html


async def test_overview_lists_health_launches_overdue_work_and_waiting_signoffs(running_app: RunningApp) -> None:
    seeded = await seed_workspace(running_app)
    token = await token_for(running_app)
    answer = await fetch(running_app, f"/dashboard/{token}")
    html = main_of(answer.text)
    launches = html.split('id="launches-heading"')[1].split("</section>")[0]
    assert ref(seeded.webinar) in launches and ref(seeded.launch) not in launches  # 21 days yes, 90 days no
    overdue = html.split('id="overdue-heading"')[1].split("</section>")[0]
    assert "Overdue &lt;b&gt;press&lt;/b&gt; list" in overdue and MIDNIGHT_TITLE not in overdue
    waiting = html.split('id="approvals-heading"')[1].split("</section>")[0]
    assert "Brand &lt;check&gt;" in waiting and ESCAPED[0] in waiting and APPROVED_STAGE not in waiting
    assert 'id="health-heading"' in html and "3 open campaigns" in html


async def test_metrics_show_rates_and_no_email_data_yet(running_app: RunningApp) -> None:
    seeded = await seed_workspace(running_app)
    token = await token_for(running_app)
    today = seeded.now.date()
    answer = await fetch(running_app, f"/dashboard/{token}/metrics", **{
        "from": (today - timedelta(days=10)).isoformat(), "to": (today + timedelta(days=100)).isoformat()})
    assert answer.status == 200
    html = answer.text
    assert "No data yet" in html
    assert "3 campaigns launch in the range" in html
    assert "of 1 tasks finished in the range" in html  # the one task finished while seeding
    turnaround = html.split('id="turnaround-heading"')[1].split("</section>")[0]
    assert "<dd>1</dd>" in turnaround  # one decision: Bob's


async def test_a_page_is_kept_until_a_change_to_what_it_shows_is_heard(running_app: RunningApp) -> None:
    seeded = await seed_workspace(running_app)
    deps = running_app.runtime.deps
    assert deps is not None
    everything = await token_for(running_app)
    one = await token_for(running_app, campaign_id=seeded.newsletter)
    detail = f"/dashboard/{everything}/campaigns/{ref(seeded.newsletter)}"
    listing = f"/dashboard/{everything}/campaigns"
    scoped_week = f"/dashboard/{one}/week"
    start = {"start": seeded.midnight_day.isoformat()}
    for path in (detail, listing):
        assert "Autumn newsletter" in (await fetch(running_app, path)).text
    assert "Autumn newsletter" in (await fetch(running_app, scoped_week, **start)).text

    async with running_app.sessions.begin() as db:
        await db.execute(update(Campaign).where(Campaign.id == seeded.newsletter).values(name="Winter newsletter"))
    for path in (detail, listing):
        assert "Autumn newsletter" in (await fetch(running_app, path)).text, path  # kept: nothing was heard yet

    deps.live.heard([seeded.webinar])  # another campaign's change
    assert "Autumn newsletter" in (await fetch(running_app, detail)).text  # one campaign's page stays
    assert "Autumn newsletter" in (await fetch(running_app, scoped_week, **start)).text
    assert "Winter newsletter" in (await fetch(running_app, listing)).text  # a workspace page does not

    deps.live.heard([seeded.newsletter])
    assert "Winter newsletter" in (await fetch(running_app, detail)).text
    assert "Winter newsletter" in (await fetch(running_app, scoped_week, **start)).text


async def test_readers_of_one_kept_page_each_get_their_own_link(running_app: RunningApp) -> None:
    await seed_workspace(running_app)
    first, second = await token_for(running_app), await token_for(running_app)
    assert first != second  # stored links: two links, two tokens
    kept = running_app.server.app[cache.CACHE_KEY]
    one = await fetch(running_app, f"/dashboard/{first}/campaigns")
    hits = kept.hits
    other = await fetch(running_app, f"/dashboard/{second}/campaigns")
    assert kept.hits == hits + 1  # one page rendered for both
    assert f"/dashboard/{first}/" in one.text and f"/dashboard/{second}/" not in one.text
    assert f"/dashboard/{second}/" in other.text and f"/dashboard/{first}/" not in other.text


async def test_readers_arriving_together_cost_one_render(running_app: RunningApp) -> None:
    seeded = await seed_workspace(running_app)
    token = await token_for(running_app)
    kept = running_app.server.app[cache.CACHE_KEY]
    path = f"/dashboard/{token}/week"
    assert (await fetch(running_app, path)).status == 200
    running_app.runtime.deps.live.heard([seeded.webinar])  # every open page reloads at once
    renders = kept.renders
    answers = await asyncio.gather(*(fetch(running_app, path) for _ in range(8)))
    assert {answer.status for answer in answers} == {200}
    assert len({answer.text for answer in answers}) == 1
    assert kept.renders == renders + 1


async def test_a_failed_render_leaves_the_next_reader_to_render() -> None:
    kept = cache.RenderCache()
    started, release = asyncio.Event(), asyncio.Event()

    async def failing() -> str:
        started.set()
        await release.wait()
        raise RuntimeError("the database went away")

    async def working() -> str:
        return "page"

    first = asyncio.create_task(kept.get_or_render("key", failing))
    await started.wait()
    second = asyncio.create_task(kept.get_or_render("key", working))  # waits behind the first
    release.set()
    with pytest.raises(RuntimeError):
        await first
    assert await second == "page" and kept.renders == 2
    assert await kept.get_or_render("key", failing) == "page"  # kept now: nothing renders


def test_a_long_list_pages_and_keeps_its_filters() -> None:
    card = CampaignCard(id=7, ref="CM-7", name="Seven", status=CampaignStatus.ACTIVE, template="webinar",
                        owner=Person("U0BOB", "Bob Baker"), launch_date=date(2030, 5, 1), projected_launch=None,
                        health=Health.ON_TRACK, buffer_left_pct=80.0, progress_pct=10.0)
    filters = CampaignFilters(status=parse_status("all"), owner="U0BOB", month=date(2030, 5, 1), page=2)
    listing = CampaignList(campaigns=[card], total=120, page=2, pages=3, owners=[card.owner], templates=["webinar"])
    html = templates.get_template("campaigns.html").render(
        token=cache.TOKEN_MARK, href=Links("Europe/Berlin"), tz_suffix="", tz="Europe/Berlin", current="campaigns",
        live_scope="all", scoped=False, listing=listing, filters=filters, filter_query=filter_query(filters),
        statuses=STATUS_CHOICES, healths=HEALTH_CHOICES)
    html = cache.with_token(html, "TOKEN")
    for page in (1, 3):
        assert (f'href="/dashboard/TOKEN/campaigns?page={page}&amp;status=all&amp;owner=U0BOB&amp;month=2030-05'
                f'&amp;tz=Europe%2FBerlin"') in html
    assert "Page 2 of 3" in html and '<option value="U0BOB" selected>Bob Baker</option>' in html
    assert '<input type="hidden" name="tz" value="Europe/Berlin">' in html


def test_the_render_cache_is_bounded_and_ages_out() -> None:
    clock = [0.0]
    kept = cache.RenderCache(max_entries=2, max_age=10, clock=lambda: clock[0])
    kept.put("a", "A")
    kept.put("b", "B")
    assert kept.get("a") == "A"  # a is now the most recently used
    kept.put("c", "C")
    assert kept.get("b") is None and kept.get("a") == "A" and kept.get("c") == "C" and len(kept) == 2
    clock[0] = 11
    assert kept.get("a") is None and kept.get("c") is None

