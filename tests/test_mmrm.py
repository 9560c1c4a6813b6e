"""fit_mmrm against R: mmrm 0.3.18 + emmeans 1.8.4 on six reference cases, ten structures, two df methods.

R's numbers are in tests/data/mmrm_reference.json (the "mmrm" blocks of
../shared/reference/cases/<case>.expected.json), made by
tests/data/r/fit_mmrm_reference.R, which runs per case and structure COV

    mmrm(y ~ visit [* between] + COV(visit | subject), reml = TRUE, method = "Satterthwaite" | "Kenward-Roger")
    (sp_exp(time | subject) for the spatial exponential; visit a factor, levels sorted)
    summary(m)$coefficients                          -> fixed
    emmeans(m, ~ visit) or emmeans(m, ~ between | visit)   -> lsmeans
    contrast(emmeans(...), "revpairwise")            -> lsmeans_diff
    logLik(m), AIC(m), BIC(m), VarCorr(m)            -> loglik, aic, bic, cov_matrix

Tolerances as the reference README: estimates 1e-4 relative, SE and t 1e-3,
df 1e-2, covariances 2e-3 relative, REML log-likelihood 2e-3 absolute.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lmm_teach import DataError
from lmm_teach.mmrm import STRUCTURES, fit_mmrm
from lmm_teach.mmrm.engine import evaluate
from lmm_teach.mmrm.problem import build_problem

DATA = Path(__file__).parent / "data"
CASES = json.loads((DATA / "cases.json").read_text())
REF = json.loads((DATA / "mmrm_reference.json").read_text())


@functools.cache
def _data(case: str) -> pd.DataFrame:
    return pd.read_csv(DATA / f"{case}.csv")


@functools.cache
def _fit(case: str, cov: str, df: str, exact: bool = False):
    o = CASES[case]
    return fit_mmrm(_data(case), y=o["y"], subject=o["subject"], visit=o["visit"], between=o["between"],
                    time=o["time"], covariance=cov, df=df, exact=exact)


def _label(v) -> str:
    try:
        f = float(v)
        return str(int(f)) if f.is_integer() else str(f)
    except (TypeError, ValueError):
        return str(v)


PARAMS = [(case, cov, df) for case in ("seed_bp", "trial_mar", "ri_mcar_unequal", "singular")
          for cov in STRUCTURES for df in ("satterthwaite", "kenward-roger")]


@pytest.mark.parametrize("case,cov,df", PARAMS)
def test_matches_r_mmrm(case, cov, df):
    ref = REF[case][cov][df]
    fit = _fit(case, cov, df)
    assert fit.converged
    assert fit.n_params == ref["n_params"]
    assert fit.loglik == pytest.approx(ref["loglik"], abs=2e-3)
    assert fit.aic == pytest.approx(ref["aic"], abs=4e-3)
    assert fit.bic == pytest.approx(ref["bic"], abs=4e-3)
    for f in ref["fixed"]:
        row = fit.fixed.loc[f["term"]]
        assert row["estimate"] == pytest.approx(f["estimate"], rel=1e-4, abs=1e-8)
        assert row["se"] == pytest.approx(f["se"], rel=1e-3)
        assert row["df"] == pytest.approx(f["df"], rel=1e-2)
        assert row["p"] == pytest.approx(f["p"], rel=2e-2, abs=1e-4)
    got = {(_label(r["visit"]), str(r.get("group", ""))): r for r in fit.lsmeans.to_dict("records")}
    for f in ref["lsmeans"]:
        r = got[(_label(f["visit"]), str(f.get("group", "")))]
        assert r["estimate"] == pytest.approx(f["estimate"], rel=1e-4)
        assert r["se"] == pytest.approx(f["se"], rel=1e-3)
        assert r["df"] == pytest.approx(f["df"], rel=1e-2)
    diffs = {(_label(r["visit"]), r["contrast"]): r for r in fit.lsmeans_diff.to_dict("records")}
    for f in ref["lsmeans_diff"] or []:
        r = diffs[(_label(f["visit"]), f["contrast"])]
        assert r["estimate"] == pytest.approx(f["estimate"], rel=1e-4, abs=1e-8)
        assert r["se"] == pytest.approx(f["se"], rel=1e-3)
        assert r["df"] == pytest.approx(f["df"], rel=1e-2)
        assert r["p"] == pytest.approx(f["p"], rel=2e-2, abs=1e-4)
    np.testing.assert_allclose(fit.cov_matrix, np.array(ref["cov_matrix"]), rtol=2e-3)


@pytest.mark.parametrize("cov", ["us", "adh", "sp_exp", "cs"])
def test_exact_optimum_is_at_least_as_good_as_r(cov):
    """Newton with the exact Hessian reaches the optimum: never below R's log-likelihood, and close to R."""
    ref = REF["trial_mar"][cov]["satterthwaite"]
    fit = _fit("trial_mar", cov, "satterthwaite", exact=True)
    assert fit.optimizer == "newton" and fit.converged
    assert fit.loglik >= ref["loglik"] - 1e-9
    assert fit.loglik == pytest.approx(ref["loglik"], abs=2e-3)
    for f in ref["fixed"]:
        assert fit.fixed.loc[f["term"], "estimate"] == pytest.approx(f["estimate"], rel=1e-3, abs=1e-6)


