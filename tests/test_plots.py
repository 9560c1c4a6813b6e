"""The bokeh figure builders and their pure data functions (no browser needed).

Most tests feed small hand-made inputs whose answer can be worked out by hand;
the integration tests at the end use simulated data and the real fits.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from bokeh.models import ColumnDataSource

from lmm_teach.methods import METHODS
from lmm_teach.plots import (
    GREY,
    OKABE_ITO,
    compare_data,
    fit_data,
    fixed_data,
    generic_component,
    generic_term,
    group_colours,
    make_compare_figure,
    make_fit_figure,
    make_fixed_figure,
    make_shrinkage_figure,
    make_spaghetti_figure,
    make_variance_figure,
    make_visit_means_figure,
    new_figure,
    set_factors,
    shrinkage_data,
    shrinkage_kind,
    spaghetti_data,
    update_sources,
    variance_data,
    visit_means_data,
)
from lmm_teach.plots.fit_lines import population_design_row
from lmm_teach.plots.shrinkage import ROWS
from lmm_teach.plots.spaghetti import DROPPED_LABEL
from lmm_teach.validate import Columns


def _long(rows):
    return pd.DataFrame(rows, columns=["subject", "visit", "time", "y"])


def _same_columns(sources: dict, data: dict) -> None:
    """The data function fills exactly the columns the figure's sources were built with."""
    assert set(data) == set(sources)
    for name, columns in data.items():
        assert set(columns) == set(sources[name].data), name
        lengths = {len(v) for v in columns.values()}
        assert len(lengths) <= 1, f"{name}: columns of unequal length {lengths}"


# --------------------------------------------------------------------------- theme
def test_new_figure_is_fixed_size_with_stable_css_class():
    fig = new_figure(name="demo", title="t", x_label="x", y_label="y")
    assert fig.sizing_mode == "fixed" and fig.width == 560
    assert {"lmm-plot", "lmm-plot-demo"} <= set(fig.css_classes)


def test_group_colours_are_okabe_ito_and_distinct():
    colours = group_colours(["A", "B", "C", "D"])
    assert set(colours.values()) <= set(OKABE_ITO.values())
    assert len(set(colours.values())) == 4
    assert OKABE_ITO["yellow"] not in colours.values()  # too light for thin lines


# ------------------------------------------------------------------------ spaghetti
@pytest.fixture
def small_long():
    # s1 complete; s2 misses visit 1 (a gap); s3 drops out after visit 0.
    return _long([
        ("s1", 0, 0.0, 10.0), ("s1", 1, 1.0, 11.0), ("s1", 2, 2.0, 12.0),
        ("s2", 0, 0.0, 20.0), ("s2", 2, 2.1, 22.0),
        ("s3", 0, 0.0, 30.0),
    ])


def test_spaghetti_breaks_lines_at_missing_visits_and_counts_them(small_long):
    before = small_long.copy()
    out = spaghetti_data(small_long, y="y", subject="subject", time="time", visit="visit", dropped=["s2", "s3"])
    pd.testing.assert_frame_equal(small_long, before)  # the caller's data are untouched
    lines = out["lines"]
    by = {s: i for i, s in enumerate(lines["subject"])}
    np.testing.assert_array_equal(lines["ys"][by["s1"]], [10.0, 11.0, 12.0])
    np.testing.assert_array_equal(lines["ys"][by["s2"]], [20.0, np.nan, 22.0])
    np.testing.assert_array_equal(lines["xs"][by["s2"]], [0.0, np.nan, 2.1])
    np.testing.assert_array_equal(lines["ys"][by["s3"]], [30.0])
    # missing: visit 1 lacks s2 and s3, visit 2 lacks s3
    assert out["missing"]["visit"] == ["1", "2"]
    assert out["missing"]["n_missing"] == [2, 1]
    assert out["missing"]["text"] == ["2 missing", "1 missing"]
    assert min(out["missing"]["y"]) < 10.0  # written under the data


