"""The browser checks themselves, proven on small notebooks written for the purpose.

A check that cannot fail is a defect: each detector used on the lessons is shown here to pass
on a healthy notebook and to report a broken one, including the classroom failure the issue
names (BokehJS loaded from a CDN that the network blocks: the widget exists, the plot never
draws).
"""

from __future__ import annotations

from .probe import write_faulty, write_probe
from .ui import notebook_state, screenshot_notebook


def test_probe_notebook_renders(learner, probe_dir, artifacts_dir):
    write_probe(probe_dir / "probe.ipynb")
    report = learner.run_all("e2e_probe/probe.ipynb")
    shot = screenshot_notebook(learner.page, artifacts_dir / "probe.png")
    print(f"\nprobe: {report.describe()}\nscreenshot: {shot}")
    assert not report.all_problems(), report.describe()
    assert report.plots == 1, "the BokehModel's plot root was not found"
    assert report.widgets >= 2, "slider and BokehModel views expected"
    # Every non-blank cell ran, the one with hidden input too; the blank one gets no count.
    counts = [c["count"] for c in notebook_state(learner.page)["cells"]]
    assert counts == [1, 2, 3, 4, None]
    # The slider really is an interactive control, not a picture of one.
    handle = learner.page.locator("[role=slider]").first
    assert handle.get_attribute("aria-valuenow") == "3.0"


def test_bokehjs_from_a_blocked_cdn_is_reported(learner, probe_dir):
    write_probe(probe_dir / "broken_bokeh.ipynb", broken=True)
    report = learner.run_all("e2e_probe/broken_bokeh.ipynb")
    print(f"\nbroken probe: {report.describe()}")
    # Two independent signals: the widget area shows ipywidgets' error view ...
    assert any("cell 3: widget failed to render" in p for p in report.problems), report.describe()
    # ... and the console says why.
    errors = "\n".join(report.console_errors)
    assert "cdn.bokeh.org" in errors and "Could not create a view" in errors, errors
    assert report.plots == 0


def test_errors_stderr_missing_widgets_and_empty_plots_are_reported(learner, probe_dir):
    write_faulty(probe_dir / "faulty.ipynb")
    # The wait returns once the traceback is shown and nothing is queued (cell 5 never runs).
    report = learner.run_all("e2e_probe/faulty.ipynb")
    print(f"\nfaulty probe: {report.describe()}")
    problems = "\n".join(report.problems)
    assert "cell 1: stderr output: a warning a learner would see" in problems
    assert ("cell 2: widget: Error displaying widget" in problems
            or 'cell 2: widget still "Loading widget..."' in problems)
    assert 'cell 3: bokeh plot "empty probe" is empty' in problems
    assert "cell 4: error output:" in problems and "ZeroDivisionError" in problems
    assert "cell 5" not in problems
    counts = [c["count"] for c in notebook_state(learner.page)["cells"]]
    assert counts[:4] == [1, 2, 3, 4] and counts[4] is None
