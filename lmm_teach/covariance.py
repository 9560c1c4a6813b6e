"""The covariance of one patient's visits: the truth of a Design and what each model estimates.

A mixed model is a model for the *marginal* covariance of a subject's repeated
measurements.  With random intercept and slope (design matrix ``Z = [1, t]``),
``G`` their covariance and residual variance ``s2``::

    V = Z G Z' + s2 I   (+ sd_clinic^2 on every entry when subjects share a clinic)

* :func:`true_covariance` computes ``V`` of a :class:`~lmm_teach.design.Design`
  at its planned visits (the marginal covariance of two patients' visits in the
  same clinic adds ``sd_clinic^2``; of one patient's visits, that is included too).
* :func:`lmm_covariance` computes the ``V`` an :class:`~lmm_teach.lmm.LMMResult`
  estimates, at given times.
* :func:`estimated_covariances` fits the random-intercept LMM, the
  random-slope LMM and an MMRM to one data set and returns the three estimated
  visit x visit covariances (the MMRM's is ``MMRMResult.covariance``).
* :func:`correlation` turns a covariance into a correlation matrix.
* :func:`lag_correlations` and :func:`covariance_reading` describe a matrix in
  words: do the correlations fall as visits lie further apart, do the
  variances grow, and what does that say about compound symmetry (the
  random-intercept LMM's assumption)?

Pure functions of numpy/pandas (the fits use the package's own engines).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["correlation", "covariance_reading", "estimated_covariances", "lag_correlations", "lmm_covariance",
           "marginal_covariance", "true_covariance"]

#: A change of the mean correlation from neighbouring visits to the first and
#: last visit larger than this is read as "falls (rises) with lag".
LAG_CHANGE = 0.1
#: Variances whose last-to-first ratio leaves [1 / VARIANCE_RATIO, VARIANCE_RATIO] "grow" ("shrink").
VARIANCE_RATIO = 1.5


def marginal_covariance(times, *, var_intercept: float, var_slope: float = 0.0, cov_intercept_slope: float = 0.0,
                        var_residual: float, var_clinic: float = 0.0) -> np.ndarray:
    """``Z G Z' + s2 I + var_clinic J`` at ``times`` (1-d), with ``Z = [1, t]``."""
    t = np.asarray(times, dtype=float)
    z = np.column_stack([np.ones_like(t), t])
    g = np.array([[var_intercept, cov_intercept_slope], [cov_intercept_slope, var_slope]], dtype=float)
    return z @ g @ z.T + var_residual * np.eye(t.size) + var_clinic


def _frame(v: np.ndarray, labels, name: str = "visit") -> pd.DataFrame:
    idx = pd.Index(list(labels), name=name)
    return pd.DataFrame(v, index=idx, columns=idx.copy())


def true_covariance(design) -> pd.DataFrame:
    """The true visit x visit covariance of one patient in ``design`` at its planned visit times.

    Rows and columns are the visit labels that :func:`lmm_teach.simulate` gives
    (0, 1, ...).  The clinic variance is added when the design has clinics.
    Time jitter and missing data do not change this (it is the covariance of
    the complete, planned measurements).
    """
    si, ss, r = design.sd_intercept, design.sd_slope, design.corr_intercept_slope
    v = marginal_covariance(design.visit_times, var_intercept=si ** 2, var_slope=ss ** 2,
                            cov_intercept_slope=r * si * ss, var_residual=design.sd_residual ** 2,
                            var_clinic=design.sd_clinic ** 2 if design.n_clinics > 0 else 0.0)
    return _frame(v, range(len(design.visit_times)))


def lmm_covariance(result, times, labels=None) -> pd.DataFrame:
    """The visit x visit covariance an LMM estimates, at ``times`` (one per visit).

    Read from ``result.variance`` (R's ``VarCorr`` layout): the subject's
    intercept variance, slope variance and their covariance, the clinic's
    intercept variance when the model has one, and the residual variance.
    """
    var = result.variance
    var_i = var_s = cov_is = var_c = 0.0
    var_e = float(var.loc[var["group"] == "Residual", "vcov"].iloc[0])
    for _, row in var.iterrows():
        if row["group"] == "Residual":
            continue
        has_two = row["var2"] is not None and not (isinstance(row["var2"], float) and np.isnan(row["var2"]))
        if row["group"] == "subject" or row["group"] == result.columns.subject:
            if has_two:
                cov_is = float(row["vcov"])
            elif row["var1"] == "(Intercept)":
                var_i = float(row["vcov"])
            else:
                var_s = float(row["vcov"])
        elif row["var1"] == "(Intercept)" and not has_two:
            var_c += float(row["vcov"])
    v = marginal_covariance(times, var_intercept=var_i, var_slope=var_s, cov_intercept_slope=cov_is,
                            var_residual=var_e, var_clinic=var_c)
    return _frame(v, range(len(times)) if labels is None else labels)


def correlation(cov: pd.DataFrame) -> pd.DataFrame:
    """The correlation matrix of a covariance DataFrame (same labels)."""
    c = cov.to_numpy(dtype=float)
    sd = np.sqrt(np.diag(c))
    return pd.DataFrame(c / np.outer(sd, sd), index=cov.index, columns=cov.columns)