def test_spaghetti_greys_out_dropped_subjects_and_draws_them_first(small_long):
    out = spaghetti_data(small_long, y="y", subject="subject", time="time", visit="visit", dropped=["s2"])
    lines = out["lines"]
    assert lines["subject"][0] == "s2"  # beneath the analysed subjects
    assert lines["colour"][0] == GREY and lines["group"][0] == DROPPED_LABEL
    assert GREY not in lines["colour"][1:]
    pts = out["points"]
    grey = [s for s, c in zip(pts["subject"], pts["colour"], strict=True) if c == GREY]
    assert grey == ["s2", "s2"]


def test_spaghetti_hover_columns_name_subject_visit_time(small_long):
    out = spaghetti_data(small_long, y="y", subject="subject", time="time", visit="visit")
    pts = out["points"]
    assert len(pts["x"]) == len(small_long)
    i = list(pts["subject"]).index("s2") + 1  # s2's second measurement
    assert (pts["visit"][i], pts["x"][i], pts["y"][i]) == ("2", 2.1, 22.0)


def test_spaghetti_colours_by_arm():
    data = _long([("a", 0, 0.0, 1.0), ("a", 1, 1.0, 2.0), ("b", 0, 0.0, 1.0), ("b", 1, 1.0, 3.0)])
    data["arm"] = ["A", "A", "B", "B"]
    out = spaghetti_data(data, y="y", subject="subject", time="time", visit="visit", between="arm")
    colours = group_colours(["A", "B"])
    assert out["lines"]["colour"] == [colours["A"], colours["B"]]
    assert out["lines"]["group"] == ["arm A", "arm B"]
    assert out["missing"]["x"] == []  # nothing missing, nothing written


def test_spaghetti_without_visit_column_draws_plain_lines(small_long):
    out = spaghetti_data(small_long.drop(columns="visit"), y="y", subject="subject", time="time")
    assert not any(np.isnan(v).any() for v in out["lines"]["ys"])
    assert out["missing"]["x"] == []


def test_spaghetti_ignores_rows_with_missing_outcome(small_long):
    data = small_long.copy()
    data.loc[1, "y"] = np.nan  # s1 at visit 1: as if missing
    out = spaghetti_data(data, y="y", subject="subject", time="time", visit="visit")
    by = {s: i for i, s in enumerate(out["lines"]["subject"])}
    np.testing.assert_array_equal(out["lines"]["ys"][by["s1"]], [10.0, np.nan, 12.0])


def test_spaghetti_sources_match_figure(small_long):
    fig, sources = make_spaghetti_figure()
    out = spaghetti_data(small_long, y="y", subject="subject", time="time", visit="visit")
    _same_columns(sources, out)
    assert "lmm-plot-spaghetti" in fig.css_classes


def test_update_sources_assigns_each_source_once(small_long):
    """One assignment per source: the browser receives one message per source."""
    fig, sources = make_spaghetti_figure()
    events = []
    for name, src in sources.items():
        src.on_change("data", lambda attr, old, new, name=name: events.append(name))
    update_sources(sources, spaghetti_data(small_long, y="y", subject="subject", time="time", visit="visit"))
    assert sorted(events) == ["lines", "missing", "points"]


# ------------------------------------------------------------------ fitted lines
def _fake_lmm(*, between=None, slope_re=False):
    """A minimal stand-in with the LMMResult fields the plot functions read."""
    cols = Columns(y="y", subject="subject", time="time", visit="visit", between=between)
    terms = ["(Intercept)", "time"] + (["armB", "time:armB"] if between else [])
    est = [100.0, -1.0] + ([2.0, -0.5] if between else [])
    se = [1.0, 0.2] + ([1.5, 0.3] if between else [])
    df = [38.0, 150.0] + ([38.0, 150.0] if between else [])
    fixed = pd.DataFrame({"estimate": est, "se": se, "df": df, "t": np.divide(est, se), "p": 0.01,
                          "ci_low": np.subtract(est, 2 * np.array(se)),
                          "ci_high": np.add(est, 2 * np.array(se))}, index=pd.Index(terms, name="term"))
    cov = pd.DataFrame(np.diag(np.square(se)), index=terms, columns=terms)
    var = [{"group": "subject", "var1": "(Intercept)", "var2": None, "vcov": 25.0, "sdcor": 5.0}]
    if slope_re:
        var += [{"group": "subject", "var1": "time", "var2": None, "vcov": 0.25, "sdcor": 0.5},
                {"group": "subject", "var1": "(Intercept)", "var2": "time", "vcov": 0.5, "sdcor": 0.2}]
    var += [{"group": "Residual", "var1": None, "var2": None, "vcov": 9.0, "sdcor": 3.0}]
    return SimpleNamespace(columns=cols, fixed=fixed, cov_fixed=cov, variance=pd.DataFrame(var))


