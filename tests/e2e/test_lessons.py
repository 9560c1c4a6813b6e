"""Every lesson notebook, run top to bottom in JupyterLab in a real browser.

What a learner would see after "Run > Run All Cells" must be clean: every cell ran, no cell
shows a traceback or stderr, no widget says "Error displaying widget" or stays on "Loading
widget", every bokeh plot has drawn its canvas, and the browser console has no error.
A screenshot of each lesson is saved for a person to look at (the path is printed).
"""

from __future__ import annotations

import re

import pytest

from .conftest import NOTEBOOKS
from .interact import deep_text, hover_first_point
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


def test_lesson0_hover_and_exercises(learner):
    """Lesson 0 has no sliders: a learner hovers over the spaghetti plot ("Hover over a point
    to see who it is") and answers the exercises.  The lesson's own rendering is checked by
    test_lesson_runs_cleanly_in_lab; here each interaction must work and add no console error.
    """
    page = learner.page
    learner.run_all("00_start_here.ipynb")
    console_before = len(learner.console.errors)

    subject = hover_first_point(page)
    assert subject is not None, "lesson 0 shows no plot with a hover tool"
    tooltip = page.locator(".bk-Tooltip:visible").filter(has_text="subject").first
    tooltip.wait_for(timeout=30_000)
    shown = deep_text(tooltip)  # the tooltip's text lives in its shadow root
    assert re.search(rf"subject:\s*{re.escape(subject)}\b", shown), shown

    # A number typed with the keyboard and checked: a wrong answer says so (and gives a hint).
    number = page.locator(".lmm-exercise").filter(has=page.locator("input[type=text]")).first
    number.scroll_into_view_if_needed()
    number.locator("input[type=text]").fill("123456")
    number.locator("button", has_text="Check").click()
    number.locator(".lmm-exercise-feedback.lmm-exercise-wrong").wait_for(timeout=60_000)
    assert "Not quite" in number.locator(".lmm-exercise-feedback").inner_text()

    # A multiple choice: whatever the pick, the learner gets a verdict.
    choice = page.locator(".lmm-exercise").filter(has=page.locator("input[type=radio]")).first
    choice.scroll_into_view_if_needed()
    choice.locator("input[type=radio]").first.check()
    choice.locator("button", has_text="Check").click()
    choice.locator(".lmm-exercise-feedback.lmm-exercise-right, .lmm-exercise-feedback.lmm-exercise-wrong"
                   ).wait_for(timeout=60_000)

    fresh = learner.console.errors[console_before:]
    assert not fresh, "\n".join(fresh)
