"""API tokens: the service (hashed at rest, shown once, authenticate, revoke, last-used throttled) and
`/api token …` end to end through signed Slack requests to the real app, on both backends."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import ApiToken, TeamMember
from services import api_tokens, authz, team
from services.api_tokens import Refusal, TokenRefused
from services.errors import NotAllowed
from tests.conftest import RunningApp, app_settings, start_app
from tests.fake_slack import Call, FakeSlack
from tests.slack_helpers import count, fuzzed_texts, reply_text, send_command
from tests.statements import counting_statements
from tests.support.api import api_token

ADMIN = "U0ADAM"
TOKEN = re.compile(r"```(cm_(\d+)_[A-Za-z0-9_-]{43})```")
NOW = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)


# ---------------------------------------------------------------- the service


async def member(db: AsyncSession, slack_user_id: str) -> TeamMember:
    return await team.ensure_member(db=db, slack_user_id=slack_user_id)


async def issued(sessions: async_sessionmaker[AsyncSession], *, scope: str = "write",
                 user: str = "U0ALICE") -> api_tokens.IssuedToken:
    async with sessions.begin() as db:
        admin, acting_as = await member(db, ADMIN), await member(db, user)
        return await api_tokens.issue(db=db, created_by=admin, acting_as=acting_as, label="CRM sync", scope=scope,
                                      now=NOW)


async def authenticate(sessions: async_sessionmaker[AsyncSession], token: str,
                       now: datetime = NOW) -> api_tokens.ApiCaller:
    async with sessions.begin() as db:
        return await api_tokens.authenticate(db=db, token=token, now=now)


async def refusal(sessions: async_sessionmaker[AsyncSession], token: str) -> Refusal:
    with pytest.raises(TokenRefused) as refused:
        await authenticate(sessions, token)
    return refused.value.reason


async def stored(sessions: async_sessionmaker[AsyncSession], token_id: int) -> ApiToken:
    async with sessions() as db:
        row = await db.get(ApiToken, token_id)
        assert row is not None
        return row


async def test_only_the_hash_of_the_secret_is_stored(sessions: async_sessionmaker[AsyncSession]) -> None:
    token = await issued(sessions)
    assert re.fullmatch(rf"cm_{token.token_id}_[A-Za-z0-9_-]{{43}}", token.token)
    secret = token.token.removeprefix(f"cm_{token.token_id}_")
    row = await stored(sessions, token.token_id)
    assert row.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    columns = [str(getattr(row, column.key)) for column in ApiToken.__table__.columns]
    assert not any(secret in value or token.token in value for value in columns)
    # Each token has its own secret.
    assert (await issued(sessions)).token.split("_", 2)[2] != secret


async def test_a_good_token_names_its_member_and_scope(sessions: async_sessionmaker[AsyncSession]) -> None:
    reading = await issued(sessions, scope="read", user="U0BOB")
    caller = await authenticate(sessions, reading.token)
    assert (caller.token_id, caller.member.slack_user_id, caller.scope, caller.may_write) == (
        reading.token_id, "U0BOB", "read", False)
    assert reading.acting_as == "U0BOB" and reading.scope == "read" and reading.label == "CRM sync"
    assert (await authenticate(sessions, (await issued(sessions)).token)).may_write


async def test_refusals(sessions: async_sessionmaker[AsyncSession]) -> None:
    token = await issued(sessions)
    prefix, secret = f"cm_{token.token_id}_", token.token.removeprefix(f"cm_{token.token_id}_")
    wrong = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    assert await refusal(sessions, prefix + wrong) is Refusal.WRONG_SECRET
    assert await refusal(sessions, f"cm_{token.token_id + 100}_{secret}") is Refusal.UNKNOWN
    for malformed in ("", "Bearer", "cm_", secret, f"cm_0{token.token_id}_{secret}", prefix + secret[:-1],
                      prefix + secret + "x", f"cm_99999999999_{secret}", f"cm_-1_{secret}", prefix + "é" * 43,
                      token.token + "\x00", "cm_1_" + "a" * 10_000):
        assert await refusal(sessions, malformed) is Refusal.MALFORMED, malformed
    # Only someone holding the right secret learns that a token was revoked.
    async with sessions.begin() as db:
        admin = authz.Actor(member=await member(db, ADMIN), is_admin=True)
        await api_tokens.revoke(db=db, actor=admin, token_id=token.token_id, now=NOW)
    assert await refusal(sessions, token.token) is Refusal.REVOKED
    assert await refusal(sessions, prefix + wrong) is Refusal.WRONG_SECRET


async def test_last_used_is_written_at_most_once_a_minute(
    sessions: async_sessionmaker[AsyncSession], db_url: str
) -> None:
    token = await issued(sessions)
    assert (await stored(sessions, token.token_id)).last_used_at is None
    await authenticate(sessions, token.token, NOW)
    assert (await stored(sessions, token.token_id)).last_used_at == NOW

    engine = sessions.kw["bind"]
    with counting_statements(engine) as statements:
        await authenticate(sessions, token.token, NOW + timedelta(seconds=59))
    assert not [s for s in statements if s.lstrip().upper().startswith("UPDATE")], statements
    assert (await stored(sessions, token.token_id)).last_used_at == NOW

    await authenticate(sessions, token.token, NOW + timedelta(seconds=61))
    assert (await stored(sessions, token.token_id)).last_used_at == NOW + timedelta(seconds=61)


async def test_only_admins_revoke(sessions: async_sessionmaker[AsyncSession]) -> None:
    token = await issued(sessions)
    async with sessions.begin() as db:
        alice = authz.Actor(member=await member(db, "U0ALICE"))  # the member the token acts as, not an admin
        with pytest.raises(NotAllowed):
            await api_tokens.revoke(db=db, actor=alice, token_id=token.token_id, now=NOW)
    assert (await authenticate(sessions, token.token)).token_id == token.token_id


async def test_the_test_helper_issues_a_working_token(running_app: RunningApp) -> None:
    token = await api_token(running_app, user="U0BOB", scope="read")
    caller = await authenticate(running_app.sessions, token)
    assert caller.member.slack_user_id == "U0BOB" and caller.scope == "read"


# ---------------------------------------------------------------- /api token in Slack


@pytest.fixture
async def admin_app(db_url: str, fake_slack: FakeSlack) -> AsyncIterator[RunningApp]:
    fake_slack.add_user(ADMIN, name="adam", real_name="Adam Admin", tz="Europe/Berlin")
    async with start_app(app_settings(db_url, fake_slack, admin_user_ids=ADMIN), fake_slack) as app:
        yield app


async def api(app: RunningApp, fake: FakeSlack, text: str, user: str = ADMIN) -> Call:
    reply = await send_command(app, fake, "/api", text, user_id=user)
    assert reply.args["response_type"] == "ephemeral"
    return reply


async def new_token(app: RunningApp, fake: FakeSlack, text: str) -> tuple[str, int, str]:
    """`/api token new <text>` as the admin: the token, its number and the whole reply."""
    shown = reply_text(await api(app, fake, f"token new {text}"))
    found = TOKEN.search(shown)
    assert found, shown
    return found.group(1), int(found.group(2)), shown


async def test_an_admin_creates_lists_and_revokes(admin_app: RunningApp, fake_slack: FakeSlack) -> None:
    token, number, shown = await new_token(admin_app, fake_slack, '"CRM sync" scope=read')
    assert f"New API token {number} for “CRM sync” (read only), acting as <@{ADMIN}>" in shown
    assert "only time it is shown" in shown
    listed = reply_text(await api(admin_app, fake_slack, "token list"))
    assert f"*{number}* · CRM sync · read only · acts as <@{ADMIN}> · made by <@{ADMIN}>" in listed
    assert "never used" in listed
    assert token not in listed and token.split("_", 2)[2] not in listed  # shown once: never again

    caller = await authenticate(admin_app.sessions, token)
    assert (caller.member.slack_user_id, caller.scope) == (ADMIN, "read")
    assert "last used" in reply_text(await api(admin_app, fake_slack, "token list"))

    revoked = reply_text(await api(admin_app, fake_slack, f"token revoke {number}"))
    assert f"API token {number} (“CRM sync”) is revoked" in revoked
    assert await refusal(admin_app.sessions, token) is Refusal.REVOKED
    again = reply_text(await api(admin_app, fake_slack, f"token revoke {token}"))  # a pasted token works too
    assert "was revoked already" in again
    assert ":no_entry_sign: revoked" in reply_text(await api(admin_app, fake_slack, "token list"))


async def test_as_someone_acts_as_them(admin_app: RunningApp, fake_slack: FakeSlack) -> None:
    token, _, shown = await new_token(admin_app, fake_slack, '"BI export" scope=write as=<@U0BOB|bob>')
    assert "(read and write), acting as <@U0BOB>" in shown
    caller = await authenticate(admin_app.sessions, token)
    assert (caller.member.slack_user_id, caller.scope) == ("U0BOB", "write")
    assert caller.member.name == "Bob Baker"  # a newcomer, looked up in Slack before the transaction
    # A plain @name is looked up among the members.
    by_name, _, _ = await new_token(admin_app, fake_slack, 'scope=read as=@bob "Agent"')
    assert (await authenticate(admin_app.sessions, by_name)).member.slack_user_id == "U0BOB"


@pytest.mark.parametrize("text", ['token new "CRM sync" scope=write', "token list", "token revoke 1",
                                  'token new "x" scope=write as=@nobody'])
async def test_non_admins_are_refused(admin_app: RunningApp, fake_slack: FakeSlack, text: str) -> None:
    await api_token(admin_app, user=ADMIN)  # token 1 exists
    shown = reply_text(await api(admin_app, fake_slack, text, user="U0ALICE"))
    assert api_tokens.NOT_ADMIN in shown and "cm_" not in shown, shown
    async with admin_app.sessions() as db:
        rows = list(await db.scalars(select(ApiToken)))
    assert len(rows) == 1 and rows[0].revoked_at is None


async def test_hostile_labels_are_escaped(admin_app: RunningApp, fake_slack: FakeSlack) -> None:
    hostile = '"&lt;!channel&gt; &amp; &lt;https://evil.example|click&gt; *x*"'
    _, number, shown = await new_token(admin_app, fake_slack, f"{hostile} scope=read")
    listed = reply_text(await api(admin_app, fake_slack, "token list"))
    revoked = reply_text(await api(admin_app, fake_slack, f"token revoke {number}"))
    for text in (shown, listed, revoked):
        assert "&lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;" in text, text
        assert "<!channel>" not in text and "<https://evil" not in text
    async with admin_app.sessions() as db:
        assert await db.scalar(select(ApiToken.label)) == "<!channel> & <https://evil.example|click> *x*"


@pytest.mark.parametrize(
    ("text", "explains"),
    [("", "/api token list"), ("help", "/api token list"),
     ("nonsense", "Usage: `/api token new"), ("token", "Usage: `/api token new"),
     ("token list extra", "Usage: `/api token new"),
     ("token new", "(the label in quotes)"), ("token new scope=read", "(the label in quotes)"),
     ('token new "CRM sync"', "(the label in quotes)"),
     ("token new CRM sync scope=read", "(the label in quotes)"),
     ('token new "CRM sync" scope=admin', "A token's scope is `read` or `write`."),
     ('token new "CRM sync" scope=read scope=write', "`scope=` is given twice"),
     ('token new "   " scope=read', "Say what the token is for"),
     (f'token new "{"x" * 201}" scope=read', "at most 200 characters"),
     ('token new "CRM sync', "A quote is not closed"),
     ("token revoke", "Say which token to revoke"), ("token revoke 1 2", "Say which token to revoke"),
     ("token revoke abc", "`abc` is neither a token number nor an API token"),
     ("token revoke 0", "is neither a token number"),
     ("token revoke 99999999999", "is neither a token number"),
     ("token revoke 999999", "There is no API token 999999."),
     ("token revoke &lt;!channel&gt;", "`&lt;!channel&gt;` is neither")],
)
async def test_bad_input_gets_a_short_answer(admin_app: RunningApp, fake_slack: FakeSlack, text: str,
                                             explains: str) -> None:
    shown = reply_text(await api(admin_app, fake_slack, text))
    assert explains in shown, shown
    assert "<!channel>" not in shown and "error id" not in shown
    assert await count(admin_app, ApiToken) == 0


async def test_fuzzed_text_never_gets_an_error_id(admin_app: RunningApp, fake_slack: FakeSlack) -> None:
    extra = ("token ", "token new ", "token list", "token revoke ", "scope=read ", "scope=write ", "as=", "as=@bob ",
             '"CRM sync" ', "cm_1_", "#1")
    for text in fuzzed_texts(25, extra=extra):
        shown = reply_text(await api(admin_app, fake_slack, text))
        assert "error id" not in shown and "<!channel>" not in shown, (text, shown)