def test_population_design_row_follows_lme4_terms():
    X = population_design_row(["(Intercept)", "time", "armB", "armB:time"], np.array([3.0]),
                              time="time", between="arm", level="B")
    np.testing.assert_array_equal(X, [[1.0, 3.0, 1.0, 3.0]])
    X = population_design_row(["(Intercept)", "time", "armB", "time:armB"], np.array([3.0]),
                              time="time", between="arm", level="A")
    np.testing.assert_array_equal(X, [[1.0, 3.0, 0.0, 0.0]])


def test_fit_data_population_line_band_and_truth(small_long):
    lmm = _fake_lmm()
    lmm.fitted = pd.Series(np.arange(len(small_long), dtype=float), index=small_long.index)
    out = fit_data(lmm, small_long, truth={"(Intercept)": 99.0, "time": -0.8}, n_grid=5)
    grid = out["population"]["xs"][0]
    np.testing.assert_allclose(grid, np.linspace(0.0, 2.1, 5))
    np.testing.assert_allclose(out["population"]["ys"][0], 100.0 - grid)
    # band: beta' x +/- t(0.975, min df = 38) * sqrt(1 + 0.04 t^2)
    from scipy import stats

    q = stats.t.ppf(0.975, 38.0)
    upper = out["band"]["ys"][0][:5]
    np.testing.assert_allclose(upper, 100.0 - grid + q * np.sqrt(1.0 + 0.04 * grid**2))
    np.testing.assert_allclose(out["truth"]["ys"][0], 99.0 - 0.8 * grid)
    # one subject line per subject, through its fitted values in time order
    subj = out["subjects"]
    assert subj["subject"] == ["s1", "s2", "s3"]
    np.testing.assert_array_equal(subj["ys"][1], [3.0, 4.0])
    _same_columns(make_fit_figure()[1], out)


def test_fit_data_one_line_per_arm_with_the_arm_truth():
    data = _long([("a", 0, 0.0, 1.0), ("a", 1, 2.0, 2.0), ("b", 0, 0.0, 1.0), ("b", 1, 2.0, 3.0)])
    data["arm"] = ["A", "A", "B", "B"]
    lmm = _fake_lmm(between="arm")
    lmm.fitted = pd.Series(data["y"].to_numpy(), index=data.index)
    out = fit_data(lmm, data, truth={"(Intercept)": 100.0, "time": -1.0, "arm": 2.0, "time:arm": -0.5}, n_grid=3)
    assert out["population"]["label"] == ["population, arm A", "population, arm B"]
    np.testing.assert_allclose(out["population"]["ys"][1], [102.0, 100.5, 99.0])  # 102 - 1.5 t
    np.testing.assert_allclose(out["truth"]["ys"][1], [102.0, 100.5, 99.0])
    assert out["subjects"]["colour"] == list(group_colours(["A", "B"]).values())
    assert len(out["truth"]["ys"]) == 2


def test_fit_data_without_truth_draws_no_truth(small_long):
    lmm = _fake_lmm()
    lmm.fitted = pd.Series(0.0, index=small_long.index)
    assert fit_data(lmm, small_long)["truth"]["xs"] == []


# ----------------------------------------------------------------------- shrinkage
@pytest.fixture
def shrink_ri():
    return pd.DataFrame({"n_obs": [2, 6, 6], "own_intercept": [90.0, 104.0, 101.0],
                         "lmm_intercept": [96.0, 103.0, 100.5], "population_intercept": [100.0, 100.0, 102.0]},
                        index=pd.Index(["s1", "s2", "s3"], name="subject"))


