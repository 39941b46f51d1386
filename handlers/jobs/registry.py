"""Job declarations that do not bind to a broker at import time.

Dramatiq's `@actor` binds to whatever broker is global when the module is imported, which ties import
order to start-up order and allows one broker per process. Here a job is recorded with `@job` and bound
to a broker explicitly by `declare_jobs`, which also hands every job its environment.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any

import dramatiq

from handlers.jobs.environment import JobEnvironment

JobFunction = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class JobSpec:
    name: str
    fn: JobFunction
    options: dict[str, Any] = field(default_factory=dict)


JOBS: dict[str, JobSpec] = {}


def job(name: str, **options: Any) -> Callable[[JobFunction], JobFunction]:
    """Record an async job `fn(env, **kwargs)` under `name` ("<domain>.<verb>") with Dramatiq options."""

    def record(fn: JobFunction) -> JobFunction:
        if name in JOBS:
            raise ValueError(f"job {name} is declared twice")
        JOBS[name] = JobSpec(name=name, fn=fn, options=options)
        return fn

    return record


def declare_jobs(broker: dramatiq.Broker, env: JobEnvironment) -> dict[str, dramatiq.Actor[Any, Any]]:
    actors = {}
    for spec in JOBS.values():
        declare = dramatiq.actor(actor_name=spec.name, broker=broker, **spec.options)
        actors[spec.name] = declare(_bind(spec.fn, env))
    broker.add_middleware(env.middleware())
    return actors


def _bind(fn: JobFunction, env: JobEnvironment) -> JobFunction:
    @wraps(fn)
    async def run(**kwargs: Any) -> Any:
        return await fn(env, **kwargs)

    return run
