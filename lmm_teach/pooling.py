"""No pooling, complete pooling, partial pooling: three answers to "what is this subject's line?".

* **no pooling**: each subject on its own (its own least-squares line, or
  for a random-intercept model its own level with the common slope);
* **complete pooling**: one ordinary regression for everyone, subjects
  ignored (``lm(y ~ time [* between])``);
* **partial pooling**: the LMM, the population line plus the subject's BLUP.

Also the geometry of the shrinkage plot: the estimated distribution of the
random effects (its covariance ``G``, contour ellipses of N(0, G)) and the
conditional SD of each BLUP (lme4's ``ranef(m, condVar = TRUE)``).

Pure numpy/pandas: the plots draw what these functions return.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import chi2

__all__ = ["pooling_lines", "ranef_covariance", "true_covariance", "conditional_sd", "ellipse"]


def ranef_covariance(lmm) -> np.ndarray:
    """The estimated covariance matrix ``G`` of a subject's random effects (1 x 1 or 2 x 2).

    ``G = sigma^2 T T'`` with ``T`` lower triangular from ``theta`` (lme4's
    ``VarCorr``), in the data's units (the slope per unit of time).

    Examples
    --------
    >>> import lmm_teach
    >>> m = lmm_teach.fit_lmm(lmm_teach.load_bp(), y="bp", subject="patient", time="time_num")
    >>> round(float(np.sqrt(ranef_covariance(m)[0, 0])), 3)   # the intercept SD of VarCorr
    6.865
    """
    T = _factor(lmm)
    return lmm.sigma ** 2 * (T @ T.T)


def true_covariance(truth, *, random_slope: bool) -> np.ndarray | None:
    """The true covariance of the random effects of a simulation, from its truth mapping.

    ``truth``: :func:`lmm_teach.widgets.truth.truth_from_design` (SDs under
    ``"intercept"``, ``"slope"``, correlation ``"corr"``); None gives None.

    Examples
    --------
    >>> true_covariance({"intercept": 2.0, "slope": 1.0, "corr": 0.5}, random_slope=True).tolist()
    [[4.0, 1.0], [1.0, 1.0]]
    """
    if truth is None or "intercept" not in truth:
        return None
    a = float(truth["intercept"])
    if not random_slope:
        return np.array([[a * a]])
    b, r = float(truth.get("slope", 0.0)), float(truth.get("corr", 0.0))
    return np.array([[a * a, r * a * b], [r * a * b, b * b]])


def _factor(lmm) -> np.ndarray:
    th = lmm.theta
    if lmm.random_slope:
        return np.array([[th[0], 0.0], [th[1], th[2]]])
    return np.array([[th[0]]])


def conditional_sd(lmm) -> pd.DataFrame:
    """The conditional SD of each subject's BLUP, given the data, at the estimates.

    Returns
    -------
    DataFrame
        Indexed by subject (as ``lmm.ranef``): ``sd_intercept`` and, for a
        random slope, ``sd_slope`` and ``corr`` (between the two).

    Notes
    -----
    ``Var(b_i | y) = sigma^2 T (I + T'Z_i'Z_i T)^-1 T'`` with beta and the
    variance parameters at their estimates, which is what lme4 reports as
    ``attr(ranef(m, condVar = TRUE)$subject, "postVar")``; with a cluster
    level, that level is held at its mode (the subject part of lme4's block).
    A subject with few visits gets a wide interval: its BLUP leans on the
    population.
    """
    cols = lmm.columns
    data = lmm.data
    subj = data[cols.subject].to_numpy()
    t = data[cols.time].to_numpy(float)
    levels = lmm.ranef[cols.subject].index
    codes = pd.Index(levels).get_indexer(subj)
    J = len(levels)
    n = np.bincount(codes, minlength=J).astype(float)
    T = _factor(lmm)
    q = T.shape[0]
    if q == 1:
        th2 = T[0, 0] ** 2
        var = lmm.sigma ** 2 * th2 / (1.0 + th2 * n)
        return pd.DataFrame({"sd_intercept": np.sqrt(var)}, index=levels)
    st = np.bincount(codes, weights=t, minlength=J)
    stt = np.bincount(codes, weights=t * t, minlength=J)
    ZtZ = np.stack([np.stack([n, st], -1), np.stack([st, stt], -1)], -2)  # (J, 2, 2)
    M = np.eye(2)[None] + np.einsum("ab,jbc,cd->jad", T.T, ZtZ, T)
    V = lmm.sigma ** 2 * np.einsum("ab,jbc,dc->jad", T, np.linalg.inv(M), T)
    sd0, sd1 = np.sqrt(V[:, 0, 0]), np.sqrt(V[:, 1, 1])
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = V[:, 0, 1] / (sd0 * sd1)
    return pd.DataFrame({"sd_intercept": sd0, "sd_slope": sd1, "corr": corr}, index=levels)


def ellipse(cov: np.ndarray, *, center=(0.0, 0.0), level: float = 0.95, n: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """The contour of a bivariate normal N(center, cov) that holds ``level`` of its mass.

    Returns the x and y of ``n`` points on the closed curve (first = last).
    A singular ``cov`` gives a flat ellipse (a segment), as it should.

    Examples
    --------
    >>> x, y = ellipse(np.diag([4.0, 1.0]), level=0.95)
    >>> round(float(x.max()), 3), round(float(y.max()), 3)    # 2 * sqrt(5.991), sqrt(5.991)
    (4.895, 2.448)
    """
    cov = np.asarray(cov, float)
    r = np.sqrt(chi2.ppf(level, 2))
    w, v = np.linalg.eigh(cov)
    w = np.clip(w, 0.0, None)
    a = np.linspace(0.0, 2.0 * np.pi, n)
    circle = np.stack([np.cos(a), np.sin(a)])
    pts = v @ (np.sqrt(w)[:, None] * circle) * r
    return pts[0] + center[0], pts[1] + center[1]


def pooling_lines(data: pd.DataFrame, lmm, *, shrink: pd.DataFrame | None = None) -> pd.DataFrame:
    """Each subject's line under no, complete and partial pooling.

    Parameters
    ----------
    data : DataFrame
        The data the LMM was fitted to (not modified).
    lmm : LMMResult
        A fit with numeric time.
    shrink : DataFrame, optional
        :func:`lmm_teach.compare.shrinkage` of the fit (computed when omitted).

    Returns
    -------
    DataFrame
        Indexed by subject: ``n_obs``, ``t_min``, ``t_max`` and
        ``{none,complete,partial}_{intercept,slope}``.  No pooling uses the
        subject's own least-squares line (random slope) or its own level with
        the population slope (random intercept): the same estimates as the
        shrinkage plot's open circles.  A subject whose own slope cannot be
        estimated (one distinct time) gets NaN there.

    Examples
    --------
    >>> import lmm_teach
    >>> bp = lmm_teach.load_bp()
    >>> m = lmm_teach.fit_lmm(bp, y="bp", subject="patient", time="time_num")
    >>> lines = pooling_lines(bp, m)
    >>> bool(lines["complete_slope"].nunique() == 1)        # one line for everyone
    True
    """
    from lmm_teach.compare import population_lines, shrinkage

    cols = lmm.columns
    if shrink is None:
        shrink = shrinkage(data, lmm)
    used = data.loc[lmm.fitted.index]
    codes, subjects = pd.factorize(used[cols.subject], sort=False)
    n_s = len(subjects)
    shrink = shrink.reindex(subjects)
    pop_int, pop_slope = population_lines(lmm, used, codes, n_s)
    t = used[cols.time].to_numpy(float)
    y = used[cols.y].to_numpy(float)
    # complete pooling: least squares of y on time, within each level of the between factor
    c_int, c_slope = np.empty(n_s), np.empty(n_s)
    groups = (used[cols.between].to_numpy() if cols.between is not None else np.zeros(len(t)))
    g_codes, _ = pd.factorize(groups)
    subj_group = np.empty(n_s, dtype=np.int64)
    subj_group[codes] = g_codes
    for g in np.unique(g_codes):
        rows = g_codes == g
        tg, yg = t[rows], y[rows]
        sxx = float(((tg - tg.mean()) ** 2).sum())
        b1 = float(((tg - tg.mean()) * (yg - yg.mean())).sum() / sxx) if sxx > 0 else 0.0
        b0 = float(yg.mean() - b1 * tg.mean())
        here = subj_group == g
        c_int[here], c_slope[here] = b0, b1
    t_min = np.full(n_s, np.inf)
    t_max = np.full(n_s, -np.inf)
    np.minimum.at(t_min, codes, t)
    np.maximum.at(t_max, codes, t)
    slope_model = "own_slope" in shrink.columns
    out = pd.DataFrame({
        "n_obs": shrink["n_obs"].to_numpy(),
        "t_min": t_min, "t_max": t_max,
        "none_intercept": shrink["own_intercept"].to_numpy(float),
        "none_slope": shrink["own_slope"].to_numpy(float) if slope_model else pop_slope,
        "complete_intercept": c_int, "complete_slope": c_slope,
        "partial_intercept": shrink["lmm_intercept"].to_numpy(float),
        "partial_slope": shrink["lmm_slope"].to_numpy(float) if slope_model else pop_slope,
    }, index=pd.Index(subjects, name=cols.subject))
    return out
