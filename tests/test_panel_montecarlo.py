"""The Monte Carlo panel driven from plain Python: Run in a background thread, progress,
Stop with a partial result, the bar charts' data, the reading, and the Explorer tab.

No test sleeps: ``panel.run(wait=True)`` joins the study's thread, and Stop is
pressed from the progress bar's observer, which runs in that thread after a
chunk, so the partial result is exact (``n_workers=1``: chunks run in order).
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import dataclasses
import json
import threading

import ipywidgets as widgets
import numpy as np
import pandas as pd
import pytest
from bokeh.core.serialization import Buffer, Serialized
from bokeh.document import Document
from bokeh.models import ColumnDataSource, FactorRange
from widget_tree import css_classes as _classes
from widget_tree import walk as _walk

from lmm_teach.design import Design
from lmm_teach.montecarlo import monte_carlo
from lmm_teach.widgets import montecarlo_panel as mc_module
from lmm_teach.widgets.montecarlo_panel import MAX_REPS, MonteCarloPanel, reading
from lmm_teach.widgets.notebook import FigureWidget

# 12 subjects x 4 visits, two arms, no true arm x time difference (a type-I error
# rate) and a true slope (power); 20 % MAR dropout per visit.
SMALL = Design(n_subjects=12, visit_times=(0, 1, 2, 3), arms=True, arm_slope_effect=0.0, mar_dropout=0.2)
METHODS = ("lmm", "anova", "ols")




def _by_bar(data: dict, column: str) -> dict:
    """{(hypothesis, method): value} of a bar chart's source."""
    return {(h, m): v for h, m, v in zip(data["hypothesis"], data["method"], data[column], strict=True)}


def _by_row(table: pd.DataFrame, column: str) -> dict:
    return {(r["hypothesis"], r["method"]): r[column] for r in table.to_dict(orient="records")}


# ------------------------------------------------------------------ what the browser draws
def _column(values) -> list:
    """A data column as comparable plain values (tuples of nested factors as lists, NaN as 'nan')."""
    if isinstance(values, np.ndarray):
        values = values.tolist()
    out = []
    for v in values:
        if isinstance(v, (tuple, list)):
            v = list(v)
        elif isinstance(v, float) and np.isnan(v):
            v = "nan"
        out.append(v)
    return out


def _state(models) -> dict:
    """Model id -> what a chart draws from it: a source's columns, a factor range's factors."""
    state = {}
    for m in models:
        if isinstance(m, ColumnDataSource):
            state[m.id] = {k: _column(v) for k, v in m.data.items()}
        elif isinstance(m, FactorRange):
            state[m.id] = _column(m.factors)
    return state


def kernel_state(view) -> dict:
    return _state(view._model.references())


class Front:
    """Plays the browser for the figure widgets: a view is built from the widget's bundle
    (read back as BokehJS does) and then applies the patches sent after it exists, message
    by message as jupyter_bokeh sends them (header, metadata, content, buffers).  Patches sent
    to a widget without a view are lost, as in a browser.  See tests/test_widgets_figures.py."""

    def __init__(self, monkeypatch):
        self.docs: dict = {}
        self.partial: dict = {}
        self.lost = 0
        front = self
        monkeypatch.setattr(FigureWidget, "send", lambda widget, content, buffers=None:
                            front._receive(widget, content, buffers))

    def build_view(self, view) -> None:
        bundle = json.loads(view.get_state("render_bundle")["render_bundle"])
        (doc_json,) = bundle["docs_json"].values()
        self.docs[view.model_id] = Document.from_json(doc_json)

    def report(self, view) -> None:
        """What ipywidgets' front end sends when it has built a view."""
        view.set_state({"_view_count": (view._view_count or 0) + 1})

    def drawn(self, view) -> dict:
        return _state(self.docs[view.model_id].models)

    def _receive(self, view, content, buffers) -> None:
        doc = self.docs.get(view.model_id)
        if doc is None:
            self.lost += 1
            return
        parts = self.partial.setdefault(view.model_id, [])
        parts.append(buffers[0] if buffers else content["payload"])
        header = json.loads(parts[0])
        if len(parts) < 3 + 2 * header.get("num_buffers", 0):
            return
        del self.partial[view.model_id]
        refs = [Buffer(json.loads(ref)["id"], data) for ref, data in zip(parts[3::2], parts[4::2], strict=True)]
        doc.apply_json_patch(Serialized(content=json.loads(parts[2]), buffers=refs))


