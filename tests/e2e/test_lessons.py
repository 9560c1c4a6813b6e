"""Every lesson notebook, run top to bottom in JupyterLab in a real browser.

What a learner would see after "Run > Run All Cells" must be clean: every cell ran, no cell
shows a traceback or stderr, no widget says "Error displaying widget" or stays on "Loading
widget", every bokeh plot has drawn its canvas, and the browser console has no error.
A screenshot of each lesson is saved for a person to look at (the path is printed).
"""

from __future__ import annotations

import pytest

from .conftest import NOTEBOOKS
from .ui import screenshot_notebook

LESSONS = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))


@pytest.mark.parametrize("lesson", LESSONS, ids=[name.removesuffix(".ipynb") for name in LESSONS])
def test_lesson_runs_cleanly_in_lab(learner, artifacts_dir, lesson):
    report = learner.run_all(lesson)
    shot = screenshot_notebook(learner.page, artifacts_dir / "screenshots" / f"{lesson[:-6]}.png")
    print(f"\n{lesson}: {report.describe()}\nscreenshot: {shot}")
    assert not report.all_problems(), f"{lesson} in JupyterLab:\n{report.describe()}"


def test_there_are_lessons():
    # Guards the parametrization above: an empty notebooks/ must not pass silently.
    assert any(name.startswith("00_") for name in LESSONS), f"no lesson 00 in {NOTEBOOKS}"
