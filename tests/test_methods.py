"""The method registry: one definition of every compared method and hypothesis (lmm_teach.methods).

The central property: for every (method, hypothesis) a Monte Carlo replicate
and :func:`lmm_teach.analyze` of the same simulated data give the same
estimate, SE and p (the same computation, not a second one).
"""

import pickle

import numpy as np
import pytest

import lmm_teach
from lmm_teach.design import Design
from lmm_teach.methods import HYPOTHESES, METHODS, Long, method
from lmm_teach.montecarlo import monte_carlo
from lmm_teach.notes import Note
from lmm_teach.simulate import simulate

DESIGNS = {
    "jitter": Design(n_subjects=16, visit_times=(0, 1, 2, 3), time_jitter=0.3, mar_dropout=0.1),
    "arms": Design(n_subjects=20, visit_times=(0, 1, 2, 3), arms=True, arm_effect=1.0, arm_slope_effect=-0.5,
                   time_jitter=0.3, mar_dropout=0.15),
    "clinics": Design(n_subjects=24, visit_times=(0, 1, 2, 3), arms=True, arm_slope_effect=0.3, n_clinics=4,
                      sd_clinic=2.0),
    "heavy dropout": Design(n_subjects=30, visit_times=(0, 1, 2, 3, 4), arms=True, arm_slope_effect=-0.4,
                            mar_dropout=0.45),
    "random slopes": Design(n_subjects=20, visit_times=(0, 1, 2, 3), sd_slope=0.8, mar_dropout=0.1),
}


def _analyze(design, data):
    return lmm_teach.analyze(data, y="y", subject="subject", time="time", visit="visit",
                             between="arm" if design.arms else None,
                             cluster="clinic" if design.n_clinics else None,
                             random_slope=design.sd_slope > 0, truth=design)


@pytest.mark.parametrize("name", list(DESIGNS))
def test_a_monte_carlo_replicate_is_the_compare_table_of_the_same_data(name):
    # every method (the MMRM too, which a study runs only when asked) and every studied hypothesis
    design, seed = DESIGNS[name], 11
    study = monte_carlo(design, n_reps=5, seed=seed, n_workers=1, analyses=tuple(METHODS))
    assert set(study.table["analysis"]) == set(METHODS)
    assert set(study.table["hypothesis"]) == ({"time", "arm x time", "final"} if design.arms else {"time"})
    reps = study.replicates
    checked = 0
    for i in range(5):
        # replicate i is simulate(design, seed=SeedSequence(seed, spawn_key=(i,))), as documented
        data = simulate(design, seed=np.random.SeedSequence(seed, spawn_key=(i,)))
        table = _analyze(design, data).comparison
        for _, row in reps[(reps["rep"] == i) & ~reps["failed"]].iterrows():
            mine = table[(table["analysis"] == row["analysis"]) & (table["hypothesis"] == row["hypothesis"])]
            assert len(mine) == 1, (row["analysis"], row["hypothesis"])
            got = mine.iloc[0]
            for col in ("estimate", "se", "p", "ci_low", "ci_high"):
                # 1e-6 relative; a number near 0 (an estimate, a CI bound) on the scale of its SE: the
                # LMM fits stop within the optimiser's tolerance (about 1e-8 in theta) of one optimum
                scale = row["se"] if col in ("estimate", "ci_low", "ci_high") else 0.0
                np.testing.assert_allclose(got[col], row[col], rtol=1e-6, atol=1e-6 * scale + 1e-300,
                                           err_msg=f"{name} rep {i} {row['analysis']} {row['hypothesis']} {col}")
            assert got["n_obs"] == row["n_obs"] and got["n_subjects"] == row["n_subjects"]
            np.testing.assert_allclose(got["truth"], study.table.set_index(["analysis", "hypothesis"]).loc[
                (row["analysis"], row["hypothesis"]), "truth"])
            checked += 1
    # only the visit-based methods lose replicates (the RM-ANOVA: fewer than 2 complete subjects in an arm;
    # the categorical LMM and the MMRM: a visit nobody in an arm reached, too few patients at the late visits
    # for the MMRM's 15 covariance parameters; the MMRM refuses clinics); everything else was checked
    failed = set(reps.loc[reps["failed"], "analysis"])
    assert failed <= ({"anova", "lmm_categorical", "mmrm"} if name == "heavy dropout" else
                      {"anova"} | ({"mmrm"} if design.n_clinics else set())), failed
    assert checked == int((~reps["failed"]).sum()) and checked >= 0.5 * 5 * len(study.table)


