"""Deploys: SIGTERM stops taking work, lets the work already acknowledged finish and reply, then exits.

Slack never retries a slash command, so a reply dropped at shutdown is lost for good.
"""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import aiohttp

from bot.sweeper import Sweeper
from handlers.deps import Deps
from models.db import create_engine, create_session_factory
from tests.conftest import BOT_TOKEN, SIGNING_SECRET, app_settings
from tests.fake_slack import FakeSlack
from tests.held_database import database_held
from tests.slack_requests import SlackSender
from tests.test_cli import CLI, _wait_until_up, cli_env, free_port

IN_FLIGHT = 5


class LogWatcher:
    """Reads a process's JSON log lines as they come, so a test can wait for one."""

    def __init__(self, stream: asyncio.StreamReader):
        self.lines: list[str] = []
        self._changed = asyncio.Condition()
        self._task = asyncio.create_task(self._read(stream))

    async def _read(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            async with self._changed:
                self.lines.append(line.decode(errors="replace"))
                self._changed.notify_all()
        async with self._changed:
            self.lines.append("")  # end of output: the process is gone
            self._changed.notify_all()

    def _message(self, line: str) -> str:
        try:
            return str(json.loads(line).get("message", ""))
        except ValueError:
            return line

    async def wait_for(self, *fragments: str, seconds: float = 30) -> str:
        """The first line whose message holds one of `fragments`, or "" when the process ended first."""
        def found() -> str | None:
            for line in self.lines:
                if line == "" or any(fragment in self._message(line) for fragment in fragments):
                    return line
            return None

        try:
            async with asyncio.timeout(seconds), self._changed:
                await self._changed.wait_for(lambda: found() is not None)
        except TimeoutError:
            raise AssertionError(f"no log line with {fragments} within {seconds} s:\n{''.join(self.lines)}") from None
        return found() or ""

    async def finished(self) -> str:
        await self._task
        return "".join(self.lines)


async def test_sigterm_lets_acknowledged_commands_reply_before_serve_exits(tmp_path: Path, fake_slack: FakeSlack) -> None:
    port = free_port()
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'serve.db'}"
    env = cli_env(
        DATABASE_URL=db_url, HOST="127.0.0.1", PORT=str(port), SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=fake_slack.base_url, LOG_FORMAT="json",
        SHUTDOWN_GRACE_SECONDS="60",
    )
    process = await asyncio.create_subprocess_exec(CLI, "serve", env=env, cwd=tmp_path, stderr=asyncio.subprocess.PIPE)
    assert process.stderr is not None
    log = LogWatcher(process.stderr)
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            await _wait_until_up(http, f"{base}/health", process)
            sender = SlackSender(session=http, url=f"{base}/slack/events", secret=SIGNING_SECRET, fake=fake_slack)
            async with database_held(db_url):  # the work after each ack waits here until SIGTERM is being handled
                statuses = await asyncio.gather(*(sender.command("/campaign", "list") for _ in range(IN_FLIGHT)))
                assert [status for status, _ in statuses] == [200] * IN_FLIGHT  # acknowledged: a reply is owed
                process.send_signal(signal.SIGTERM)
                # Today's code would exit here, dropping the work; ours says it waits for it.
                seen = await log.wait_for("listener(s) to finish")
                assert seen, "serve exited without waiting for the acknowledged work"
            replies = await fake_slack.wait_for("response_url", count=IN_FLIGHT)
            assert "error id" not in repr(replies.args)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 60)
    output = await log.finished()
    assert process.returncode == 0, output
    assert "Traceback" not in output and "cancelled" not in output
    assert len(fake_slack.calls_to("response_url")) == IN_FLIGHT


class HandOutHeld(Sweeper):
    """A sweeper whose hand-out to the queue waits until the test lets it go."""

    def __init__(self, deps: Deps):
        super().__init__(deps, interval_seconds=3600)
        self.handing_out, self.let_go = asyncio.Event(), asyncio.Event()
        self.handed_out = False

    async def _dispatch(self, notification_ids: object) -> None:  # type: ignore[override]
        self.handing_out.set()
        await self.let_go.wait()
        self.handed_out = True


async def test_stopping_the_sweeper_lets_a_sweep_under_way_finish(db_url: str, fake_slack: FakeSlack) -> None:
    engine = create_engine(db_url)
    try:
        deps = Deps(settings=app_settings(db_url, fake_slack), engine=engine, sessions=create_session_factory(engine))
        sweeper = HandOutHeld(deps)
        sweeper.start()
        await sweeper.handing_out.wait()  # committed, handing out
        stopping = asyncio.create_task(sweeper.stop())
        await asyncio.sleep(0)  # one turn: stop() has begun (today's code cancels the sweep right here)
        sweeper.let_go.set()
        await asyncio.wait_for(stopping, 30)
        assert sweeper.handed_out
    finally:
        await engine.dispose()


async def test_stopping_an_idle_sweeper_does_not_wait_for_the_interval(db_url: str, fake_slack: FakeSlack) -> None:
    engine = create_engine(db_url)
    try:
        deps = Deps(settings=app_settings(db_url, fake_slack), engine=engine, sessions=create_session_factory(engine))
        sweeper = HandOutHeld(deps)
        sweeper.let_go.set()
        sweeper.start()
        await sweeper.handing_out.wait()
        await asyncio.wait_for(sweeper.stop(grace_seconds=3600), 30)  # asleep for an hour: woken, not waited for
    finally:
        await engine.dispose()
