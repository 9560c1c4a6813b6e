"""Monte Carlo studies: the machinery (seeds, workers, progress, cancel, failures)
and the statistics they exist to show (level of Satterthwaite vs Wald tests,
bias of the complete-case ANOVA under MAR dropout, power lost to listwise
deletion under MCAR).

Statistical assertions use bounds of a few Monte Carlo SEs (Morris, White &
Crowther 2019, Table 6) with a fixed seed, so they do not flake, and each
comment shows that the alternative the test guards against lies outside.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import json
import subprocess
import sys
import threading

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from lmm_teach.design import PRESETS, Design
from lmm_teach.methods import HYPOTHESES, METHODS, long_from_simulation
from lmm_teach.methods.anova import complete_cases
from lmm_teach.montecarlo import ANALYSES, MonteCarloResult, SweepResult, monte_carlo, sweep, truth_of
from lmm_teach.montecarlo.run import pick_chunk_size, seed_sequence
from lmm_teach.montecarlo.stats import performance
from lmm_teach.simulate import simulate, simulate_arrays


def analyse(key, sim, design, alpha):
    """One registry method's answers to a replicate's hypotheses, as the worker computes them."""
    long = long_from_simulation(sim, design)
    fitted = METHODS[key].fit(long)
    hyps = ("time", "arm x time") if design.arms else ("time",)
    out = {h: dataclasses.asdict(METHODS[key].answer(fitted, HYPOTHESES[h], long, alpha)) for h in hyps}
    if key == "lmm":
        for h in hyps:
            out[h]["wald_p"] = METHODS["lmm_wald"].answer(fitted, HYPOTHESES[h], long, alpha).p
    return out


def analyse_ols(sim, design, alpha):
    return analyse("ols", sim, design, alpha)


def analyse_anova(sim, design, alpha):
    return analyse("anova", sim, design, alpha)


def analyse_lmm(sim, design, alpha):
    return analyse("lmm", sim, design, alpha)


def analyse_lmm_categorical(sim, design, alpha):
    return analyse("lmm_categorical", sim, design, alpha)


SMALL = Design(n_subjects=12, visit_times=(0, 1, 2, 3), arms=True, arm_slope_effect=-0.5,
               mar_dropout=0.2)
FAST = ("anova", "ols")  # analyses that need no LMM fit: quick machinery tests


def _same(a: MonteCarloResult, b: MonteCarloResult) -> None:
    pd.testing.assert_frame_equal(a.table, b.table)
    pd.testing.assert_frame_equal(a.replicates, b.replicates)


# --------------------------------------------------------------------------- what the studies show
def _mcse(rate: float, n: int) -> float:
    return float(np.sqrt(rate * (1 - rate) / n))


def test_null_satterthwaite_holds_its_level_and_wald_z_does_not():
    # 10 subjects x 3 visits, random intercept, complete: the within-subject
    # slope's t statistic is exactly t with 10 * 2 - 1 = 19 df (Satterthwaite
    # finds 19), so its level is alpha, while the Wald z-test rejects with
    # probability P(|t_19| > 1.96) = 0.0648.
    design = Design(n_subjects=10, visit_times=(0, 1, 2), slope=0.0, mar_dropout=0.0)
    n = 4000
    res = monte_carlo(design, n_reps=n, seed=20240607, analyses=("lmm", "lmm_wald"))
    rate = res.table.set_index("analysis")["rejection_rate"]
    assert res.table["n_failed"].sum() == 0
    bound = 3.5 * _mcse(0.05, n)  # 3.5 MCSE = 0.0121: a z-test's 0.0648 lies outside
    assert abs(rate["lmm"] - 0.05) < bound
    assert rate["lmm_wald"] > 0.05 + 2 * _mcse(0.05, n)  # observed 0.065
    # Paired on the same replicates: the z p-value is always below the t
    # p-value, so the difference is the share rejected by z only (~0.015);
    # were the Wald p computed like the t p, it would be 0.
    r = res.replicates
    satt = r.loc[r["analysis"] == "lmm", "reject"].to_numpy()
    wald = r.loc[r["analysis"] == "lmm_wald", "reject"].to_numpy()
    assert not (satt & ~wald).any()
    d = float(np.mean(wald & ~satt))
    assert d > 4 * _mcse(d, n)  # observed 0.015, 4 MCSE = 0.0077
    cover = res.table.set_index("analysis")["coverage"]
    assert abs(cover["lmm"] - 0.95) < 3.5 * _mcse(0.05, n) and cover["lmm_wald"] < cover["lmm"]


def test_mar_dropout_biases_the_complete_case_anova_not_the_lmm():
    # Patients whose last value was high leave (MAR; subjects differ in slope).
    # The complete cases are a selected group, so the ANOVA's arm x time
    # estimate is attenuated (bias ~ +0.18 on a truth of -1, ~10 MCSE); the
    # LMM, a likelihood analysis with the right random effects, is valid
    # under MAR (Little & Rubin 2019, ch. 6).
    design = Design(n_subjects=60, arms=True, slope=1.0, arm_slope_effect=-1.0, sd_intercept=3.0,
                    sd_slope=1.0, sd_residual=2.0, mar_dropout=0.1, dropout_strength=2.0)
    res = monte_carlo(design, n_reps=500, seed=20, analyses=("lmm", "anova"))
    t = res.table.set_index(["analysis", "hypothesis"])
    anova, lmm = t.loc[("anova", "arm x time")], t.loc[("lmm", "arm x time")]
    assert anova["bias"] > 5 * anova["bias_mcse"]
    # Were the LMM as biased as the ANOVA, |bias| / MCSE would be ~10.
    assert abs(lmm["bias"]) < 3 * lmm["bias_mcse"]
    assert lmm["n_ok"] > 400
    assert anova["mean_subjects"] < 0.6 * design.n_subjects  # the ANOVA lost the dropouts


def test_mcar_both_unbiased_but_listwise_deletion_costs_power():
    # 20 % of the visits missed at random: everyone is unbiased, but the
    # ANOVA keeps only the ~1/3 of subjects with every visit.
    design = Design(n_subjects=60, arms=True, slope=0.0, arm_slope_effect=-0.5, mar_dropout=0.0, mcar=0.2)
    n = 500
    res = monte_carlo(design, n_reps=n, seed=21, analyses=("lmm", "lmm_categorical", "anova"))
    t = res.table.set_index(["analysis", "hypothesis"])
    for a in ("lmm", "lmm_categorical", "anova"):
        row = t.loc[(a, "arm x time")]
        assert abs(row["bias"]) < 3 * row["bias_mcse"], a
        assert row["n_failed"] == 0
    # Power, paired on the same replicates: the categorical LMM runs the same
    # omnibus F test of the visit profile on all subjects (~0.42 vs ~0.13).
    r = res.replicates.query("hypothesis == 'arm x time'")
    cat = r.loc[r["analysis"] == "lmm_categorical", "reject"].to_numpy()
    cc = r.loc[r["analysis"] == "anova", "reject"].to_numpy()
    p10, p01 = np.mean(cat & ~cc), np.mean(cc & ~cat)
    se = np.sqrt((p10 + p01 - (p10 - p01) ** 2) / n)
    assert p10 - p01 > 5 * se  # observed ~13 SE
    assert t.loc[("lmm", "arm x time"), "rejection_rate"] > t.loc[("anova", "arm x time"), "rejection_rate"]


# Patients with strong slopes of their own, two arms, and strong MAR dropout: a trial where the
# analysis model matters.  100 patients x 4 visits, 120 replicates, about 5 s.
MAR_SLOPES = Design(n_subjects=100, visit_times=(0, 1, 2, 3), arms=True, slope=0.0, arm_slope_effect=-1.0,
                    sd_intercept=1.0, sd_slope=2.0, sd_residual=1.0, mar_dropout=0.3, dropout_strength=2.5)


@pytest.fixture(scope="module")
def mar_slopes_study():
    return monte_carlo(MAR_SLOPES, n_reps=120, seed=2024, analyses=("lmm_categorical", "mmrm", "anova"))


def test_under_mar_with_own_slopes_only_the_unstructured_mmrm_is_unbiased_at_the_final_visit(mar_slopes_study):
    # The classic result (Mallinckrodt et al. 2008; Molenberghs & Kenward 2007, ch. 5): under MAR dropout a
    # likelihood analysis is valid when its model fits.  The unstructured MMRM's covariance fits any pattern;
    # the categorical-time LMM's one random intercept (compound symmetry) does not fit patients' own slopes,
    # and the RM-ANOVA keeps the completers, a selected group.  Truth at the final visit: -1 x 3 = -3.
    # Seed 2024: MMRM bias -0.04 (0.3 MCSE), categorical LMM +0.90 (5.6 MCSE), RM-ANOVA +1.10 (6.5 MCSE);
    # over seeds 1-7 with 150 replicates the MMRM stayed within 1 MCSE and the others beyond 7.5.
    t = mar_slopes_study.table.set_index(["analysis", "hypothesis"])
    mmrm, cat, anova = (t.loc[(a, "final")] for a in ("mmrm", "lmm_categorical", "anova"))
    assert mmrm["truth"] == -3.0 and mmrm["n_ok"] == cat["n_ok"] == anova["n_ok"] == 120
    assert abs(mmrm["bias"]) < 3 * mmrm["bias_mcse"]
    assert cat["bias"] > 4 * cat["bias_mcse"] and anova["bias"] > 4 * anova["bias_mcse"]  # both attenuated
    # the same bias and its price in coverage (MCSE of a 95 % coverage with 120 replicates: 0.02)
    assert abs(mmrm["coverage"] - 0.95) < 0.07 and cat["coverage"] < 0.85
    assert anova["mean_subjects"] < 0.4 * MAR_SLOPES.n_subjects < mmrm["mean_subjects"]


def test_the_reading_says_why_each_method_is_biased(mar_slopes_study):
    from lmm_teach.montecarlo import reading

    lines = reading(mar_slopes_study)
    text = " ".join(lines)
    assert any(s.startswith("Under this dropout, the categorical-time LMM's estimates are biased: ") and
               "the difference between the arms at the final visit by +" in s for s in lines)
    assert "assumes compound symmetry" in text and "Patients here have their own slopes" in text
    assert "The unstructured MMRM, which estimates the covariance of the visits freely, is not biased here." in text
    assert "The RM-ANOVA uses complete cases only: under MAR dropout" in text
    assert ("The unstructured MMRM stays unbiased under this MAR dropout: a likelihood analysis whose model fits "
            "the data") in text
    assert "the MMRM's estimate" not in text.lower() and "the mmrm's estimates are biased" not in text.lower()
    # the text output ends with the same reading
    assert "What the study shows:" in mar_slopes_study.summary()
    assert "assumes compound symmetry" in mar_slopes_study.summary()


def _with_rows(result, rows: dict, **design):
    """The result with numbers of its table (and design fields) replaced: rows = {(analysis, hypothesis): {...}}."""
    table = result.table.copy()
    for (a, h), values in rows.items():
        i = table.index[(table["analysis"] == a) & (table["hypothesis"] == h)][0]
        for col, v in values.items():
            table.loc[i, col] = v
    return dataclasses.replace(result, table=table, design=result.design.replace(**design))


def test_the_reading_bases_each_reason_on_the_design_and_on_the_measured_bias(mar_slopes_study):
    from lmm_teach.montecarlo import reading

    zero = {(a, h): {"bias": 0.0, "bias_mcse": 0.1} for a in ("lmm_categorical", "mmrm", "anova")
            for h in ("time", "arm x time", "final")}
    # nothing measured: nothing called biased, whatever the design
    text = " ".join(reading(_with_rows(mar_slopes_study, zero)))
    assert "No method's estimate is detectably biased" in text and "compound symmetry" not in text
    # under MAR the likelihood methods whose model fits are named unbiased: the MMRM, not the categorical LMM
    assert "The unstructured MMRM stays unbiased under this MAR dropout" in text
    # MNAR dropout: the reason is the mechanism, for every method
    mnar = {**zero, ("mmrm", "final"): {"bias": 0.8, "bias_mcse": 0.1, "mean_estimate": -2.2}}
    text = " ".join(reading(_with_rows(mar_slopes_study, mnar, mar_dropout=0.0, mnar_dropout=0.3)))
    assert "the MMRM's estimate of the difference between the arms at the final visit is biased by +0.8" in text
    assert "Dropout here is MNAR" in text and "stays unbiased" not in text
    # no slopes of their own: compound symmetry fits, so the categorical LMM is named with the MMRM as unbiased
    text = " ".join(reading(_with_rows(mar_slopes_study, zero, sd_slope=0.0)))
    assert "The LMM with categorical time and the unstructured MMRM stay unbiased under this MAR dropout" in text
    # a bias where the design gives no reason (complete data): said, with no story
    complete = {**zero, ("anova", "time"): {"bias": 0.5, "bias_mcse": 0.1, "mean_estimate": 0.0}}
    text = " ".join(reading(_with_rows(mar_slopes_study, complete, mar_dropout=0.0)))
    assert "The ANOVA's estimate of the average change over time is biased by +0.5" in text
    assert "Without missing data no method here should be biased: run more replicates" in text
    assert "complete cases only" not in text
    # the categorical LMM biased without an MMRM in the study: the reading points to it
    alone = dataclasses.replace(mar_slopes_study, analyses=("lmm_categorical", "anova"),
                                table=mar_slopes_study.table.query("analysis != 'mmrm'"))
    text = " ".join(reading(alone))
    assert "Add the unstructured MMRM (analysis \"mmrm\")" in text


# --------------------------------------------------------------------------- seeds and workers
def test_seed_children_do_not_depend_on_chunking():
    s = seed_sequence(7)
    spawned = np.random.SeedSequence(7).spawn(5)
    for i in range(5):
        assert s.child(i).generate_state(4).tolist() == spawned[i].generate_state(4).tolist()


def test_same_seed_same_table_one_and_two_worker_processes():
    one = monte_carlo(SMALL, n_reps=48, seed=11, n_workers=1)
    two = monte_carlo(SMALL, n_reps=48, seed=11, n_workers=2, chunk_size=5)
    _same(one, two)
    assert one.n_done == two.n_done == 48
    other = monte_carlo(SMALL, n_reps=48, seed=12, n_workers=1, analyses=FAST)
    assert not np.allclose(other.replicates["estimate"], one.replicates.query("analysis in @FAST")
                           ["estimate"].to_numpy(), equal_nan=True)


def test_the_mmrm_in_a_process_pool_gives_the_table_of_one_worker():
    # a method asked for by key runs in the pool's chunks as in this thread: same seed, same numbers
    design = Design(n_subjects=16, visit_times=(0, 1, 2), arms=True, arm_slope_effect=-0.5, mar_dropout=0.1)
    pooled = monte_carlo(design, n_reps=12, seed=6, analyses=("mmrm", "ols"), n_workers=2, chunk_size=3)
    _same(pooled, monte_carlo(design, n_reps=12, seed=6, analyses=("mmrm", "ols"), n_workers=1))
    assert pooled.analyses == ("mmrm", "ols") and pooled.table["n_failed"].sum() == 0
    assert list(pooled.table["hypothesis"]) == ["time", "arm x time", "final"] * 2


@pytest.mark.parametrize("make", [lambda: cf.ThreadPoolExecutor(3),
                                  lambda: cf.ProcessPoolExecutor(2)], ids=["threads", "processes"])
def test_any_executor_gives_the_same_table(make):
    ref = monte_carlo(SMALL, n_reps=30, seed=3, analyses=FAST, n_workers=1)
    with make() as ex:
        got = monte_carlo(SMALL, n_reps=30, seed=3, analyses=FAST, executor=ex, chunk_size=4)
        # the caller's executor is not shut down by the study
        assert ex.submit(sum, [1, 2]).result() == 3
    _same(ref, got)


def test_seed_forms():
    a = monte_carlo(SMALL, n_reps=6, seed=5, analyses=("ols",), n_workers=1)
    b = monte_carlo(SMALL, n_reps=6, seed=np.random.SeedSequence(5), analyses=("ols",), n_workers=1)
    _same(a, b)
    c = monte_carlo(SMALL, n_reps=6, seed=None, analyses=("ols",), n_workers=1)
    d = monte_carlo(SMALL, n_reps=6, seed=c.seed, analyses=("ols",), n_workers=1)
    _same(c, d)  # a fresh seed is kept and repeats the study
    rng = np.random.default_rng(1)
    e = monte_carlo(SMALL, n_reps=6, seed=rng, analyses=("ols",), n_workers=1)
    f = monte_carlo(SMALL, n_reps=6, seed=rng, analyses=("ols",), n_workers=1)
    assert not e.replicates["estimate"].equals(f.replicates["estimate"])  # a Generator advances
    _same(f, monte_carlo(SMALL, n_reps=6, seed=f.seed, analyses=("ols",), n_workers=1))
    child = np.random.SeedSequence(5).spawn(3)[2]  # a SeedSequence with a spawn key
    g = monte_carlo(SMALL, n_reps=6, seed=child, analyses=("ols",), n_workers=1)
    _same(g, monte_carlo(SMALL, n_reps=6, seed=g.seed, analyses=("ols",), n_workers=1))
    assert json.loads(json.dumps(g.to_dict()))["seed"] == {"entropy": 5, "spawn_key": [2]}
    h = monte_carlo(SMALL, n_reps=6, seed=[5, 6], analyses=("ols",), n_workers=1)
    _same(h, monte_carlo(SMALL, n_reps=6, seed=np.random.SeedSequence([5, 6]), analyses=("ols",),
                         n_workers=1))


def test_replicate_i_is_the_simulation_of_child_seed_i():
    res = monte_carlo(SMALL, n_reps=5, seed=9, analyses=("ols",), n_workers=1)
    child = np.random.SeedSequence(9).spawn(5)[3]
    sim = simulate_arrays(SMALL, np.random.Generator(np.random.PCG64(child)))
    row = res.replicates.query("rep == 3 and hypothesis == 'arm x time'").iloc[0]
    assert row["n_obs"] == sim.y.size
    assert row["estimate"] == pytest.approx(analyse_ols(sim, SMALL, 0.05)["arm x time"]["estimate"], rel=1e-12)


# --------------------------------------------------------------------------- progress and cancel
def test_progress_from_the_calling_thread_up_to_total():
    calls, threads = [], set()

    def progress(done, total):
        calls.append((done, total))
        threads.add(threading.get_ident())

    monte_carlo(SMALL, n_reps=23, seed=1, analyses=FAST, n_workers=2, chunk_size=5, progress=progress)
    assert [c[0] for c in calls] == sorted(c[0] for c in calls)
    assert calls[-1] == (23, 23) and len(calls) == 5
    assert threads == {threading.get_ident()}


@pytest.mark.parametrize("n_workers", [1, 2])
def test_cancel_returns_the_finished_replicates(n_workers):
    stop = threading.Event()

    def progress(done, total):
        if done >= 10:
            stop.set()  # the Stop button, pressed after the second chunk

    res = monte_carlo(SMALL, n_reps=400, seed=1, analyses=FAST, n_workers=n_workers, chunk_size=5,
                      progress=progress, cancel=stop)
    assert res.cancelled
    assert 10 <= res.n_done < 400
    assert (res.table["n_ok"] + res.table["n_failed"] == res.n_done).all()
    assert sorted(res.replicates["rep"].unique()) == sorted(set(res.replicates["rep"]))
    assert any("stopped" in w for w in res.warnings)
    # the finished replicates are exactly those of the full study
    full = monte_carlo(SMALL, n_reps=400, seed=1, analyses=FAST, n_workers=1, chunk_size=50)
    reps = res.replicates["rep"].unique()
    part = full.replicates[full.replicates["rep"].isin(reps)].reset_index(drop=True)
    pd.testing.assert_frame_equal(res.replicates.reset_index(drop=True), part)


def test_cancel_before_start_gives_an_empty_study():
    stop = threading.Event()
    stop.set()
    res = monte_carlo(SMALL, n_reps=20, seed=1, analyses=FAST, cancel=stop, n_workers=1)
    assert res.cancelled and res.n_done == 0 and len(res.replicates) == 0
    assert (res.table["n_ok"] == 0).all() and res.table["rejection_rate"].isna().all()
    json.dumps(res.to_dict(), allow_nan=False)


# --------------------------------------------------------------------------- failures
def test_failed_replicates_are_counted_not_dropped():
    # 8 subjects, heavy dropout: many replicates have < 2 complete subjects in an arm
    design = Design(n_subjects=8, visit_times=(0, 1, 2, 3), arms=True, mar_dropout=0.2)
    res = monte_carlo(design, n_reps=60, seed=2, analyses=FAST, n_workers=1)
    anova = res.table.query("analysis == 'anova'")
    assert (anova["n_failed"] > 0).all()
    assert (anova["n_ok"] + anova["n_failed"] == 60).all()
    assert res.n_failed == int(anova["n_failed"].iloc[0])
    ols = res.table.query("analysis == 'ols'")
    assert (ols["n_failed"] == 0).all()
    assert any("RM-ANOVA" in w and "fewer than 2 complete subjects in arm" in w for w in res.warnings)
    failed = res.replicates.query("analysis == 'anova'")["failed"]
    assert failed.sum() == 3 * anova["n_failed"].iloc[0]  # time, arm x time, final
    assert res.replicates.loc[failed.index[failed], "estimate"].isna().all()


def test_a_crashing_replicate_does_not_end_the_study(monkeypatch):
    import lmm_teach.montecarlo.worker as worker

    real = worker.simulate_arrays
    calls = {"n": 0}

    def flaky(design, rng):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("disk on fire")
        return real(design, rng)

    monkeypatch.setattr(worker, "simulate_arrays", flaky)
    res = monte_carlo(SMALL.replace(mar_dropout=0.0), n_reps=5, seed=1, analyses=FAST, n_workers=1)
    assert res.n_done == 5 and res.n_failed == 1
    assert (res.table["n_failed"] == 1).all() and (res.table["n_ok"] == 4).all()
    assert res.replicates.query("rep == 2")["failed"].all()
    assert any("simulation failed: unexpected RuntimeError (disk on fire)" in w for w in res.warnings)


def test_a_slope_nobody_measured_is_a_failure_with_a_reason():
    # 4 subjects, 2 visits, half drop out at visit 1: sometimes an arm has no
    # measurement after baseline and its slope cannot be estimated
    design = Design(n_subjects=4, visit_times=(0, 1), arms=True, mar_dropout=0.5)
    res = monte_carlo(design, n_reps=40, seed=3, analyses=("ols",), n_workers=1)
    assert 0 < res.n_failed < 40
    assert (res.table["n_failed"] == res.n_failed).all()
    assert any("an arm has no measurement after baseline" in w for w in res.warnings), res.warnings


# --------------------------------------------------------------------------- the analyses themselves
def test_ols_matches_statsmodels():
    data = simulate(SMALL, seed=4)
    sim = simulate_arrays(SMALL, 4)
    fit = sm.OLS.from_formula("y ~ time * arm", data).fit()
    got = analyse_ols(sim, SMALL, 0.05)
    b, cov = fit.params, fit.cov_params()
    assert got["arm x time"]["estimate"] == pytest.approx(b["time:arm[T.B]"], rel=1e-10)
    assert got["arm x time"]["p"] == pytest.approx(fit.pvalues["time:arm[T.B]"], rel=1e-8)
    L = np.array([0, 0, 1, 0.5])  # statsmodels' order: Intercept, arm[T.B], time, time:arm[T.B]
    assert got["time"]["estimate"] == pytest.approx(L @ b.to_numpy(), rel=1e-10)
    assert got["time"]["se"] == pytest.approx(np.sqrt(L @ cov.to_numpy() @ L), rel=1e-10)
    ci = fit.conf_int().loc["time:arm[T.B]"]
    assert (got["arm x time"]["ci_low"], got["arm x time"]["ci_high"]) == pytest.approx(tuple(ci), rel=1e-8)


def test_anova_analysis_matches_rm_anova_and_the_complete_case_slopes():
    from lmm_teach.anova import rm_anova

    design = SMALL.replace(n_subjects=30)
    data = simulate(design, seed=8)
    sim = simulate_arrays(design, 8)
    got = analyse_anova(sim, design, 0.05)
    ref = rm_anova(data, y="y", subject="subject", visit="visit", between="arm")
    p_gg = ref.table.set_index("effect")["p_gg"]
    assert got["time"]["p"] == pytest.approx(p_gg["visit"], rel=1e-10)
    assert got["arm x time"]["p"] == pytest.approx(p_gg["arm:visit"], rel=1e-10)
    assert got["time"]["n_subjects"] == ref.n_subjects_used
    # the estimate: per-arm least-squares slopes of the complete cases' visit means
    counts = data.groupby("subject")["y"].transform("size")
    cc = data[counts == design.n_visits]
    means = cc.groupby(["arm", "visit"])["y"].mean().unstack()
    slope = {a: np.polyfit(design.visit_times, means.loc[a].to_numpy(), 1)[0] for a in "AB"}
    assert got["arm x time"]["estimate"] == pytest.approx(slope["B"] - slope["A"], rel=1e-10)
    assert got["time"]["estimate"] == pytest.approx((slope["A"] + slope["B"]) / 2, rel=1e-10)
    # its SE is the two-sample SE of the subjects' own slopes
    own = pd.Series({s: np.polyfit(g["time"], g["y"], 1)[0] for s, g in cc.groupby("subject")})
    arm = cc.groupby("subject")["arm"].first()
    a, b = own[arm == "A"], own[arm == "B"]
    sp2 = ((len(a) - 1) * a.var() + (len(b) - 1) * b.var()) / (len(a) + len(b) - 2)
    assert got["arm x time"]["se"] == pytest.approx(np.sqrt(sp2 * (1 / len(a) + 1 / len(b))), rel=1e-10)


def test_lmm_analyses_match_fit_lmm():
    from lmm_teach.lmm import fit_lmm

    design = Design(n_subjects=30, arms=True, arm_slope_effect=-0.5, mar_dropout=0.15)
    data, sim = simulate(design, seed=5), simulate_arrays(design, 5)
    got = analyse_lmm(sim, design, 0.05)
    ref = fit_lmm(data, y="y", subject="subject", time="time", visit="visit", between="arm")
    tests = ref.tests.set_index("term")
    fixed = ref.fixed.loc["time:armB"]
    # "time" is the type-III test of time (the arms' mean slope), "arm x time" the interaction
    assert got["time"]["p"] == pytest.approx(tests.loc["time", "p"], rel=1e-6)
    assert got["arm x time"]["estimate"] == pytest.approx(fixed["estimate"], rel=1e-8)
    assert got["arm x time"]["p"] == pytest.approx(fixed["p"], rel=1e-6)
    assert got["arm x time"]["wald_p"] == pytest.approx(fixed["p_wald"], rel=1e-6)
    assert got["arm x time"]["ci_high"] == pytest.approx(fixed["ci_high"], rel=1e-6)
    b, cov = ref.fixed["estimate"], ref.cov_fixed.to_numpy()
    L = np.array([0, 1, 0, 0.5])
    assert got["time"]["estimate"] == pytest.approx(L @ b.to_numpy(), rel=1e-8)
    assert got["time"]["se"] == pytest.approx(np.sqrt(L @ cov @ L), rel=1e-6)

    cat = analyse_lmm_categorical(sim, design, 0.05)
    ref = fit_lmm(data, y="y", subject="subject", time="time", visit="visit", between="arm",
                  time_as="categorical")
    tests = ref.tests.set_index("term")
    assert cat["time"]["p"] == pytest.approx(tests.loc["visit", "p"], rel=1e-6)
    assert cat["arm x time"]["p"] == pytest.approx(tests.loc["visit:arm", "p"], rel=1e-6)
    # the estimate: least-squares slope over the planned times of the model's visit means
    b = ref.fixed["estimate"]
    w = np.subtract(design.visit_times, np.mean(design.visit_times))
    w = w / (w @ w)
    inter = np.array([0.0] + [b[f"visit{j}:armB"] for j in range(1, 6)])
    assert cat["arm x time"]["estimate"] == pytest.approx(w @ inter, rel=1e-8)


def test_balanced_complete_data_give_one_slope_to_every_analysis():
    # No missing data, no jitter, random intercept: the GLS slope equals the OLS
    # slope, which equals the slope of the visit means (of the model or of the
    # complete cases), in every replicate.  A wrong contrast breaks this.  At the final
    # visit the visit-based methods give the difference of the final visit's means and the
    # numeric-time ones their lines' difference at time 4: two answers, each shared.
    design = Design(n_subjects=8, visit_times=(0, 1, 3, 4), arms=True, arm_slope_effect=0.5,
                    mar_dropout=0.0)
    res = monte_carlo(design, n_reps=6, seed=4, n_workers=1, analyses=ANALYSES)
    est = res.replicates.pivot_table(index=["rep", "hypothesis"], columns="analysis", values="estimate")
    slopes = est.drop(index="final", level="hypothesis")
    for a in ("lmm_wald", "lmm_categorical", "mmrm", "anova", "ols"):
        np.testing.assert_allclose(slopes[a], slopes["lmm"], rtol=1e-7, err_msg=a)
    final = est.xs("final", level="hypothesis")
    for a in ("mmrm", "anova"):
        np.testing.assert_allclose(final[a], final["lmm_categorical"], rtol=1e-7, err_msg=a)
    for a in ("lmm_wald", "ols"):
        np.testing.assert_allclose(final[a], final["lmm"], rtol=1e-7, err_msg=a)
    assert res.n_failed == 0


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_runs(name):
    res = monte_carlo(PRESETS[name], n_reps=6, seed=1, n_workers=1)
    assert res.n_done == 6
    lmm = res.table.query("analysis == 'lmm'")
    assert (lmm["n_ok"] == 6).all(), res.warnings
    assert not any("unexpected" in w for w in res.warnings), res.warnings


def test_complete_cases_keeps_subjects_with_every_visit():
    sim = simulate_arrays(SMALL, 21)
    Y, groups, keep = complete_cases(long_from_simulation(sim, SMALL))
    counts = np.bincount(sim.subject, minlength=SMALL.n_subjects)
    assert keep.tolist() == (counts == SMALL.n_visits).tolist()
    assert Y.shape == (keep.sum(), SMALL.n_visits) and np.isfinite(Y).all()
    assert groups.tolist() == sim.subject_arm[keep].tolist()


# --------------------------------------------------------------------------- performance measures
def test_performance_measures_by_hand():
    est = np.array([1.0, 2.0, 3.0, 10.0])
    se = np.array([1.0, 1.0, 1.0, 1.0])
    p = np.array([0.01, 0.2, 0.04, 0.5])
    lo, hi = est - 1.4, est + 1.4
    failed = np.array([False, False, False, True])
    out = performance(est, se, p, lo, hi, [5, 5, 4, 9], [20, 20, 16, 9], [True, False, False, False],
                      failed, truth=2.5, alpha=0.05)
    assert out["n_ok"] == 3 and out["n_failed"] == 1 and out["n_singular"] == 1
    assert out["rejection_rate"] == pytest.approx(2 / 3)
    assert out["rejection_mcse"] == pytest.approx(np.sqrt(2 / 3 * 1 / 3 / 3))
    assert out["bias"] == pytest.approx(-0.5)
    assert out["emp_se"] == pytest.approx(1.0)
    assert out["bias_mcse"] == pytest.approx(1 / np.sqrt(3))
    assert out["emp_se_mcse"] == pytest.approx(1 / np.sqrt(4))
    assert out["rmse"] == pytest.approx(np.sqrt((1.5**2 + 0.5**2 + 0.5**2) / 3))
    assert out["coverage"] == pytest.approx(2 / 3)  # 1 +- 1.4 misses 2.5
    assert out["mean_subjects"] == pytest.approx(14 / 3) and out["mean_obs"] == pytest.approx(56 / 3)


def test_truth_of_the_hypotheses():
    d = Design(slope=-1.0, arms=True, arm_slope_effect=-0.6)
    assert truth_of(d, "time") == pytest.approx(-1.3)  # the mean of the arms' slopes
    assert truth_of(d, "arm x time") == pytest.approx(-0.6)
    assert truth_of(d, "final") == pytest.approx(0.0 - 0.6 * 5)  # B - A at the last visit, time 5
    assert truth_of(Design(slope=2.0), "time") == 2.0


def test_chunk_sizes():
    assert pick_chunk_size(1000, 2) == 50
    assert pick_chunk_size(100, 2) == 7
    assert pick_chunk_size(3, 8) == 1


# --------------------------------------------------------------------------- sweep, results, inputs
def test_sweep_over_n_and_icc():
    base = Design(n_subjects=10, visit_times=(0, 1, 2), mar_dropout=0.0)
    calls = []
    res = sweep(base, "n_subjects", [10, 20], n_reps=12, seed=1, analyses=FAST, n_workers=1,
                progress=lambda d, t: calls.append((d, t)))
    assert isinstance(res, SweepResult) and len(res.results) == 2
    assert res.table["n_subjects"].tolist() == [10, 10, 20, 20]
    assert res.results[1].design.n_subjects == 20
    assert calls[-1] == (24, 24)
    assert res.table.query("analysis == 'anova'")["mean_subjects"].tolist() == [10, 20]
    icc = sweep(base, "icc", [0.2, 0.8], n_reps=4, seed=1, analyses=("ols",), n_workers=1)
    d0, d1 = (r.design for r in icc.results)
    assert d0.icc == pytest.approx(0.2) and d1.icc == pytest.approx(0.8)
    assert d1.sd_intercept**2 + d1.sd_residual**2 == pytest.approx(base.sd_intercept**2 + base.sd_residual**2)
    json.dumps(icc.to_dict(), allow_nan=False)
    assert "icc" in icc.summary()
    with pytest.raises(ValueError, match="not a Design field"):
        sweep(base, "n_patients", [10], n_reps=2, seed=1)


def test_sweep_on_its_own_pool_gives_the_studies_of_monte_carlo():
    res = sweep(SMALL, "mar_dropout", [0.0, 0.3], n_reps=12, seed=8, analyses=FAST, n_workers=2, chunk_size=3)
    for value, study in zip(res.values, res.results, strict=True):
        _same(study, monte_carlo(SMALL.replace(mar_dropout=value), n_reps=12, seed=8, analyses=FAST,
                                 n_workers=1))


def test_sweep_stops_when_cancelled():
    stop = threading.Event()
    res = sweep(SMALL, "n_subjects", [12, 16, 20], n_reps=10, seed=1, analyses=FAST, n_workers=1,
                chunk_size=5, cancel=stop, progress=lambda d, t: stop.set() if d >= 15 else None)
    assert res.cancelled and len(res.results) == 2 and res.results[-1].cancelled


def test_result_summary_and_json():
    res = monte_carlo(SMALL, n_reps=8, seed=1, analyses=FAST, n_workers=1)
    text = res.summary()
    assert "RM-ANOVA, complete cases" in text and "arm x time" in text
    d = json.loads(json.dumps(res.to_dict(replicates=True), allow_nan=False))
    assert d["n_reps"] == 8 and len(d["table"]) == 6 and len(d["replicates"]) == 48
    assert d["design"]["n_subjects"] == 12
    assert list(res.table["hypothesis"]) == ["time", "arm x time", "final"] * 2


@pytest.mark.parametrize("kwargs, match", [
    ({"n_reps": 0}, "n_reps"),
    ({"n_reps": 2.5}, "n_reps"),
    ({"analyses": ("lmm", "gee")}, "unknown analysis 'gee'"),
    ({"alpha": 1.5}, "alpha"),
    ({"n_workers": 0}, "n_workers"),
    ({"chunk_size": -1}, "chunk_size"),
    ({"seed": -3}, "seed"),
])
def test_bad_arguments_are_explained(kwargs, match):
    args = {"n_reps": 4, "seed": 1, **kwargs}
    with pytest.raises(ValueError, match=match):
        monte_carlo(SMALL, **args)


def test_bad_design_and_cancel_types():
    with pytest.raises(TypeError, match="Design"):
        monte_carlo({"n_subjects": 10}, n_reps=2, seed=1)
    with pytest.raises(TypeError, match="is_set"):
        monte_carlo(SMALL, n_reps=2, seed=1, cancel=True)


def test_core_does_not_import_the_widget_stack():
    code = ("import sys, lmm_teach\nfrom lmm_teach import monte_carlo, Design\n"
            "monte_carlo(Design(n_subjects=6, visit_times=(0, 1, 2)), n_reps=2, seed=1, n_workers=1)\n"
            "bad = [m for m in ('bokeh', 'ipywidgets', 'jupyter_bokeh') if m in sys.modules]\n"
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_docstring_examples_run():
    import doctest

    import lmm_teach.montecarlo.in_words as words
    import lmm_teach.montecarlo.study as mc

    result = doctest.testmod(mc, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 5 and result.failed == 0
    result = doctest.testmod(words)
    assert result.attempted >= 2 and result.failed == 0


def test_a_multithreaded_caller_gets_a_forkserver_pool_with_the_same_results():
    # A Jupyter kernel (or a widget's worker thread) runs other threads, so the
    # pool must not fork it; the forkserver path must give the same table.
    code = (
        "import threading, pandas as pd\n"
        "from lmm_teach.design import Design\n"
        "from lmm_teach.montecarlo import monte_carlo\n"
        "from lmm_teach.montecarlo.run import _context\n"
        "stop = threading.Event(); threading.Thread(target=stop.wait, daemon=True).start()\n"
        "assert _context().get_start_method() in ('forkserver', 'spawn')\n"
        "d = Design(n_subjects=10, visit_times=(0, 1, 2))\n"
        "a = monte_carlo(d, n_reps=12, seed=3, n_workers=2, chunk_size=3)\n"
        "b = monte_carlo(d, n_reps=12, seed=3, n_workers=1)\n"
        "pd.testing.assert_frame_equal(a.table, b.table)\n"
        "stop.set()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)


def test_a_slope_model_with_too_few_rows_is_refused_as_fit_lmm_refuses_it():
    # 10 subjects x 3 visits with 45 % MCAR: some replicates keep <= 20 rows, no more than the
    # 20 random effects of (time | subject); fit_lmm refuses such data, so must the worker
    from lmm_teach.lmm.engine import unfittable_reason

    design = Design(n_subjects=10, visit_times=(0, 1, 2), sd_slope=0.5, mcar=0.45, mar_dropout=0.0)
    res = monte_carlo(design, n_reps=30, seed=1, analyses=("lmm", "ols"), n_workers=1)
    reps = res.replicates
    n_obs = reps.query("analysis == 'ols'").set_index("rep")["n_obs"]
    lmm_failed = reps.query("analysis == 'lmm'").set_index("rep")["failed"]
    refused = n_obs.map(lambda n: unfittable_reason(int(n), 2, 10, random_slope=True, cluster=False) is not None)
    assert refused.any() and not refused.all()
    assert (lmm_failed == refused).all()
    row = res.table.query("analysis == 'lmm'").iloc[0]
    assert row["n_failed"] == refused.sum() and row["n_ok"] == (~refused).sum()
    note = next(w for w in res.warnings if w.startswith("LMM"))
    assert "a random slope needs more measurements" in note and "than random effects" in note


def test_a_fit_that_did_not_converge_is_a_failure_with_its_reason(monkeypatch):
    import dataclasses

    import lmm_teach.methods.lmm as worker  # the registry's numeric-time LMM, which the worker runs

    real = worker.fit_arrays
    calls = {"n": 0}

    def sometimes(*args, **kw):
        fit = real(*args, **kw)
        calls["n"] += 1
        if calls["n"] == 2:
            return dataclasses.replace(fit, converged=False, reason="the deviance curves downwards in some "
                                       "direction here (a saddle point, not a minimum)")
        return fit

    monkeypatch.setattr(worker, "fit_arrays", sometimes)
    res = monte_carlo(SMALL.replace(mar_dropout=0.0), n_reps=4, seed=1, analyses=("lmm", "ols"), n_workers=1)
    lmm = res.table.query("analysis == 'lmm'")
    assert (lmm["n_failed"] == 1).all() and (lmm["n_ok"] == 3).all()
    assert (res.table.query("analysis == 'ols'")["n_failed"] == 0).all()
    assert any("the REML fit did not converge (the deviance curves downwards" in w and "saddle" in w
               for w in res.warnings)
