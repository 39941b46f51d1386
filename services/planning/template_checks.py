"""Checking template files: the YAML loader that records lines, and the checks that build a ``Template``.

``templates.read_template`` loads a file with ``_LineLoader`` (every mapping remembers its line under
``__line__``; a duplicate key is a YAML error) and hands the data to ``_Checker``, which reports each
problem against the line of its task, stage or template and builds the frozen dataclasses only when
the file has none.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Iterable
from typing import Any

import yaml

from services.content_checks import normalize_kind, parse_rules, valid_kind
from services.planning.cycles import CycleError
from services.planning.templates import (
    ANY_DELIVERABLE,
    RULES,
    ApprovalStage,
    Template,
    TemplateDependency,
    TemplateProblem,
    TemplateTask,
    _topological,
    normalize_name,
    normalize_skill,
    parse_duration,
)

_LINE = "__line__"


class _LineLoader(yaml.SafeLoader):
    """Records the line of every mapping under ``__line__`` and refuses duplicate keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value in seen:
                message = f"duplicate key '{key_node.value}'"
                raise yaml.constructor.ConstructorError(None, None, message, key_node.start_mark)
            seen.add(getattr(key_node, "value", None))
        mapping = super().construct_mapping(node, deep=deep)
        mapping[_LINE] = node.start_mark.line + 1
        return mapping


def _strip(mapping: dict[Any, Any]) -> tuple[dict[Any, Any], int | None]:
    return {k: v for k, v in mapping.items() if k != _LINE}, mapping.get(_LINE)


def _text(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float) or not str(value).strip():
        raise ValueError("should be some text")
    return str(value).strip()


