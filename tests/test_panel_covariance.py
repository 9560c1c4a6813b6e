"""The Covariance panel: heatmaps of the true and estimated visit x visit covariance, driven from plain Python.

The heatmaps' numbers are read from their ColumnDataSources; the controls are driven by setting
``.value``, as a browser would.  The Explorer's tab is tested in test_widgets_explorer.py.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import lmm_teach
from lmm_teach.covariance import correlation, covariance_reading, lag_correlations, true_covariance
from lmm_teach.design import Design
from lmm_teach.plots.covariance import (
    PALETTE,
    cell_colour,
    contrast_ratio,
    covariance_data,
    make_covariance_figure,
    set_visits,
    shared_limit,
)
from lmm_teach.widgets import covariance_view as view_module
from lmm_teach.widgets.covariance_panel import CovariancePanel
from lmm_teach.widgets.covariance_view import covariance_view, live_problem

# ------------------------------------------------------------------------------- the heatmap


def test_heatmap_cells_numbers_and_readable_ink():
    m = pd.DataFrame([[4.0, -2.0], [-2.0, 9.0]], index=[0, 1], columns=[0, 1])
    cells = covariance_data(m, vmax=9.0)["cells"]
    assert cells["row"] == ["0", "0", "1", "1"] and cells["col"] == ["0", "1", "0", "1"]
    assert cells["value"] == [4.0, -2.0, -2.0, 9.0] and cells["text"] == ["4.00", "-2.00", "-2.00", "9.00"]
    assert cells["fill"][3] == PALETTE[-1]                 # the largest value: the scale's end
    assert cells["fill"][1] != cells["fill"][0]            # negative and positive differ
    # every number contrasts at least 4.5:1 (WCAG AA) with its cell, whatever the value
    for v in np.linspace(-1, 1, 201):
        fill = cell_colour(v, 1.0)
        ink = covariance_data(pd.DataFrame([[v]]), correlation=True)["cells"]["ink"][0]
        assert fill == covariance_data(pd.DataFrame([[v]]), correlation=True)["cells"]["fill"][0]
        assert contrast_ratio(fill, ink) >= 4.5, (v, fill, ink)
    assert covariance_data(None)["cells"]["value"] == []


def test_one_scale_for_matrices_side_by_side():
    a, b = np.array([[1.0, 0.5], [0.5, 2.0]]), np.array([[8.0, -1.0], [-1.0, 3.0]])
    assert shared_limit([a, b], correlation=False) == 8.0
    assert shared_limit([a, b], correlation=True) == 1.0
    same = covariance_data(pd.DataFrame([[2.0]]), vmax=8.0)["cells"]["fill"]
    assert same == covariance_data(pd.DataFrame([[2.0]]), vmax=8.0)["cells"]["fill"]
    assert same != covariance_data(pd.DataFrame([[2.0]]), vmax=2.0)["cells"]["fill"]


def test_first_visit_left_and_on_top():
    fig, _ = make_covariance_figure(name="cov-test", title="t")
    set_visits(fig, ["0", "1", "2"])
    assert list(fig.x_range.factors) == ["0", "1", "2"] and list(fig.y_range.factors) == ["2", "1", "0"]
    assert "lmm-plot-cov-test" in fig.css_classes


# ------------------------------------------------------------------------------- readings


def _ar1(rho, n=5, var=1.0):
    lag = np.abs(np.subtract.outer(np.arange(n), np.arange(n)))
    return pd.DataFrame(var * rho ** lag)


def test_lag_correlations_and_readings_by_hand():
    cs = pd.DataFrame(0.6 + 0.4 * np.eye(4)) * 9.0
    np.testing.assert_allclose(lag_correlations(cs), [0.6, 0.6, 0.6])
    np.testing.assert_allclose(lag_correlations(_ar1(0.8)), [0.8, 0.64, 0.512, 0.4096])
    text = covariance_reading(_ar1(0.8), reference_label="the unstructured MMRM", intercept_lmm=cs)
    assert text.startswith("The random-intercept LMM forces equal correlations at every lag (compound symmetry, 0.60)")
    assert "fall with lag (0.80 between neighbouring visits, 0.41 between the first and the last)" in text
    assert "variance" not in text
    assert "about the same at every lag" in covariance_reading(cs, reference_label="x")
    grows = pd.DataFrame(np.diag([1.0, 2.0, 4.0]) + 0.5)  # correlations 0.5/sqrt(1.5 * 2.5) ...: about equal
    text = covariance_reading(grows, reference_label="x")
    assert text.startswith("In x the correlations are about the same at every lag")
    assert text.endswith("as compound symmetry assumes; but the variance grows from 1.5 at the first visit to 4.5 "
                         "at the last, which the random-intercept LMM cannot follow.")


# ------------------------------------------------------------------------------- the view (pure)


@pytest.fixture(scope="module")
def trial():
    design = Design(n_subjects=30, arms=True, sd_slope=1.0, corr_intercept_slope=0.3, visit_times=(0, 1, 2, 3))
    return design, lmm_teach.simulate(design, seed=1)


def test_view_fits_the_lmms_and_the_structures(trial):
    design, data = trial
    v = covariance_view(data, y="y", subject="subject", visit="visit", time="time", between="arm", design=design)
    assert list(v.table.index) == ["us", "toep", "ar1", "cs", "ad", "lmm: random intercept", "lmm: random slope"]
    pd.testing.assert_frame_equal(v.truth, true_covariance(design))
    mm = lmm_teach.fit_mmrm(data, y="y", subject="subject", visit="visit", between="arm", exact=True)
    np.testing.assert_allclose(v.covariance("us").to_numpy(), mm.covariance.to_numpy(), rtol=1e-6)
    # cs MMRM and random-intercept LMM are one model (positive correlation): same likelihood and matrix
    assert v.table.loc["cs", "loglik"] == pytest.approx(v.table.loc["lmm: random intercept", "loglik"], abs=1e-4)
    np.testing.assert_allclose(v.lmm["ri"].to_numpy(), v.covariance("cs").to_numpy(), rtol=1e-4)
    assert v.best("aic") == "lmm: random slope"  # the truth has a random slope; AIC finds it here
    assert v.reading() == covariance_reading(v.covariance("us"), reference_label="the unstructured MMRM",
                                             intercept_lmm=v.lmm["ri"])
    more = v.with_structure("toeph")
    assert "toeph" in more.mmrm and "toeph" in more.table.index and "toeph" not in v.mmrm


def test_view_does_not_fit_what_the_patients_cannot_carry():
    assert live_problem("us", n_visits=6, n_subjects=40) is None
    assert "only 10 patients" in live_problem("us", n_visits=6, n_subjects=10)
    assert "too many to refit" in live_problem("us", n_visits=9, n_subjects=400)
    d = Design(n_subjects=8, visit_times=(0, 1, 2, 3, 4))
    v = covariance_view(lmm_teach.simulate(d, 2), y="y", subject="subject", visit="visit", time="time")
    assert "us" not in v.mmrm and "only 8 patients" in v.problems["us"]
    assert np.isnan(v.table.loc["us", "aic"]) and v.table.loc["us", "n_params"] == 15
    assert v.reference()[0].startswith("the toep MMRM")  # the flexible one that could be fitted


def test_view_refuses_a_time_as_visit_in_words():
    d = Design(n_subjects=10, time_jitter=0.3)
    data = lmm_teach.simulate(d, 1)
    with pytest.raises(lmm_teach.DataError, match="planned visits"):
        covariance_view(data, y="y", subject="subject", visit="time", time="time")


# ------------------------------------------------------------------------------- the panel


@pytest.fixture
def bp_panel():
    bp = lmm_teach.load_bp()
    return CovariancePanel(bp, y="bp", subject="patient", visit="time", time="time_num")


def _cells(panel, key):
    return list(panel.sources[key]["cells"].data["value"])


def test_panel_own_data_has_no_truth(bp_panel):
    p = bp_panel
    assert _cells(p, "truth") == [] and p.result.truth is None
    assert all(len(_cells(p, k)) == 9 for k in ("ri", "rs", "mmrm"))
    assert all(np.isfinite(_cells(p, k)).all() for k in ("ri", "rs", "mmrm"))
    assert p.shown == "us" and p.figures["mmrm"].title.text == "MMRM, us: covariance"
    assert "shown" in p.table.value and "smallest AIC" in p.table.value
    assert list(p.figures["mmrm"].x_range.factors) == ["baseline", "week2", "week4"]


def test_dropdown_and_toggle(bp_panel, monkeypatch):
    p = bp_panel
    us = _cells(p, "mmrm")
    p.structure.value = "ar1"
    ar1 = _cells(p, "mmrm")
    assert p.shown == "ar1" and ar1 != us and p.figures["mmrm"].title.text == "MMRM, ar1: covariance"
    np.testing.assert_allclose(np.array(ar1).reshape(3, 3), p.result.mmrm["ar1"].covariance.to_numpy())
    assert "ar1 (first-order autoregressive)" in p.table.value

    def no_fits(*args, **kwargs):
        raise AssertionError("the toggle must not refit")
    monkeypatch.setattr(view_module, "compare_covariances", no_fits)
    p.scale.value = "correlation"
    corr = np.array(_cells(p, "mmrm")).reshape(3, 3)
    np.testing.assert_allclose(corr, correlation(p.result.mmrm["ar1"].covariance).to_numpy())
    assert p.sources["mmrm"]["cells"].data["text"][0] == "1.00"
    assert p.figures["ri"].title.text == "Random-intercept LMM: correlation"


def test_a_structure_the_data_cannot_carry_is_explained_and_the_plots_stay(bp_panel):
    p = bp_panel
    before = {k: _cells(p, k) for k in p.sources}
    p.structure.value = "adh"  # 5 parameters for 3 visits: fine; then data with 4 patients
    assert p.shown == "adh"
    small = lmm_teach.load_bp().query("patient <= 4")
    good = p.result
    p.update(small, y="bp", subject="patient", visit="time", time="time_num")
    assert p.status.kind == "problem" and "only 4 patients" in p.status.text
    assert "still show the last results" in p.status.text and "Traceback" not in p.status.text
    assert p.result is good and p.view is not good and p.shown == "adh"
    p.structure.value = "cs"  # a structure the 4 patients carry: the new data are shown
    assert p.status.kind != "problem" and p.result.n_subjects == 4 and p.shown == "cs"
    assert before["ri"] != _cells(p, "ri")


def test_a_fit_that_fails_is_explained_and_the_plots_stay(bp_panel, monkeypatch):
    p = bp_panel
    before = {k: _cells(p, k) for k in p.sources}

    def broken(*args, **kwargs):
        raise np.linalg.LinAlgError("Matrix is singular")
    monkeypatch.setattr(view_module, "compare_covariances", broken)
    p.structure.value = "csh"  # not in the table yet: fitted now, and that fit fails
    assert p.status.kind == "problem" and "singular" in p.status.text.lower()
    assert {k: _cells(p, k) for k in p.sources} == before and p.shown == "us"
    assert "csh" in p.view.table.index and "csh" not in p.view.mmrm


def test_docstring_examples_run():
    import doctest

    from lmm_teach import covariance
    from lmm_teach.plots import covariance as plots_covariance
    from lmm_teach.widgets import covariance_panel

    for module in (covariance, plots_covariance, view_module, covariance_panel):
        failed, attempted = doctest.testmod(module)
        assert attempted > 0 and failed == 0, module.__name__