@pytest.fixture(scope="module")
def finished():
    """One study of 60 replicates on a thread pool, run from the panel and waited for."""
    with cf.ThreadPoolExecutor(2) as pool:
        panel = MonteCarloPanel(SMALL, n_reps=60, seed=5, analyses=METHODS, executor=pool)
        assert panel.run(wait=True)
    return panel


def test_run_shows_the_study_and_the_progress(finished):
    p = finished
    assert p.error is None, p.error_traceback
    assert not p.running
    assert p.result.n_done == 60 and not p.result.cancelled
    assert (p.progress.value, p.progress.max, p.progress.bar_style) == (60, 60, "success")
    assert "60 of 60 replicates" in p.progress_text.value
    assert not p.run_button.disabled and p.stop_button.disabled
    assert p.result.analyses == METHODS and p.result.seed == 5 and p.result.design == SMALL


def test_the_panel_runs_exactly_the_study_of_the_core(finished):
    """Same design, seed, replicates and methods: the same table, whatever the executor."""
    direct = monte_carlo(SMALL, n_reps=60, seed=5, analyses=METHODS, n_workers=1)
    pd.testing.assert_frame_equal(finished.result.table, direct.table)


def test_rejection_chart_power_type_one_and_reference(finished):
    table = finished.result.table
    bars = finished.rejection_sources["bars"].data
    assert len(bars["value"]) == len(table) == 9  # 3 methods x (time, arm x time, final)
    assert _by_bar(bars, "value") == pytest.approx(_by_row(table, "rejection_rate"))
    # whiskers: +/- 1.96 MCSE, clipped to [0, 1]
    for v, se, lo, hi in zip(bars["value"], bars["mcse"], bars["lo"], bars["hi"], strict=True):
        assert lo == pytest.approx(max(0.0, v - 1.96 * se)) and hi == pytest.approx(min(1.0, v + 1.96 * se))
    # arm x time has no true effect: its rate is a type-I error rate, with alpha drawn across its group
    groups = {f[0] for f in bars["factor"]}
    assert groups == {"time: power", "arm x time: type-I error", "final: type-I error"}
    ref = finished.rejection_sources["reference"].data
    assert list(ref["x"]) == [0.05, 0.05] and sorted(ref["hypothesis"]) == ["arm x time", "final"]
    i = list(ref["hypothesis"]).index("arm x time")
    assert ref["y0"][i] == ("arm x time: type-I error", -1.5) and ref["y1"][i] == ("arm x time: type-I error", 1.5)
    assert list(finished.rejection_figure.y_range.factors) == bars["factor"]
    # a nested axis needs each group's bars together
    firsts = [f[0] for f in bars["factor"]]
    assert firsts == sorted(firsts, key=firsts.index) and len(set(firsts[:3])) == 1


def test_bias_and_coverage_charts(finished):
    table = finished.result.table
    bias = finished.bias_sources["bars"].data
    assert _by_bar(bias, "value") == pytest.approx(_by_row(table, "bias"))
    assert _by_bar(bias, "mcse") == pytest.approx(_by_row(table, "bias_mcse"))
    cov = finished.coverage_sources["bars"].data
    assert _by_bar(cov, "value") == pytest.approx(_by_row(table, "coverage"))
    ref = finished.coverage_sources["reference"].data
    assert ref["x"] == [0.95] * 3  # 1 - alpha across every group
    assert set(ref["hypothesis"]) == {"time", "arm x time", "final"}
    colours = dict(zip(cov["analysis"], cov["colour"], strict=True))
    assert len(set(colours.values())) == 3  # one colour per method


