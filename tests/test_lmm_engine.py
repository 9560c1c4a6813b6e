"""The array engine: its deviance against dense linear algebra, its optimiser, fit_arrays."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lmm_teach.lmm import fit_lmm
from lmm_teach.lmm.deviance import build_problem, deviance, solve_at
from lmm_teach.lmm.engine import fit_arrays, fit_problem
from lmm_teach.lmm.optimize import optimize
from lmm_teach.lmm.ranova import random_terms
from lmm_teach.lmm.satterthwaite import richardson


def unbalanced(seed: int, n_subjects: int = 14, n_clusters: int = 4):
    """Rows in random order, 1-6 visits per subject at jittered times, subjects nested in clusters."""
    rng = np.random.default_rng(seed)
    n_i = rng.integers(1, 7, n_subjects)
    subject = np.repeat(np.arange(n_subjects), n_i)
    cluster = (np.arange(n_subjects) % n_clusters)[subject]
    time = np.concatenate([np.sort(rng.uniform(0, 5, k)) for k in n_i])
    y = 3 + 0.5 * time + rng.normal(0, 1, n_subjects)[subject] + rng.normal(0, 0.4, n_subjects)[subject] * time \
        + rng.normal(0, 1, n_clusters)[cluster] + rng.normal(0, 0.7, subject.size)
    order = rng.permutation(subject.size)
    X = np.column_stack([np.ones(subject.size), time, (subject % 2).astype(float)])
    return y[order], X[order], subject[order], time[order], cluster[order]


def dense_deviance(y, X, subject, time, cluster, theta, *, random_slope, reml):
    """-2 log-likelihood straight from V = sigma^2 (I + Z Lambda Lambda' Z'), profiled over beta and sigma."""
    n, p = X.shape
    J = subject.max() + 1
    cols = []
    if random_slope:
        T = np.array([[theta[0], 0.0], [theta[1], theta[2]]])
        Zi = np.zeros((n, 2 * J))
        Zi[np.arange(n), 2 * subject] = 1.0
        Zi[np.arange(n), 2 * subject + 1] = time
        Lam = np.kron(np.eye(J), T)
        cols.append(Zi @ Lam)
    else:
        Zs = np.zeros((n, J))
        Zs[np.arange(n), subject] = 1.0
        cols.append(Zs * theta[0])
    if cluster is not None:
        Zc = np.zeros((n, cluster.max() + 1))
        Zc[np.arange(n), cluster] = 1.0
        cols.append(Zc * theta[-1])
    ZL = np.hstack(cols)
    V = np.eye(n) + ZL @ ZL.T
    Vi = np.linalg.inv(V)
    XtViX = X.T @ Vi @ X
    beta = np.linalg.solve(XtViX, X.T @ Vi @ y)
    r = y - X @ beta
    r2 = r @ Vi @ r
    N = n - p if reml else n
    dev = np.linalg.slogdet(V)[1] + N * (1 + np.log(2 * np.pi * r2 / N))
    if reml:
        dev += np.linalg.slogdet(XtViX)[1]
    return dev, beta


@pytest.mark.parametrize("random_slope", [False, True])
@pytest.mark.parametrize("with_cluster", [False, True])
@pytest.mark.parametrize("reml", [True, False])
def test_deviance_equals_dense_algebra(random_slope, with_cluster, reml):
    y, X, subject, time, cluster = unbalanced(3)
    cl = cluster if with_cluster else None
    pr = build_problem(y, X, subject, time=time, random_slope=random_slope, cluster=cl)
    rng = np.random.default_rng(0)
    k = pr.n_theta
    thetas = np.abs(rng.normal(1.0, 0.5, (4, k)))
    if random_slope:
        thetas[:, 1] = rng.normal(0, 0.5, 4)  # the off-diagonal of T can be negative
    thetas[0, 0] = 0.0  # and the boundary
    # the engine works with time / RMS(time) for the slope: theta converts (Problem.internal)
    ours = deviance(pr, np.array([pr.internal(th) for th in thetas]), reml=reml)
    for th, d in zip(thetas, ours, strict=True):
        want, beta = dense_deviance(y, X, subject, time, cl, th, random_slope=random_slope, reml=reml)
        assert d == pytest.approx(want, rel=1e-10, abs=1e-8)
        np.testing.assert_allclose(solve_at(pr, pr.internal(th), reml=reml).beta, beta, rtol=1e-9, atol=1e-9)


def test_conditional_modes_equal_dense_blups():
    # b = Lambda Lambda' Z' V*^-1 (y - X beta), with the clinic level and random slopes
    y, X, subject, time, cluster = unbalanced(5)
    pr = build_problem(y, X, subject, time=time, random_slope=True, cluster=cluster)
    theta = np.array([0.9, -0.3, 0.4, 1.1])
    sol = solve_at(pr, pr.internal(theta), reml=True)
    n, J, C = y.size, subject.max() + 1, cluster.max() + 1
    Z = np.zeros((n, 2 * J + C))
    Z[np.arange(n), 2 * subject] = 1.0
    Z[np.arange(n), 2 * subject + 1] = time
    Z[np.arange(n), 2 * J + cluster] = 1.0
    T = np.array([[0.9, 0.0], [-0.3, 0.4]])
    Lam = np.zeros((2 * J + C, 2 * J + C))
    Lam[: 2 * J, : 2 * J] = np.kron(np.eye(J), T)
    Lam[2 * J:, 2 * J:] = 1.1 * np.eye(C)
    D = Lam @ Lam.T
    V = np.eye(n) + Z @ D @ Z.T
    b = D @ Z.T @ np.linalg.solve(V, y - X @ sol.beta)
    np.testing.assert_allclose(sol.b_subject.ravel(), b[: 2 * J], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(sol.b_cluster, b[2 * J:], rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("random_slope", [False, True])
def test_optimum_is_a_minimum_of_the_dense_deviance(random_slope):
    y, X, subject, time, cluster = unbalanced(11, n_subjects=20)
    pr = build_problem(y, X, subject, time=time, random_slope=random_slope, cluster=cluster)
    opt = optimize(pr, reml=True)
    assert opt.converged
    theta = pr.external(opt.theta)
    best, _ = dense_deviance(y, X, subject, time, cluster, theta, random_slope=random_slope, reml=True)
    assert best == pytest.approx(opt.dev, rel=1e-10)
    rng = np.random.default_rng(1)
    for _ in range(20):  # no nearby feasible point is better
        th = theta + rng.normal(0, 1e-3, theta.size)
        th = np.where(pr.lower == 0, np.abs(th), th)
        d, _ = dense_deviance(y, X, subject, time, cluster, th, random_slope=random_slope, reml=True)
        assert d >= best - 1e-7


def dropout_study(seed: int, n_subjects: int = 60, sd_slope: float = 0.3):
    """Random intercepts and small random slopes, visits 0..5, dropout driven by the last value (MAR)."""
    rng = np.random.default_rng(seed)
    b0 = rng.normal(0, 5, n_subjects)
    b1 = rng.normal(0, sd_slope, n_subjects)
    rows = []
    for i in range(n_subjects):
        for t in range(6):
            y = 100 - t + b0[i] + b1[i] * t + rng.normal(0, 3)
            rows.append((i, float(t), y))
            if t < 5 and rng.random() < 1 / (1 + np.exp(-(-1.0 + 0.3 * (y - 100) / 3))):
                break
    s, t, y = map(np.array, zip(*rows, strict=True))
    return y, np.column_stack([np.ones(t.size), t]), s, t


def test_default_start_reaches_the_optimum_of_random_slope_fits():
    # lme4's start T = I lies far from these optima (tiny slope variance, much dropout);
    # Newton must not stop there.  The fits from the reduced models' starts are the check.
    # (A projected Newton step that pointed uphill stopped early in 2 of these 40.)
    for seed in range(40):
        y, X, s, t = dropout_study(seed)
        pr = build_problem(y, X, s, time=t, random_slope=True)
        default = optimize(pr, reml=True)
        guided = fit_problem(pr, reml=True, random_terms=random_terms(2, False, subject="s", time="t", cluster=None))
        assert default.converged and guided.converged, seed
        assert default.dev == pytest.approx(guided.optimum.dev, abs=1e-6), seed


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_boundary_optimum_is_exactly_zero(method):
    # the reference case without between-subject variance: lme4 reports exactly 0 (R: VarCorr(m))
    data = pd.read_csv("tests/data/singular.csv")
    X = np.column_stack([np.ones(len(data)), data["time"].to_numpy(float)])
    fit = fit_arrays(data["y"].to_numpy(), X, data["subject"].to_numpy(), method=method)
    assert fit.theta[0] == 0.0 and fit.singular and fit.converged
    # on the boundary the Satterthwaite df is the residual df (lmerTest: n - p for REML, n for ML)
    np.testing.assert_allclose(fit.df, len(data) - (2 if method == "REML" else 0), rtol=1e-9)


def test_richardson_derivatives_of_a_known_function():
    def f(X):
        return (np.exp(X[:, 0]) * np.sin(X[:, 1]), X[:, 0] ** 3 + X[:, 0] * X[:, 1])

    x = np.array([0.3, 1.2])
    (g1, g2), (H1, H2), (f1, _) = richardson(f, x)
    assert f1 == pytest.approx(np.exp(0.3) * np.sin(1.2))
    np.testing.assert_allclose(g1, [np.exp(0.3) * np.sin(1.2), np.exp(0.3) * np.cos(1.2)], rtol=1e-9)
    np.testing.assert_allclose(H1, [[np.exp(0.3) * np.sin(1.2), np.exp(0.3) * np.cos(1.2)],
                                    [np.exp(0.3) * np.cos(1.2), -np.exp(0.3) * np.sin(1.2)]], rtol=1e-7)
    np.testing.assert_allclose(g2, [3 * 0.09 + 1.2, 0.3], rtol=1e-9)
    np.testing.assert_allclose(H2, [[6 * 0.3, 1.0], [1.0, 0.0]], atol=1e-7)


def test_fit_arrays_agrees_with_fit_lmm_and_tests_contrasts():
    data = pd.read_csv("tests/data/trial_mar.csv")
    m = fit_lmm(data, y="y", subject="subject", time="time", between="arm")
    t = data["time"].to_numpy(float)
    b = (data["arm"] == "B").to_numpy(float)
    X = np.column_stack([np.ones(len(t)), t, b, t * b])
    contrasts = {"time": [0, 1, 0, 0.5], "arm x time": [0, 0, 0, 1], "both": [[0, 1, 0, 0], [0, 0, 0, 1]]}
    fit = fit_arrays(data["y"].to_numpy(float), X, data["subject"].to_numpy(), time=t, contrasts=contrasts)
    np.testing.assert_allclose(fit.beta, m.fixed["estimate"], rtol=1e-8)
    np.testing.assert_allclose(fit.se, m.fixed["se"], rtol=1e-8)
    np.testing.assert_allclose(fit.df, m.fixed["df"], rtol=1e-6)
    np.testing.assert_allclose(fit.p, m.fixed["p"], rtol=1e-6)
    tests = m.tests.set_index("term")
    # the type-III time test of y ~ time * arm is the mean of the two arms' slopes
    assert fit.tests["time"][0] == pytest.approx(tests.loc["time", "F"], rel=1e-8)
    assert fit.tests["time"][2] == pytest.approx(tests.loc["time", "df_den"], rel=1e-6)
    assert fit.tests["arm x time"][0] == pytest.approx(tests.loc["time:arm", "F"], rel=1e-8)
    assert fit.tests["both"][1] == 2.0
    assert fit.loglik == pytest.approx(m.loglik, abs=1e-9) and fit.converged and not fit.singular


def test_fit_arrays_without_satterthwaite_and_with_ml():
    data = pd.read_csv("tests/data/ri_balanced.csv")
    X = np.column_stack([np.ones(len(data)), data["time"].to_numpy(float)])
    fast = fit_arrays(data["y"].to_numpy(), X, data["subject"].to_numpy(), satterthwaite=False,
                      contrasts={"time": [0, 1]})
    assert np.isnan(fast.df).all() and np.isnan(fast.tests["time"][2])
    assert fast.tests["time"][0] == pytest.approx(fast.t[1] ** 2)
    ml = fit_arrays(data["y"].to_numpy(), X, data["subject"].to_numpy(), method="ML")
    # balanced and complete: GLS equals OLS whatever the variances, so ML and REML share beta
    np.testing.assert_allclose(ml.beta, fast.beta, rtol=1e-10)
    assert ml.sigma < fast.sigma and ml.loglik != pytest.approx(fast.loglik)
    with pytest.raises(ValueError, match="REML"):
        fit_arrays(data["y"].to_numpy(), X, data["subject"].to_numpy(), method="bayes")