def test_observed_times_give_the_visit_based_trend():
    # The categorical LMM's and the RM-ANOVA's "time" estimate is the trend of their visit means
    # on the observed mean visit times (user data have no planned times).
    design = DESIGNS["jitter"].replace(mar_dropout=0.0)
    data = simulate(design, seed=4)
    a = _analyze(design, data)
    means = data.groupby("visit").agg(t=("time", "mean"), y=("y", "mean"))
    slope = np.polyfit(means["t"], means["y"], 1)[0]
    row = a.comparison.set_index(["analysis", "hypothesis"])
    assert row.loc[("anova", "time"), "estimate"] == pytest.approx(slope, rel=1e-10)
    # complete balanced data with a random intercept: the categorical LMM's visit means are the raw means
    assert row.loc[("lmm_categorical", "time"), "estimate"] == pytest.approx(slope, rel=1e-6)
    assert np.isfinite(row.loc[("lmm_categorical", "time"), "se"])


def test_one_estimand_per_hypothesis_in_a_two_arm_design():
    # Balanced complete data: every method estimates the same quantity, so the numeric LMM, OLS,
    # the categorical LMM and the RM-ANOVA agree on "arm" and "arm x time" and on "time" (the mean
    # of the arms' slopes), and "arm" is the difference averaged over the visits.
    design = Design(n_subjects=20, visit_times=(0, 1, 2, 3), arms=True, arm_effect=2.0, arm_slope_effect=0.5,
                    mar_dropout=0.0)
    data = simulate(design, seed=8)
    t = _analyze(design, data).comparison.set_index(["analysis", "hypothesis"])
    cell = data.groupby(["arm", "visit"])["y"].mean().unstack()
    avg_diff = float((cell.loc["B"] - cell.loc["A"]).mean())
    for key in ("lmm", "lmm_categorical", "mmrm", "anova", "ols"):
        assert t.loc[(key, "arm"), "estimate"] == pytest.approx(avg_diff, rel=1e-6), key
        assert t.loc[(key, "arm x time"), "estimate"] == pytest.approx(t.loc[("anova", "arm x time"), "estimate"],
                                                                       rel=1e-6), key
        assert t.loc[(key, "time"), "estimate"] == pytest.approx(t.loc[("anova", "time"), "estimate"], rel=1e-6)
    assert t.loc[("lmm", "arm"), "truth"] == pytest.approx(2.0 + 0.5 * 1.5)
    assert t.loc[("lmm", "time"), "truth"] == pytest.approx(design.slope + 0.25)
    # the RM-ANOVA's between F is the square of its "arm" t (subject means, pooled variance)
    anova = _analyze(design, data).anova.table.set_index("effect")
    tval = t.loc[("anova", "arm"), "estimate"] / t.loc[("anova", "arm"), "se"]
    assert anova.loc["arm", "F"] == pytest.approx(tval**2, rel=1e-8)
    assert t.loc[("anova", "arm"), "p"] == pytest.approx(anova.loc["arm", "p"], rel=1e-8)
    assert set(t["estimand"].xs("arm", level="hypothesis")) == {"B minus A, averaged over the visits"}


