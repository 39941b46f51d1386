"""Signed dashboard links: the token service (round trip, tampering, strict encoding) and `/dashboard` end to end."""

from __future__ import annotations

import base64
import re
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services import links
from tests.conftest import SIGNING_SECRET, RunningApp, app_settings, start_app
from tests.fake_slack import Call, FakeSlack
from tests.slack_helpers import owner_today, reply_text, send_command

SECRET = "dashboard-secret-for-tests"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.mark.parametrize("scope", ["all", "campaign:3", "campaign:2147483647"])
def test_a_token_verifies_to_its_scope(scope: str) -> None:
    token = links.dashboard_token(SECRET, scope)
    assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", token)
    assert links.verify(SECRET, token) == scope
    assert links.verify(SECRET.encode(), token) == scope  # str and bytes keys are the same key


def test_another_secret_does_not_verify() -> None:
    assert links.verify("another-secret", links.dashboard_token(SECRET, "all")) is None


def test_a_scope_swapped_under_a_signature_fails() -> None:
    signature = links.dashboard_token(SECRET, "campaign:3").split(".")[1]
    assert links.verify(SECRET, f"{_b64(b'campaign:4')}.{signature}") is None
    assert links.verify(SECRET, f"{_b64(b'all')}.{signature}") is None


@pytest.mark.parametrize("position", [0, 5, -1])
def test_any_changed_character_fails(position: int) -> None:
    token = links.dashboard_token(SECRET, "campaign:3")
    index = position % len(token)
    if token[index] == ".":
        index += 1
    swapped = "A" if token[index] != "A" else "B"
    assert links.verify(SECRET, token[:index] + swapped + token[index + 1:]) is None


@pytest.mark.parametrize(
    "token",
    ["", ".", "all", "YWxs", "YWxs.", ".abc", "YWxs.abc.def", "YWxs==.abc", "YW xs.abc", "YWxs.+/==",
     "x" * 500, "YWxs.\u00e9"],
)
def test_malformed_tokens_fail(token: str) -> None:
    assert links.verify(SECRET, token) is None


def test_only_the_canonical_spelling_verifies() -> None:
    payload, signature = links.dashboard_token(SECRET, "all").split(".")
    # Lenient base64 decoders skip junk and padding; ours must not.
    for variant in (f"{payload}=.{signature}", f"{payload}.{signature}=", f"{payload}!.{signature}",
                    f"{payload}.{signature}\n", f" {payload}.{signature}"):
        assert links.verify(SECRET, variant) is None
    # 32 bytes are 43 characters whose last carries 2 unused bits: flipping one decodes to the same bytes.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    sibling = signature[:-1] + alphabet[alphabet.index(signature[-1]) ^ 1]
    assert base64.urlsafe_b64decode(sibling + "=") == base64.urlsafe_b64decode(signature + "=")
    assert links.verify(SECRET, f"{payload}.{sibling}") is None


def test_a_signed_but_unknown_scope_fails() -> None:
    import hashlib
    import hmac

    scope = b"campaign:0"  # never issued: refs start at 1
    signature = hmac.new(SECRET.encode(), b"campaign-manager/dashboard-link/v1\x00" + scope, hashlib.sha256).digest()
    assert links.verify(SECRET, f"{_b64(scope)}.{_b64(signature)}") is None


@pytest.mark.parametrize("scope", ["", "everything", "campaign:", "campaign:0", "campaign:x", "campaign:-1", "all "])
def test_only_known_scopes_are_signed(scope: str) -> None:
    with pytest.raises(ValueError):
        links.dashboard_token(SECRET, scope)


@given(st.text(max_size=120))
def test_anything_else_is_refused_without_raising(token: str) -> None:
    assert links.verify(SECRET, token) is None


def test_the_secret_falls_back_to_one_derived_from_the_signing_secret() -> None:
    assert links.link_secret(dashboard_secret="chosen", signing_secret="slack") == b"chosen"
    derived = links.link_secret(dashboard_secret=None, signing_secret="slack")
    assert derived is not None and derived != b"slack" and len(derived) == 32
    assert derived == links.link_secret(dashboard_secret="", signing_secret="slack")  # stable
    assert links.link_secret(dashboard_secret=None, signing_secret=None) is None


