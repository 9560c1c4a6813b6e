"""The Explorer driven from plain Python: set control values, read
``explorer.result`` and the plots' ColumnDataSource data.

What a learner can do with the mouse, these tests do with ``.value``: drag
every control to its extremes, pick presets, draw new samples.  Nothing may
escape as an exception; the status area explains, and the last good plots stay.
"""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np
import pandas as pd
import pytest
from widget_tree import css_classes as _classes

import lmm_teach
from lmm_teach.design import FIELDS, PRESETS, Design
from lmm_teach.simulate import simulate
from lmm_teach.widgets import Explorer
from lmm_teach.widgets import explorer as explorer_module


def _select(ex: Explorer, title: str) -> None:
    """Click a result tab, as a learner would (hidden tabs are updated when shown)."""
    ex.tabs.selected_index = list(ex.tabs.titles).index(title)


def _snapshot(ex: Explorer) -> dict:
    """Copies of the plots' data, to check that they stay after a failure."""
    ex.update_all_panels()
    return {
        "lines": [np.asarray(v).copy() for v in ex.data_panel.sources["lines"].data["ys"]],
        "population": [np.asarray(v).copy() for v in ex.lmm_panel.fit_sources["population"].data["ys"]],
        "compare": list(ex.compare_panel.sources["estimates"].data["estimate"]),
    }


def _same(a: dict, b: dict) -> bool:
    return all(len(a[k]) == len(b[k]) and all(np.array_equal(x, y, equal_nan=True) for x, y in zip(a[k], b[k],
               strict=True)) for k in a)


@pytest.fixture(scope="module")
def explorer():
    """One Explorer for the read-only tests (building one costs a full update)."""
    return Explorer(seed=11)


@pytest.fixture
def fresh():
    return Explorer(seed=11)


# ------------------------------------------------------------------- start-up
def test_starts_with_results_and_plots(explorer):
    assert explorer.error is None, explorer.error_traceback
    r = explorer.result
    assert r.design == Design() == explorer.design
    assert r.seed == 11 and explorer.seed == 11
    assert r.lmm.n_subjects == Design().n_subjects
    assert r.anova is not None and r.comparison is not None and len(r.comparison)
    lines = explorer.data_panel.sources["lines"].data
    assert len(lines["subject"]) == Design().n_subjects
    assert len(explorer.data_panel.sources["points"].data["y"]) == len(r.data)
    _select(explorer, "LMM")
    assert len(explorer.lmm_panel.fit_sources["subjects"].data["subject"]) == r.lmm.n_subjects
    _select(explorer, "Compare")
    assert len(explorer.compare_panel.sources["estimates"].data["estimate"]) >= 1
    _select(explorer, "ANOVA")
    assert len(explorer.anova_panel.sources["complete_points"].data["y"]) == Design().n_visits
    assert explorer.n_updates == 1  # showing a tab plots, it does not recompute
    _select(explorer, "Data")


def test_hidden_tabs_are_updated_when_shown(fresh):
    """Only the visible tab is re-plotted on each change; the others when selected."""
    assert fresh.tabs.selected_index == 0 and fresh.stale == {"LMM", "ANOVA", "Compare"}
    fresh.controls["n_subjects"].value = 18
    assert len(fresh.data_panel.sources["lines"].data["subject"]) == 18
    assert len(fresh.lmm_panel.fit_sources["subjects"].data["subject"]) == 0  # never shown yet
    _select(fresh, "LMM")
    assert len(fresh.lmm_panel.fit_sources["subjects"].data["subject"]) == 18
    assert fresh.lmm_panel.result is fresh.result.lmm
    fresh.controls["n_subjects"].value = 19  # the LMM tab is visible now: updated at once
    assert len(fresh.lmm_panel.fit_sources["subjects"].data["subject"]) == 19
    assert len(fresh.data_panel.sources["lines"].data["subject"]) == 18  # hidden: waits
    assert fresh.update_all_panels() and not fresh.stale
    assert len(fresh.data_panel.sources["lines"].data["subject"]) == 19


def test_controls_map_every_design_field(explorer):
    assert set(explorer.controls) == set(FIELDS)
    assert all(isinstance(w, widgets.Widget) for w in explorer.controls.values())


