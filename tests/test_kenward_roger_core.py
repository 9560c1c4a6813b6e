"""The generic Kenward-Roger core (lmm_teach.kenward_roger) against dense algebra and pbkrtest.

The pbkrtest numbers are copies of ../shared/reference (tests/data/<case>.expected.json):

    m <- lmerTest::lmer(y ~ time + (time | subject), data, REML = TRUE)   # rs_corr
    summary(m, ddf = "Kenward-Roger")$coefficients   -> se_kr, df_kr, p_kr   (pbkrtest 0.5.2)

Here the pieces (Phi, P, Q, W) are built densely (n x n) from R's own variance
estimates (as.data.frame(VarCorr(m))), so the core is checked independently of
the LMM engine.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import special

from lmm_teach import kenward_roger as kr

DATA = Path(__file__).parent / "data"


def dense_pieces(X, Gs, gamma):
    """Phi, P, Q, ktrace of V = sum_k gamma_k G_k (V linear in gamma: dV/dgamma_k = G_k)."""
    V = sum(g * G for g, G in zip(gamma, Gs, strict=True))
    Vi = np.linalg.inv(V)
    phi = np.linalg.inv(X.T @ Vi @ X)
    k = len(Gs)
    H = [G @ Vi for G in Gs]
    P = np.array([-(X.T @ Vi @ G @ Vi @ X) for G in Gs])
    Q = np.array([[X.T @ Vi @ Gs[i] @ Vi @ Gs[j] @ Vi @ X for j in range(k)] for i in range(k)])
    ktrace = np.array([[np.sum(H[i].T * H[j]) for j in range(k)] for i in range(k)])
    return phi, P, Q, ktrace


def random_slope_case():
    """rs_corr: X, the G matrices of (time | subject) + residual, and R's variance components."""
    data = pd.read_csv(DATA / "rs_corr.csv").dropna(subset=["y"])
    ref = json.loads((DATA / "rs_corr.expected.json").read_text())["lmm"]
    var = {(r["group"], r["var1"], r["var2"]): r["vcov"] for r in ref["variance"]}
    t = data["time"].to_numpy(float)
    X = np.column_stack([np.ones_like(t), t])
    same = (data["subject"].to_numpy()[:, None] == data["subject"].to_numpy()[None, :]).astype(float)
    G00 = same
    G11 = same * np.outer(t, t)
    G01 = same * (t[:, None] + t[None, :])  # d V / d cov(intercept, slope)
    Gs = [G00, G01, G11, np.eye(len(t))]
    gamma = [var[("subject", "(Intercept)", None)], var[("subject", "(Intercept)", "time")],
             var[("subject", "time", None)], var[("Residual", None, None)]]
    return X, Gs, gamma, ref["fixed"]


def test_dense_random_slope_matches_pbkrtest():
    X, Gs, gamma, fixed = random_slope_case()
    phi, P, Q, ktrace = dense_pieces(X, Gs, gamma)
    W = kr.reml_w(ktrace, phi, P, Q)
    phi_a = kr.adjusted_vcov(phi, P, Q, W)
    for j, row in enumerate(fixed):
        l = np.eye(2)[j]
        scale, ddf = kr.ddf_scale(l, phi, P, W)
        assert scale == pytest.approx(1.0, abs=1e-12)
        # R: summary(m, ddf = "Kenward-Roger")$coefficients[, c("Std. Error", "df", "Pr(>|t|)")]
        assert np.sqrt(phi_a[j, j]) == pytest.approx(row["se_kr"], rel=1e-6)
        assert ddf == pytest.approx(row["df_kr"], rel=1e-5)
        res = kr.t_test(l, np.array([r["estimate"] for r in fixed]), phi, phi_a, P, W)
        assert res.p == pytest.approx(row["p_kr"], rel=1e-4)
        assert res.se[0] == pytest.approx(row["se_kr"], rel=1e-6)


def test_one_row_is_two_over_a():
    """q = 1: A1 = A2 = A, so m = 2 / A and lambda = 1 (KR 1997, section 4)."""
    rng = np.random.default_rng(1)
    p, k = 3, 2
    M = rng.normal(size=(p, p))
    phi = M @ M.T + p * np.eye(p)
    P = -np.array([(lambda B: B @ B.T)(rng.normal(size=(p, p))) for _ in range(k)])
    W = np.array([[0.02, 0.005], [0.005, 0.01]])
    l = np.array([1.0, -0.5, 2.0])
    g = np.array([l @ phi @ Pi @ phi @ l for Pi in P]) / (l @ phi @ l)
    A = g @ W @ g
    scale, m = kr.ddf_scale(l, phi, P, W)
    assert scale == pytest.approx(1.0, rel=1e-10)
    assert m == pytest.approx(2.0 / A, rel=1e-10)


