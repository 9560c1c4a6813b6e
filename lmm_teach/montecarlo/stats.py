"""Performance measures of a simulation study, each with its Monte Carlo SE.

Definitions and Monte Carlo standard errors (MCSE) follow Morris, White &
Crowther (2019), "Using simulation studies to evaluate statistical methods",
*Statistics in Medicine* 38:2074-2102, Table 6.  With ``n`` usable replicates,
estimates ``b_r``, model SEs ``s_r``, p-values ``p_r`` and truth ``beta``::

    rejection rate   R = mean(p_r < alpha)            MCSE sqrt(R (1 - R) / n)
    bias             mean(b_r) - beta                 MCSE empSE / sqrt(n)
    empirical SE     empSE = sd(b_r)                  MCSE empSE / sqrt(2 (n - 1))
    RMSE             sqrt(mean((b_r - beta)^2))
    coverage         C = mean(lo_r <= beta <= hi_r)   MCSE sqrt(C (1 - C) / n)
    mean model SE    mean(s_r)                        (compare with empSE)
"""

from __future__ import annotations

import numpy as np

__all__ = ["TABLE_COLUMNS", "performance"]

#: The columns of ``MonteCarloResult.table``, in order.
TABLE_COLUMNS = (
    "analysis", "method", "hypothesis", "test", "truth", "n_ok",
    "rejection_rate", "rejection_mcse",
    "mean_estimate", "bias", "bias_mcse", "emp_se", "emp_se_mcse", "mean_se", "rmse",
    "coverage", "coverage_mcse",
    "mean_subjects", "mean_obs", "n_singular", "n_failed",
)


def _proportion(hits: np.ndarray) -> tuple[float, float]:
    n = hits.size
    if n == 0:
        return np.nan, np.nan
    r = float(hits.mean())
    return r, float(np.sqrt(r * (1.0 - r) / n))


def performance(est, se, p, lo, hi, n_subjects, n_obs, singular, failed, *, truth: float,
                alpha: float) -> dict:
    """The performance measures of one analysis and hypothesis over replicates.

    Every argument is a 1-D array over replicates; ``failed`` replicates are
    left out of every measure and counted.  A measure that cannot be computed
    (no usable replicate, no truth, no CI) is NaN.
    """
    failed = np.asarray(failed, bool)
    ok = ~failed
    n = int(ok.sum())
    est, se, p, lo, hi = (np.asarray(a, float)[ok] for a in (est, se, p, lo, hi))
    out = {"n_ok": n, "n_failed": int(failed.sum()),
           "n_singular": int(np.asarray(singular, bool)[ok].sum())}
    finite_p = np.isfinite(p)
    out["rejection_rate"], out["rejection_mcse"] = _proportion(p[finite_p] < alpha)
    e = est[np.isfinite(est)]
    m = e.size
    out["mean_estimate"] = float(e.mean()) if m else np.nan
    out["emp_se"] = float(e.std(ddof=1)) if m > 1 else np.nan
    out["bias"] = out["mean_estimate"] - truth
    out["bias_mcse"] = out["emp_se"] / np.sqrt(m) if m > 1 else np.nan
    out["emp_se_mcse"] = out["emp_se"] / np.sqrt(2.0 * (m - 1)) if m > 1 else np.nan
    out["rmse"] = float(np.sqrt(np.mean((e - truth) ** 2))) if m else np.nan
    s = se[np.isfinite(se)]
    out["mean_se"] = float(s.mean()) if s.size else np.nan
    has_ci = np.isfinite(lo) & np.isfinite(hi)
    if has_ci.any() and np.isfinite(truth):
        out["coverage"], out["coverage_mcse"] = _proportion((lo[has_ci] <= truth) & (truth <= hi[has_ci]))
    else:
        out["coverage"] = out["coverage_mcse"] = np.nan
    ns, no = np.asarray(n_subjects, float)[ok], np.asarray(n_obs, float)[ok]
    out["mean_subjects"] = float(np.nanmean(ns)) if n and np.isfinite(ns).any() else np.nan
    out["mean_obs"] = float(np.nanmean(no)) if n and np.isfinite(no).any() else np.nan
    return out