def _numeric_derivatives(pr, theta, reml):
    k = len(theta)
    h = 1e-6
    eye = np.eye(k)
    g = np.array([(evaluate(pr, theta + h * eye[i], order=0, reml=reml).f
                   - evaluate(pr, theta - h * eye[i], order=0, reml=reml).f) / (2 * h) for i in range(k)])
    H = np.array([(evaluate(pr, theta + h * eye[i], order=1, reml=reml).grad
                   - evaluate(pr, theta - h * eye[i], order=1, reml=reml).grad) / (2 * h) for i in range(k)])
    return g, H


@pytest.mark.parametrize("cov", list(STRUCTURES))
@pytest.mark.parametrize("reml", [True, False])
def test_gradient_and_hessian_are_exact(cov, reml):
    """The analytic gradient and Hessian agree with central differences (unequal times for sp_exp)."""
    st = STRUCTURES[cov]
    case = "ri_mcar_unequal" if cov == "sp_exp" else "trial_mar"
    o = CASES[case]
    pr = build_problem(_data(case), y="y", subject="subject", visit="visit", between=o["between"], time="time",
                       structure=st)
    rng = np.random.default_rng(7)
    theta = rng.normal(0.0, 0.3, st.n_params(pr.n_visits))
    theta[: pr.n_visits if st.heterogeneous else 1] += 1.5
    ev = evaluate(pr, theta, reml=reml)
    g, H = _numeric_derivatives(pr, theta, reml)
    np.testing.assert_allclose(ev.grad, g, rtol=1e-5, atol=1e-5 * np.abs(g).max())
    np.testing.assert_allclose(ev.hess, H, rtol=1e-4, atol=1e-5 * np.abs(H).max())