def test_three_arms_get_omnibus_tests_in_every_method():
    design = Design(n_subjects=30, visit_times=(0, 1, 2, 3), arms=True, arm_slope_effect=0.5, mar_dropout=0.0)
    data = simulate(design, seed=2)
    subjects = sorted(data["subject"].unique())
    third = set(subjects[::3])
    data["arm"] = np.where(data["subject"].isin(third), "C", data["arm"])
    a = _analyze(design, data)
    t = a.comparison.set_index(["analysis", "hypothesis"])
    assert set(t.index.get_level_values("analysis")) == set(METHODS)
    for key in METHODS:
        for h in ("arm", "arm x time", "final"):
            row = t.loc[(key, h)]
            # G - 1 = 2 contrasts; the visit-based methods test the whole profile: (G - 1)(K - 1) = 6
            want = 6 if h == "arm x time" and key in ("lmm_categorical", "mmrm", "anova") else 2
            assert row["df_num"] == want and np.isfinite(row["p"]) and np.isnan(row["estimate"]), (key, h)
        assert np.isfinite(t.loc[(key, "time"), "estimate"])  # averaged over the three arms
    # the categorical LMM's tests are its type-III F tests; the RM-ANOVA's its own
    tests = a.lmm_categorical.tests.set_index("term")
    assert t.loc[("lmm_categorical", "arm x time"), "value"] == pytest.approx(tests.loc["visit:arm", "F"], rel=1e-8)
    av = a.anova.table.set_index("effect")
    assert t.loc[("anova", "arm"), "p"] == pytest.approx(av.loc["arm", "p"], rel=1e-8)
    assert t.loc[("anova", "arm x time"), "p"] == pytest.approx(av.loc["arm:visit", "p_gg"], rel=1e-8)
    # the numeric LMM's arm x time test with two interaction contrasts is its type-III F
    lt = a.lmm.tests.set_index("term")
    assert t.loc[("lmm", "arm x time"), "value"] == pytest.approx(lt.loc["time:arm", "F"], rel=1e-8)
    assert any(getattr(n, "kind", "") == "omnibus" for n in a.notes)


def test_registry_entries_are_complete_and_keys_unique():
    assert list(METHODS) == ["lmm", "lmm_wald", "lmm_categorical", "mmrm", "anova", "ols"]
    for key, m in METHODS.items():
        assert m.key == key and m.label and m.short and m.test and m.model
        assert m.colour.startswith("#") and len(m.colour) == 7
    assert len({m.colour for m in METHODS.values()}) == len(METHODS)
    assert list(HYPOTHESES) == ["time", "arm", "arm x time", "final"]
    assert method("mmrm").label == "MMRM, unstructured"
    with pytest.raises(ValueError, match="unknown method 'gee'; choose among lmm"):
        method("gee")


def test_truths_of_the_hypotheses():
    d = Design(visit_times=(0, 1, 2, 4), slope=-1.0, arms=True, arm_effect=3.0, arm_slope_effect=0.5)
    assert HYPOTHESES["time"].truth(d) == pytest.approx(-0.75)
    assert HYPOTHESES["arm"].truth(d) == pytest.approx(3.0 + 0.5 * 1.75)
    assert HYPOTHESES["arm x time"].truth(d) == pytest.approx(0.5)
    assert HYPOTHESES["final"].truth(d) == pytest.approx(3.0 + 0.5 * 4)  # at the last planned visit
    assert HYPOTHESES["time"].truth(d.replace(arms=False)) == -1.0
    assert np.isnan(HYPOTHESES["arm"].truth(d.replace(arms=False)))
    assert np.isnan(HYPOTHESES["final"].truth(d.replace(arms=False)))


def test_the_comparison_has_a_key_column_and_notes_are_records():
    design = DESIGNS["heavy dropout"].replace(n_subjects=8, mar_dropout=0.7)
    a = _analyze(design, simulate(design, seed=1))
    assert a.comparison.columns[0] == "analysis"
    assert set(a.comparison["analysis"]) <= set(METHODS)
    assert a.anova is None and a.lmm_categorical is None
    about = {w.about for w in a.warnings if getattr(w, "kind", "") == "not_computed"}
    assert about == {"anova", "lmm_categorical", "mmrm"}  # a visit missing in an arm: no visit-based fit
    assert all(isinstance(w, str) for w in a.warnings)
    assert set(a.comparison["analysis"]) == {"lmm", "lmm_wald", "ols"}
    n = pickle.loads(pickle.dumps(Note("x", kind="k", about="anova")))
    assert (n, n.kind, n.about) == ("x", "k", "anova")