def test_a_study_finished_before_display_is_drawn(finished, monkeypatch):
    """A panel run, then displayed (``panel.run(wait=True)`` then ``panel`` in a lesson):
    the views built at display draw the study, not the empty charts of the first Run."""
    front = Front(monkeypatch)
    views = finished._views
    assert len(views) == 3 and all(v.layout.display is None for v in views)  # shown: they hold data
    finished._repr_mimebundle_()
    for view in views:
        front.build_view(view)
        assert front.drawn(view) == kernel_state(view), view._model.name
    bars = front.drawn(finished._views[0])[finished.rejection_sources["bars"].id]
    assert ["arm x time: type-I error", "RM-ANOVA, complete cases"] in bars["factor"]


def test_charts_added_to_a_displayed_panel_draw_each_study(monkeypatch):
    """The panel is on the page before its first Run (the Explorer's tab, a lesson's
    cell), so its charts join a displayed layout.  Their bundles must not change
    under the views being built (BokehJS: "configuration is missing"): the study
    reaches them as patches once they report, and every later study too."""
    front = Front(monkeypatch)
    panel = MonteCarloPanel(SMALL, n_reps=20, seed=3, analyses=("lmm", "ols"), n_workers=1)
    panel._repr_mimebundle_()
    assert not panel._views
    inserted = {}  # the bundle each chart had when it joined the page
    panel.charts.observe(lambda change: inserted.update({v.model_id: v.render_bundle for v in change["new"]}),
                         names="children")
    assert panel.run(wait=True), panel.status.text  # the kernel is busy: no view reports meanwhile
    bundles = [v.render_bundle for v in panel._views]
    for view in panel._views:
        assert view.render_bundle is inserted[view.model_id]  # not replaced under the view being built
        front.build_view(view)            # from that bundle
        front.report(view)                # the view reports: the held changes follow
        assert front.drawn(view) == kernel_state(view), view._model.name
    first = front.drawn(panel._views[0])
    assert len(first[panel.rejection_sources["bars"].id]["value"]) == 6  # 3 hypotheses x 2 methods
    # a second study, with the views on the page: patched from the study's thread
    panel.seed.value = 4
    assert panel.run(wait=True), panel.status.text
    assert front.drawn(panel._views[0]) != first
    for view, bundle in zip(panel._views, bundles, strict=True):
        assert view.render_bundle is bundle and not view.holding
        assert front.drawn(view) == kernel_state(view), view._model.name
    assert front.lost == 0  # no patch went to a widget without a view


def test_reading_and_table_in_words(finished):
    text = finished.reading_html.value
    assert "no true arm x time difference" in text and "type-I error" in text
    assert "power" in text
    assert "The true average change over time (the mean of the two arms&#x27; slopes) is -1 " in text
    assert "Only 60 replicates" in text  # few replicates: a warning about the Monte Carlo error
    table = finished.table_html.value
    assert "RM-ANOVA, complete cases" in table and "<caption" in table
    assert "seed 5" in finished.about.value and "12 patients" in finished.about.value


def test_stop_gives_a_partial_result_and_run_is_disabled_while_running():
    panel = MonteCarloPanel(SMALL, n_reps=60, seed=2, analyses=("ols",), n_workers=1, chunk_size=5)
    seen = {}

    def press_stop(change):
        # runs in the study's thread, after the first chunk of 5 replicates
        if change["new"] >= 5 and not seen:
            seen.update(running=panel.running, run=panel.run_button.disabled, stop=panel.stop_button.disabled)
            panel.stop()

    panel.progress.observe(press_stop, names="value")
    assert panel.run(wait=True)
    assert seen == {"running": True, "run": True, "stop": False}
    res = panel.result
    assert res.cancelled and res.n_done == 5 and res.n_reps == 60
    assert (panel.progress.value, panel.progress.bar_style) == (5, "warning")
    assert "stopped" in panel.progress_text.value
    assert "stopped after 5 of 60" in panel.status.text  # the core's note, shown in the status
    assert set(panel.rejection_sources["bars"].data["n_ok"]) == {5}
    assert not panel.run_button.disabled and panel.stop_button.disabled


