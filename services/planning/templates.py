"""Campaign templates: YAML data files, read into frozen dataclasses.

The built-ins live in the ``templates/`` folder next to this module; a team's TEMPLATES_DIR adds
templates or overrides built-ins of the same name. A broken file becomes a ``TemplateProblem`` (file,
line, what is wrong) and never stops the other files loading. ``templates/product_launch.yaml`` shows
the format; durations read like ``4h``, ``2d`` or ``1.5d``, with a working day of 8 hours. A task's
skill is any short name (a team's own, like ``seo``, too), kept lower-case with single spaces; the
built-ins use only ``SKILLS``. The checks that turn a file into a ``Template`` are in
``template_checks``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from services.errors import InvalidInput

BUILTIN_DIR = Path(__file__).with_name("templates")
HOURS_PER_DAY = 8.0
# The built-in vocabulary: the built-in templates use only these. A team's templates may name others.
SKILLS = ("strategy", "positioning", "copywriting", "design", "video", "email", "web", "ads", "analytics",
          "social", "pr", "events", "legal", "approvals")  # fmt: skip
RULES = ("all", "any")

_UNITS = {"": 1.0, "m": 1 / 60, "h": 1.0, "d": HOURS_PER_DAY, "w": 5 * HOURS_PER_DAY}
_UNIT_WORDS = {"min": "m", "mins": "m", "minute": "m", "minutes": "m", "hr": "h", "hrs": "h", "hour": "h",
               "hours": "h", "day": "d", "days": "d", "wk": "w", "week": "w", "weeks": "w"}  # fmt: skip
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([a-z]*)")


def parse_duration(text: str | int | float) -> float:
    """Hours in a duration: ``4h`` -> 4, ``2d`` -> 16, ``1.5d`` -> 12, ``30m`` -> 0.5, ``1w`` -> 40.

    Bare numbers are hours. Raises ValueError, with a message meant for people, on anything else.
    """
    huge = isinstance(text, int) and abs(text) > 10**12  # repr() of a 5,000-digit int raises
    shown = "that number" if huge else repr(text) if len(repr(text)) <= 32 else repr(text)[:30] + "…"
    hours, negative = math.nan, False
    if isinstance(text, str):
        cleaned = text.strip().lower()
        negative = cleaned.startswith("-")
        match = _DURATION.fullmatch(cleaned.removeprefix("-").lstrip())
        unit = _UNIT_WORDS.get(match.group(2), match.group(2)) if match else ""
        hours = float(match.group(1)) * _UNITS[unit] if match and unit in _UNITS else math.nan
    elif isinstance(text, int | float) and not isinstance(text, bool):
        try:
            hours = float(text)
        except OverflowError:  # an int beyond float
            hours = math.inf if text > 0 else -math.inf
    if math.isnan(hours):
        raise ValueError(f"{shown} is not a duration (write it like 4h, 2d, 1.5d or 30m)")
    if negative or hours < 0:
        raise ValueError(f"{shown} is negative")
    if math.isinf(hours):
        raise ValueError(f"{shown} is too long")
    return hours + 0.0  # no -0.0


def normalize_name(name: str) -> str:
    """How names and aliases compare: ``Product-Launch`` and ``product launch`` are ``product_launch``."""
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def normalize_skill(skill: str) -> str:
    """How skills compare, the way people's skills are stored: `` Social  Media`` is ``social media``."""
    return " ".join(skill.lower().split())


@dataclass(frozen=True)
class TemplateDependency:
    """Finish-to-start: the task starts ``lag_hours`` after ``task`` finishes."""

    task: str
    lag_hours: float = 0.0


@dataclass(frozen=True)
class TemplateTask:
    key: str
    title: str
    duration_hours: float
    skill: str | None  # normalize_skill()'d, so lower-case with single spaces; None = anyone
    milestone: bool
    after: tuple[TemplateDependency, ...]
    description: str | None = None

    def __post_init__(self) -> None:
        if self.skill is not None:  # however the task was made, matching can rely on the normal form
            object.__setattr__(self, "skill", normalize_skill(self.skill) or None)


@dataclass(frozen=True)
class ApprovalStage:
    """Opens when ``after_task`` finishes; ``all`` or ``any`` of the approvers sign off within the time."""

    name: str
    approver_role: str
    rule: str
    allowed_hours: float
    after_task: str | None