def test_scope_helpers() -> None:
    assert links.campaign_scope(3) == "campaign:3"
    assert links.campaign_id_of("campaign:3") == 3 and links.campaign_id_of("all") is None
    assert links.dashboard_url("https://cm.example.com/", "a.b") == "https://cm.example.com/dashboard/a.b"


# ---------------------------------------------------------------- /dashboard end to end

URL = re.compile(r"<(https?://[^|>]+/dashboard/([A-Za-z0-9_.-]+))\|Open the dashboard>")


def token_in(reply: Call) -> tuple[str, str]:
    match = URL.search(reply_text(reply))
    assert match, reply_text(reply)
    return match.group(1), match.group(2)


async def dashboard(app: RunningApp, fake: FakeSlack, text: str = "", user_id: str = "U0ALICE") -> Call:
    return await send_command(app, fake, "/dashboard", text, user_id=user_id)


async def test_dashboard_gives_a_link_for_everything(db_url: str, fake_slack: FakeSlack) -> None:
    settings = app_settings(db_url, fake_slack, dashboard_secret=SECRET, public_url="https://cm.example.com")
    async with start_app(settings, fake_slack) as app:
        reply = await dashboard(app, fake_slack)
    url, token = token_in(reply)
    assert reply.args["response_type"] == "ephemeral"
    assert url == f"https://cm.example.com/dashboard/{token}"
    assert links.verify(SECRET, token) == "all"
    assert "every campaign" in reply.args["text"]


async def test_dashboard_for_one_campaign(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    launch = owner_today() + timedelta(days=60)
    await send_command(running_app, fake_slack, "/campaign", f'new "Spring &lt;!here&gt;" webinar {launch}')
    reply = await dashboard(running_app, fake_slack, "cm-1", user_id="U0BOB")
    url, token = token_in(reply)
    assert url.startswith("http://localhost:3000/dashboard/")
    # No DASHBOARD_SECRET in these settings: the key is derived from the Slack signing secret.
    secret = links.link_secret(dashboard_secret=None, signing_secret=SIGNING_SECRET)
    assert secret is not None and links.verify(secret, token) == "campaign:1"
    assert links.verify(SIGNING_SECRET, token) is None  # not the signing secret itself
    tampered = links.dashboard_token(secret, "campaign:1").replace(_b64(b"campaign:1"), _b64(b"campaign:2"))
    assert links.verify(secret, tampered) is None
    assert "CM-1 *Spring &lt;!here&gt;*" in reply_text(reply) and "<!here>" not in reply_text(reply)


@pytest.mark.parametrize(
    ("text", "explains"),
    [("CM-9", "There is no campaign CM-9."), ("T-1", "is not a campaign reference"),
     ("CM-1 CM-2", "Usage: `/dashboard`"), ("everything", "is not something I know")],
)
async def test_dashboard_bad_input(running_app: RunningApp, fake_slack: FakeSlack, text: str, explains: str) -> None:
    reply = await dashboard(running_app, fake_slack, text)
    assert reply.args["response_type"] == "ephemeral" and explains in reply_text(reply), reply_text(reply)
    assert "/dashboard/" not in reply_text(reply)


async def test_dashboard_help(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    reply = await dashboard(running_app, fake_slack, "help")
    assert "/dashboard CM-12" in reply_text(reply)


async def test_without_any_secret_the_dashboard_is_not_configured(db_url: str, fake_slack: FakeSlack) -> None:
    # Socket Mode needs no signing secret; without DASHBOARD_SECRET there is then nothing to sign links with.
    async with start_app(app_settings(db_url, fake_slack), fake_slack) as app:
        deps = app.runtime.deps
        assert deps is not None
        deps.settings = deps.settings.model_copy(update={"slack_signing_secret": None, "dashboard_secret": None})
        reply = await dashboard(app, fake_slack)
    assert "not configured" in reply.args["text"] and "DASHBOARD_SECRET" in reply.args["text"]
    assert "/dashboard/" not in reply_text(reply)
