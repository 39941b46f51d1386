"""The campaign template library: the built-in YAML files, a team's TEMPLATES_DIR, resolve(), durations."""

from __future__ import annotations

import math
import textwrap
from dataclasses import replace
from pathlib import Path

import networkx as nx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.errors import InvalidInput
from services.planning.templates import (
    BUILTIN_DIR,
    RULES,
    SKILLS,
    Template,
    TemplateDependency,
    TemplateLibrary,
    TemplateProblem,
    TemplateTask,
    load_library,
    parse_duration,
)

BUILTINS = ("product_launch", "newsletter", "webinar", "promo", "event")

VALID = """\
title: Flash sale
description: A 24-hour sale
aliases: [flash, 24h-sale]
buffer: 4h
tasks:
  - key: offer
    title: Pick the offer
    duration: 2h
    skill: strategy
  - key: email
    title: Email
    duration: 4h
    skill: email
    after: [{task: offer, lag: 1h}]
  - key: live
    title: Sale live
    milestone: true
    after: [email]
approvals:
  - name: Offer sign-off
    approver: marketing lead
    rule: any
    allowed: 1h
    after: offer
"""

UNKNOWN_DEPENDENCY = """\
title: Has a typo
tasks:
  - key: brief
    title: Brief
    duration: 1d
    skill: strategy
  - key: blog
    title: Blog post
    duration: 1d
    skill: copywriting
    after: [brif]
  - key: launch
    title: Launch
    milestone: true
    after: [blog]
"""

CYCLE = """\
title: Goes round
tasks:
  - key: launch
    title: Launch
    milestone: true
    after: [c]
  - key: a
    title: A
    duration: 1d
    after: [c]
  - key: b
    title: B
    duration: 1d
    after: [a]
  - key: c
    title: C
    duration: 1d
    after: [b]
"""


@pytest.fixture(scope="module")
def library() -> TemplateLibrary:
    return load_library()


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def graph(template: Template) -> nx.DiGraph:
    """Predecessor -> successor, weighted so that a path's weight is its length in hours."""
    durations = {task.key: task.duration_hours for task in template.tasks}
    g = nx.DiGraph()
    g.add_edges_from(("START", task.key, {"weight": task.duration_hours}) for task in template.tasks)
    for task in template.tasks:
        for dep in task.after:
            g.add_edge(dep.task, task.key, weight=dep.lag_hours + durations[task.key])
    return g


# The built-ins


def test_the_builtins_load_without_problems(library: TemplateLibrary) -> None:
    assert library.problems == []
    assert library.names() == sorted(BUILTINS)
    assert {path.stem for path in BUILTIN_DIR.glob("*.yaml")} == set(BUILTINS)


@pytest.mark.parametrize("name", BUILTINS)
def test_a_builtin_is_a_dag_that_ends_in_one_launch_milestone(library: TemplateLibrary, name: str) -> None:
    template = library.templates[name]
    g = graph(template)
    final = template.final_task()

    assert nx.is_directed_acyclic_graph(g)
    assert final.milestone and final.duration_hours == 0
    assert nx.ancestors(g, final.key) == {task.key for task in template.tasks} - {final.key} | {"START"}
    assert template.critical_hours() == pytest.approx(nx.dag_longest_path_length(g))


@pytest.mark.parametrize("name", BUILTINS)
def test_a_builtin_is_complete_and_consistent(library: TemplateLibrary, name: str) -> None:
    template = library.templates[name]
    keys = {task.key for task in template.tasks}

    assert template.name == name and template.title and template.description
    assert 8 <= len(template.tasks) <= 25
    assert template.buffer_hours > 0 and template.aliases
    for task in template.tasks:
        if task.milestone:
            assert task.duration_hours == 0, task.key
        else:
            assert task.duration_hours > 0 and task.skill in SKILLS, task.key
    assert template.approvals
    for stage in template.approvals:
        assert stage.rule in RULES and stage.allowed_hours > 0 and stage.after_task in keys
        # The tasks that wait for a sign-off leave at least the approvers' time as a lag.
        for task in template.tasks:
            for dep in task.after:
                if dep.task == stage.after_task:
                    assert dep.lag_hours >= stage.allowed_hours, (stage.name, task.key)