def test_shrinkage_intercept_rows_and_arrows(shrink_ri):
    assert shrinkage_kind(shrink_ri) == "intercept"
    truth = pd.DataFrame({"intercept": [95.0, 103.5], "slope": [-1.0, -1.0]}, index=["s1", "s2"])
    out = shrinkage_data(shrink_ri, truth=truth)
    subj = out["subjects"]
    assert subj["subject"] == ["s1", "s2", "s3"]
    np.testing.assert_array_equal(subj["own_y"], [ROWS["own"]] * 3)
    np.testing.assert_array_equal(subj["lmm_y"], [ROWS["lmm"]] * 3)
    # the arrows run from the own estimate to the LMM's
    np.testing.assert_array_equal(subj["own_x"], [90.0, 104.0, 101.0])
    np.testing.assert_array_equal(subj["lmm_x"], [96.0, 103.0, 100.5])
    # s3 has no truth: NaN, not drawn
    np.testing.assert_array_equal(subj["truth_x"], [95.0, 103.5, np.nan])
    np.testing.assert_array_equal(subj["truth_y"], [ROWS["truth"], ROWS["truth"], np.nan])
    # one population mark, at the mean of the subjects' population lines (no groups)
    assert out["population"]["x"] == [pytest.approx(302.0 / 3)]
    _same_columns(make_shrinkage_figure(kind="intercept")[1], out)


def test_shrinkage_groups_get_one_population_mark_each(shrink_ri):
    out = shrinkage_data(shrink_ri, groups={"s1": "A", "s2": "A", "s3": "B"})
    assert out["population"]["x"] == [100.0, 102.0]
    assert out["population"]["label"] == ["population line, A", "population line, B"]
    colours = group_colours(["A", "B"])
    assert out["subjects"]["colour"] == [colours["A"], colours["A"], colours["B"]]


def test_shrinkage_slope_kind_plots_level_against_slope(shrink_ri):
    shrink = shrink_ri.assign(own_slope=[-3.0, -1.0, 0.0], lmm_slope=[-1.5, -1.0, -0.5],
                              population_slope=[-1.0, -1.0, -1.0])
    assert shrinkage_kind(shrink) == "slope"
    truth = pd.DataFrame({"intercept": [95.0, 103.5, 99.0], "slope": [-2.0, -1.1, -0.2]},
                         index=["s1", "s2", "s3"])
    out = shrinkage_data(shrink, truth=truth)
    np.testing.assert_array_equal(out["subjects"]["own_y"], [-3.0, -1.0, 0.0])
    np.testing.assert_array_equal(out["subjects"]["lmm_y"], [-1.5, -1.0, -0.5])
    np.testing.assert_array_equal(out["subjects"]["truth_y"], [-2.0, -1.1, -0.2])
    assert out["population"]["y"] == [-1.0]
    _same_columns(make_shrinkage_figure(kind="slope")[1], out)


def test_shrinkage_figure_rejects_unknown_kind():
    with pytest.raises(ValueError, match="kind"):
        make_shrinkage_figure(kind="banana")


# ----------------------------------------------------------------------- estimates
def test_generic_names_of_terms_and_components():
    c = Columns(y="y", subject="id", time="week", between="group", cluster="site")
    assert [generic_term(t, c) for t in ["(Intercept)", "week", "groupB", "groupB:week", "other"]] == [
        "(Intercept)", "time", "arm", "time:arm", "other"]
    assert generic_component("id", "(Intercept)", c) == "intercept"
    assert generic_component("id", "week", c) == "slope"
    assert generic_component("site", "(Intercept)", c) == "cluster"
    assert generic_component("Residual", None, c) == "residual"


def test_fixed_data_leaves_out_the_intercept_and_adds_the_truth():
    lmm = _fake_lmm(between="arm")
    out = fixed_data(lmm, truth={"time": -1.0, "arm": 0.0})["fixed"]
    # table order read top-down = reversed factor order (bokeh puts the first factor at the bottom)
    assert out["term"] == ["time:armB", "armB", "time"]
    np.testing.assert_array_equal(out["truth"], [np.nan, 0.0, -1.0])
    assert out["estimate"] == [-0.5, 2.0, -1.0]
    assert len(set(out["label"])) == 3  # the categorical axis needs distinct labels
    _same_columns(make_fixed_figure()[1], {"fixed": out})