@dataclass(frozen=True)
class Template:
    name: str
    title: str
    description: str
    buffer_hours: float
    tasks: tuple[TemplateTask, ...]
    approvals: tuple[ApprovalStage, ...]
    aliases: tuple[str, ...]
    source: str

    def critical_hours(self) -> float:
        """The longest chain of durations and lags, in working hours."""
        finish: dict[str, float] = {}
        for task in _topological(self.tasks):
            start = max((finish.get(dep.task, 0.0) + dep.lag_hours for dep in task.after), default=0.0)
            finish[task.key] = start + task.duration_hours
        return max(finish.values(), default=0.0)

    def typical_length_days(self) -> int:
        """Working days from kick-off to the final milestone, buffer included, rounded up."""
        return math.ceil(round((self.critical_hours() + self.buffer_hours) / HOURS_PER_DAY, 6))

    def final_task(self) -> TemplateTask:
        """The milestone every task leads to (in a template that loaded without problems)."""
        has_successor = {dep.task for task in self.tasks for dep in task.after}
        return [task for task in self.tasks if task.key not in has_successor][-1]


@dataclass(frozen=True)
class TemplateProblem:
    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}" if self.line else f"{self.file}: {self.message}"


@dataclass
class TemplateLibrary:
    templates: dict[str, Template] = field(default_factory=dict)
    problems: list[TemplateProblem] = field(default_factory=list)

    def resolve(self, name: str) -> Template:
        """The template called ``name``, or aliased so; raises InvalidInput listing the names."""
        key = normalize_name(name)
        if key in self.templates:
            return self.templates[key]
        for template in self.templates.values():
            if key in template.aliases:
                return template
        shown = name if len(name) <= 40 else name[:39] + "…"
        options = ", ".join(f"`{known}`" for known in self.names())
        raise InvalidInput(f"There is no template called `{shown}`. Pick one of: {options}.")

    def names(self) -> list[str]:
        return sorted(self.templates)


def load_library(extra_dir: Path | None = None) -> TemplateLibrary:
    """The built-ins, then every ``*.yaml``/``*.yml`` in ``extra_dir``: same name overrides, new adds.

    Names beat aliases, and an alias claimed twice goes to the template loaded last.
    """
    library, loaded = TemplateLibrary(), list[Template]()
    for folder in [BUILTIN_DIR] if extra_dir is None else [BUILTIN_DIR, Path(extra_dir)]:
        if not folder.is_dir():
            missing = "template folder not found" if not folder.exists() else "not a folder"
            library.problems.append(TemplateProblem(str(folder), None, missing))
            continue
        here: dict[str, str] = {}
        for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
            template, problems = read_template(path)
            library.problems.extend(problems)
            if template is None:
                continue
            if template.name in here:
                clash = f"template '{template.name}' is also in {here[template.name]}; this file wins"
                library.problems.append(TemplateProblem(str(path), None, clash))
            here[template.name] = str(path)
            library.templates[template.name] = template
            loaded.append(template)
    owner = {alias: t.name for t in loaded if library.templates[t.name] is t for alias in t.aliases}
    for name, template in library.templates.items():
        kept = tuple(a for a in template.aliases if owner.get(a) == name and a not in library.templates)
        library.templates[name] = replace(template, aliases=kept)
    return library


def read_template(path: Path) -> tuple[Template | None, list[TemplateProblem]]:
    """One file: the template, or None; and what is wrong with it."""
    from services.planning.template_checks import _Checker, _LineLoader  # it imports this module

    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_LineLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else None
        return None, [TemplateProblem(str(path), line, f"bad YAML: {error.problem or error.context}")]
    except (yaml.YAMLError, OSError, UnicodeDecodeError, RecursionError) as error:
        return None, [TemplateProblem(str(path), None, f"can't read the file: {error}")]
    checker = _Checker(str(path))
    return checker.template(data, path.stem), checker.problems


class CycleError(ValueError):
    """Tasks that wait on one another; ``keys`` runs round the loop, e.g. ``[a, b, a]``."""

    def __init__(self, keys: list[str]) -> None:
        super().__init__("dependency cycle " + " -> ".join(keys))
        self.keys = keys


def _topological(tasks: Iterable[TemplateTask]) -> list[TemplateTask]:
    """Tasks, each after its dependencies (unknown ones are ignored); CycleError if there is a loop."""
    pending = {task.key: task for task in tasks}
    ordered: list[TemplateTask] = []
    while pending:
        ready = [t for t in pending.values() if not any(dep.task in pending for dep in t.after)]
        if not ready:  # every pending task waits on another: walk back until a task repeats
            path = [next(iter(pending))]
            while path.count(path[-1]) < 2:
                path.append(next(dep.task for dep in pending[path[-1]].after if dep.task in pending))
            loop = path[path.index(path[-1]) : -1][::-1]  # predecessors first
            start = min(range(len(loop)), key=lambda i: list(pending).index(loop[i]))  # first in file
            raise CycleError([*loop[start:], *loop[:start], loop[start]])
        ordered += [pending.pop(task.key) for task in ready]
    return ordered
