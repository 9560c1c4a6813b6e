"""The Explorer driven as a learner drives it, in JupyterLab, and shown in Notebook 7.

In JupyterLab the Explorer runs once per module and the tests share its page, in order:
it renders cleanly (every tab draws its plots); a slider moved with the keyboard changes the
comparison table's text and redraws the comparison plot (the time from the key's release to
the redrawn plot is measured in the browser and printed, not asserted); "New sample" draws a
new sample; a preset sets the controls; the Covariance tab's heatmaps hold finite numbers and
its structure dropdown redraws the MMRM's; a short Monte Carlo study runs until its progress bar
is full and its charts draw.  Each interaction must add no error to the page or the console.
"""

from __future__ import annotations

import math
import re

import nbformat
import pytest

from lmm_teach.mmrm import STRUCTURES

from .conftest import VIEWPORT
from .interact import (
    canvas_signature,
    open_tab,
    press_slider_key_and_time_redraw,
    tab_titles,
    visible_text,
    wait_for_canvas_change,
    wait_for_text_change,
)
from .probe import new_notebook
from .ui import ConsoleLog, Learner, check_page, screenshot_notebook

EXPLORER = """\
import lmm_teach

lmm_teach.setup()
explorer = lmm_teach.Explorer(seed=1)
explorer"""

# The numbers of a heatmap (the 'cells' source of the figure named ``name``) and its title, as
# the browser holds them; null when that figure is not on screen.
_HEATMAP_JS = """(name) => {
    if (!window.Bokeh || !Bokeh.index) return null;
    for (const root of document.querySelectorAll('.lmm-covariance [data-root-id]')) {
        if (!root.parentElement.checkVisibility()) continue;
        const view = Bokeh.index.get_by_id(root.getAttribute('data-root-id'));
        if (!view || !view.model || view.model.name !== name || !view.renderer_views) continue;
        for (const rv of view.renderer_views.values()) {
            const src = rv.model.data_source;
            if (src && src.name === 'cells') {
                return {values: Array.from(src.data.value, Number), title: view.model.title.text};
            }
        }
    }
    return null;
}"""

MONTE_CARLO_REPS = 10  # the smallest study the panel allows: the point is the progress bar


@pytest.fixture(scope="module")
def explorer_notebook(probe_dir) -> str:
    nbformat.write(new_notebook([EXPLORER]), probe_dir / "explorer.ipynb")
    return "e2e_probe/explorer.ipynb"


class Session:
    """The Explorer's page, shared by this module's tests, with what it showed at first."""

    def __init__(self, learner: Learner, first_report):
        self.learner = learner
        self.page = learner.page
        self.first_report = first_report
        self.explorer = learner.page.locator(".lmm-explorer").first

    def new_problems(self, since_console: int, since_problems: list[str]) -> list[str]:
        """Problems that appeared after a baseline (what the interaction itself caused)."""
        report = check_page(self.page, self.learner.console, settle=15)
        fresh = [p for p in report.problems if p not in since_problems]
        return fresh + [f"browser {e}" for e in report.console_errors[since_console:]]

    def baseline(self):
        report = check_page(self.page, self.learner.console, settle=15)
        return len(report.console_errors), report.problems


@pytest.fixture(scope="module")
def explorer_session(browser, jupyter, explorer_notebook):
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(60_000)
    page = context.new_page()
    learner = Learner(page, ConsoleLog().attach(page), jupyter)
    report = learner.run_all(explorer_notebook)
    yield Session(learner, report)
    context.close()
    jupyter.shutdown_kernels()


def test_explorer_renders_cleanly_in_lab(explorer_session):
    s = explorer_session
    assert not s.first_report.all_problems(), f"Explorer after Run All:\n{s.first_report.describe()}"
    titles = tab_titles(s.explorer)
    assert {"Data", "LMM", "ANOVA", "Compare"} <= set(titles), titles
    # Every tab title is shown whole (seven tabs once squeezed "Your own data" to "Your own da").
    widths = s.explorer.locator(".lmm-tabs .lm-TabBar-tabLabel").evaluate_all(
        "labels => labels.map(l => [l.textContent, l.scrollWidth, l.clientWidth])")
    assert len(widths) == len(titles), widths
    cut = [text for text, needed, shown in widths if needed > shown + 1]
    assert cut == [], f"tab titles cut short: {cut}"
    # Plots in a closed tab are drawn when it opens: open each and look again.
    for title in titles:
        if title == "Monte Carlo":
            continue  # its charts wait for a study: see test_explorer_monte_carlo_in_lab
        open_tab(s.explorer, title)
        report = check_page(s.page, s.learner.console)
        assert not report.all_problems(), f"Explorer, tab {title!r}:\n{report.describe()}"