def test_the_study_is_running_from_its_first_progress(monkeypatch):
    """The study's first progress can come before Thread.start() returns in the kernel's thread (a
    loaded machine): the panel must already say it is running, and a Stop then must stop it."""
    panel = MonteCarloPanel(SMALL, n_reps=60, seed=2, analyses=("ols",), n_workers=1, chunk_size=5)
    first = threading.Event()
    seen = {}

    def press_stop(change):
        if change["new"] >= 5 and not seen:
            seen.update(running=panel.running)
            panel.stop()
            first.set()

    panel.progress.observe(press_stop, names="value")
    real_start = threading.Thread.start

    def start_then_wait(self):  # the kernel's thread is descheduled right after start()
        real_start(self)
        if self.name == "lmm-teach-monte-carlo":
            first.wait(60)

    monkeypatch.setattr(threading.Thread, "start", start_then_wait)
    assert panel.run(wait=True)
    assert seen == {"running": True}
    assert panel.result.cancelled and panel.result.n_done == 5


def test_in_a_kernel_the_thread_computes_and_the_kernel_thread_shows():
    """As in a notebook (an event loop runs in the kernel's thread): Run returns at once, the study
    computes in its thread, and every widget change (progress, charts, status) is made by the kernel's
    thread, which stays free meanwhile (a Stop could be clicked)."""
    panel = MonteCarloPanel(SMALL, n_reps=30, seed=4, analyses=("ols",), n_workers=1, chunk_size=5)
    kernel = threading.get_ident()
    widget_threads, turns = set(), []
    for w in (panel.progress, panel.progress_text, panel.reading_html, panel.table_html):
        w.observe(lambda change: widget_threads.add(threading.get_ident()), names="value")

    async def notebook():
        assert panel.run() is True and panel.running and not panel.inline
        while panel.running:
            turns.append(panel.progress.value)  # the kernel's loop keeps turning while the study runs
            await asyncio.sleep(0.002)

    asyncio.run(notebook())
    assert panel.result is not None and panel.result.n_done == 30 and panel.progress.bar_style == "success"
    assert widget_threads == {kernel}, "a widget was changed from the study's thread"
    assert len(turns) > 1
    assert panel.reading_html.value and set(panel.rejection_sources["bars"].data["n_ok"]) == {30}


def test_a_second_run_while_running_is_refused():
    panel = MonteCarloPanel(SMALL, n_reps=40, analyses=("ols",), n_workers=1, chunk_size=5)
    answers = []

    def again(change):
        if change["new"] == 5 and not answers:
            answers.append(panel.run())
            answers.append(panel.status.text)

    panel.progress.observe(again, names="value")
    assert panel.run(wait=True)
    assert answers[0] is False and "A study is running" in answers[1]
    assert panel.result.n_done == 40


def test_invalid_design_no_method_and_failures_are_explained(monkeypatch):
    class Broken:
        @property
        def design(self):
            raise ValueError("visit times: 'abc' is not a number")

    panel = MonteCarloPanel(explorer=Broken(), n_reps=20, n_workers=1)
    assert panel.run() is False and not panel.running
    assert panel.status.kind == "problem" and "cannot be studied" in panel.status.text
    assert "'abc' is not a number" in panel.status.text and not panel.run_button.disabled

    alone = MonteCarloPanel(SMALL, n_reps=20, n_workers=1)
    for box in alone.methods.values():
        box.value = False
    assert alone.run() is False and "Tick at least one method" in alone.status.text

    def crash(*args, **kwargs):
        raise RuntimeError("worker crashed")

    monkeypatch.setattr(mc_module, "monte_carlo", crash)
    alone.methods["ols"].value = True
    assert alone.run(wait=True)  # started; the thread catches the failure
    assert alone.status.kind == "problem" and "worker crashed" in alone.status.text
    assert "Traceback" not in alone.status.text and "Traceback" in alone.error_traceback
    assert alone.progress.bar_style == "danger" and not alone.run_button.disabled and alone.result is None


def _with(result, rows: dict):
    """The result with some numbers of its table replaced: rows = {(analysis, hypothesis): {col: value}}."""
    table = result.table.copy()
    for (a, h), values in rows.items():
        i = table.index[(table["analysis"] == a) & (table["hypothesis"] == h)][0]
        for col, v in values.items():
            table.loc[i, col] = v
    return dataclasses.replace(result, table=table)