def test_the_builtins_use_only_the_builtin_skills(library: TemplateLibrary) -> None:
    used = {task.skill for template in library.templates.values() for task in template.tasks} - {None}

    assert used <= set(SKILLS), used - set(SKILLS)


def test_typical_lengths_are_plausible(library: TemplateLibrary) -> None:
    days = {name: library.templates[name].typical_length_days() for name in BUILTINS}

    assert min(days, key=days.__getitem__) == "newsletter"
    assert 2 <= days["newsletter"] <= 10
    for longest in ("product_launch", "event"):
        assert days[longest] > max(days["webinar"], days["promo"], days["newsletter"])
    assert max(days.values()) <= 60


def test_critical_hours_follow_durations_and_lags() -> None:
    def task(key: str, hours: float, *after: TemplateDependency) -> TemplateTask:
        return TemplateTask(key, key, hours, None, hours == 0, after)

    tasks = (
        task("a", 8),
        task("b", 4, TemplateDependency("a", 16)),
        task("c", 2, TemplateDependency("a")),
        task("end", 0, TemplateDependency("b"), TemplateDependency("c")),
    )
    template = Template("t", "T", "", 4, tasks, (), (), "t.yaml")

    assert template.critical_hours() == 28
    assert template.typical_length_days() == 4  # (28 + 4) / 8


# A team's TEMPLATES_DIR


def test_an_extra_template_is_added(tmp_path: Path) -> None:
    path = write(tmp_path, "flash_sale.yaml", VALID)

    library = load_library(tmp_path)

    assert library.problems == []
    assert library.names() == sorted([*BUILTINS, "flash_sale"])
    flash = library.resolve("Flash Sale")
    assert flash.source == str(path)
    assert flash.aliases == ("flash", "24h_sale")
    assert flash.tasks[1].after == (TemplateDependency("offer", 1.0),)
    assert flash.approvals[0].approver_role == "marketing lead" and flash.approvals[0].rule == "any"
    assert flash.critical_hours() == 7 and flash.typical_length_days() == 2
    assert library.resolve("24h-sale") is flash


def test_a_team_template_may_use_its_own_skill(tmp_path: Path) -> None:
    write(tmp_path, "flash_sale.yaml", VALID.replace("skill: strategy", "skill: seo"))

    library = load_library(tmp_path)

    assert library.problems == []
    assert "seo" not in SKILLS
    assert library.resolve("flash_sale").tasks[0].skill == "seo"


@pytest.mark.parametrize(
    ("written", "skill"),
    [("SEO", "seo"), ("'  Social \t Media '", "social media"), ("Paid-Search", "paid-search"),
     ("ab_test 2", "ab_test 2"), ("x" * 40, "x" * 40), ("3", "3"), ("Localisation", "localisation")],
)  # fmt: skip
def test_a_skill_is_kept_lower_case_with_single_spaces(tmp_path: Path, written: str, skill: str) -> None:
    write(tmp_path, "flash_sale.yaml", VALID.replace("skill: strategy", f"skill: {written}"))

    library = load_library(tmp_path)

    assert library.problems == []
    assert library.resolve("flash_sale").tasks[0].skill == skill


def test_a_task_made_in_code_normalises_its_skill_too() -> None:
    task = TemplateTask("a", "A", 1.0, "  Social   MEDIA ", False, ())

    assert task.skill == "social media"
    assert replace(task, skill=" SEO").skill == "seo"
    assert TemplateTask("a", "A", 1.0, "   ", False, ()).skill is None
    assert TemplateTask("a", "A", 1.0, None, False, ()).skill is None