def test_lmm_result_exposes_terms_and_contrasts():
    design = DESIGNS["arms"]
    data = simulate(design, seed=3)
    lmm = lmm_teach.fit_lmm(data, y="y", subject="subject", time="time", between="arm")
    assert [t.name for t in lmm.terms] == ["time", "arm", "time:arm"]
    by_name = {t.name: t for t in lmm.terms}
    assert [lmm.fixed.index[c] for c in by_name["time:arm"].columns] == ["time:armB"]
    l = np.zeros(len(lmm.beta))
    l[by_name["time:arm"].columns[0]] = 1.0
    est, se, df, p = lmm.contrast(l)
    row = lmm.fixed.loc["time:armB"]
    np.testing.assert_allclose([est, se, df, p], row[["estimate", "se", "df", "p"]].to_numpy(float), rtol=1e-10)
    F, dfn, dfd, pf = lmm.test(l[None])
    assert F == pytest.approx((est / se) ** 2) and dfn == 1


def test_a_new_method_is_one_module(tmp_path, monkeypatch):
    # What docs/api.md promises: a module in lmm_teach/methods with a METHODS tuple is registered.
    import importlib

    import lmm_teach.methods as registry

    src = (
        "from lmm_teach.methods.base import Method\n"
        "from lmm_teach.methods import ols\n"
        "METHODS = (Method(key='ols_copy', label='OLS again', short='OLS2', colour='#000000', test='t',\n"
        "                  model='y ~ time', fit=ols.fit, answer=ols.answer, order=60),)\n"
    )
    pkg = tmp_path / "extra"
    pkg.mkdir()
    (pkg / "ols_copy.py").write_text(src)
    monkeypatch.setattr(registry, "__path__", [*registry.__path__, str(pkg)])
    found = registry._discover()
    assert list(found)[-1] == "ols_copy"
    importlib.invalidate_caches()


def test_long_visit_times_are_observed_means():
    long = Long.build(y=[1.0, 2, 3, 4], time=[0.0, 1.2, 0, 0.8], subject=[0, 0, 1, 1], visit=[0, 1, 0, 1])
    np.testing.assert_allclose(long.visit_times(), [0.0, 1.0])
    assert long.n_subjects == 2 and long.n_visits == 2 and long.n_groups == 1


# --------------------------------------------------------------------------- the MMRM and the final visit
def test_the_mmrm_answers_with_fit_mmrms_numbers():
    # The registry's MMRM (arrays, Newton to the optimum) is fit_mmrm(exact=True) of the same data: its
    # "final" row is the LS-mean difference at the last visit, its profile tests the type-III F tests.
    design = DESIGNS["heavy dropout"].replace(n_subjects=60, mar_dropout=0.2, sd_slope=0.5)
    data = simulate(design, seed=5)
    t = _analyze(design, data).comparison.set_index(["analysis", "hypothesis"])
    ref = lmm_teach.fit_mmrm(data, y="y", subject="subject", visit="visit", between="arm", exact=True)
    last = ref.lsmeans_diff.iloc[-1]
    row = t.loc[("mmrm", "final")]
    assert row["statistic"] == "t" and row["estimand"] == "B minus A at the final visit"
    np.testing.assert_allclose(row[["estimate", "se", "df", "p"]].to_numpy(float),
                               last[["estimate", "se", "df", "p"]].to_numpy(float), rtol=1e-6)
    np.testing.assert_allclose(row[["ci_low", "ci_high"]].to_numpy(float), last[["lower", "upper"]].to_numpy(float),
                               rtol=1e-6)
    for h, term in (("time", "visit"), ("arm", "arm"), ("arm x time", "visit:arm")):
        np.testing.assert_allclose(t.loc[("mmrm", h), ["value", "df_num", "df_den", "p"]].to_numpy(float),
                                   ref.tests.loc[term, ["F", "df_num", "df_den", "p"]].to_numpy(float), rtol=1e-6)
    assert t.loc[("mmrm", "final"), "n_obs"] == ref.n_obs and t.loc[("mmrm", "final"), "n_subjects"] == 60