def test_reading_calls_out_only_what_exceeds_the_monte_carlo_error(finished):
    base = _with(finished.result, {(a, h): {"n_ok": 400, "rejection_rate": 0.05, "bias": 0.0, "bias_mcse": 0.01,
                                              "coverage": 0.95} for a in METHODS for h in ("time", "arm x time")})
    text = " ".join(reading(base))
    assert "(as it should)" in text and "(too often)" not in text
    assert "No method's estimate is detectably biased" in text
    assert "Every method's 95 % confidence interval contains the truth" in text

    # MCSE at alpha with 400 replicates: sqrt(.05 * .95 / 400) = 0.011, so 0.12 is too often,
    # bias 0.31 with MCSE 0.05 is 6 MCSEs, coverage 0.80 is far below 0.95 (MCSE 0.011)
    odd = _with(base, {("ols", "arm x time"): {"rejection_rate": 0.12},
                         ("anova", "arm x time"): {"bias": 0.31, "bias_mcse": 0.05, "mean_estimate": 0.31},
                         ("anova", "time"): {"coverage": 0.80}})
    lines = reading(odd)
    text = " ".join(lines)
    assert "OLS (which ignores the subjects) in 12.0 % (too often)" in text
    assert ("Under this dropout, the ANOVA's estimate of the arm x time difference is biased by +0.31 "
            "(mean estimate 0.31 against a truth of 0).") in lines
    assert any(s.startswith("The ANOVA's 95 % CIs for the average change over time contain the truth in only "
                            "80.0 %") for s in lines)
    # within 2 MCSEs: not a bias
    near = _with(base, {("lmm", "time"): {"bias": 0.015, "bias_mcse": 0.01}})
    assert "No method's estimate is detectably biased" in " ".join(reading(near))


def test_reading_of_a_study_stopped_before_any_replicate(finished):
    empty = dataclasses.replace(finished.result, n_done=0)
    assert reading(empty) == ["No replicate finished before the study was stopped: press Run again."]


def test_controls_are_labelled_and_bounded():
    panel = MonteCarloPanel(SMALL)
    assert panel.n_reps.value == 200 and MAX_REPS == 5000
    # every method of the registry has its box; the MMRM's starts unticked (its fit costs about as much per
    # replicate as all the others together)
    assert panel.analyses == ("lmm", "lmm_wald", "lmm_categorical", "anova", "ols")
    assert list(panel.methods) == ["lmm", "lmm_wald", "lmm_categorical", "mmrm", "anova", "ols"]
    assert panel.methods["mmrm"].description == "MMRM, unstructured" and not panel.methods["mmrm"].value
    controls = [w for w in _walk(panel.layout)
                if isinstance(w, (widgets.Button, widgets.Checkbox, widgets.IntText, widgets.BoundedIntText,
                                  widgets.IntProgress))]
    assert len(controls) == 6 + 2 + 2 + 1
    for w in controls:
        assert w.description and w.tooltip, w  # read by screen readers
    assert {"lmm-montecarlo", "lmm-mc-run", "lmm-mc-stop", "lmm-mc-progress", "lmm-mc-reps", "lmm-mc-seed",
            "lmm-mc-reading", "lmm-mc-table", "lmm-mc-charts", "lmm-status"} <= _classes(panel.layout)
    assert panel.rejection_figure is None and not panel.charts.children  # built at the first Run


def test_the_mmrm_box_comes_from_the_registry_and_runs_when_ticked():
    # The panel builds its boxes from the registry: ticking the MMRM's runs it, its bars take its colour,
    # and the reading names it (30 patients x 3 visits: its 6 covariance parameters are estimable).
    from lmm_teach.methods import METHODS as REGISTRY
    from lmm_teach.plots.montecarlo import bias_data

    design = Design(n_subjects=30, visit_times=(0, 1, 2), arms=True, arm_slope_effect=-0.5, mar_dropout=0.1)
    panel = MonteCarloPanel(design, n_reps=12, seed=2, analyses=("anova",), n_workers=1)
    panel.methods["mmrm"].value = True
    assert panel.analyses == ("mmrm", "anova")
    assert panel.run(wait=True), panel.status.text
    assert panel.result.analyses == ("mmrm", "anova") and panel.result.table["n_failed"].sum() == 0
    bars = panel.bias_sources["bars"].data
    colours = dict(zip(bars["analysis"], bars["colour"], strict=True))
    assert colours == {"mmrm": REGISTRY["mmrm"].colour, "anova": REGISTRY["anova"].colour}
    assert "the unstructured MMRM" in panel.reading_html.value
    # a method the registry does not know is drawn grey, never in another method's colour
    odd = panel.result.table.assign(analysis="gee", method="GEE")
    assert set(bias_data(odd)["bars"]["colour"]) == {"#9A9A9A"}