def _one_of(options: Iterable[str]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if isinstance(value, str) and value in options:
            return value
        raise ValueError(f"{value!r} is not one of: {', '.join(options)}")

    return check


def _shaped(pattern: str, hint: str, normalize: Callable[[str], str] = str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        text = normalize(_text(value))
        if not re.fullmatch(pattern, text):
            shown = text if len(text) <= 40 else text[:39] + "…"
            raise ValueError(f"'{shown}' should be {hint}")
        return text

    return check


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("should be true or false")
    return value


def _deliverable(value: Any) -> str | None:
    """`true` (any kind of asset), `false`, or a kind (`email`)."""
    if isinstance(value, bool):
        return ANY_DELIVERABLE if value else None
    kind = normalize_kind(value) if isinstance(value, str) else ""
    if not valid_kind(kind) or kind == ANY_DELIVERABLE:
        raise ValueError("should be true, false, or a kind of asset (a short lower-case word, like email)")
    return kind


def _plain(value: Any) -> Any:
    """Data without the loader's line marks, all the way down (what `parse_rules` reads)."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items() if key != _LINE}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError("should be a list")
    return value


def _names(value: Any) -> tuple[str, ...]:
    names = [value] if isinstance(value, str) else _list(value)
    if not all(isinstance(name, str) for name in names):
        raise ValueError("should be a list of names")
    return tuple(dict.fromkeys(normalize_name(name) for name in names))


def _after(value: Any) -> tuple[TemplateDependency, ...]:
    deps: list[TemplateDependency] = []
    for item in [value] if isinstance(value, str | dict) else _list(value):
        body = _strip(item)[0] if isinstance(item, dict) else {"task": item}
        if set(body) - {"task", "lag"} or not isinstance(body.get("task"), str):
            shown = body if isinstance(item, dict) else item
            raise ValueError(f"{shown!r} should be a task key, or {{task: key, lag: 2d}}")
        if body["task"] in [dep.task for dep in deps]:
            raise ValueError(f"'{body['task']}' is listed twice")
        deps.append(TemplateDependency(body["task"], parse_duration(body.get("lag", 0))))
    return tuple(deps)


_REQUIRED = object()
_Spec = dict[str, tuple[Callable[[Any], Any], Any]]  # field -> (check, default or _REQUIRED)
_NAME = _shaped(r"[a-z][a-z0-9_]*", "letters, digits and _, starting with a letter", normalize_name)
_SKILL_HINT = "a short skill name: letters, digits, spaces, - or _ (at most 40)"
_SKILL = _shaped(r"[a-z0-9][a-z0-9 _-]{0,39}", _SKILL_HINT, normalize_skill)
_TEMPLATE: _Spec = {"name": (_NAME, None),
                    "title": (_text, _REQUIRED), "description": (_text, ""), "aliases": (_names, ()),
                    "buffer": (parse_duration, 0.0), "tasks": (_list, _REQUIRED), "approvals": (_list, []),
                    "content_checks": (_plain, None)}  # fmt: skip
_TASK: _Spec = {"key": (_shaped(r"[a-z0-9][a-z0-9_-]*", "lower-case letters, digits, _ or -"), _REQUIRED),
                "title": (_text, _REQUIRED), "description": (_text, None), "duration": (parse_duration, None),
                "skill": (_SKILL, None), "milestone": (_flag, False), "after": (_after, ()),
                "deliverable": (_deliverable, None)}  # fmt: skip
_STAGE: _Spec = {"name": (_text, _REQUIRED), "approver": (_text, _REQUIRED), "rule": (_one_of(RULES), "all"),
                 "allowed": (parse_duration, _REQUIRED), "after": (_text, None)}  # fmt: skip


class _Checker:
    """Checks one file's data; every problem points at the line of its task, stage or template."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[TemplateProblem] = []
        self.where: dict[str, tuple[str, int | None]] = {}  # task key -> (label, line)
        self.stages: set[str] = set()

    def report(self, line: int | None, message: str) -> None:
        self.problems.append(TemplateProblem(self.file, line, message))

    def fields(self, data: Any, spec: _Spec, line: int | None, label: str) -> tuple[dict[str, Any], int | None]:
        """The values of ``spec``'s fields, defaults filled in; a problem for each bad or unknown one."""
        if not isinstance(data, dict):
            self.report(line, f"{label}expected a mapping of {', '.join(spec)}")
            return {}, line
        body, line = _strip(data)
        values: dict[str, Any] = {}
        for name in sorted(str(key) for key in body.keys() - spec.keys()):
            self.report(line, f"{label}unknown field '{name}' (known: {', '.join(spec)})")
        for name, (check, default) in spec.items():
            if body.get(name) is None:
                values[name] = None if default is _REQUIRED else default
                if default is _REQUIRED:
                    self.report(line, f"{label}missing field '{name}'")
                continue
            try:
                values[name] = check(body[name])
            except ValueError as error:
                self.report(line, f"{label}{name}: {error}")
        return values, line

    def template(self, data: Any, stem: str) -> Template | None:
        if data is None:
            self.report(1, "the file is empty")
            return None
        values, line = self.fields(data, _TEMPLATE, 1, "")
        name = values.get("name")
        if name is None and "name" in values:  # no name field: the file's stem
            try:
                name = _NAME(stem)
            except ValueError as error:
                self.report(line, f"no name field, and the file name {error}")
        tasks = tuple(self.task(i, item, line) for i, item in enumerate(values.get("tasks") or []))
        stages = tuple(self.stage(i, item, line) for i, item in enumerate(values.get("approvals") or []))
        if values.get("tasks") == []:
            self.report(line, "tasks: the list is empty")
        real_tasks = tuple(task for task in tasks if task is not None)
        self.graph(real_tasks, line)
        real_stages = tuple(stage for stage in stages if stage is not None)
        checks, problems = parse_rules(values.get("content_checks"), [stage.name for stage in real_stages])
        for problem in problems:
            self.report(self.content_line(data, line), problem)
        if self.problems or name is None:
            return None
        aliases = tuple(alias for alias in values["aliases"] if alias != name)
        return Template(name, values["title"], values["description"], values["buffer"], real_tasks,
                        real_stages, aliases, self.file, checks)  # fmt: skip

    @staticmethod
    def content_line(data: Any, fallback: int | None) -> int | None:
        block = data.get("content_checks") if isinstance(data, dict) else None
        return block.get(_LINE, fallback) if isinstance(block, dict) else fallback

    def task(self, index: int, data: Any, parent_line: int | None) -> TemplateTask | None:
        key = data.get("key") if isinstance(data, dict) else None
        label = f"tasks[{index}] '{key}': " if isinstance(key, str) else f"tasks[{index}]: "
        count = len(self.problems)
        values, line = self.fields(data, _TASK, parent_line, label)
        if isinstance(key, str) and key in self.where:
            self.report(line, f"{label}duplicate key (first used on line {self.where[key][1]})")
        elif isinstance(key, str):
            self.where[key] = (label, line)
        duration, milestone = values.get("duration"), values.get("milestone")
        if milestone and duration:
            self.report(line, f"{label}a milestone takes no time: its duration must be 0")
        elif milestone is False and not duration:
            missing = "missing field 'duration'" if duration is None else "duration must be more than 0"
            self.report(line, f"{label}{missing} (only milestones take no time)")
        if len(self.problems) > count:
            return None
        return TemplateTask(str(key), values["title"], duration or 0.0, values["skill"], bool(milestone),
                            values["after"], values["description"], values["deliverable"])  # fmt: skip

    def stage(self, index: int, data: Any, parent_line: int | None) -> ApprovalStage | None:
        name = data.get("name") if isinstance(data, dict) else None
        label = f"approvals[{index}] '{name}': " if isinstance(name, str) else f"approvals[{index}]: "
        count = len(self.problems)
        values, line = self.fields(data, _STAGE, parent_line, label)
        if values.get("allowed") == 0:
            self.report(line, f"{label}allowed must be more than 0")
        if values.get("after") is not None and values["after"] not in self.where:
            self.report(line, f"{label}opens after unknown task '{values['after']}'")
        if values.get("name") in self.stages:
            self.report(line, f"{label}duplicate stage name")
        self.stages.add(values.get("name") or "")
        if len(self.problems) > count:
            return None
        return ApprovalStage(values["name"], values["approver"], values["rule"], values["allowed"], values["after"])

    def graph(self, tasks: tuple[TemplateTask, ...], line: int | None) -> None:
        """Known dependencies, no cycle, and one final milestone that every task leads to."""
        for task in tasks:
            for dep in task.after:
                if dep.task not in self.where:
                    label, task_line = self.where[task.key]
                    self.report(task_line, f"{label}depends on unknown task '{dep.task}'")
        if self.problems:
            return
        try:
            _topological(tasks)
        except CycleError as error:
            label, task_line = self.where[error.cycle[0]]
            self.report(task_line, f"{label}{error}")
            return
        has_successor = {dep.task for task in tasks for dep in task.after}
        ends = [task for task in tasks if task.key not in has_successor]
        final = next((task for task in reversed(ends) if task.milestone), None)
        if final is None:
            self.report(line, "the plan should end in one milestone (e.g. Launch) that every task leads to")
            return
        for task in ends:
            if task is not final:
                label, task_line = self.where[task.key]
                self.report(task_line, f"{label}leads nowhere: make '{final.key}' depend on it")
