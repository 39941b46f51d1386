"""Signed dashboard tokens (round trip, tampering, strict encoding, old tokens refused) and `/dashboard` end to end.

The stored side (expiry, revocation, `/dashboard links|revoke`, the pages refusing) is in test_dashboard_links.py.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from models import DashboardLink
from services import links
from tests.conftest import SIGNING_SECRET, RunningApp, app_settings, start_app
from tests.fake_slack import Call, FakeSlack
from tests.slack_helpers import owner_today, reply_text, send_command

SECRET = "dashboard-secret-for-tests"
EXPIRES = datetime(2027, 3, 8, 9, 30, tzinfo=UTC)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _signed(payload: bytes, context: bytes = b"campaign-manager/dashboard-link/v2\x00", key: str = SECRET) -> str:
    """A token signed by hand, to reach the checks after the signature."""
    return f"{_b64(payload)}.{_b64(hmac.new(key.encode(), context + payload, hashlib.sha256).digest())}"


def token(scope: str = "all", link_id: int = 7, expires_at: datetime = EXPIRES) -> str:
    return links.sign(SECRET, link_id=link_id, scope=scope, expires_at=expires_at)


@pytest.mark.parametrize("scope", ["all", "campaign:3", "campaign:2147483647"])
def test_a_token_verifies_to_its_link(scope: str) -> None:
    made = token(scope, link_id=42)
    assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", made) and len(made) <= links.MAX_TOKEN_LENGTH
    claim = links.verify(SECRET, made)
    assert claim == links.Claim(link_id=42, scope=scope, expires_at=EXPIRES)
    assert claim.campaign_id == links.campaign_id_of(scope)
    assert links.verify(SECRET.encode(), made) == claim  # str and bytes keys are the same key


def test_the_largest_ids_still_fit() -> None:
    made = links.sign(SECRET, link_id=10**18 - 1, scope="campaign:9999999999",
                      expires_at=datetime(9999, 12, 31, tzinfo=UTC))
    assert len(made) <= links.MAX_TOKEN_LENGTH and links.verify(SECRET, made) is not None


def test_another_secret_does_not_verify() -> None:
    assert links.verify("another-secret", token()) is None


def test_a_payload_swapped_under_a_signature_fails() -> None:
    signature = token("campaign:3").split(".")[1]
    expiry = int(EXPIRES.timestamp())
    for payload in (f"7/campaign:4/{expiry}", f"7/all/{expiry}", f"8/campaign:3/{expiry}",
                    f"7/campaign:3/{expiry + 86400}"):
        assert links.verify(SECRET, f"{_b64(payload.encode())}.{signature}") is None


@pytest.mark.parametrize("position", [0, 5, -1])
def test_any_changed_character_fails(position: int) -> None:
    made = token("campaign:3")
    index = position % len(made)
    if made[index] == ".":
        index += 1
    swapped = "A" if made[index] != "A" else "B"
    assert links.verify(SECRET, made[:index] + swapped + made[index + 1:]) is None


def test_a_truncated_token_fails() -> None:
    made = token()
    for cut in range(1, len(made)):
        assert links.verify(SECRET, made[:cut]) is None
        assert links.verify(SECRET, made[cut:]) is None


@pytest.mark.parametrize(
    "bad",
    ["", ".", "all", "YWxs", "YWxs.", ".abc", "YWxs.abc.def", "YWxs==.abc", "YW xs.abc", "YWxs.+/==",
     "x" * 500, "YWxs.\u00e9"],
)
def test_malformed_tokens_fail(bad: str) -> None:
    assert links.verify(SECRET, bad) is None


def test_only_the_canonical_spelling_verifies() -> None:
    payload, signature = token().split(".")
    # Lenient base64 decoders skip junk and padding; ours must not.
    for variant in (f"{payload}=.{signature}", f"{payload}.{signature}=", f"{payload}!.{signature}",
                    f"{payload}.{signature}\n", f" {payload}.{signature}", f"{payload}\n.{signature}"):
        assert links.verify(SECRET, variant) is None
    # 32 bytes are 43 characters whose last carries 2 unused bits: flipping one decodes to the same bytes.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    sibling = signature[:-1] + alphabet[alphabet.index(signature[-1]) ^ 1]
    assert base64.urlsafe_b64decode(sibling + "=") == base64.urlsafe_b64decode(signature + "=")
    assert links.verify(SECRET, f"{payload}.{sibling}") is None


@pytest.mark.parametrize(
    "payload",
    [b"0/all/1800000000", b"07/all/1800000000", b"7/all/01800000000", b"7/campaign:0/1800000000",
     b"7/campaign:03/1800000000", b"7/everything/1800000000", b"7/all/1800000000\n", b"7/all", b"all",
     b"-7/all/1800000000", b"7/all/1800000000/x", b"7 /all/1800000000"],
)
def test_a_signed_but_uncanonical_payload_fails(payload: bytes) -> None:
    assert links.verify(SECRET, _signed(payload)) is None
    assert links.verify(SECRET, _signed(b"7/all/1800000000")) is not None  # the same, spelled right


def test_first_version_tokens_are_refused() -> None:
    """v1: the scope alone, no link, no expiry. Even well signed under the same key, it opens nothing now."""
    old = _signed(b"all", context=b"campaign-manager/dashboard-link/v1\x00")
    assert links.verify(SECRET, old) is None
    # and a v2 payload signed under the v1 context is not a v2 token either
    assert links.verify(SECRET, _signed(b"7/all/1800000000", context=b"campaign-manager/dashboard-link/v1\x00")) is None


@pytest.mark.parametrize("scope", ["", "everything", "campaign:", "campaign:0", "campaign:x", "campaign:-1", "all ",
                                   "all\n"])
def test_only_known_scopes_are_signed(scope: str) -> None:
    with pytest.raises(ValueError):
        links.sign(SECRET, link_id=1, scope=scope, expires_at=EXPIRES)


@pytest.mark.parametrize("link_id, expires_at", [(0, EXPIRES), (-1, EXPIRES), (1, EXPIRES.replace(tzinfo=None)),
                                                 (1, EXPIRES + timedelta(microseconds=5))])
def test_only_whole_links_are_signed(link_id: int, expires_at: datetime) -> None:
    with pytest.raises(ValueError):
        links.sign(SECRET, link_id=link_id, scope="all", expires_at=expires_at)


@given(st.text(max_size=120))
def test_anything_else_is_refused_without_raising(text: str) -> None:
    assert links.verify(SECRET, text) is None


def test_the_secret_falls_back_to_one_derived_from_the_signing_secret() -> None:
    assert links.link_secret(dashboard_secret="chosen", signing_secret="slack") == b"chosen"
    derived = links.link_secret(dashboard_secret=None, signing_secret="slack")
    assert derived is not None and derived != b"slack" and len(derived) == 32
    assert derived == links.link_secret(dashboard_secret="", signing_secret="slack")  # stable
    assert links.link_secret(dashboard_secret=None, signing_secret=None) is None


def test_scope_helpers() -> None:
    assert links.campaign_scope(3) == "campaign:3"
    assert links.campaign_id_of("campaign:3") == 3 and links.campaign_id_of("all") is None
    assert links.is_scope("all") and links.is_scope("campaign:3") and not links.is_scope("campaign:3\n")
    assert links.dashboard_url("https://cm.example.com/", "a.b") == "https://cm.example.com/dashboard/a.b"


# ---------------------------------------------------------------- /dashboard end to end

URL = re.compile(r"<(https?://[^|>]+/dashboard/([A-Za-z0-9_.-]+))\|Open the dashboard>")


def token_in(reply: Call) -> tuple[str, str]:
    match = URL.search(reply_text(reply))
    assert match, reply_text(reply)
    return match.group(1), match.group(2)


async def dashboard(app: RunningApp, fake: FakeSlack, text: str = "", user_id: str = "U0ALICE") -> Call:
    return await send_command(app, fake, "/dashboard", text, user_id=user_id)


async def stored(app: RunningApp) -> list[DashboardLink]:
    async with app.sessions() as db:
        return list(await db.scalars(select(DashboardLink).order_by(DashboardLink.id)))


async def test_dashboard_gives_a_link_for_everything(db_url: str, fake_slack: FakeSlack) -> None:
    settings = app_settings(db_url, fake_slack, dashboard_secret=SECRET, public_url="https://cm.example.com",
                            dashboard_link_days=3)
    before = datetime.now(UTC)
    async with start_app(settings, fake_slack) as app:
        reply = await dashboard(app, fake_slack)
        [link] = await stored(app)
    url, made = token_in(reply)
    assert reply.args["response_type"] == "ephemeral"
    assert url == f"https://cm.example.com/dashboard/{made}"
    claim = links.verify(SECRET, made)
    assert claim is not None and (claim.link_id, claim.scope, claim.expires_at) == (link.id, "all", link.expires_at)
    # DASHBOARD_LINK_DAYS: three days from now, in whole seconds
    assert before + timedelta(days=3) - timedelta(seconds=1) <= link.expires_at <= datetime.now(UTC) + timedelta(days=3)
    assert link.created_by_id is not None and link.scope == "all" and link.campaign_id is None
    assert "every campaign" in reply.args["text"]
    assert f"Link {link.id}, good until <!date^{int(link.expires_at.timestamp())}^" in reply_text(reply)
    assert f"/dashboard revoke {link.id}" in reply_text(reply)


async def test_dashboard_for_one_campaign(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    launch = owner_today() + timedelta(days=60)
    await send_command(running_app, fake_slack, "/campaign", f'new "Spring &lt;!here&gt;" webinar {launch}')
    reply = await dashboard(running_app, fake_slack, "cm-1", user_id="U0BOB")
    url, made = token_in(reply)
    assert url.startswith("http://localhost:3000/dashboard/")
    # No DASHBOARD_SECRET in these settings: the key is derived from the Slack signing secret.
    secret = links.link_secret(dashboard_secret=None, signing_secret=SIGNING_SECRET)
    assert secret is not None
    claim = links.verify(secret, made)
    assert claim is not None and claim.scope == "campaign:1"
    assert links.verify(SIGNING_SECRET, made) is None  # not the signing secret itself
    [link] = await stored(running_app)
    assert (link.scope, link.campaign_id, link.label) == ("campaign:1", 1, "CM-1 Spring <!here>")  # raw; escaped when shown
    assert "CM-1 *Spring &lt;!here&gt;*" in reply_text(reply) and "<!here>" not in reply_text(reply)


@pytest.mark.parametrize(
    ("text", "explains"),
    [("CM-9", "There is no campaign CM-9."), ("T-1", "is not a campaign reference"),
     ("CM-1 CM-2", "Usage: `/dashboard`"), ("everything", "is not something I know"),
     ("links now", "takes nothing after it")],
)
async def test_dashboard_bad_input(running_app: RunningApp, fake_slack: FakeSlack, text: str, explains: str) -> None:
    reply = await dashboard(running_app, fake_slack, text)
    assert reply.args["response_type"] == "ephemeral" and explains in reply_text(reply), reply_text(reply)
    assert "/dashboard/" not in reply_text(reply)
    assert await stored(running_app) == []


async def test_dashboard_help(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    reply = await dashboard(running_app, fake_slack, "help")
    for usage in ("/dashboard CM-12", "/dashboard links", "/dashboard revoke 12"):
        assert usage in reply_text(reply)


async def test_without_any_secret_the_dashboard_is_not_configured(db_url: str, fake_slack: FakeSlack) -> None:
    # Socket Mode needs no signing secret; without DASHBOARD_SECRET there is then nothing to sign links with.
    async with start_app(app_settings(db_url, fake_slack), fake_slack) as app:
        deps = app.runtime.deps
        assert deps is not None
        deps.settings = deps.settings.model_copy(update={"slack_signing_secret": None, "dashboard_secret": None})
        replies = [await dashboard(app, fake_slack, text) for text in ("", "links", "revoke 1")]
        assert await stored(app) == []
    for reply in replies:
        assert "not configured" in reply.args["text"] and "DASHBOARD_SECRET" in reply.args["text"]
        assert "/dashboard/" not in reply_text(reply)