def test_the_charts_appear_with_the_first_study(finished):
    assert "lmm-bokeh" in _classes(finished.layout) and len(finished.charts.children) == 3
    assert {"lmm-plot-mc-rejection", "lmm-plot-mc-bias", "lmm-plot-mc-coverage"} <= {
        c for f in (finished.rejection_figure, finished.bias_figure, finished.coverage_figure) for c in f.css_classes}


# ------------------------------------------------------------------ inside the Explorer
@pytest.fixture(scope="module")
def explorer():
    from lmm_teach.widgets import Explorer

    return Explorer(design=Design(n_subjects=10, visit_times=(0, 1, 2), mar_dropout=0.0), seed=3)


def test_the_explorer_has_the_tab_and_studies_its_design(explorer):
    assert "Monte Carlo" in explorer.extensions and not explorer.extension_errors
    panel = explorer.extensions["Monte Carlo"]
    assert isinstance(panel, MonteCarloPanel) and "lmm-montecarlo" in _classes(explorer.layout)
    panel.n_reps.value = 40
    for key, box in panel.methods.items():
        box.value = key in ("lmm", "ols")
    # the default: the module's process pool, started from the panel's thread
    assert panel.run(wait=True), panel.status.text
    assert panel.error is None, panel.error_traceback
    assert panel.result.design == explorer.design and panel.result.n_done == 40
    assert panel.progress.value == 40
    assert "changed" not in panel.about.value
    explorer.controls["n_subjects"].value = 12  # the Explorer moves on: the study is now out of date
    assert "The design has changed since this study" in panel.about.value


def test_an_invalid_design_in_the_explorer_is_explained(explorer):
    panel = explorer.extensions["Monte Carlo"]
    explorer.controls["visit_times"].value = "0"
    try:
        assert panel.run() is False
        assert panel.status.kind == "problem" and "cannot be studied" in panel.status.text
        assert not panel.running and not explorer.extension_errors
    finally:
        explorer.controls["visit_times"].value = "0, 1, 2"
    assert np.isfinite(explorer.result.lmm.loglik)


@pytest.mark.parametrize("module", ["lmm_teach.plots.montecarlo", "lmm_teach.widgets.montecarlo_panel"])
def test_docstring_examples_run(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_too_many_replicates_are_not_clamped_without_a_word():
    panel = MonteCarloPanel(SMALL, n_reps=50_000, seed=2, analyses=("ols",), n_workers=1)
    assert panel.n_reps.value == 50_000  # what the learner typed stays until Run
    panel.n_reps.value = 50_000
    panel._work = lambda *args: None  # the message, not the study, is under test
    assert panel.run(wait=True)
    assert panel.n_reps.value == MAX_REPS and panel.progress.max == MAX_REPS
    assert "50000 replicates asked for: the panel runs 10 to 5000, so this study has 5000" in panel.status.text
    assert "lmm_teach.monte_carlo(design, n_reps=50000)" in panel.status.text


def test_a_running_study_does_not_show_the_last_result_as_its_own(finished):
    panel = MonteCarloPanel(SMALL, n_reps=40, seed=3, analyses=("ols",), n_workers=1, chunk_size=5)
    assert panel.run(wait=True) and panel.reading_html.value and panel.table_html.value
    seen = {}

    def look(change):
        if change["new"] >= 5 and not seen:
            seen.update(reading=panel.reading_html.value, table=panel.table_html.value, about=panel.about.value)

    panel.progress.observe(look, names="value")
    panel.seed.value = 4
    assert panel.run(wait=True)
    assert seen["reading"] == "" and seen["table"] == "" and "show the previous one" in seen["about"]
    assert panel.reading_html.value and "previous" not in panel.about.value
