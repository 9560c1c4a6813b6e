"""analyze / compare / shrinkage: the LMM beside the RM-ANOVA."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lmm_teach import Design, fit_lmm, simulate
from lmm_teach.compare import analyze, compare, shrinkage
from lmm_teach.methods import METHODS

# the comparison's key column: methods are matched by key, never by label
METHOD_LMM, METHOD_LMM_CAT, METHOD_ANOVA = "lmm", "lmm_categorical", "anova"

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def trial():
    return pd.read_csv(DATA / "trial_mar.csv")


@pytest.fixture(scope="module")
def trial_analysis(trial):
    return analyze(trial, y="y", subject="subject", time="time", visit="visit", between="arm")


def row(table, hypothesis, method):
    hit = table[(table["hypothesis"] == hypothesis) & (table["analysis"] == method)]
    assert len(hit) == 1, (hypothesis, method)
    return hit.iloc[0]


def test_table_has_every_hypothesis_and_method(trial_analysis):
    table = trial_analysis.comparison
    assert list(table["hypothesis"].unique()) == ["time", "arm", "arm x time", "final"]
    assert set(table["analysis"]) == set(METHODS) and "mmrm" in set(table["analysis"])
    assert list(table["method"].unique()) == [m.label for m in METHODS.values()]
    assert len(table) == 4 * len(METHODS)
    final = table[table["hypothesis"] == "final"]
    assert set(final["estimand"]) == {"B minus A at the final visit"}


def test_numbers_come_from_the_fits(trial_analysis):
    a = trial_analysis
    lmm_row = row(a.comparison, "arm x time", METHOD_LMM)
    # R: lmerTest::lmer(y ~ time * arm + (1 | subject)); time:armB -0.606176859651073, F 25.3087458574974
    assert lmm_row["estimate"] == pytest.approx(-0.606176859651073, rel=1e-4)
    assert lmm_row["statistic"] == "t" and lmm_row["value"] ** 2 == pytest.approx(25.3087458574974, rel=1e-3)
    assert lmm_row["n_subjects"] == 60 and lmm_row["n_obs"] == 208
    # R: afex::aov_ez("subject", "y", complete, within = "visit", between = "arm"): arm:visit F 5.78897199405268
    an = row(a.comparison, "arm x time", METHOD_ANOVA)
    assert an["value"] == pytest.approx(5.78897199405268, rel=1e-6)
    assert an["n_subjects"] == 30 and an["n_obs"] == 150
    assert an["p_gg"] == pytest.approx(0.000629601654719836, rel=1e-4)
    cat = row(a.comparison, "arm x time", METHOD_LMM_CAT)
    # R: anova(lmer(y ~ factor(visit) * arm + (1 | subject))): visit_f:arm F 6.35063980336567
    assert cat["value"] == pytest.approx(6.35063980336567, rel=1e-3)


def test_time_hypothesis_with_two_arms_is_the_mean_slope(trial_analysis):
    fixed = trial_analysis.lmm.fixed["estimate"]
    r = row(trial_analysis.comparison, "time", METHOD_LMM)
    assert r["estimate"] == pytest.approx(fixed["time"] + fixed["time:armB"] / 2)
    # its t^2 is the type-III F of time, R: anova(m) time F 193.015599456565
    assert (r["estimate"] / r["se"]) ** 2 == pytest.approx(193.015599456565, rel=1e-3)


def test_complete_case_estimate_is_the_slope_of_the_visit_means(trial_analysis):
    a = trial_analysis
    means = a.anova.cell_means
    slopes = [np.polyfit(g["mean_time"], g["mean"], 1)[0] for _, g in means.groupby("arm")]
    assert row(a.comparison, "arm x time", METHOD_ANOVA)["estimate"] == pytest.approx(slopes[1] - slopes[0])


def test_notes_explain_what_the_anova_threw_away(trial_analysis):
    assert any("dropped 30 of 60 subjects" in n and "58 of their measurements" in n for n in trial_analysis.notes)


def test_unequal_spacing_is_noted():
    data = pd.read_csv(DATA / "ri_mcar_unequal.csv")
    a = analyze(data, y="y", subject="subject", time="time", visit="visit")
    assert any("unequally spaced" in n for n in a.notes)


def test_balanced_complete_categorical_lmm_equals_anova():
    data = pd.read_csv(DATA / "ri_balanced.csv")
    a = analyze(data, y="y", subject="subject", time="time", visit="visit")
    cat, an = row(a.comparison, "time", METHOD_LMM_CAT), row(a.comparison, "time", METHOD_ANOVA)
    assert cat["value"] == pytest.approx(an["value"], rel=1e-6)
    assert cat["df_den"] == pytest.approx(an["df_den"], rel=1e-6)
    assert any("Every subject has every visit" in n for n in a.notes)


def test_singular_fit_is_explained():
    data = pd.read_csv(DATA / "singular.csv")
    a = analyze(data, y="y", subject="subject", time="time", visit="visit")
    assert a.lmm.singular
    assert any("boundary" in n for n in a.notes)
    cat, an = row(a.comparison, "time", METHOD_LMM_CAT), row(a.comparison, "time", METHOD_ANOVA)
    assert cat["value"] != pytest.approx(an["value"], rel=1e-3)   # they part when the variance is 0


def test_truth_from_a_design():
    design = Design(n_subjects=30, arms=True, arm_effect=2.0, arm_slope_effect=-0.5, slope=1.0, mar_dropout=0.0)
    data = simulate(design, seed=3)
    a = analyze(data, y="y", subject="subject", time="time", visit="visit", between="arm", truth=design)
    table = a.comparison.set_index(["hypothesis", "analysis"])
    assert table.loc[("arm x time", METHOD_LMM), "truth"] == -0.5
    # "arm" is the difference averaged over the visits (times 0..5): 2 - 0.5 * 2.5
    assert table.loc[("arm", METHOD_ANOVA), "truth"] == pytest.approx(0.75)
    assert table.loc[("time", METHOD_LMM), "truth"] == pytest.approx(1.0 - 0.25)
    # "final" is the difference at the last visit (time 5): 2 - 0.5 * 5; a mapping gives the same below
    assert table.loc[("final", "mmrm"), "truth"] == pytest.approx(-0.5)
    standalone = compare(a.lmm, a.anova, lmm_categorical=a.lmm_categorical, truth=design.true_effects())
    pd.testing.assert_frame_equal(standalone, a.comparison)


def test_anova_impossible_leaves_the_lmm():
    design = Design(n_subjects=6, mcar=0.9, mar_dropout=0.0)
    data = simulate(design, seed=2)
    a = analyze(data, y="y", subject="subject", time="time", visit="visit")
    assert a.anova is None
    assert any(getattr(w, "kind", "") == "not_computed" and w.about == "anova" for w in a.warnings)
    assert set(a.comparison["analysis"]) == {"lmm", "lmm_wald", "lmm_categorical", "ols"}
    json.dumps(a.to_dict(), allow_nan=False)


def test_json_is_strict_and_input_untouched(trial):
    before = trial.copy(deep=True)
    a = analyze(trial, y="y", subject="subject", time="time", visit="visit", between="arm")
    pd.testing.assert_frame_equal(trial, before)
    text = json.dumps(a.to_dict(), allow_nan=False)
    assert '"lmm_categorical"' in text and "NaN" not in text


def test_visit_defaults_to_time():
    data = pd.read_csv(DATA / "ri_balanced.csv")
    a = analyze(data, y="y", subject="subject", time="time")
    assert a.anova.n_subjects_used == 12
    assert "Side by side" in a.summary()


def test_random_intercept_shrinkage_is_the_textbook_factor():
    # For (1 | subject) the BLUP is the subject's mean residual times
    # k_i = s2_b * n_i / (s2_b * n_i + s2_e)  (e.g. Fitzmaurice, Laird & Ware 2011, ch. 8).
    data = pd.read_csv(DATA / "ri_mcar_unequal.csv")
    a = analyze(data, y="y", subject="subject", time="time", visit="visit")
    sh = shrinkage(data, a.lmm)
    var = a.lmm.variance.set_index("group")["vcov"]
    s2b, s2e = var["subject"], var["Residual"]
    k = s2b * sh["n_obs"] / (s2b * sh["n_obs"] + s2e)
    own = sh["own_intercept"] - sh["population_intercept"]
    lmm = sh["lmm_intercept"] - sh["population_intercept"]
    np.testing.assert_allclose(lmm, k * own, rtol=1e-5, atol=1e-8)
    assert (k < 1).all() and len(sh) == 40


def test_random_slope_shrinkage_has_slopes():
    data = pd.read_csv(DATA / "rs_corr.csv")
    a = analyze(data, y="y", subject="subject", time="time", visit="visit", random_slope=True)
    sh = shrinkage(data, a.lmm)
    assert {"own_slope", "lmm_slope", "population_slope"} <= set(sh.columns)
    # pooled slopes spread less than the subjects' own slopes
    assert sh["lmm_slope"].std() < sh["own_slope"].std()


def test_population_line_follows_the_subjects_arm(trial, trial_analysis):
    sh = shrinkage(trial, trial_analysis.lmm)
    fixed = trial_analysis.lmm.fixed["estimate"]
    arm = trial.groupby("subject")["arm"].first().reindex(sh.index)
    want = fixed["(Intercept)"] + np.where(arm == "B", fixed["armB"], 0.0)
    np.testing.assert_allclose(sh["population_intercept"], want)
    assert sh["n_obs"].sum() == 208


def test_population_lines_of_three_arms_and_numeric_levels():
    """Each arm's line from the fit's terms, whatever the levels are called (numbers here)."""
    rng = np.random.default_rng(3)
    rows = [(s, t, s % 3 + 1) for s in range(30) for t in range(4)]
    data = pd.DataFrame(rows, columns=["id", "t", "dose"])
    data["y"] = 10 + 2 * data["dose"] + (0.5 + 0.3 * data["dose"]) * data["t"] + rng.normal(0, 1, len(data))
    data = data.sample(frac=1.0, random_state=1)  # rows need no order
    m = fit_lmm(data, y="y", subject="id", time="t", between="dose", random_slope=True)
    sh = shrinkage(data, m)
    f = m.fixed["estimate"]
    dose = data.groupby("id")["dose"].first().reindex(sh.index)
    icpt = f["(Intercept)"] + dose.map({1: 0.0, 2: f["dose2"], 3: f["dose3"]})
    slope = f["t"] + dose.map({1: 0.0, 2: f["t:dose2"], 3: f["t:dose3"]})
    np.testing.assert_allclose(sh["population_intercept"], icpt, rtol=1e-12)
    np.testing.assert_allclose(sh["population_slope"], slope, rtol=1e-12)