def test_a_template_with_a_builtin_name_overrides_it(tmp_path: Path) -> None:
    path = write(tmp_path, "our_newsletter.yml", "name: newsletter\n" + VALID)

    library = load_library(tmp_path)

    assert library.problems == []
    assert library.names() == sorted(BUILTINS)
    assert library.templates["newsletter"].title == "Flash sale"
    assert library.resolve("newsletter").source == str(path)


def test_broken_files_are_reported_with_file_and_line_and_the_others_load(tmp_path: Path) -> None:
    write(tmp_path, "good.yaml", VALID)
    syntax = write(tmp_path, "syntax.yaml", "name: broken\ntitle: Broken: really\ntasks: []\n")
    typo = write(tmp_path, "typo.yaml", UNKNOWN_DEPENDENCY)
    loop = write(tmp_path, "loop.yaml", CYCLE)

    library = load_library(tmp_path)

    assert sorted(library.problems, key=str) == [
        TemplateProblem(str(loop), 7, "tasks[1] 'a': dependency cycle a -> b -> c -> a"),
        TemplateProblem(str(syntax), 2, "bad YAML: mapping values are not allowed here"),
        TemplateProblem(str(typo), 7, "tasks[1] 'blog': depends on unknown task 'brif'"),
    ]
    assert library.names() == sorted([*BUILTINS, "good"])
    assert f"{typo}:7: tasks[1] 'blog': depends on unknown task 'brif'" in map(str, library.problems)


def test_two_team_files_with_one_name_are_reported_and_the_last_wins(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "name: flash\n" + VALID)
    second = write(tmp_path, "b.yaml", "name: flash\n" + VALID.replace("Flash sale", "Second"))

    library = load_library(tmp_path)

    assert library.problems == [
        TemplateProblem(str(second), None, f"template 'flash' is also in {tmp_path / 'a.yaml'}; this file wins")
    ]
    assert library.resolve("flash").title == "Second"


def test_a_missing_folder_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    library = load_library(tmp_path / "nowhere")

    assert library.problems == [TemplateProblem(str(tmp_path / "nowhere"), None, "template folder not found")]
    assert str(library.problems[0]) == f"{tmp_path / 'nowhere'}: template folder not found"
    assert library.names() == sorted(BUILTINS)


