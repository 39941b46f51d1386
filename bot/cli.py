"""The `campaign-manager` command: serve, worker, migrate, demo, slash."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

from aiohttp import web

from bot.logs import configure_logging, secrets_of
from bot.settings import ConfigError, Settings, load_settings

log = logging.getLogger("campaign_manager")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format, secrets=secrets_of(settings))
    try:
        return int(args.run(settings, args) or 0)
    except KeyboardInterrupt:
        return 130
    except UserFacingError as error:
        print(error, file=sys.stderr)
        return 2


class UserFacingError(Exception):
    """A CLI failure explained in one line (bad arguments, database not migrated)."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="campaign-manager", description="Run campaigns from Slack.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the HTTP server (Slack endpoint, health, dashboard)")
    serve.add_argument("--host", help="overrides HOST")
    serve.add_argument("--port", type=int, help="overrides PORT")
    serve.set_defaults(run=_serve)

    worker = commands.add_parser("worker", help="run Dramatiq workers (Redis mode)")
    worker.add_argument("--processes", type=int, default=1)
    worker.add_argument("--threads", type=int, default=8)
    worker.set_defaults(run=_worker)

    migrate = commands.add_parser("migrate", help="upgrade the database schema to the latest version")
    migrate.add_argument("--revision", default="head")
    migrate.set_defaults(run=_migrate)

    demo = commands.add_parser("demo", help="seed a sample team with campaigns, tasks and approvals")
    demo.add_argument("--if-empty", action="store_true", help="only when the database has no campaigns yet")
    demo.set_defaults(run=_demo)

    slash = commands.add_parser("slash", help='run a slash command locally: slash "/campaign list" --user U123')
    slash.add_argument("line", help='the command as typed in Slack, e.g. "/campaign show CM-1"')
    slash.add_argument("--user", default="ULOCALUSER", help="the Slack user id to act as")
    slash.add_argument("--channel", default="CLOCALCONSOLE", help="the channel id the command is sent from")
    slash.set_defaults(run=_slash)
    return parser


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    settings = settings.listening_on(host=args.host, port=args.port)
    return asyncio.run(_serve_async(settings))


async def _serve_async(settings: Settings) -> int:
    from bot.heap import freeze_startup_objects
    from bot.runtime import Runtime, StartupError

    runtime = Runtime(settings, run_worker=settings.embedded, run_sweeper=True)
    try:
        web_app = await runtime.start()
    except StartupError as error:
        await runtime.stop()
        raise UserFacingError(str(error)) from None
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.host, settings.port).start()
    freeze_startup_objects()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info(
        "serving on http://%s:%d (%s mode, %s, Slack %s)",
        settings.host, settings.port, "embedded" if settings.embedded else "redis",
        settings.database_url.split("://")[0],
        "socket mode" if settings.socket_mode else "HTTP at /slack/events" if settings.slack_enabled else "not configured",
    )
    if not settings.slack_enabled:
        log.info("no SLACK_BOT_TOKEN: try the bot locally with  campaign-manager slash \"/campaign list\"")
    await stop.wait()
    # Stop accepting and answer the requests already in (their acks), then let the work after each ack,
    # its reply included, and a sweep under way finish within the grace; the engine goes last.
    log.info("shutting down: finishing work in flight (up to %.0f s)", settings.shutdown_grace_seconds)
    await runner.cleanup()
    await runtime.stop()
    log.info("stopped")
    return 0


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    if settings.embedded:
        raise UserFacingError("REDIS_URL is not set: in embedded mode `campaign-manager serve` runs the worker itself.")
    from dramatiq.cli import main as dramatiq_main
    from dramatiq.cli import make_argument_parser

    # On SIGTERM Dramatiq stops taking messages and lets running jobs finish within this timeout.
    grace_ms = str(int(settings.shutdown_grace_seconds * 1000))
    worker_args = make_argument_parser().parse_args(
        ["bot.worker_boot", "--processes", str(args.processes), "--threads", str(args.threads),
         "--worker-shutdown-timeout", grace_ms]
    )
    return int(dramatiq_main(worker_args) or 0)


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    async def run() -> str | None:
        from models import migrate
        from models.db import create_engine

        engine = create_engine(settings.database_url)
        try:
            await migrate.upgrade(engine, args.revision)
            return await migrate.current_revision(engine)
        except OSError as error:
            raise UserFacingError(f"DATABASE_URL: cannot connect to the database ({error})") from None
        finally:
            await engine.dispose()

    print(f"database at revision {asyncio.run(run())}")
    return 0


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    async def run() -> str:
        from bot.runtime import load_templates
        from models import migrate
        from models.db import create_engine, create_session_factory
        from services.demo import DemoAlreadySeeded, seed_demo

        engine = create_engine(settings.database_url)
        try:
            if settings.is_sqlite:
                await migrate.upgrade(engine)
            async with create_session_factory(engine).begin() as db:
                counts = await seed_demo(db=db, library=load_templates(settings), now=datetime.now(UTC),
                                         if_empty=args.if_empty)
        except DemoAlreadySeeded as skipped:
            return f"{skipped}"
        finally:
            await engine.dispose()
        summary = ", ".join(f"{count} {what}" for what, count in counts.items())
        return f"seeded the demo workspace: {summary}. Try: campaign-manager slash \"/campaign list\""

    print(asyncio.run(run()))
    return 0


def _slash(settings: Settings, args: argparse.Namespace) -> int:
    from bot.console import run_slash
    from services.errors import InvalidInput

    try:
        replies = asyncio.run(run_slash(settings, args.line, user_id=args.user, channel_id=args.channel))
    except InvalidInput as error:
        raise UserFacingError(str(error)) from None
    if not replies:
        print("(no reply)")
    for reply in replies:
        print(f"--- {reply.visibility} ---")
        print(reply.text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