def test_starts_from_any_design_and_seed():
    d = Design(n_subjects=15, visit_times=(0, 1, 3), arms=True, arm_effect=2.0, mar_dropout=0.0)
    ex = Explorer(design=d, seed=4)
    assert ex.design == d and ex.result.design == d
    assert ex.result.lmm.n_subjects == 15
    assert set(ex.result.data["arm"]) == {"A", "B"}
    pd.testing.assert_frame_equal(ex.result.data, simulate(d, 4))


def test_css_classes_for_browser_tests(explorer):
    classes = _classes(explorer.layout)
    expected = {"lmm-explorer", "lmm-design", "lmm-status", "lmm-tabs", "lmm-data", "lmm-lmm", "lmm-anova",
                "lmm-compare", "lmm-seed", "lmm-new-sample", "lmm-preset", "lmm-bokeh", "lmm-shrinkage",
                "lmm-covariance", "lmm-cov-structure", "lmm-cov-scale", "lmm-cov-table"}
    assert expected <= classes, expected - classes
    assert explorer.tabs.titles[:4] == ("Data", "LMM", "ANOVA", "Compare")


def test_truth_beside_the_estimates(explorer):
    _select(explorer, "LMM")
    fixed = explorer.lmm_panel.fixed_sources["fixed"].data
    assert fixed["truth"][list(fixed["term"]).index("time")] == Design().slope
    truth = explorer.lmm_panel.fit_sources["truth"].data
    np.testing.assert_allclose(truth["ys"][0][0], Design().intercept + Design().slope * truth["xs"][0][0])
    assert "truth" in explorer.lmm_panel.fixed_html.value
    assert f"truth {Design().icc:.3f}" in explorer.lmm_panel.variance_html.value  # the ICC too
    variance = explorer.lmm_panel.variance_sources["variance"].data
    assert dict(zip(variance["component"], variance["truth"], strict=True)) == {
        "intercept": Design().sd_intercept, "residual": Design().sd_residual}


# --------------------------------------------------------------------- updates
def test_a_control_change_updates_result_and_plots(fresh):
    fresh.controls["n_subjects"].value = 25
    assert fresh.error is None
    assert fresh.result.design.n_subjects == 25 and fresh.result.lmm.n_subjects == 25
    assert len(fresh.data_panel.sources["lines"].data["subject"]) == 25
    assert fresh.n_updates == 2


def test_preset_applies_in_one_recomputation(fresh):
    before = fresh.n_updates
    fresh.apply_preset("MAR dropout")
    assert fresh.n_updates == before + 1
    assert fresh.result.design == PRESETS["MAR dropout"]
    assert fresh.result.random_slope is True  # the preset has a random slope
    assert fresh.result.lmm.columns.between == "arm"
    # choosing it from the dropdown is the same single update
    fresh.design_panel.preset.value = "clinics"
    assert fresh.n_updates == before + 2
    assert fresh.result.design == PRESETS["clinics"]
    assert fresh.result.lmm.columns.cluster == "clinic"


def test_hold_makes_a_burst_one_update_and_the_last_state_wins(fresh):
    before = fresh.n_updates
    with fresh.hold():
        for n in (10, 30, 17):
            fresh.controls["n_subjects"].value = n
        fresh.controls["mcar"].value = 0.2
    assert fresh.n_updates == before + 1
    assert fresh.result.design.n_subjects == 17 and fresh.result.design.mcar == 0.2


def test_quick_successive_changes_leave_the_last_state(fresh):
    """Without hold, each release is one update, in order; the result is the final state."""
    for v in (0.0, 0.5, 1.0):
        fresh.controls["time_jitter"].value = v
    fresh.controls["sd_residual"].value = 4.0
    assert fresh.result.design.time_jitter == 1.0 and fresh.result.design.sd_residual == 4.0
    assert fresh.result.design == fresh.design


def test_new_sample_changes_the_data_and_seed_reproduces_it(fresh):
    first = fresh.result.data.copy()
    fresh.design_panel.new_sample.click()
    assert fresh.seed == 12
    assert not fresh.result.data["y"].equals(first["y"])
    fresh.design_panel.seed.value = 11
    pd.testing.assert_frame_equal(fresh.result.data, first)
    other = Explorer(seed=11)
    pd.testing.assert_frame_equal(other.result.data, first)
    np.testing.assert_allclose(other.result.lmm.fixed["estimate"], fresh.result.lmm.fixed["estimate"])


