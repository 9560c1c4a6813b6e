"""Ordinary least squares of ``y ~ time [* group]``, as if every row were a new subject.

The same contrasts as the numeric-time LMM, t tests on ``n - p`` df (an F
test with several contrasts): what one gets by ignoring that measurements of
one subject are alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import fdtrc

from lmm_teach.methods.base import Answer, Hypothesis, Long, Method, t_interval
from lmm_teach.methods.curves import design_matrix, numeric_contrast

__all__ = ["OLS"]


@dataclass(frozen=True, eq=False)
class OLSFit:
    beta: np.ndarray
    cov_beta: np.ndarray
    df: float
    singular: bool = False
    converged: bool = True


def fit(long: Long) -> OLSFit:
    X = design_matrix(long, categorical=False)
    xtx_inv = np.linalg.inv(X.T @ X)
    beta = xtx_inv @ (X.T @ long.y)
    resid = long.y - X @ beta
    df = long.n_obs - X.shape[1]
    if df < 1:
        raise ValueError("no residual degrees of freedom")
    return OLSFit(beta=beta, cov_beta=xtx_inv * (resid @ resid / df), df=float(df))


def answer(fitted: OLSFit, h: Hypothesis, long: Long, alpha: float) -> Answer:
    L = numeric_contrast(h, long)
    n = dict(n_subjects=long.n_subjects, n_obs=long.n_obs)
    Lb = L @ fitted.beta
    V = L @ fitted.cov_beta @ L.T
    if L.shape[0] == 1:
        est, se = float(Lb[0]), float(np.sqrt(V[0, 0]))
        p, lo, hi = t_interval(est, se, fitted.df, alpha)
        return Answer(estimate=est, se=se, df=fitted.df, ci_low=lo, ci_high=hi, statistic="t",
                      value=est / se if se > 0 else np.nan, df_num=1.0, df_den=fitted.df, p=p, **n)
    r = float(L.shape[0])
    F = float(Lb @ np.linalg.solve(V, Lb)) / r
    return Answer(np.nan, np.nan, np.nan, np.nan, np.nan, "F", F, r, fitted.df, float(fdtrc(r, fitted.df, F)), **n)


OLS = Method(key="ols", label="OLS, ignoring subjects", short="OLS", colour="#CC79A7", test="t, n - p df",
             model="y ~ time [* arm], ordinary least squares", fit=fit, answer=answer, order=50,
    phrase="OLS (which ignores the subjects)", possessive="OLS's")
METHODS = (OLS,)
