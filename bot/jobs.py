"""Bind the handlers' jobs to this process's queue: the wiring reaches down, handlers never reach up.

The jobs' environment gets the same queue they are bound to, so a job's follow-ups (a delayed re-send,
the owner's notice) are sent the one way everything else is: `Queue.enqueue`.
"""

from __future__ import annotations

from bot.broker import Queue
from bot.settings import Settings
from handlers.jobs import JobEnvironment, declare_jobs


def declare_jobs_on(queue: Queue, settings: Settings) -> None:
    queue.actors = declare_jobs(queue.broker, JobEnvironment(settings, queue=queue))