def test_random_slope_option_changes_the_model(fresh):
    _select(fresh, "LMM")
    fresh.design_panel.random_slope.value = True
    assert fresh.result.random_slope is True
    assert "time" in fresh.result.lmm.ranef["subject"].columns
    assert fresh.lmm_panel.shrink_kind == "slope"
    assert len(fresh.lmm_panel.shrink_sources["slope"]["subjects"].data["own_x"]) == fresh.result.lmm.n_subjects


# -------------------------------------------------------------- teaching moments
def test_singular_preset_is_explained():
    ex = Explorer(seed=1)
    ex.apply_preset("no between-subject variance")
    # The REML estimate is 0 in many but not all samples: look for one.
    for seed in range(1, 21):
        if ex.result.lmm.singular:
            break
        ex.design_panel.seed.value = seed + 1
    assert ex.result.lmm.singular
    assert ex.error is None
    assert "Singular fit" in ex.status.text and "estimated as 0" in ex.status.text
    _select(ex, "LMM")
    assert "singular" in ex.lmm_panel.header.value


def test_missing_visits_are_counted_and_dropped_subjects_greyed(fresh):
    fresh.apply_preset("30 % MCAR")
    r = fresh.result
    lines = fresh.data_panel.sources["lines"].data
    grey = [s for s, g in zip(lines["subject"], lines["group"], strict=True) if g == "dropped by the ANOVA"]
    assert sorted(grey) == sorted(map(str, r.anova.dropped_subjects)) and grey
    missing = fresh.data_panel.sources["missing"].data
    assert sum(missing["n_missing"]) == r.design.n_subjects * r.design.n_visits - len(r.data)
    assert f"drops {r.anova.n_subjects_dropped} of {r.design.n_subjects}" in fresh.data_panel.caption.value
    assert any(f"dropped {r.anova.n_subjects_dropped} of" in n for n in r.analysis.notes)
    _select(fresh, "Compare")
    assert "dropped" in fresh.compare_panel.notes.value


def test_invalid_design_keeps_the_last_good_plots(fresh):
    good, before = fresh.result, _snapshot(fresh)
    fresh.controls["visit_times"].value = "0, banana"
    assert fresh.error is not None
    assert fresh.status.kind == "problem" and "banana" in fresh.status.text
    assert "last results" in fresh.status.text
    assert fresh.result is good and _same(before, _snapshot(fresh))
    fresh.controls["visit_times"].value = "0, 1, 2"
    assert fresh.error is None and fresh.status.kind != "problem"
    assert fresh.result.design.visit_times == (0.0, 1.0, 2.0)


def test_an_unexpected_error_is_explained_not_raised(fresh, monkeypatch):
    good = fresh.result

    def broken(*args, **kwargs):
        raise RuntimeError("the engine exploded")
    monkeypatch.setattr(explorer_module, "compute", broken)
    assert fresh.refresh() is False
    assert fresh.result is good
    assert "Something unexpected" in fresh.status.text and "exploded" in fresh.status.text
    assert "RuntimeError" in fresh.error_traceback


def _extremes(info):
    kind = info.kind
    if kind in ("int", "float"):
        return [info.min, info.max]
    if kind == "bool":
        return [True, False]
    if kind == "choice":
        return list(info.choices)
    return ["0", "0, 0.001", "0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11", "5, 1", ""]


def test_every_control_at_its_extremes_never_raises():
    """A learner drags every control to both ends: no exception escapes, the
    status explains any failure, and the app still works afterwards."""
    ex = Explorer(design=Design(n_subjects=12, arms=True, n_clinics=3, sd_clinic=1.0, sd_slope=0.3), seed=2)
    start = ex.design
    for name, info in FIELDS.items():
        for value in _extremes(info):
            ex.controls[name].value = value
            assert ex.error is None or ex.status.kind == "problem", (name, value)
            if ex.error is not None:
                assert ex.status.text and "Traceback" not in ex.status.text
        ex.design_panel.set_design(start)
        assert ex.error is None, (name, ex.error_traceback)
    ex.controls["n_subjects"].value = 13
    assert ex.error is None and ex.result.lmm.n_subjects == 13


# --------------------------------------------------------------------- extensions
def _replace_tab(monkeypatch, title, factory):
    tabs = tuple((t, factory if t == title else f) for t, f in explorer_module.EXTENSION_TABS)
    assert any(t == title for t, _ in tabs), title
    monkeypatch.setattr(explorer_module, "EXTENSION_TABS", tabs)