def test_variance_data_lists_sds_not_correlations():
    lmm = _fake_lmm(slope_re=True)
    out = variance_data(lmm, truth={"intercept": 5.0, "slope": 0.4, "residual": 3.0})["variance"]
    assert out["component"] == ["residual", "slope", "intercept"]
    assert out["estimate"] == [3.0, 0.5, 5.0]
    assert out["truth"] == [3.0, 0.4, 5.0]
    _same_columns(make_variance_figure()[1], {"variance": out})


def test_set_factors_only_assigns_on_change():
    fig, _ = make_fixed_figure()
    events = []
    fig.y_range.on_change("factors", lambda attr, old, new: events.append(new))
    set_factors(fig.y_range, ["a", "b"])
    set_factors(fig.y_range, ["a", "b"])
    assert events == [["a", "b"]]


# --------------------------------------------------------------------- visit means
def test_visit_means_complete_cases_beside_all_observed_and_truth():
    cells = pd.DataFrame({"visit": [0, 1], "mean": [10.0, 12.0], "sd": [1.0, 1.0], "n": [1, 1]})
    data = _long([("a", 0, 0.0, 10.0), ("a", 1, 2.0, 12.0), ("b", 0, 0.0, 20.0)])
    out = visit_means_data(cells, visit="visit", data=data, y="y", time="time",
                           truth={"(Intercept)": 11.0, "time": 1.0})
    assert out["complete_points"]["y"] == [10.0, 12.0]
    assert out["observed_points"]["y"] == [15.0, 12.0]
    assert out["observed_points"]["n"] == [2, 1]
    assert out["complete_points"]["x"] == [0.0, 2.0]  # visits at their mean time
    np.testing.assert_allclose(out["truth"]["ys"][0], [11.0, 13.0])
    _same_columns(make_visit_means_figure()[1], out)


def test_visit_means_per_arm_and_text_visits():
    cells = pd.DataFrame({"arm": ["A", "A", "B", "B"], "visit": ["pre", "post", "pre", "post"],
                          "mean": [1.0, 2.0, 3.0, 4.0], "sd": 0.0, "n": 2})
    out = visit_means_data(cells, visit="visit", between="arm")
    assert out["complete_lines"]["label"] == ["complete cases (ANOVA), arm A", "complete cases (ANOVA), arm B"]
    # text visits: in their natural order ("post" < "pre"), at positions 0, 1
    assert out["complete_points"]["x"] == [0.0, 1.0, 0.0, 1.0]
    assert out["truth"]["xs"] == [] and out["observed_points"]["x"] == []


# ---------------------------------------------------------------------- comparison
def test_compare_data_keeps_rows_with_an_estimate():
    cmp = pd.DataFrame({
        "hypothesis": ["time", "time", "time"], "analysis": ["lmm", "lmm_categorical", "anova"],
        "estimate": [-1.0, np.nan, -0.6], "se": [0.1, np.nan, np.nan], "p": [0.001, 0.002, 0.01],
        "truth": [-1.0, -1.0, -1.0]})
    out = compare_data(cmp)["estimates"]
    assert out["factor"] == [("time", "RM-ANOVA"), ("time", "LMM")]
    assert out["colour"] == [METHODS["anova"].colour, METHODS["lmm"].colour]  # the registry's colours
    assert out["ci_low"][1] == pytest.approx(-1.0 - 1.959964 * 0.1)
    assert np.isnan(out["ci_low"][0])  # no SE, no interval
    _same_columns(make_compare_figure()[1], {"estimates": out})