def test_the_mmrm_final_visit_difference_matches_r():
    # R: m <- mmrm(y ~ visit * arm + us(visit | subject), data = trial_mar, reml = TRUE)   (Satterthwaite)
    #    contrast(emmeans(m, ~ arm | visit), "revpairwise")   -> visit 4, B - A:
    #    estimate -8.3076703082978, SE 2.41715800061825, df 40.3951238710866, p 0.00137609891300042
    # R's optimiser stops within about 1e-4 of the optimum the registry reaches: the reference tolerances.
    from pathlib import Path

    import pandas as pd

    data = pd.read_csv(Path(__file__).parent / "data" / "trial_mar.csv")
    a = lmm_teach.analyze(data, y="y", subject="subject", time="time", visit="visit", between="arm")
    row = a.comparison.set_index(["analysis", "hypothesis"]).loc[("mmrm", "final")]
    assert row["estimate"] == pytest.approx(-8.3076703082978, rel=1e-4)
    assert row["se"] == pytest.approx(2.41715800061825, rel=1e-3)
    assert row["df"] == pytest.approx(40.3951238710866, rel=1e-2)
    assert row["p"] == pytest.approx(0.00137609891300042, rel=2e-2)


def test_the_final_visit_in_every_method():
    # Balanced complete data: the visit-based methods' final-visit difference is the difference of the raw
    # final-visit means (the MMRM's and the categorical LMM's GLS cell means are the raw means); the
    # RM-ANOVA's test is the pooled two-sample t test of the final values; the numeric-time methods give
    # their lines' difference at the final visit's time.
    from scipy import stats

    design = Design(n_subjects=24, visit_times=(0, 1, 2, 4), arms=True, arm_effect=1.0, arm_slope_effect=0.5,
                    mar_dropout=0.0)
    data = simulate(design, seed=12)
    a = _analyze(design, data)
    t = a.comparison.set_index(["analysis", "hypothesis"])
    final = data[data["visit"] == data["visit"].max()]
    b, a_ = final.loc[final["arm"] == "B", "y"], final.loc[final["arm"] == "A", "y"]
    for key in ("lmm_categorical", "mmrm", "anova"):
        assert t.loc[(key, "final"), "estimate"] == pytest.approx(b.mean() - a_.mean(), rel=1e-6), key
        assert t.loc[(key, "final"), "statistic"] == "t"
    tt = stats.ttest_ind(b, a_)
    assert t.loc[("anova", "final"), "p"] == pytest.approx(tt.pvalue, rel=1e-8)
    assert t.loc[("anova", "final"), "value"] == pytest.approx(tt.statistic, rel=1e-8)
    assert t.loc[("anova", "final"), "df"] == 22 and np.isnan(t.loc[("anova", "final"), "p_gg"])
    beta = a.lmm.fixed["estimate"]
    assert t.loc[("lmm", "final"), "estimate"] == pytest.approx(beta["armB"] + 4 * beta["time:armB"], rel=1e-8)
    assert t.loc[("lmm", "final"), "truth"] == pytest.approx(1.0 + 0.5 * 4)
    assert t.loc[("ols", "final"), "estimate"] == pytest.approx(t.loc[("lmm", "final"), "estimate"], rel=1e-6)


def test_final_visit_estimand_in_words():
    from lmm_teach.methods import estimand_words

    h = HYPOTHESES["final"]
    assert h.over_time == "final" and h.needs_groups and not h.applies(1)
    assert estimand_words(h, 2) == "B minus A at the final visit"
    assert estimand_words(h, 2, ["placebo", "drug"]) == "drug minus placebo at the final visit"
    assert estimand_words(h, 3) == ("2 differences at the final visit (B - A, C - A): one omnibus test, "
                                    "no single estimate")
    assert estimand_words(HYPOTHESES["arm"], 3).startswith("2 differences (B - A, C - A)")


def test_the_mmrm_refuses_what_it_cannot_fit():
    design = DESIGNS["clinics"]
    a = _analyze(design, simulate(design, seed=2))
    why = [w for w in a.warnings if getattr(w, "about", "") == "mmrm"]
    assert len(why) == 1 and "cannot model the clinics" in why[0]
    assert "mmrm" not in set(a.comparison["analysis"])
    long = Long.build(y=[1.0, 2, 3, 4], time=[0.0, 0, 0, 1], subject=[0, 0, 1, 1], visit=[0, 0, 0, 1])
    with pytest.raises(ValueError, match="two measurements at one visit"):
        METHODS["mmrm"].fit(long)