LAUNCH = "  - key: launch\n    title: Launch\n    milestone: true\n    after: [a]\n"
TASK_A = "  - key: a\n    title: A\n    duration: 1d\n"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("", 1, "the file is empty"),
        ("- a list\n", 1, "expected a mapping of name, title, description"),
        ("title: T\n", 1, "missing field 'tasks'"),
        ("title: T\ntasks: []\n", 1, "tasks: the list is empty"),
        ("tasks:\n" + TASK_A + LAUNCH, 1, "missing field 'title'"),
        ("title: T\ncolour: red\ntasks:\n" + TASK_A + LAUNCH, 1, "unknown field 'colour'"),
        ("name: Not OK!\ntitle: T\ntasks:\n" + TASK_A + LAUNCH, 1, "name: 'not_ok!' should be letters"),
        ("title: T\nbuffer: soon\ntasks:\n" + TASK_A + LAUNCH, 1, "buffer: 'soon' is not a duration"),
        ("title: T\ntasks:\n  - key: a\n    title: A\n" + LAUNCH, 3, "tasks[0] 'a': missing field 'duration'"),
        ("title: T\ntasks:\n  - key: a\n    title: A\n    duration: 2x\n" + LAUNCH, 3,
         "tasks[0] 'a': duration: '2x' is not a duration (write it like 4h, 1.5d or 30m; 2d = two working days of 8 hours)"),
        ("title: T\ntasks:\n  - key: a\n    title: A\n    duration: -1d\n" + LAUNCH, 3, "'-1d' is negative"),
        ("title: T\ntasks:\n  - key: a\n    title: A\n    duration: 0\n" + LAUNCH, 3, "duration must be more than 0"),
        ("title: T\ntasks:\n" + TASK_A + "    skill: SEO!\n" + LAUNCH, 3,
         "tasks[0] 'a': skill: 'seo!' should be a short skill name: letters, digits, spaces, - or _ (at most 40)"),
        ("title: T\ntasks:\n" + TASK_A + "    skill: " + "x" * 41 + "\n" + LAUNCH, 3,
         "skill: '" + "x" * 39 + "…' should be a short skill name"),
        ("title: T\ntasks:\n" + TASK_A + "    skill: -seo\n" + LAUNCH, 3, "skill: '-seo' should be a short skill"),
        ("title: T\ntasks:\n" + TASK_A + "    skill: [seo]\n" + LAUNCH, 3, "skill: should be some text"),
        ("title: T\ntasks:\n" + TASK_A + "    duraton: 1d\n" + LAUNCH, 3, "tasks[0] 'a': unknown field 'duraton'"),
        ("title: T\ntasks:\n" + TASK_A + "    title: Again\n" + LAUNCH, 6, "bad YAML: duplicate key 'title'"),
        ("title: T\ntasks:\n" + TASK_A + TASK_A + LAUNCH, 6, "tasks[1] 'a': duplicate key (first used on line 3)"),
        ("title: T\ntasks:\n  - key: Big A\n    title: A\n    duration: 1d\n" + LAUNCH, 3,
         "key: 'Big A' should be lower-case letters, digits, _ or -"),
        ("title: T\ntasks:\n" + TASK_A + LAUNCH.replace("true", "true\n    duration: 1h"), 6,
         "tasks[1] 'launch': a milestone takes no time: its duration must be 0"),
        ("title: T\ntasks:\n" + TASK_A + "    after: [{task: a, lagg: 1d}]\n" + LAUNCH, 3, "should be a task key, or"),
        ("title: T\ntasks:\n" + TASK_A + "  - key: b\n    title: B\n    duration: 1h\n" + LAUNCH, 6,
         "tasks[1] 'b': leads nowhere: make 'launch' depend on it"),
        ("title: T\ntasks:\n" + TASK_A + "  - key: b\n    title: B\n    duration: 1h\n    after: [a]\n", 1,
         "the plan should end in one milestone"),
        ("title: T\ntasks:\n" + TASK_A + LAUNCH + "approvals:\n  - name: Sign-off\n    approver: legal\n"
         "    rule: most\n    allowed: 1d\n", 11, "approvals[0] 'Sign-off': rule: 'most' is not one of: all, any"),
        ("title: T\ntasks:\n" + TASK_A + LAUNCH + "approvals:\n  - name: Sign-off\n    approver: legal\n"
         "    allowed: 1d\n    after: brif\n", 11, "approvals[0] 'Sign-off': opens after unknown task 'brif'"),
        ("title: T\ntasks:\n" + TASK_A + LAUNCH + "approvals:\n  - name: Sign-off\n    allowed: 0\n", 11,
         "approvals[0] 'Sign-off': missing field 'approver'"),
        ("title: T\ntasks:\n" + TASK_A + LAUNCH + "approvals:\n  - approver: legal\n    allowed: 1d\n", 11,
         "approvals[0]: missing field 'name'"),
        ("title: T\ntasks:\n" + TASK_A + LAUNCH + "approvals:\n  - name: S\n    approver: legal\n    allowed: 1d\n"
         "  - name: S\n    approver: brand\n    allowed: 1d\n", 14, "approvals[1] 'S': duplicate stage name"),
        ("title: T\ntasks:\n" + TASK_A + "    after: [a]\n" + LAUNCH, 3, "dependency cycle a -> a"),
        ("title: T\ntasks: {a: 1}\n", 1, "tasks: should be a list"),
        ("title: T\ntasks:\n  - just a string\n", 1, "tasks[0]: expected a mapping of key, title"),
    ],
)
def test_each_kind_of_problem_names_the_line(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = write(tmp_path, "team.yaml", text)

    library = load_library(tmp_path)

    assert [problem.message for problem in library.problems if message in problem.message], library.problems
    problem = next(problem for problem in library.problems if message in problem.message)
    assert (problem.file, problem.line) == (str(path), line)
    assert "team" not in library.templates and library.names() == sorted(BUILTINS)


def test_the_name_defaults_to_the_file_name_and_a_team_may_take_an_alias(tmp_path: Path) -> None:
    write(tmp_path, "Flash-Sale.yaml", VALID.replace("[flash, 24h-sale]", "[sale, newsletter]"))

    library = load_library(tmp_path)

    assert library.problems == []
    assert library.resolve("sale").name == "flash_sale"
    assert library.templates["promo"].aliases == ("promotion", "discount")
    assert library.templates["flash_sale"].aliases == ("sale",)  # a name beats an alias
    assert library.resolve("newsletter").name == "newsletter"


# resolve()


@pytest.mark.parametrize(
    ("typed", "name"),
    [
        ("product_launch", "product_launch"),
        ("Product Launch", "product_launch"),
        ("product-launch", "product_launch"),
        ("LAUNCH", "product_launch"),
        ("  promo ", "promo"),
        ("Sale", "promo"),
        ("Newsletter", "newsletter"),
        ("webinar", "webinar"),
        ("Event", "event"),
    ],
)
def test_resolve_accepts_case_dashes_spaces_and_aliases(library: TemplateLibrary, typed: str, name: str) -> None:
    assert library.resolve(typed).name == name


@pytest.mark.parametrize("typed", ["nope", "", "launches", "promo!"])
def test_resolve_lists_the_options_for_an_unknown_name(library: TemplateLibrary, typed: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        library.resolve(typed)

    assert str(caught.value) == (
        f"There is no template called `{typed}`. "
        "Pick one of: `event`, `newsletter`, `product_launch`, `promo`, `webinar`."
    )


# parse_duration()


@pytest.mark.parametrize(
    ("text", "hours"),
    [
        ("4h", 4), ("2d", 16), ("1.5d", 12), ("30m", 0.5), ("1w", 40), (".5h", 0.5), ("2.", 2),
        ("4", 4), (4, 4), (2.5, 2.5), (0, 0), ("0", 0), (" 2 D ", 16), ("3 days", 24), ("90 min", 1.5),
        ("1 hour", 1), ("2hrs", 2),
    ],
)  # fmt: skip
def test_parse_duration(text: str | int | float, hours: float) -> None:
    assert parse_duration(text) == pytest.approx(hours)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "'' is not a duration (write it like 4h, 1.5d or 30m; 2d = two working days of 8 hours)"),
        ("soon", "'soon' is not a duration"), ("2x", "'2x' is not a duration"), ("1e3h", "is not a duration"),
        ("4 h 30 m", "is not a duration"), ("nan", "is not a duration"), (True, "True is not a duration"),
        (None, "None is not a duration"), (float("nan"), "is not a duration"), ("-2d", "'-2d' is negative"),
        (-1, "-1 is negative"), ("- 4h", "is negative"), (float("inf"), "inf is too long"),
        ("9" * 400 + "d", "is too long"), (10**400, "is too long"), ("x" * 100, "'xxxxxxxxx"),
    ],
)  # fmt: skip
def test_parse_duration_refuses_what_is_not_a_duration(text: object, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_duration(text)  # type: ignore[arg-type]

    assert message in str(caught.value)
    assert len(str(caught.value)) < 120


@given(st.one_of(st.text(), st.integers(), st.floats(), st.booleans(), st.none()))
def test_parse_duration_raises_only_value_error(text: object) -> None:
    try:
        hours = parse_duration(text)  # type: ignore[arg-type]
    except ValueError:
        return
    assert math.isfinite(hours) and hours >= 0


@given(st.integers(0, 10_000), st.sampled_from([("m", 1 / 60), ("h", 1), ("d", 8), ("w", 40), ("", 1)]))
def test_parse_duration_scales_by_unit(amount: int, unit: tuple[str, float]) -> None:
    assert parse_duration(f"{amount}{unit[0]}") == pytest.approx(amount * unit[1])