def estimated_covariances(data: pd.DataFrame, *, y: str = "y", subject: str = "subject", visit: str = "visit",
                          time: str = "time", between: str | None = None, covariance: str = "us",
                          cluster: str | None = None) -> dict[str, pd.DataFrame]:
    """The estimated visit x visit covariances of three models fitted to ``data``.

    Keys: ``"random intercept LMM"`` and ``"random slope LMM"`` (categorical
    visit [x between], at each visit's median time) and ``"MMRM (<structure>)"``.
    A model that cannot be fitted raises :class:`~lmm_teach.validate.DataError`.
    """
    from lmm_teach.lmm import fit_lmm
    from lmm_teach.mmrm import fit_mmrm

    mm = fit_mmrm(data, y=y, subject=subject, visit=visit, between=between,
                  time=time if covariance == "sp_exp" else None, covariance=covariance)
    labels = list(mm.covariance.index)
    obs = data.loc[data[y].notna()]
    med = obs.groupby(visit)[time].median().sort_index()
    times = med.to_numpy(dtype=float)
    out = {}
    for label, slope in (("random intercept LMM", False), ("random slope LMM", True)):
        m = fit_lmm(data, y=y, subject=subject, time=time, visit=visit, between=between, cluster=cluster,
                    random_slope=slope, time_as="categorical")
        out[label] = lmm_covariance(m, times, labels=labels).rename_axis(index=visit, columns=visit)
    out[f"MMRM ({covariance})"] = mm.covariance
    return out


def lag_correlations(cov: pd.DataFrame) -> pd.Series:
    """The mean correlation of visits ``k`` apart in visit order, ``k = 1 .. n - 1`` (index ``lag``).

    Examples
    --------
    >>> v = marginal_covariance([0, 1, 2], var_intercept=1.0, var_slope=0.0, var_residual=1.0)
    >>> lag_correlations(pd.DataFrame(v)).round(2).tolist()
    [0.5, 0.5]
    """
    r = correlation(cov).to_numpy(dtype=float)
    n = r.shape[0]
    lags = range(1, n)
    return pd.Series([float(np.nanmean(np.diagonal(r, offset=k))) for k in lags], index=pd.Index(lags, name="lag"),
                     name="correlation")


def covariance_reading(reference: pd.DataFrame, *, reference_label: str,
                       intercept_lmm: pd.DataFrame | None = None) -> str:
    """One or two sentences on what a flexible estimate of the covariance says about compound symmetry.

    Parameters
    ----------
    reference : DataFrame
        A covariance that lets the data speak (the unstructured MMRM's, or the
        structure AIC prefers).
    reference_label : str
        What it is, in words ("the unstructured MMRM").
    intercept_lmm : DataFrame, optional
        The random-intercept LMM's covariance (compound symmetry: one
        correlation at every lag), to name its correlation.

    Notes
    -----
    The random-intercept LMM's ``V = s_b^2 J + s^2 I`` has the same variance at
    every visit and the same correlation ``s_b^2 / (s_b^2 + s^2)`` at every
    lag.  A random slope makes the variance change with time and the
    correlation fall with the distance between visits; so does a serial
    (autoregressive) process.  "Falls with lag" here means the mean
    correlation of neighbouring visits exceeds that of the first and last
    visit by more than :data:`LAG_CHANGE`.
    """
    lags = lag_correlations(reference)
    if len(lags) == 0:
        return "One visit only: there is no correlation between visits to look at."
    near, far = float(lags.iloc[0]), float(lags.iloc[-1])
    ri = ""
    if intercept_lmm is not None and intercept_lmm.shape[0] > 1:
        ri = f", {float(lag_correlations(intercept_lmm).iloc[0]):.2f}"
    cs = f"The random-intercept LMM forces equal correlations at every lag (compound symmetry{ri})"
    where = f"{near:.2f} between neighbouring visits, {far:.2f} between the first and the last"
    same = len(lags) > 1 and abs(near - far) <= LAG_CHANGE
    if len(lags) == 1:
        text = (f"With two visits every structure has one correlation ({near:.2f} in {reference_label}): "
                "the models differ only in the two variances.")
    elif near - far > LAG_CHANGE:
        text = f"{cs}; in {reference_label} the correlations fall with lag ({where}): look at the MMRM."
    elif not same:
        text = f"{cs}; in {reference_label} the correlations rise with lag ({where}): look at the MMRM."
    else:
        text = f"In {reference_label} the correlations are about the same at every lag ({where})"
    var = np.diag(reference.to_numpy(dtype=float))
    change = ""
    if var[0] > 0 and np.all(np.isfinite(var[[0, -1]])):
        ratio = var[-1] / var[0]
        if ratio > VARIANCE_RATIO or ratio < 1 / VARIANCE_RATIO:
            change = (f"the variance {'grows' if ratio > 1 else 'shrinks'} from {var[0]:.3g} at the first visit "
                      f"to {var[-1]:.3g} at the last, which the random-intercept LMM cannot follow")
    if same and change:
        text += f", as compound symmetry assumes; but {change}."
    elif same:
        text += ": compound symmetry, what the random-intercept LMM assumes, fits these data."
    elif change:
        text += f" And {change}."
    return text
