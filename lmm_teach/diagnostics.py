"""Residual diagnostics of a fitted LMM, with a reading of each plot in words.

Four looks, the ones a statistician takes first (Pinheiro & Bates 2000,
section 4.3; Loy & Hofmann 2014, "HLMdiag", J. Stat. Softw. 56(5)):

* residuals against fitted values: a curve says the mean model misses a
  shape, a funnel says the spread grows with the level;
* a normal QQ plot of the residuals: heavy tails or skew, outliers;
* a normal QQ plot of the BLUPs (each random effect): a subject far off the
  line is unusual *as a subject*;
* residuals by visit: a visit whose residuals sit off zero says the time
  trend is not a straight line; spreads that change over visits say the
  variance changes with time.

Residuals are conditional (``y - fitted``, fitted including the subject's
BLUP) and standardised by the residual SD, as ``residuals(m, type =
"pearson", scaled = TRUE)`` in lme4.  The readings use fixed, stated rules
(below) so that they are reproducible; they are prompts for a learner, not
tests.  Works on any :class:`~lmm_teach.lmm.LMMResult`, simulated or the
learner's own data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["Diagnostics", "diagnose", "normal_quantiles", "KEYS"]

#: The plots, in order: the keys of ``Diagnostics.readings`` and ``Diagnostics.worries``.
KEYS = ("fitted", "qq_residuals", "qq_blups", "by_visit")

#: Thresholds of the readings (stated in the text the learner sees).
OUTLIER_Z = 3.0        # a standardised residual beyond +-3 (or beyond chance among n, see _outlier_limit)
FUNNEL_RATIO = 2.0     # SD of residuals in the top third of fitted values / bottom third
CURVE_P = 0.01         # quadratic term in residual ~ fitted + fitted^2
SKEW_LIMIT = 1.0       # |sample skewness|
KURT_LIMIT = 2.0       # excess kurtosis (heavy tails)
VISIT_SE = 3.0         # a visit's mean residual beyond 3 standard errors
VISIT_SD_RATIO = 2.0   # largest / smallest SD of residuals across visits


def normal_quantiles(n: int) -> np.ndarray:
    """Expected normal quantiles for a QQ plot of ``n`` points, as R's ``qqnorm`` (``ppoints``).

    Examples
    --------
    >>> normal_quantiles(3).round(4).tolist()
    [-0.8694, 0.0, 0.8694]
    """
    if n <= 0:
        return np.zeros(0)
    a = 3.0 / 8.0 if n <= 10 else 0.5
    return stats.norm.ppf((np.arange(1, n + 1) - a) / (n + 1 - 2 * a))


@dataclass(frozen=True, eq=False)
class Diagnostics:
    """What :func:`diagnose` returns.

    Attributes
    ----------
    residuals : DataFrame
        One row per measurement used: ``subject, time, visit, fitted,
        residual, standardized``.
    qq_residuals : DataFrame
        ``theoretical, sample, subject`` (sorted standardised residuals).
    qq_blups : dict
        Random-effect name (``"(Intercept)"``, the time column) -> DataFrame
        ``theoretical, sample, subject`` of the BLUPs scaled by their estimated SD.
    by_visit : DataFrame
        Per visit (or distinct time): ``visit, time, n, mean, sd, se``.
    readings : dict
        Key (:data:`KEYS`) -> one line in words.
    worries : dict
        Key -> True when the plot shows what would worry a statistician.
    numbers : dict
        The figures behind the readings (skewness, SD ratios, counts, p-values).
    """

    residuals: pd.DataFrame
    qq_residuals: pd.DataFrame
    qq_blups: dict
    by_visit: pd.DataFrame
    readings: dict
    worries: dict
    numbers: dict = field(default_factory=dict)
    sigma: float = float("nan")
    subject: str = "subject"
    time: str = "time"

    def summary(self) -> str:
        return "\n".join(f"{k}: {'WORRY ' if self.worries[k] else ''}{self.readings[k]}" for k in KEYS)

    def to_dict(self) -> dict:
        return {"readings": dict(self.readings), "worries": dict(self.worries),
                "numbers": {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                            for k, v in self.numbers.items()}}


def _outlier_limit(n: int) -> float:
    """|z| beyond which a point is unusual among ``n``: 3, or the two-sided 5 % Bonferroni limit when larger.

    Among 240 normal residuals one beyond 3 SDs is expected half the time; the
    limit grows with n so that a healthy model is not called an outlier's.
    """
    return max(OUTLIER_Z, float(stats.norm.isf(0.025 / max(n, 1))))


def _shape(z: np.ndarray) -> tuple[float, float]:
    if len(z) < 4 or np.std(z) == 0:
        return 0.0, 0.0
    return float(stats.skew(z)), float(stats.kurtosis(z))


def _qq(values: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    order = np.argsort(values, kind="stable")
    return pd.DataFrame({"theoretical": normal_quantiles(len(values)), "sample": values[order],
                         "subject": labels[order]})


def _shape_words(skew: float, kurt: float) -> str:
    if abs(skew) > SKEW_LIMIT:
        side = "right (a long upper tail)" if skew > 0 else "left (a long lower tail)"
        return f"skewed to the {side}, skewness {skew:.2f}"
    if kurt > KURT_LIMIT:
        return f"heavier tails than a normal distribution (excess kurtosis {kurt:.1f})"
    return ""


def diagnose(lmm) -> Diagnostics:
    """Residual and random-effect diagnostics of a fitted LMM, each with a reading in words.

    Parameters
    ----------
    lmm : LMMResult
        Any fit (numeric or categorical time; simulated or own data).

    Returns
    -------
    Diagnostics

    Notes
    -----
    The rules behind the words: a standardised residual beyond +-3 is an
    outlier (beyond the 5 % Bonferroni limit ``Phi^-1(1 - 0.025 / n)`` when
    that is larger: among many normal residuals a few beyond 3 are chance);
    a funnel when the residual SD in the top third of the fitted values is
    more than 2 times that in the bottom third (or less than half);
    a curve when the quadratic term of ``residual ~ fitted + fitted^2`` has
    p < 0.01; a shape problem when |skewness| > 1 or excess kurtosis > 2; a
    visit off zero when its mean residual is beyond 3 standard errors; a
    changing spread when the largest visit SD is more than twice the smallest.

    Examples
    --------
    >>> import lmm_teach
    >>> m = lmm_teach.fit_lmm(lmm_teach.load_bp(), y="bp", subject="patient", time="time_num")
    >>> d = diagnose(m)
    >>> sorted(d.readings) == sorted(KEYS)
    True
    """
    cols = lmm.columns
    data = lmm.data
    fitted = lmm.fitted.reindex(data.index).to_numpy(float)
    y = data[cols.y].to_numpy(float)
    resid = y - fitted
    sigma = float(lmm.sigma)
    z = resid / sigma if sigma > 0 else np.zeros_like(resid)
    subject = data[cols.subject].astype(str).to_numpy()
    t = data[cols.time].to_numpy(float)
    visit_col = cols.visit if cols.visit is not None and cols.visit in data.columns else None
    visit = data[visit_col].astype(str).to_numpy() if visit_col else np.array([f"{v:g}" for v in t])
    residuals = pd.DataFrame({"subject": subject, "time": t, "visit": visit, "fitted": fitted,
                              "residual": resid, "standardized": z}, index=data.index)
    numbers: dict = {"n": int(len(z)), "sigma": sigma}
    readings, worries = {}, {}

    # -- residuals vs fitted
    lim = _outlier_limit(len(z))
    n_out = int(np.sum(np.abs(z) > lim))
    numbers["n_outliers"], numbers["outlier_limit"] = n_out, lim
    order = np.argsort(fitted, kind="stable")
    third = len(z) // 3
    ratio = float("nan")
    if third >= 3:
        lo_sd, hi_sd = float(np.std(z[order[:third]], ddof=1)), float(np.std(z[order[-third:]], ddof=1))
        ratio = hi_sd / lo_sd if lo_sd > 0 else float("inf")
    numbers["spread_ratio"] = ratio
    p_curve = float("nan")
    if len(z) > 5 and np.ptp(fitted) > 0:
        f = (fitted - fitted.mean()) / np.std(fitted)
        A = np.column_stack([np.ones_like(f), f, f * f])
        coef, res, rank, _ = np.linalg.lstsq(A, z, rcond=None)
        if rank == 3:
            dof = len(z) - 3
            s2 = float(np.sum((z - A @ coef) ** 2) / dof)
            se = math.sqrt(s2 * float(np.linalg.inv(A.T @ A)[2, 2]))
            p_curve = float(2 * stats.t.sf(abs(coef[2] / se), dof)) if se > 0 else 1.0
    numbers["p_curve"] = p_curve
    problems = []
    if math.isfinite(p_curve) and p_curve < CURVE_P:
        problems.append(f"the residuals bend with the fitted values (quadratic trend, p = {p_curve:.2g}): "
                        "the mean model misses a shape, e.g. a curved time trend")
    if math.isfinite(ratio) and (ratio > FUNNEL_RATIO or ratio < 1 / FUNNEL_RATIO):
        way = "grows" if ratio > 1 else "shrinks"
        problems.append(f"a funnel: the spread {way} with the fitted value (SD ratio top/bottom third "
                        f"{ratio:.1f}); consider a transformation of {cols.y}")
    if n_out:
        problems.append(f"{n_out} measurement{'s' if n_out != 1 else ''} beyond {lim:.1f} residual SDs: "
                        "check them for data errors")
    worries["fitted"] = bool(problems)
    readings["fitted"] = ("Worry: " + "; ".join(problems) + "." if problems else
                          f"A shapeless band around 0, as it should be: no curve, no funnel "
                          f"(SD ratio top/bottom third {ratio:.1f}), no residual beyond {lim:.1f} SDs.")

    # -- QQ of residuals
    skew, kurt = _shape(z)
    numbers["skewness"], numbers["excess_kurtosis"] = skew, kurt
    qq_res = _qq(z, subject)
    words = _shape_words(skew, kurt)
    worries["qq_residuals"] = bool(words) or n_out > 0
    if words:
        readings["qq_residuals"] = (f"Worry: the residuals are {words}; the points bend away from the line at "
                                    "the ends. Tests of the fixed effects are fairly robust to this in large "
                                    "samples; outliers and skew matter more in small ones.")
    elif n_out:
        readings["qq_residuals"] = (f"Close to the line except {n_out} point{'s' if n_out != 1 else ''} beyond "
                                    f"{lim:.1f} SDs at the ends: look at those measurements.")
    else:
        readings["qq_residuals"] = (f"The points follow the line: the residuals look normal (skewness "
                                    f"{skew:.2f}, excess kurtosis {kurt:.2f}).")

    # -- QQ of BLUPs
    qq_blups = {}
    G_sd = _ranef_sds(lmm)
    blup_words = []
    ranef = lmm.ranef.get(cols.subject)
    if ranef is not None:
        labels = ranef.index.astype(str).to_numpy()
        for term in ranef.columns:
            b = ranef[term].to_numpy(float)
            sd = G_sd.get(term, float("nan"))
            scaled = b / sd if sd and math.isfinite(sd) and sd > 0 else np.zeros_like(b)
            qq_blups[term] = _qq(scaled, labels)
            s, k = _shape(scaled)
            numbers[f"blup_skewness[{term}]"] = s
            blim = _outlier_limit(len(scaled))
            far = int(np.sum(np.abs(scaled) > blim))
            w = _shape_words(s, k)
            name = "levels" if term == "(Intercept)" else "slopes"
            if w:
                blup_words.append(f"the subjects' {name} are {w}")
            if far:
                blup_words.append(f"{far} subject{'s' if far != 1 else ''} with {name} beyond {blim:.1f} SDs")
    worries["qq_blups"] = bool(blup_words)
    if not qq_blups:
        readings["qq_blups"] = "No random effects per subject to plot."
    elif blup_words:
        readings["qq_blups"] = ("Worry: " + "; ".join(blup_words) + ". The model assumes normal random "
                                "effects; a few unusual subjects pull the variance estimate.")
    elif all(np.ptp(df["sample"]) == 0 for df in qq_blups.values()):
        readings["qq_blups"] = ("All BLUPs are 0: the variance between subjects is estimated as 0 (a singular "
                                "fit), so there is nothing to check here.")
    else:
        readings["qq_blups"] = ("The BLUPs follow the line: no subject stands out. They are shrunk, so they "
                                "spread less than the estimated SD; the shape is what to look at.")

    # -- residuals by visit
    v_code, v_levels = pd.factorize(visit, sort=False)
    k = len(v_levels)
    cnt = np.bincount(v_code, minlength=k).astype(float)
    mean_t = np.bincount(v_code, weights=t, minlength=k) / cnt
    mean_z = np.bincount(v_code, weights=z, minlength=k) / cnt
    ss = np.bincount(v_code, weights=(z - mean_z[v_code]) ** 2, minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        sd_z = np.where(cnt > 1, np.sqrt(ss / (cnt - 1)), np.nan)
    o = np.argsort(mean_t, kind="stable")
    by = pd.DataFrame({"visit": np.asarray(v_levels, dtype=object)[o], "time": mean_t[o], "n": cnt[o].astype(int),
                       "mean": mean_z[o], "sd": sd_z[o]})
    by["se"] = by["sd"] / np.sqrt(by["n"])
    visit_words = []
    ok = by[by["n"] >= 3]
    if len(by) > 20:
        visit_words = []  # irregular times: one "visit" per time; the bins say little
        readings["by_visit"] = (f"{len(by)} distinct times: too many to judge visit by visit; look for a "
                                "trend in the residuals over time instead.")
    else:
        off = ok[np.abs(ok["mean"]) > VISIT_SE * ok["se"].where(ok["se"] > 0, np.inf)]
        if len(off):
            names = ", ".join(str(v) for v in off["visit"])
            visit_words.append(f"the residuals at visit {names} sit off zero: the model's time trend misses "
                               "the mean there (a curved trend? try time as categorical)")
        sds = ok["sd"].dropna()
        sd_ratio = float(sds.max() / sds.min()) if len(sds) >= 2 and sds.min() > 0 else float("nan")
        numbers["visit_sd_ratio"] = sd_ratio
        if math.isfinite(sd_ratio) and sd_ratio > VISIT_SD_RATIO:
            visit_words.append(f"the spread changes across visits (largest/smallest SD {sd_ratio:.1f}): the "
                               "variance may change with time; a random slope or another covariance "
                               "structure may fit better")
        readings["by_visit"] = ("Worry: " + "; ".join(visit_words) + "." if visit_words else
                                "Every visit's residuals centre on 0 with a similar spread: the time trend and "
                                "the variance over time look right.")
    worries["by_visit"] = bool(visit_words)
    return Diagnostics(residuals=residuals, qq_residuals=qq_res, qq_blups=qq_blups, by_visit=by,
                       readings=readings, worries=worries, numbers=numbers, sigma=sigma,
                       subject=cols.subject, time=cols.time)


def _ranef_sds(lmm) -> dict:
    """Estimated SD of each subject random effect, by term name (from ``lmm.variance``)."""
    cols = lmm.columns
    v = lmm.variance
    rows = v[(v["group"] == cols.subject) & v["var2"].isna()]
    return {str(r.var1): float(r.sdcor) for r in rows.itertuples()}
