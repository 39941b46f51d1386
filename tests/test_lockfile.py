"""The lock files agree with pyproject.toml.

`make test` and CI install from requirements-dev.lock and the image from requirements.lock, not from
pyproject.toml: a dependency added, dropped or re-bounded there without `make lock` would leave the
tests and the image on a tree nobody declared. These checks say which package and what to run.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "campaign-manager"
REGENERATE = "run `make lock` and commit the lock files with pyproject.toml"


@dataclass(frozen=True)
class Pin:
    name: str
    version: Version
    marker: str  # "" when the pin holds everywhere
    hashes: frozenset[str]
    direct: bool  # the lock says pyproject.toml itself asks for it ("via campaign-manager")

    def applies_here(self) -> bool:
        """Whether pip installs this pin on the running interpreter (a lock may fork by Python version)."""
        return not self.marker or Marker(self.marker).evaluate()


def parse_lock(text: str) -> list[Pin]:
    """The pins of a `uv pip compile --generate-hashes` file: one entry per requirement, with its hashes
    and its `# via` annotation (which may follow on the same line or as an indented list)."""
    entries: list[tuple[str, list[str]]] = []  # (requirement with its continuation lines, its comments)
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if not line[0].isspace() and not stripped.startswith("#"):
            entries.append((stripped, []))
        elif entries and stripped.startswith("--hash="):
            entries[-1] = (entries[-1][0] + " " + stripped, entries[-1][1])
        elif entries and stripped.startswith("#"):
            entries[-1][1].append(stripped)
    pins = []
    for logical, comments in entries:
        words = logical.replace("\\", " ").split()
        hashes = frozenset(word.removeprefix("--hash=") for word in words if word.startswith("--hash="))
        requirement = Requirement(" ".join(word for word in words if not word.startswith("--hash=")))
        specifiers = list(requirement.specifier)
        assert len(specifiers) == 1 and specifiers[0].operator == "==", f"not an exact pin: {logical[:80]}"
        pins.append(
            Pin(
                name=canonicalize_name(requirement.name),
                version=Version(specifiers[0].version),
                marker=str(requirement.marker) if requirement.marker else "",
                hashes=hashes,
                direct=any(f"{PROJECT} (pyproject.toml)" in comment for comment in comments),
            )
        )
    return pins


def declared(pyproject: str) -> tuple[list[Requirement], list[Requirement]]:
    """pyproject's direct runtime and dev dependencies."""
    project = tomllib.loads(pyproject)["project"]
    runtime = [Requirement(line) for line in project["dependencies"]]
    dev = [Requirement(line) for line in project.get("optional-dependencies", {}).get("dev", [])]
    return runtime, dev


def disagreements(requirements: list[Requirement], lock: list[Pin], lock_name: str) -> list[str]:
    """What pyproject asks for that the lock does not pin here, or pins outside the specifier."""
    here = {pin.name: pin for pin in lock if pin.applies_here()}
    problems = []
    for requirement in requirements:
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        pin = here.get(canonicalize_name(requirement.name))
        if pin is None:
            problems.append(f"{requirement} is not in {lock_name}")
        elif not requirement.specifier.contains(pin.version, prereleases=True):
            problems.append(f"{lock_name} pins {pin.name}=={pin.version}, outside {requirement}")
    return problems


def stale_direct_pins(requirements: list[Requirement], lock: list[Pin], lock_name: str) -> list[str]:
    """Pins the lock keeps for pyproject's sake that pyproject no longer asks for."""
    wanted = {canonicalize_name(requirement.name) for requirement in requirements}
    return [f"{lock_name} still pins {pin.name} for pyproject.toml, which no longer lists it"
            for pin in lock if pin.direct and pin.name not in wanted]


PYPROJECT = (ROOT / "pyproject.toml").read_text()
RUNTIME_LOCK = parse_lock((ROOT / "requirements.lock").read_text())
DEV_LOCK = parse_lock((ROOT / "requirements-dev.lock").read_text())