def test_explorer_slider_new_sample_and_preset_in_lab(explorer_session, measured):
    s = explorer_session
    page, explorer = s.page, s.explorer
    open_tab(explorer, "Compare")
    console_before, problems_before = s.baseline()
    table = explorer.locator(".lmm-compare-table")
    plot = explorer.locator(".lmm-compare .lmm-bokeh").first

    # A slider moved with the keyboard: the table's text and the plot change.
    handle = explorer.locator(".lmm-control-n-subjects .noUi-handle")
    n_before = float(handle.get_attribute("aria-valuenow"))
    text_before = visible_text(table)
    timing = press_slider_key_and_time_redraw(page, handle, plot, "ArrowRight", text=table)
    wait_for_text_change(page, table, text_before)
    assert float(handle.get_attribute("aria-valuenow")) > n_before
    measured(f"Explorer in JupyterLab, slider release -> comparison plot redrawn: {timing['plot']:.0f} ms, "
             f"table text changed: {timing['text']:.0f} ms")

    # "New sample": the next seed, new numbers, a new picture.
    seed = explorer.locator(".lmm-seed input")
    seed_before = int(seed.input_value())
    text_before, sig_before = visible_text(table), canvas_signature(plot)
    explorer.locator(".lmm-new-sample").click()
    wait_for_text_change(page, table, text_before)
    wait_for_canvas_change(page, plot, sig_before)
    assert int(seed.input_value()) == seed_before + 1

    # A preset sets the controls (here the share of visits missing completely at random).
    mcar = explorer.locator(".lmm-control-mcar .noUi-handle")
    mcar_before = mcar.get_attribute("aria-valuenow")
    text_before = visible_text(table)
    explorer.locator(".lmm-preset select").select_option("30 % MCAR")
    wait_for_text_change(page, table, text_before)
    page.wait_for_function("([el, v]) => el.getAttribute('aria-valuenow') !== v",
                           arg=[mcar.element_handle(), mcar_before], timeout=60_000)
    assert float(mcar.get_attribute("aria-valuenow")) == pytest.approx(0.3)

    fresh = s.new_problems(console_before, problems_before)
    assert not fresh, "slider, new sample and preset:\n" + "\n".join(fresh)


def test_explorer_covariance_tab_in_lab(explorer_session):
    s = explorer_session
    page, explorer = s.page, s.explorer
    open_tab(explorer, "Covariance")
    console_before, problems_before = s.baseline()
    page.wait_for_function(f"() => {{ const h = ({_HEATMAP_JS})('cov-mmrm'); return !!h && h.values.length > 0; }}",
                           timeout=120_000, polling=250)
    before = page.evaluate(_HEATMAP_JS, "cov-mmrm")
    truth = page.evaluate(_HEATMAP_JS, "cov-truth")
    n = math.isqrt(len(before["values"]))
    assert n >= 2 and n * n == len(before["values"]) == len(truth["values"]), (before, truth)
    assert all(math.isfinite(v) for v in before["values"] + truth["values"]), (before, truth)
    # Choosing another structure in the dropdown refits and redraws the MMRM's heatmap.
    plot = explorer.locator(".lmm-covariance .lmm-bokeh").nth(3)
    sig = canvas_signature(plot)
    explorer.locator(".lmm-cov-structure select").select_option(label=f"ar1: {STRUCTURES['ar1'].label}")
    page.wait_for_function(f"() => {{ const h = ({_HEATMAP_JS})('cov-mmrm'); return !!h && h.title.includes('ar1'); }}",
                           timeout=120_000, polling=250)
    wait_for_canvas_change(page, plot, sig)
    after = page.evaluate(_HEATMAP_JS, "cov-mmrm")
    assert len(after["values"]) == n * n and all(math.isfinite(v) for v in after["values"]), after
    assert after["values"] != before["values"]
    fresh = s.new_problems(console_before, problems_before)
    assert not fresh, "covariance tab:\n" + "\n".join(fresh)


def test_explorer_monte_carlo_in_lab(explorer_session, artifacts_dir):
    s = explorer_session
    page, explorer = s.page, s.explorer
    assert "Monte Carlo" in tab_titles(explorer), "the Explorer has no Monte Carlo tab"
    open_tab(explorer, "Monte Carlo")
    console_before, _ = s.baseline()
    mc = explorer.locator(".lmm-montecarlo")
    reps = mc.locator(".lmm-mc-reps input")
    reps.fill(str(MONTE_CARLO_REPS))
    reps.press("Enter")
    mc.locator(".lmm-mc-run").click()
    bar = mc.locator(".lmm-mc-progress .progress-bar")
    page.wait_for_function(
        "el => el.classList.contains('progress-bar-success') && el.style.width === '100%'",
        arg=bar.element_handle(), timeout=240_000, polling=250)
    done = visible_text(mc.locator(".lmm-mc-progress-text"))
    assert re.match(rf"{MONTE_CARLO_REPS} of {MONTE_CARLO_REPS} replicates", done), done
    print(f"\nMonte Carlo in the Explorer: {done}")
    # Now the study's charts must have drawn, and the console stayed clean.
    report = check_page(page, s.learner.console, within=".lmm-montecarlo")
    shot = screenshot_notebook(page, artifacts_dir / "screenshots" / "explorer_lab.png")
    print(f"Monte Carlo tab: {report.describe()}\nscreenshot: {shot}")
    assert report.plots >= 1 and not report.problems, report.describe()
    assert not report.console_errors[console_before:], "\n".join(report.console_errors[console_before:])


def test_explorer_renders_in_notebook7(browser, notebook7, explorer_notebook, artifacts_dir):
    """Smoke test: the same Explorer in Notebook 7 (started with ``jupyter notebook``)."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(60_000)
    try:
        page = context.new_page()
        learner = Learner(page, ConsoleLog().attach(page), notebook7)
        report = learner.run_all(explorer_notebook, ui="notebook")
        shot = screenshot_notebook(page, artifacts_dir / "screenshots" / "explorer_notebook7.png")
        print(f"\nExplorer in Notebook 7: {report.describe()}\nscreenshot: {shot}")
        assert page.locator(".lmm-explorer .lmm-design").count() == 1
        assert report.plots >= 1
        assert not report.all_problems(), f"Explorer in Notebook 7:\n{report.describe()}"
    finally:
        context.close()
        notebook7.shutdown_kernels()
