"""The covariance view's core: the true V = Z G Z' + s2 I of a Design and the models' estimated V."""

import numpy as np
import pandas as pd
import pytest

import lmm_teach as lt
from lmm_teach.covariance import (
    correlation,
    estimated_covariances,
    lmm_covariance,
    marginal_covariance,
    true_covariance,
)
from lmm_teach.design import Design


def test_true_covariance_by_hand():
    # sd_intercept 5, sd_slope 1, corr 0.3, sd_residual 3 at times 0..3:
    # var_i 25, var_s 1, cov 1.5, s2 9: V[t,u] = 25 + 1.5 (t + u) + t u + 9 [t == u]
    d = Design(sd_slope=1.0, corr_intercept_slope=0.3, visit_times=(0, 1, 2, 3))
    v = true_covariance(d)
    expected = [[34.0, 26.5, 28.0, 29.5], [26.5, 38.0, 31.5, 34.0], [28.0, 31.5, 44.0, 38.5],
                [29.5, 34.0, 38.5, 52.0]]
    np.testing.assert_allclose(v.to_numpy(), expected)
    assert list(v.index) == [0, 1, 2, 3] and v.index.name == "visit"


def test_true_covariance_random_intercept_is_compound_symmetry_and_clinic_adds_everywhere():
    v = true_covariance(Design(sd_intercept=2.0, sd_residual=1.0, visit_times=(0, 2, 7)))
    np.testing.assert_allclose(v.to_numpy(), 4.0 + np.eye(3))
    vc = true_covariance(Design(sd_intercept=2.0, sd_residual=1.0, visit_times=(0, 2, 7), n_clinics=3,
                                sd_clinic=1.5, n_subjects=12))
    np.testing.assert_allclose(vc.to_numpy(), 4.0 + 2.25 + np.eye(3))
    # sd_clinic without clinics is ignored
    np.testing.assert_allclose(true_covariance(Design(sd_clinic=9.0)).to_numpy(),
                               true_covariance(Design()).to_numpy())


def test_correlation():
    c = correlation(pd.DataFrame([[4.0, 2.0], [2.0, 9.0]]))
    np.testing.assert_allclose(c.to_numpy(), [[1.0, 1 / 3], [1 / 3, 1.0]])


def test_marginal_covariance_is_z_g_z():
    t = np.array([0.0, 1.5, 4.0])
    z = np.column_stack([np.ones(3), t])
    g = np.array([[3.0, -0.4], [-0.4, 0.5]])
    np.testing.assert_allclose(marginal_covariance(t, var_intercept=3.0, var_slope=0.5, cov_intercept_slope=-0.4,
                                                   var_residual=2.0), z @ g @ z.T + 2.0 * np.eye(3))


@pytest.fixture(scope="module")
def trial():
    d = Design(n_subjects=30, arms=True, sd_slope=1.0, corr_intercept_slope=0.3, visit_times=(0, 1, 2, 3))
    return lt.simulate(d, seed=1)


def test_lmm_covariance_reads_varcorr(trial):
    m = lt.fit_lmm(trial, y="y", subject="subject", time="time", visit="visit", between="arm",
                   random_slope=True, time_as="categorical")
    vc = m.variance

    def vcov(group, var1=None, var2=None):  # one row of R's as.data.frame(VarCorr(m))
        rows = (vc["group"] == group) & ((vc["var1"] == var1) if var1 else vc["var1"].isna()) \
            & ((vc["var2"] == var2) if var2 else vc["var2"].isna())
        return float(vc.loc[rows, "vcov"].iloc[0])

    vi, vs, e = vcov("subject", "(Intercept)"), vcov("subject", "time"), vcov("Residual")
    c = vcov("subject", "(Intercept)", "time")
    v = lmm_covariance(m, [0, 1, 2, 3]).to_numpy()
    assert v[0, 0] == pytest.approx(vi + e)
    assert v[3, 3] == pytest.approx(vi + 6 * c + 9 * vs + e)
    assert v[1, 2] == pytest.approx(vi + 3 * c + 2 * vs)


def test_lmm_covariance_with_clinic():
    data = lt.simulate(Design(n_clinics=4, sd_clinic=2.0), seed=2)
    m = lt.fit_lmm(data, y="y", subject="subject", time="time", cluster="clinic")
    var = dict(zip(m.variance["group"], m.variance["vcov"], strict=True))
    v = lmm_covariance(m, [0, 1]).to_numpy()
    np.testing.assert_allclose(v, var["subject"] + var["clinic"] + var["Residual"] * np.eye(2))


def test_estimated_covariances_three_models(trial):
    est = estimated_covariances(trial, between="arm")
    assert list(est) == ["random intercept LMM", "random slope LMM", "MMRM (us)"]
    mm = lt.fit_mmrm(trial, y="y", subject="subject", visit="visit", between="arm")
    pd.testing.assert_frame_equal(est["MMRM (us)"], mm.covariance)
    ri = est["random intercept LMM"].to_numpy()
    off = ri[~np.eye(4, dtype=bool)]
    assert np.allclose(off, off[0]) and np.allclose(np.diag(ri), ri[0, 0])  # compound symmetry
    # the random-slope LMM's variance grows over the visits, as the truth's (sd_slope 1)
    assert np.all(np.diff(np.diag(est["random slope LMM"].to_numpy())) > 0)
    for v in est.values():
        assert list(v.index) == list(mm.covariance.index)
    cs = estimated_covariances(trial, between="arm", covariance="cs")["MMRM (cs)"].to_numpy()
    np.testing.assert_allclose(cs, ri, rtol=1e-4)  # cs MMRM = random-intercept LMM (same model)
