"""The supported Pythons and dependency ranges: declared once in pyproject.toml, tested by
`make test-pythons` (.ci/test-pythons and .ci/constraints-oldest.txt), stated in the README.

A Python outside ``requires-python`` is refused by pip at install time; `make test-pythons` tries
that for real with Python 3.9 where the machine has it.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the tomli backport (in the test extra)
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
SCRIPT = (ROOT / ".ci" / "test-pythons").read_text(encoding="utf-8")
README = (ROOT / "README.md").read_text(encoding="utf-8")


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pythons_tested() -> list[str]:
    """The minor versions `make test-pythons` runs by default."""
    return re.search(r"^PYTHONS=\$\{PYTHONS:-([0-9. ]+)\}$", SCRIPT, re.M).group(1).split()


def runtime_requirements() -> list[Requirement]:
    """The dependencies and those of every extra the test extra pulls in (``lmm-teach[lab,...]``),
    not the test tools themselves: what the oldest-versions run must pin."""
    extras = PROJECT.get("optional-dependencies", {})
    reqs = [Requirement(r) for r in PROJECT["dependencies"]]
    todo, seen = ["test"], set()
    while todo:
        extra = todo.pop()
        seen.add(extra)
        for r in map(Requirement, extras.get(extra, [])):
            if norm(r.name) == norm(PROJECT["name"]):
                todo += [e for e in r.extras if e not in seen]
            elif extra != "test":
                reqs.append(r)
    return reqs


def lower_bound(req: Requirement) -> str:
    bounds = [s.version for s in req.specifier if s.operator == ">="]
    assert len(bounds) == 1, f"{req}: declare one lower bound (>=) so that the oldest run can test it"
    return bounds[0]


def oldest_pins() -> dict[str, str]:
    lines = (ROOT / ".ci" / "constraints-oldest.txt").read_text(encoding="utf-8").splitlines()
    pins = [ln.split("#")[0].strip() for ln in lines]
    return {norm(name): version for name, version in (p.split("==") for p in pins if p)}


def test_requires_python_admits_exactly_the_pythons_tested():
    spec = SpecifierSet(PROJECT["requires-python"])
    admitted = [f"3.{minor}" for minor in range(0, 30) if spec.contains(f"3.{minor}.0")]
    assert admitted == pythons_tested() == ["3.10", "3.11", "3.12", "3.13"]
    assert not spec.contains("3.9.18") and not spec.contains("3.14.0")


def test_the_running_python_is_a_supported_one():
    assert SpecifierSet(PROJECT["requires-python"]).contains(".".join(map(str, sys.version_info[:3])))


def test_the_oldest_run_pins_every_declared_lower_bound():
    pins = {name: Version(v) for name, v in oldest_pins().items()}
    declared = {norm(r.name): Version(lower_bound(r)) for r in runtime_requirements()}
    assert {"numpy", "scipy", "pandas", "statsmodels", "bokeh", "ipywidgets"} <= set(declared)
    assert pins == declared, "keep .ci/constraints-oldest.txt equal to pyproject.toml's lower bounds"


def test_the_readme_states_the_supported_pythons_and_every_range():
    section = README.split("## Supported versions", 1)[1].split("\n## ", 1)[0]
    for minor in pythons_tested():
        assert minor in section
    assert PROJECT["requires-python"].replace(" ", "") in section.replace(" ", "")
    rows = {norm(m.group(1)): m.group(2) for m in re.finditer(r"^\| `([\w.-]+)` \| >= ([\w.]+) \|", section, re.M)}
    for req in runtime_requirements():
        assert rows.get(norm(req.name)) == lower_bound(req), f"README: no row '| `{req.name}` | >= ...' or an old bound"
    assert "make test-pythons" in section


def test_make_test_pythons_is_a_target_and_ci_runs_it():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^test-pythons:", makefile, re.M) and "bash .ci/test-pythons" in makefile
    ci = [ln.split()[:2] for ln in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines() if ln.strip()]
    assert ci.index(["make", "test"]) < ci.index(["make", "test-pythons"])  # the full suite on the default Python first