def test_every_runtime_dependency_is_pinned_in_both_locks_within_its_specifier() -> None:
    runtime, _ = declared(PYPROJECT)
    problems = disagreements(runtime, RUNTIME_LOCK, "requirements.lock")
    problems += disagreements(runtime, DEV_LOCK, "requirements-dev.lock")
    assert not problems, f"{problems}: {REGENERATE}"


def test_every_dev_dependency_is_pinned_in_the_dev_lock_within_its_specifier() -> None:
    _, dev = declared(PYPROJECT)
    problems = disagreements(dev, DEV_LOCK, "requirements-dev.lock")
    assert not problems, f"{problems}: {REGENERATE}"


def test_the_locks_pin_nothing_for_pyproject_that_it_dropped() -> None:
    runtime, dev = declared(PYPROJECT)
    problems = stale_direct_pins(runtime, RUNTIME_LOCK, "requirements.lock")
    problems += stale_direct_pins(runtime + dev, DEV_LOCK, "requirements-dev.lock")
    assert not problems, f"{problems}: {REGENERATE}"


def test_the_image_runs_the_versions_the_tests_ran() -> None:
    """The runtime lock is resolved within the dev lock: each of its pins is one of the dev lock's, with the
    same files. (Markers may differ: a package the runtime needs on some platforms, dev tools may need on all.)"""
    dev = {(pin.name, pin.version, pin.hashes) for pin in DEV_LOCK}
    differing = [f"{pin.name}=={pin.version}" for pin in RUNTIME_LOCK if (pin.name, pin.version, pin.hashes) not in dev]
    assert not differing, f"requirements.lock differs from requirements-dev.lock on {differing}: {REGENERATE}"


def test_every_pin_carries_hashes_so_pip_checks_each_download() -> None:
    unhashed = [pin.name for pin in RUNTIME_LOCK + DEV_LOCK if not pin.hashes]
    assert not unhashed, f"pins without hashes (pip refuses the whole file in hash mode): {unhashed}"


# The checks above must be able to fail: fed a pyproject.toml that disagrees with the real locks.


def with_dependency(pyproject: str, old: str, new: str) -> str:
    assert pyproject.count(old) == 1
    return pyproject.replace(old, new)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('"slack-bolt>=1.21",', '"slack-bolt>=1.21",\n    "left-pad>=1.0",', "left-pad>=1.0 is not in requirements.lock"),
        ('"slack-bolt>=1.21",', '"slack-bolt>=99",', "pins slack-bolt==" ),
        ('"slack-bolt>=1.21",', '"slack-bolt<1",', "outside slack-bolt<1"),
    ],
)
def test_a_pyproject_that_disagrees_with_the_lock_is_caught(old: str, new: str, expected: str) -> None:
    runtime, _ = declared(with_dependency(PYPROJECT, old, new))
    problems = disagreements(runtime, RUNTIME_LOCK, "requirements.lock")
    assert any(expected in problem for problem in problems), problems


def test_a_dependency_dropped_from_pyproject_but_left_in_the_lock_is_caught() -> None:
    runtime, _ = declared(with_dependency(PYPROJECT, '"icalendar>=7.3",', ""))
    problems = stale_direct_pins(runtime, RUNTIME_LOCK, "requirements.lock")
    assert problems == ["requirements.lock still pins icalendar for pyproject.toml, which no longer lists it"]


def test_a_forked_pin_counts_only_where_its_marker_holds() -> None:
    lock = parse_lock(
        "networkx==3.6.1 ; python_full_version < '3.11'\n    --hash=sha256:aa\n    # via campaign-manager (pyproject.toml)\n"
        "networkx==3.7 ; python_full_version >= '3.11'\n    --hash=sha256:bb\n    # via campaign-manager (pyproject.toml)\n"
    )
    assert [pin.version for pin in lock if pin.applies_here()] == [Version("3.7")]
    assert disagreements([Requirement("networkx>=3.7")], lock, "lock") == []
    assert disagreements([Requirement("networkx<3.7")], lock, "lock") == ["lock pins networkx==3.7, outside networkx<3.7"]