def test_extension_tabs_plug_in(monkeypatch):
    class Tab:
        def __init__(self, explorer):
            self.explorer = explorer
            self.layout = widgets.HTML("monte carlo")
            self.layout.add_class("lmm-montecarlo")
            self.seen = []

        def explorer_updated(self, result):
            self.seen.append(result.design)

    _replace_tab(monkeypatch, "Monte Carlo", Tab)

    def broken(explorer):
        raise RuntimeError("half written")
    _replace_tab(monkeypatch, "Show code", broken)
    _replace_tab(monkeypatch, "Your own data", lambda explorer: None)  # a factory may decline: no tab
    ex = Explorer(seed=3)
    assert ex.tabs.titles == ("Data", "LMM", "ANOVA", "Compare", "Diagnostics", "Covariance", "Monte Carlo",
                              "Show code")
    tab = ex.extensions["Monte Carlo"]
    assert tab.explorer is ex and tab.seen == [Design()]
    ex.controls["n_subjects"].value = 20
    assert tab.seen[-1].n_subjects == 20
    assert isinstance(ex.extension_errors["Show code"], RuntimeError)
    assert "lmm-unavailable" in _classes(ex.layout)


def test_the_tabs_are_imported_plainly():
    """Every tab ships with the package and is imported with the Explorer: no module looked up by
    name at run time, no tab that silently goes missing."""
    import inspect

    source = inspect.getsource(explorer_module)
    assert "importlib" not in source and "import_module" not in source
    ex = Explorer(seed=3)
    assert ex.tabs.titles == ("Data", "LMM", "ANOVA", "Compare", *(t for t, _ in explorer_module.EXTENSION_TABS))
    assert not ex.extension_errors


def test_a_failing_extension_hook_does_not_break_updates(monkeypatch):
    class Tab:
        def __init__(self, explorer):
            self.layout = widgets.HTML()

        def explorer_updated(self, result):
            raise ValueError("oops")
    _replace_tab(monkeypatch, "Monte Carlo", Tab)
    ex = Explorer(seed=3)
    ex.controls["n_subjects"].value = 21
    assert ex.error is None and ex.result.lmm.n_subjects == 21
    assert isinstance(ex.extension_errors["Monte Carlo"], ValueError)


# ------------------------------------------------------------------- own data
def test_show_data_analyses_a_learners_data(fresh):
    bp = lmm_teach.load_bp()
    assert fresh.show_data(bp, y="bp", subject="patient", time="time_num", visit="time") is True
    r = fresh.result
    assert r.design is None and r.truth is None
    assert r.lmm.n_subjects == 10 and r.anova is not None
    assert len(fresh.data_panel.sources["lines"].data["subject"]) == 10
    _select(fresh, "LMM")
    assert len(fresh.lmm_panel.fit_sources["subjects"].data["subject"]) == 10
    assert fresh.lmm_panel.fit_sources["truth"].data["xs"] == []
    # a typo is explained and the results stay
    assert fresh.show_data(bp, y="bpp", subject="patient", time="time_num") is False
    assert "did you mean 'bp'" in fresh.status.text
    assert fresh.result is r
    # touching a Design control shows simulated data again
    fresh.controls["n_subjects"].value = 22
    assert fresh.result.design.n_subjects == 22


def test_covariance_tab_follows_the_explorer_and_the_learners_data(fresh):
    """The Covariance tab fits only when it is looked at; then it shows the design's truth beside the
    estimates, refits on each change while visible, and shows the learner's own data without a truth."""
    from lmm_teach.covariance import true_covariance

    tab = fresh.extensions["Covariance"]
    assert tab.result is None  # hidden since the start: nothing fitted
    _select(fresh, "Covariance")
    n = Design().n_visits
    cells = tab.sources["truth"]["cells"].data
    np.testing.assert_allclose(cells["value"], true_covariance(fresh.design).to_numpy().ravel())
    assert all(len(tab.sources[k]["cells"].data["value"]) == n * n for k in ("ri", "rs", "mmrm"))
    assert tab.shown == "us" and tab.status.kind != "problem" and tab.reading.value
    fresh.controls["visit_times"].value = "0, 1, 2, 4"  # visible: refitted at once
    assert tab.result.n_visits == 4 and len(tab.sources["mmrm"]["cells"].data["value"]) == 16
    _select(fresh, "Data")
    bp = lmm_teach.load_bp()
    assert fresh.show_data(bp, y="bp", subject="patient", time="time_num", visit="time")
    assert tab.result.n_visits == 4  # hidden: waits
    _select(fresh, "Covariance")
    assert tab.result.truth is None and tab.sources["truth"]["cells"].data["value"] == []
    assert tab.result.n_subjects == 10 and len(tab.sources["mmrm"]["cells"].data["value"]) == 9
    assert fresh.error is None and not fresh.extension_errors