# ------------------------------------------------------------ with the real core
def test_plots_of_a_real_analysis():
    """Simulated MAR trial -> analyze -> every data function; shapes agree with the fits."""
    from lmm_teach.compare import analyze, shrinkage
    from lmm_teach.design import PRESETS
    from lmm_teach.simulate import simulate
    from lmm_teach.widgets.truth import subject_truth, truth_from_design

    design = PRESETS["MAR dropout"]
    sim = simulate(design, 7, with_truth=True)
    data = sim.data
    a = analyze(data, y="y", subject="subject", time="time", visit="visit", between="arm",
                random_slope=True, truth=design)
    truth = truth_from_design(design)

    spag = spaghetti_data(data, y="y", subject="subject", time="time", visit="visit", between="arm",
                          dropped=a.anova.dropped_subjects)
    assert len(spag["lines"]["subject"]) == design.n_subjects
    assert sum(c == GREY for c in spag["lines"]["colour"]) == a.anova.n_subjects_dropped
    assert sum(spag["missing"]["n_missing"]) == design.n_subjects * design.n_visits - len(data)

    fit = fit_data(a.lmm, data, truth=truth)
    beta = a.lmm.fixed["estimate"]
    np.testing.assert_allclose(fit["population"]["ys"][0][0], beta["(Intercept)"] + beta["time"] * fit[
        "population"]["xs"][0][0])
    np.testing.assert_allclose(np.concatenate(fit["subjects"]["ys"]).sum(), a.lmm.fitted.sum())

    shrink = shrinkage(data, a.lmm)
    sh = shrinkage_data(shrink, groups=sim.subjects["arm"].to_dict(), truth=subject_truth(sim))
    assert shrinkage_kind(shrink) == "slope"
    assert len(sh["subjects"]["own_x"]) == a.lmm.n_subjects
    assert np.isfinite(sh["subjects"]["truth_y"]).all()
    assert len(sh["population"]["x"]) == 2

    vm = visit_means_data(a.anova.cell_means, visit="visit", between="arm", data=data, y="y", time="time",
                          truth=truth)
    assert sum(vm["complete_points"]["n"]) == a.anova.n_subjects_used * design.n_visits

    fx = fixed_data(a.lmm, truth=truth)["fixed"]
    assert set(fx["term"]) == set(a.lmm.fixed.index) - {"(Intercept)"}
    assert not np.isnan(fx["truth"]).any()
    vd = variance_data(a.lmm, truth=truth)["variance"]
    assert sorted(vd["component"]) == ["intercept", "residual", "slope"]
    assert compare_data(a.comparison)["estimates"]["factor"]


def test_sources_accept_the_data():
    """Assigning the computed columns to real ColumnDataSources raises no bokeh error."""
    data = _long([("a", 0, 0.0, 1.0), ("a", 1, 1.0, 2.0), ("b", 0, 0.0, 3.0)])
    src = ColumnDataSource(data={})
    src.data = spaghetti_data(data, y="y", subject="subject", time="time", visit="visit")["lines"]
    assert len(src.data["xs"]) == 2


def test_monte_carlo_group_labels_do_not_run_into_each_other():
    """Written along the axis, a group label longer than its two bars overprinted the next one
    ("arm x time (truth -1ime (truth 0.5)"); written across it, each label has its own line."""
    from lmm_teach.plots.montecarlo import make_bias_figure, make_coverage_figure, make_rejection_figure

    for make in (make_rejection_figure, make_bias_figure, make_coverage_figure):
        fig = make()[0]
        assert fig.yaxis[0].group_label_orientation == "horizontal"


def test_the_missing_counts_and_the_anova_legend_stay_inside_the_figure():
    """The 'n missing' texts hung below their anchor and were cut at the frame's edge; three legend
    columns of 'complete cases, arm B' ran past the figure's width."""
    from bokeh.models import GlyphRenderer, Text

    from lmm_teach.plots.spaghetti import make_spaghetti_figure
    from lmm_teach.plots.visit_means import make_visit_means_figure

    fig, _ = make_spaghetti_figure(x_label="time", y_label="y")
    (text,) = [r.glyph for r in fig.renderers if isinstance(r, GlyphRenderer) and isinstance(r.glyph, Text)]
    assert text.text_baseline == "bottom"
    fig, _ = make_visit_means_figure(x_label="time", y_label="y")
    assert fig.legend[0].ncols == 2