def test_grouped_and_per_subject_sums_agree():
    """The sums over groups of subjects (same visits, same arm) equal the plain per-subject sums."""
    from lmm_teach.mmrm import engine

    pr = build_problem(_data("trial_mar"), y="y", subject="subject", visit="visit", between="arm", time=None,
                       structure=STRUCTURES["toeph"])
    assert len(pr.gn) < pr.n_subjects and pr.gn.sum() == pr.n_subjects
    theta = np.array(np.linspace(1.5, 2.0, pr.n_visits).tolist() + [0.5, 0.3, 0.2, 0.1])
    ev = evaluate(pr, theta)
    Wp, _ = engine._pattern_inverses(pr, ev.sigma)
    W = Wp[pr.pat_idx]
    G = W @ pr.X3
    e = (W @ (pr.y2 - pr.X3 @ ev.beta)[:, :, None])[:, :, 0]
    N = pr.n_subjects
    dS = np.broadcast_to(ev.dS, (N,) + ev.dS.shape)
    d2S = np.broadcast_to(ev.d2S, (N,) + ev.d2S.shape)
    per = engine._derivatives_per_subject(ev.f, ev.beta, ev.phi, ev.sigma, dS, d2S, W, G, e, 2, True)
    np.testing.assert_allclose(per.grad, ev.grad, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(per.hess, ev.hess, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(per.P, ev.P, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("cov", ["us", "toeph", "ar1"])
def test_gradient_alone_equals_the_gradient_with_the_hessian(cov):
    """order=1 (the L-BFGS-B path; us contracts dSigma in closed form) gives order=2's gradient and beta."""
    st = STRUCTURES[cov]
    pr = build_problem(_data("trial_mar"), y="y", subject="subject", visit="visit", between="arm", time=None,
                       structure=st)
    theta = np.random.default_rng(3).normal(0.0, 0.3, st.n_params(pr.n_visits))
    theta[: pr.n_visits if st.heterogeneous else 1] += 1.5
    one, two = evaluate(pr, theta, order=1), evaluate(pr, theta, order=2)
    assert one.f == pytest.approx(two.f, rel=1e-14)
    np.testing.assert_allclose(one.grad, two.grad, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(one.beta, two.beta, rtol=1e-12)


@pytest.mark.parametrize("n", [2, 5])
def test_unstructured_contractions_in_closed_form(n):
    """<dSigma_i, M> and <d2Sigma_ij, M> of us without the derivative arrays equal the contractions of them."""
    st = STRUCTURES["us"]
    rng = np.random.default_rng(n)
    theta = rng.normal(size=st.n_params(n))
    M = rng.normal(size=(n, n))
    M = M + M.T
    _, dS, d2S = st.sigma(theta, n, order=2)
    k = len(theta)
    g, Z = st.contract(theta, M, second=True)
    np.testing.assert_allclose(g, dS.reshape(k, -1) @ M.ravel(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(Z, d2S.reshape(k, k, -1) @ M.ravel(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(st.contract(theta, M), g, rtol=1e-14)


def test_a_design_row_that_is_not_the_arm_s_falls_back_to_one_class_per_subject():
    """problem_from_arrays with an extra subject-level column (a baseline covariate): the sums over
    (pattern, class) cells still equal the plain per-subject sums."""
    from lmm_teach.mmrm import engine
    from lmm_teach.mmrm.problem import problem_from_arrays

    d = _data("trial_mar")
    pr0 = build_problem(d, y="y", subject="subject", visit="visit", between="arm", time=None,
                        structure=STRUCTURES["us"])
    assert len(pr0.cls_X) == 2                               # visit x arm: one class per arm
    scodes, vcodes = np.nonzero(pr0.mask)
    X = pr0.X3[scodes, vcodes]
    baseline = np.random.default_rng(5).normal(size=pr0.n_subjects)
    X = np.column_stack([X, baseline[scodes]])
    pr = problem_from_arrays(y=pr0.y2[scodes, vcodes], X=X, subject=scodes, visit=vcodes, n_visits=pr0.n_visits,
                             group=pr0.group_of[scodes], structure=STRUCTURES["us"])
    assert len(pr.cls_X) == pr.n_subjects
    theta = np.concatenate([np.full(pr.n_visits, 1.5), np.full(STRUCTURES["us"].n_params(pr.n_visits)
                                                                - pr.n_visits, 0.2)])
    ev = evaluate(pr, theta)
    Wp, _ = engine._pattern_inverses(pr, ev.sigma)
    W = Wp[pr.pat_idx]
    G = W @ pr.X3
    e = (W @ (pr.y2 - pr.X3 @ ev.beta)[:, :, None])[:, :, 0]
    N = pr.n_subjects
    dS = np.broadcast_to(ev.dS, (N,) + ev.dS.shape)
    d2S = np.broadcast_to(STRUCTURES["us"].sigma(theta, pr.n_visits)[2], (N,) + ev.dS.shape[:1] + ev.dS.shape)
    per = engine._derivatives_per_subject(ev.f, ev.beta, ev.phi, ev.sigma, dS, d2S, W, G, e, 2, True)
    np.testing.assert_allclose(per.grad, ev.grad, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(per.hess, ev.hess, rtol=1e-8, atol=1e-8)


def test_result_pickles_with_its_tables_unbuilt():
    """The tables are built on first read; an unread result pickles (process pools) and builds them after."""
    import pickle

    fit = fit_mmrm(_data("trial_mar"), y="y", subject="subject", visit="visit", between="arm", covariance="cs")
    again = pickle.loads(pickle.dumps(fit))
    pd.testing.assert_frame_equal(again.fixed, fit.fixed)
    pd.testing.assert_frame_equal(again.lsmeans_diff, fit.lsmeans_diff)


def test_result_tables_and_json():
    fit = _fit("trial_mar", "us", "kenward-roger")
    assert list(fit.covariance.index) == ["0", "1", "2", "3", "4"]
    np.testing.assert_allclose(np.diag(fit.correlation), 1.0)
    assert set(fit.tests.index) == {"visit", "arm", "visit:arm"}
    assert (fit.tests["df_num"] == [4, 1, 4]).all()
    d = fit.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["df_method"] == "kenward-roger" and d["structure"] == "us"
    assert {r["contrast"] for r in d["lsmeans_diff"]} == {"B - A"}
    assert "Kenward-Roger" in fit.summary() and "LS-means" in fit.summary()
    low, up = fit.fixed["lower"], fit.fixed["upper"]
    assert (low < fit.fixed["estimate"]).all() and (fit.fixed["estimate"] < up).all()


def test_residual_and_between_within_df():
    o = CASES["trial_mar"]
    res = fit_mmrm(_data("trial_mar"), y="y", subject="subject", visit="visit", between="arm", covariance="cs",
                   df="residual")
    assert (res.fixed["df"] == res.n_obs - len(res.fixed)).all()
    bw = fit_mmrm(_data("trial_mar"), y="y", subject="subject", visit="visit", between=o["between"],
                  covariance="cs", df="between-within")
    assert bw.fixed.loc["armB", "df"] == bw.n_subjects - 2
    assert bw.fixed.loc["visit1", "df"] > bw.fixed.loc["armB", "df"]


# -- bad input: a DataError or a warning in words, never a traceback

def test_visit_without_observations_is_left_out_with_a_warning():
    d = _data("trial_mar").copy()
    d.loc[d["visit"] == 4, "y"] = np.nan
    fit = fit_mmrm(d, y="y", subject="subject", visit="visit", between="arm", covariance="cs")
    assert list(fit.covariance.index) == ["0", "1", "2", "3"]
    assert any("visit 4" in w and "no observed" in w for w in fit.warnings)


def test_too_many_parameters_for_the_data():
    d = _data("seed_bp").iloc[:12]  # 4 patients x 3 visits: 9 residual df... us has 6, toeph 5: fine
    with pytest.raises(DataError, match="parameters"):
        small = d[d["patient"].isin([1, 2])]
        fit_mmrm(small, y="bp", subject="patient", visit="time", covariance="us")


def test_unstructured_needs_each_pair_of_visits_together():
    d = _data("trial_mar")
    even = d["subject"].str[1:].astype(int) % 2 == 0
    # even subjects lose visit 2, odd ones visit 1: no subject has both
    d = d[~((even & (d["visit"] == 2)) | (~even & (d["visit"] == 1)))]
    with pytest.raises(DataError, match="at both visit = 1 and 2"):
        fit_mmrm(d, y="y", subject="subject", visit="visit", covariance="us")
    fit = fit_mmrm(d, y="y", subject="subject", visit="visit", covariance="ar1")
    assert fit.converged


def test_sp_exp_needs_a_numeric_time():
    with pytest.raises(DataError, match="needs a numeric time column"):
        fit_mmrm(_data("trial_mar"), y="y", subject="subject", visit="visit", covariance="sp_exp")


def test_non_positive_definite_start_is_replaced_with_a_warning():
    k = STRUCTURES["cs"].n_params(5)
    fit = fit_mmrm(_data("trial_mar"), y="y", subject="subject", visit="visit", between="arm", covariance="cs",
                   start=[800.0, 0.0][:k])
    assert fit.converged
    assert any("not positive definite" in w for w in fit.warnings)
    assert fit.loglik == pytest.approx(REF["trial_mar"]["cs"]["satterthwaite"]["loglik"], abs=2e-3)


def test_duplicate_visit_and_unknown_names():
    d = pd.concat([_data("seed_bp"), _data("seed_bp").iloc[:1]])
    with pytest.raises(DataError, match="rows at time"):
        fit_mmrm(d, y="bp", subject="patient", visit="time")
    with pytest.raises(DataError, match="unknown covariance structure"):
        fit_mmrm(_data("seed_bp"), y="bp", subject="patient", visit="time", covariance="unstructured")
    with pytest.raises(DataError, match="unknown df method"):
        fit_mmrm(_data("seed_bp"), y="bp", subject="patient", visit="time", df="containment")
    with pytest.raises(DataError, match="REML"):
        fit_mmrm(_data("seed_bp"), y="bp", subject="patient", visit="time", df="kenward-roger", method="ML")


def test_does_not_modify_the_data():
    d = _data("trial_mar").copy()
    before = d.copy()
    fit_mmrm(d, y="y", subject="subject", visit="visit", between="arm", covariance="ar1")
    pd.testing.assert_frame_equal(d, before)


def test_cli_adds_the_mmrm_section(tmp_path):
    import io

    from lmm_teach.cli import main

    out, err = io.StringIO(), io.StringIO()
    status = main(["fit", str(DATA / "trial_mar.csv"), "--y", "y", "--subject", "subject", "--time", "time",
                   "--visit", "visit", "--between", "arm", "--mmrm", "cs,ar1", "--df", "kenward-roger",
                   "--format", "json"], stdout=out, stderr=err)
    assert status == 0, err.getvalue()
    got = json.loads(out.getvalue())["mmrm"]
    assert set(got) == {"cs", "ar1"}
    ref = REF["trial_mar"]["cs"]["kenward-roger"]
    assert got["cs"]["loglik"] == pytest.approx(ref["loglik"], abs=2e-3)
    assert got["cs"]["lsmeans_diff"][-1]["df"] == pytest.approx(ref["lsmeans_diff"][-1]["df"], rel=1e-2)
    err = io.StringIO()
    assert main(["fit", str(DATA / "trial_mar.csv"), "--y", "y", "--subject", "subject", "--time", "time",
                 "--mmrm", "unstructured"], stdout=io.StringIO(), stderr=err) == 2
    assert "unknown covariance structure" in err.getvalue()


def test_compare_covariances_table_and_nested_tests():
    from lmm_teach import compare_covariances

    c = compare_covariances(_data("trial_mar"), y="y", subject="subject", visit="visit", between="arm",
                            time="time", structures=["us", "cs", "csh", "ar1"])
    t = c.table
    for cov in ("us", "cs", "csh", "ar1"):
        ref = REF["trial_mar"][cov]["satterthwaite"]
        assert t.loc[cov, "loglik"] == pytest.approx(ref["loglik"], abs=2e-3)
        assert t.loc[cov, "n_params"] == ref["n_params"]
    # the random-intercept LMM is compound symmetry (positive correlation): same REML log-likelihood
    assert t.loc["lmm: random intercept", "loglik"] == pytest.approx(t.loc["cs", "loglik"], abs=1e-5)
    assert t.loc["lmm: random slope", "n_params"] == 4
    # cs and the random-intercept LMM tie (same model here): either may carry the smallest BIC
    assert c.best_bic in ("cs", "lmm: random intercept") and "BIC" in t.loc[c.best_bic, "best"]
    row = c.lrt[(c.lrt["smaller"] == "cs") & (c.lrt["larger"] == "csh")].iloc[0]
    assert row["df"] == 4
    assert row["LRT"] == pytest.approx(2 * (t.loc["csh", "loglik"] - t.loc["cs", "loglik"]))
    json.dumps(c.to_dict(), allow_nan=False)
    assert "Smallest AIC" in c.summary()


def test_compare_covariances_reports_a_structure_the_data_cannot_support():
    from lmm_teach import compare_covariances

    c = compare_covariances(_data("seed_bp"), y="bp", subject="patient", visit="time", structures=["us", "sp_exp"],
                            lmm=False)
    assert np.isnan(c.table.loc["sp_exp", "loglik"])
    assert "numeric time" in c.table.loc["sp_exp", "note"]
    assert c.best_aic == "us"