# ---------------------------------------------------------------- stand-alone
def test_result_panels_work_alone():
    from lmm_teach.compare import analyze
    from lmm_teach.widgets import AnovaPanel, ComparePanel, DataPanel, LMMPanel

    bp = lmm_teach.load_bp()
    a = analyze(bp, y="bp", subject="patient", time="time_num", visit="time")
    data = DataPanel(bp, y="bp", subject="patient", time="time_num", visit="time")
    assert len(data.sources["lines"].data["subject"]) == 10
    lmm = LMMPanel(a.lmm, data=bp)
    assert lmm.result is a.lmm and len(lmm.fit_sources["subjects"].data["subject"]) == 10
    assert len(lmm.shrink_sources["intercept"]["subjects"].data["own_x"]) == 10
    anova = AnovaPanel(a.anova, data=bp, time="time_num")
    assert len(anova.sources["complete_points"].data["y"]) == 3
    cmp = ComparePanel(a)
    assert "Does the outcome change over time?" in cmp.answers.value
    for panel, css in ((data, "lmm-data"), (lmm, "lmm-lmm"), (anova, "lmm-anova"), (cmp, "lmm-compare")):
        assert css in panel.layout._dom_classes
        assert "application/vnd.jupyter.widget-view+json" in panel._repr_mimebundle_()


def test_a_panel_that_cannot_plot_is_explained(fresh, monkeypatch):
    """A failure while plotting the visible tab fails the update as a whole;
    one while bringing a hidden tab up to date is explained when it is shown."""
    def broken(*args, **kwargs):
        raise ValueError("cannot draw this")
    good = fresh.result
    monkeypatch.setattr(fresh.data_panel, "prepare", broken)
    fresh.controls["n_subjects"].value = 30
    assert fresh.result is good and fresh.status.kind == "problem" and "cannot draw" in fresh.status.text
    monkeypatch.undo()
    fresh.controls["n_subjects"].value = 31
    assert fresh.error is None and fresh.result.design.n_subjects == 31
    monkeypatch.setattr(fresh.lmm_panel, "prepare", broken)
    _select(fresh, "LMM")
    assert fresh.status.kind == "problem" and "LMM tab" in fresh.status.text
    assert "LMM" in fresh.stale and fresh.result.design.n_subjects == 31


def test_an_outcome_without_variation_is_explained(fresh):
    """Whether the fits fail on it or return NaN, the learner reads the cause."""
    bp = lmm_teach.load_bp().assign(bp=120.0)
    fresh.show_data(bp, y="bp", subject="patient", time="time_num", visit="time")
    assert "no variation" in fresh.status.text and "120" in fresh.status.text


def test_real_data_say_no_x_truth_and_plots_say_patient():
    """'x: truth' once appeared over a learner's own data (lesson 0); plots said 'subject' where the
    lessons say 'patient'."""
    from lmm_teach.compare import analyze
    from lmm_teach.widgets import ComparePanel, DataPanel, LMMPanel

    bp = lmm_teach.load_bp()
    analysis = analyze(bp, y="bp", subject="patient", time="time_num", visit="time")
    compare = ComparePanel(analysis)
    assert compare.figure.title.text == "Estimates by method"
    lmm = LMMPanel(analysis.lmm, data=bp)
    assert "truth" not in lmm.fixed_figure.title.text and "truth" not in lmm.variance_figure.title.text
    simulated = Explorer(Design(n_subjects=12, visit_times=(0, 1, 2)), seed=2)
    simulated.tabs.selected_index = list(simulated.tabs.titles).index("Compare")
    assert simulated.compare_panel.figure.title.text == "Estimates by method (x: truth)"
    simulated.tabs.selected_index = list(simulated.tabs.titles).index("LMM")
    assert simulated.lmm_panel.fixed_figure.title.text.endswith("(x: truth)")
    assert "each patient's line" in simulated.lmm_panel.fit_figure.title.text
    data = DataPanel(bp, y="bp", subject="patient", time="time_num", visit="time")
    assert data.figure.title.text == "Each line is one patient"
