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

from services.content_checks import ContentRules
from services.durations import HOURS_PER_DAY, WORKING_TIME, hours_of
from services.errors import InvalidInput
from services.planning.cycles import topological_order

BUILTIN_DIR = Path(__file__).with_name("templates")
# The built-in vocabulary: the built-in templates use only these. A team's templates may name others.
SKILLS = ("strategy", "positioning", "copywriting", "design", "video", "email", "web", "ads", "analytics",
          "social", "pr", "events", "legal", "approvals")  # fmt: skip
RULES = ("all", "any")
ANY_DELIVERABLE = "any"  # `deliverable: true`: an asset of any kind


def parse_duration(text: str | int | float) -> float:
    """Working hours in a duration: ``4h`` -> 4, ``2d`` -> 16, ``1.5d`` -> 12, ``30m`` -> 0.5, ``1w`` -> 40.

    Bare numbers are hours. Raises ValueError (a DurationError), with a message meant for people, on
    anything else. The grammar and the working day live in ``services.durations``.
    """
    return hours_of(text, WORKING_TIME)


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
    # The task hands over an asset (`deliverable: true`, or the kind: `deliverable: email`): finishing it
    # with none tied to it asks first (`services.assets.missing_deliverable`).
    deliverable: str | None = None  # ANY_DELIVERABLE or a kind

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
    content_checks: ContentRules = ContentRules()  # `content_checks:` in the YAML; the defaults without it

    def content_snapshot(self) -> dict[str, object]:
        """The content rules and the deliverables, as a new campaign keeps them (`Timeline.content_rules`)."""
        deliverables = {task.key: task.deliverable for task in self.tasks if task.deliverable}
        return {**self.content_checks.to_stored(), "deliverables": deliverables}

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


def _topological(tasks: Iterable[TemplateTask]) -> list[TemplateTask]:
    """Tasks, each after its dependencies (unknown ones are ignored); CycleError if there is a loop.

    The loop is named by task keys, starting from the one that comes first in the file.
    """
    by_key = {task.key: task for task in tasks}
    edges = [(dep.task, task.key) for task in by_key.values() for dep in task.after if dep.task in by_key]
    return [by_key[key] for key in topological_order(by_key, edges)]