def test_f_test_invariant_to_rewriting_the_hypothesis():
    """L beta = 0 and (T L) beta = 0 are the same hypothesis: same F, scale and df."""
    X, Gs, gamma, _ = random_slope_case()
    rng = np.random.default_rng(2)
    X = np.column_stack([X, rng.normal(size=len(X)), rng.normal(size=len(X))])
    phi, P, Q, ktrace = dense_pieces(X, Gs, gamma)
    W = kr.reml_w(ktrace, phi, P, Q)
    phi_a = kr.adjusted_vcov(phi, P, Q, W)
    beta = np.array([1.0, 0.3, -0.2, 0.5])
    L = np.array([[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0], [0.0, 1.0, 0.0, -1.0]])
    T = np.array([[2.0, 1.0, 0.0], [0.0, 1.0, 3.0], [1.0, 0.0, 1.0]])
    a, b = kr.f_test(L, beta, phi, phi_a, P, W), kr.f_test(T @ L, beta, phi, phi_a, P, W)
    assert (a.F, a.scale, a.df_den, a.p) == pytest.approx((b.F, b.scale, b.df_den, b.p), rel=1e-9)
    assert a.df_num == 3
    assert 0.5 < a.scale < 1.0 + 1e-9  # the KR scale shrinks F a little for q > 1
    assert a.p == pytest.approx(special.fdtrc(3, a.df_den, a.F), rel=1e-12)


def test_balanced_random_intercept_within_df_is_classical():
    """Complete balanced data, random intercept: the slope in time is a within-subject
    contrast with the classical within-subject error df n (T - 1) - 1 (as the
    split-plot ANOVA's), and no adjustment of its variance."""
    n_subj, T = 7, 4
    subj = np.repeat(np.arange(n_subj), T)
    time = np.tile(np.arange(T, dtype=float), n_subj)
    X = np.column_stack([np.ones(n_subj * T), time])
    same = (subj[:, None] == subj[None, :]).astype(float)
    phi, P, Q, ktrace = dense_pieces(X, [same, np.eye(len(subj))], [3.0, 1.5])
    W = kr.reml_w(ktrace, phi, P, Q)
    phi_a = kr.adjusted_vcov(phi, P, Q, W)
    assert kr.ddf_scale([0.0, 1.0], phi, P, W)[1] == pytest.approx(n_subj * (T - 1) - 1, rel=1e-10)
    assert phi_a[1, 1] == pytest.approx(phi[1, 1], rel=1e-10)
    # the between-subject intercept has the Satterthwaite df of a mixture: below n*T - 2
    assert kr.ddf_scale([1.0, 0.0], phi, P, W)[1] < n_subj * T - 2


def test_no_uncertainty_in_variances_means_no_adjustment():
    X, Gs, gamma, _ = random_slope_case()
    phi, P, Q, _ = dense_pieces(X, Gs, gamma)
    W = np.zeros((4, 4))
    assert np.allclose(kr.adjusted_vcov(phi, P, Q, W), phi, rtol=1e-14, atol=0)
    assert kr.ddf_scale([1.0, 0.0], phi, P, W) == (1.0, float("inf"))


def test_second_derivative_term():
    """R enters as -Phi (sum W_ij R_ij) Phi / 2, on top of the linear-V adjustment."""
    X, Gs, gamma, _ = random_slope_case()
    phi, P, Q, ktrace = dense_pieces(X, Gs, gamma)
    W = kr.reml_w(ktrace, phi, P, Q)
    rng = np.random.default_rng(3)
    R = rng.normal(size=(4, 4, 2, 2))
    R = R + R.transpose(1, 0, 3, 2)
    expected = kr.adjusted_vcov(phi, P, Q, W) - 0.5 * phi @ np.einsum("ij,ijab->ab", W, R) @ phi
    assert np.allclose(kr.adjusted_vcov(phi, P, Q, W, R), 0.5 * (expected + expected.T), rtol=1e-12)


def test_shapes_are_checked():
    with pytest.raises(ValueError, match="W must be"):
        kr.ddf_scale([1.0], np.eye(1), np.ones((2, 1, 1)), np.eye(3))
    with pytest.raises(ValueError, match="columns"):
        kr.ddf_scale([1.0, 2.0], np.eye(1), np.ones((1, 1, 1)), np.eye(1))


def test_docstring_examples_run():
    import doctest

    failed, attempted = doctest.testmod(kr)
    assert attempted >= 3 and failed == 0
