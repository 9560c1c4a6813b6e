"""The LMM beside the repeated-measures ANOVA, on the same data.

:func:`analyze` fits the three models a learner compares (the LMM with numeric
time, the LMM with categorical time, the RM-ANOVA on complete cases);
:func:`compare` lays their answers to the same questions side by side; and
:func:`shrinkage` puts each subject's own estimate beside its LMM estimate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from lmm_teach.anova import AnovaResult, rm_anova
from lmm_teach.jsonable import plain, records
from lmm_teach.lmm import LMMResult, fit_lmm
from lmm_teach.validate import DataError

__all__ = ["Analysis", "analyze", "compare", "shrinkage", "HYPOTHESES"]

#: The questions a learner asks of a repeated-measures study, in display order.
HYPOTHESES = ("time", "arm", "arm x time")

METHOD_LMM = "LMM (numeric time)"
METHOD_LMM_CAT = "LMM (categorical time)"
METHOD_ANOVA = "RM-ANOVA (complete cases)"

COLUMNS = ["hypothesis", "method", "estimate", "se", "statistic", "value", "df_num", "df_den",
           "p", "p_gg", "n_subjects", "n_obs", "truth"]


@dataclass(frozen=True)
class Analysis:
    """The three fits of one dataset and their comparison.

    Attributes
    ----------
    lmm : LMMResult
        ``y ~ time [* between] + (1 | subject)`` (or ``(time | subject)``), REML.
    lmm_categorical : LMMResult or None
        ``y ~ visit [* between] + (1 | subject)``: the LMM twin of the RM-ANOVA.
    anova : AnovaResult or None
        The RM-ANOVA on the subjects with every visit; None when it cannot be
        computed (the reason is in ``warnings``).
    comparison : pandas.DataFrame
        :func:`compare` of the three.
    notes : tuple of str
        Plain-language lines on what differs between the methods and why.
    warnings : tuple of str
        Everything a learner should know about these fits.
    """

    lmm: LMMResult
    lmm_categorical: LMMResult | None
    anova: AnovaResult | None
    comparison: pd.DataFrame
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    truth: Mapping[str, float] | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        """The JSON of ``lmm-teach fit --format json`` (see the reference README)."""
        cat = None
        if self.lmm_categorical is not None:
            c = self.lmm_categorical.to_dict()
            cat = {"formula": c.get("formula"), "tests": c.get("tests", [])}
        return plain({
            "lmm": self.lmm.to_dict(),
            "lmm_categorical": cat,
            "anova": None if self.anova is None else self.anova.to_dict(),
            "comparison": records(self.comparison),
            "notes": list(self.notes),
            "warnings": list(self.warnings),
        })

    def summary(self) -> str:
        """Readable text: the three fits, the comparison and the notes."""
        rule = "=" * 78
        parts = [rule, "Linear mixed model, numeric time", rule, self.lmm.summary()]
        if self.lmm_categorical is not None:
            parts += [rule, "Linear mixed model, categorical time (the LMM twin of the RM-ANOVA)", rule,
                      self.lmm_categorical.summary()]
        parts += [rule, "Repeated-measures ANOVA", rule]
        parts.append(self.anova.summary() if self.anova is not None else "not computed (see warnings)")
        parts += [rule, "Side by side", rule, format_comparison(self.comparison)]
        if self.notes:
            parts += ["", "What differs and why:"] + [f"  - {n}" for n in self.notes]
        if self.warnings:
            parts += ["", "Warnings:"] + [f"  - {w}" for w in self.warnings]
        return "\n".join(parts)


def analyze(
    data: pd.DataFrame,
    *,
    y: str,
    subject: str,
    time: str,
    visit: str | None = None,
    between: str | None = None,
    cluster: str | None = None,
    random_slope: bool = False,
    method: str = "REML",
    truth=None,
    df: str = "satterthwaite",
) -> Analysis:
    """Fit the LMM (numeric and categorical time) and the RM-ANOVA, and compare them.

    Parameters
    ----------
    data : pandas.DataFrame
        Long format: one row per measurement. Not modified.
    y, subject, time : str
        Columns of the outcome, the subject id and the numeric time.
    visit : str, optional
        Column of the visit label (the ANOVA's within factor). Defaults to ``time``.
    between : str, optional
        A between-subject factor such as the treatment arm.
    cluster : str, optional
        A level above subject (clinic); subjects must be nested in it.
    random_slope : bool
        Give every subject its own slope, ``(time | subject)``.
    method : {"REML", "ML"}
        Estimation method of the LMMs.
    df : {"satterthwaite", "kenward-roger"}
        Small-sample method of the LMMs' fixed-effect t and F tests
        (``fit_lmm``'s ``df``; Kenward-Roger needs REML).
    truth : Design or mapping, optional
        The simulation's true effects, shown beside the estimates.

    Returns
    -------
    Analysis

    Notes
    -----
    The three models, in lme4 notation::

        y ~ time  [* between] + (1 | subject) or (time | subject) [+ (1 | cluster)]
        y ~ visit [* between] + (1 | subject) [+ (1 | cluster)]
        RM-ANOVA: within = visit [, between = between], complete cases only

    With balanced, complete data the second model's F for visit equals the
    RM-ANOVA's F exactly (unless the subject variance estimate is 0).

    Examples
    --------
    >>> import lmm_teach
    >>> bp = lmm_teach.load_bp()
    >>> a = lmm_teach.analyze(bp, y="bp", subject="patient", time="time_num", visit="time")
    >>> round(float(a.lmm.fixed.loc["time_num", "estimate"]), 2)
    -4.05
    """
    visit = visit or time
    lmm = fit_lmm(data, y=y, subject=subject, time=time, visit=visit, between=between, cluster=cluster,
                  random_slope=random_slope, time_as="numeric", method=method, df=df)
    warnings = list(lmm.warnings)
    try:
        lmm_cat = fit_lmm(data, y=y, subject=subject, time=time, visit=visit, between=between,
                          cluster=cluster, random_slope=False, time_as="categorical", method=method, df=df)
        warnings += [w for w in lmm_cat.warnings if w not in warnings]
    except DataError as exc:
        lmm_cat = None
        warnings.append(f"The LMM with categorical time could not be fitted: {exc}")
    try:
        anova = rm_anova(data, y=y, subject=subject, visit=visit, between=between, time=time)
        warnings += list(anova.warnings)
    except DataError as exc:
        anova = None
        warnings.append(f"The RM-ANOVA could not be computed: {exc}")
    truth_map = _truth_map(truth)
    table = compare(lmm, anova, lmm_categorical=lmm_cat, truth=truth_map)
    notes = _notes(lmm, lmm_cat, anova, time=time, visit=visit, data=data)
    return Analysis(lmm=lmm, lmm_categorical=lmm_cat, anova=anova, comparison=table,
                    notes=tuple(notes), warnings=tuple(warnings), truth=truth_map)


def _truth_map(truth) -> dict[str, float] | None:
    if truth is None:
        return None
    if hasattr(truth, "true_effects"):
        truth = truth.true_effects()
    return {str(k): float(v) for k, v in dict(truth).items()}


def _hypothesis_truth(truth: Mapping[str, float] | None, hypothesis: str, has_arms: bool) -> float:
    """The true value of what the LMM estimates for a hypothesis.

    With two arms, the type-III test of time is about the average of the two
    arms' slopes (lmerTest's contrasts give the arms equal weight).
    """
    if not truth:
        return np.nan
    if hypothesis == "time":
        slope = truth.get("time", np.nan)
        return slope + truth.get("time:arm", 0.0) / 2 if has_arms else slope
    key = {"arm": "arm", "arm x time": "time:arm"}[hypothesis]
    return truth.get(key, np.nan)


def compare(
    lmm: LMMResult,
    anova: AnovaResult | None = None,
    *,
    lmm_categorical: LMMResult | None = None,
    truth=None,
) -> pd.DataFrame:
    """One tidy table: each method's answer to each hypothesis.

    Parameters
    ----------
    lmm : LMMResult
        The LMM with numeric time.
    anova : AnovaResult, optional
        The RM-ANOVA of the same data.
    lmm_categorical : LMMResult, optional
        The LMM with categorical time.
    truth : Design or mapping, optional
        True effects (``Design.true_effects()``), shown in column ``truth``.

    Returns
    -------
    pandas.DataFrame
        Columns ``hypothesis, method, estimate, se, statistic, value, df_num,
        df_den, p, p_gg, n_subjects, n_obs, truth``. For the numeric-time LMM
        ``estimate`` is the coefficient (slope per unit of time; arm difference at
        time 0; difference of the arms' slopes) and ``value`` its t statistic.
        The categorical LMM and the ANOVA test the visit profile with an F
        statistic; their ``estimate`` is the slope of the visit means on time
        in the observations each method used (for the ANOVA: complete cases
        only, which is what dropout biases).
    """
    truth = _truth_map(truth)
    between = lmm.columns.between
    has_arms = between is not None
    hyps = HYPOTHESES if has_arms else ("time",)
    rows = []
    for h in hyps:
        rows.append(_lmm_row(lmm, h, truth, has_arms))
        if lmm_categorical is not None:
            rows.append(_categorical_row(lmm_categorical, h, truth, has_arms))
        if anova is not None:
            rows.append(_anova_row(anova, h, lmm, truth, has_arms))
    return pd.DataFrame(rows, columns=COLUMNS)


def _term(h: str, time: str, between: str | None, lmm: LMMResult) -> str | None:
    """The name of the LMM coefficient that answers hypothesis h."""
    if h == "time":
        return time
    levels = [t for t in lmm.fixed.index if t.startswith(str(between)) and ":" not in t]
    if not levels:
        return None
    if h == "arm":
        return levels[0]
    return f"{time}:{levels[0]}"


def _lmm_row(lmm: LMMResult, h: str, truth, has_arms: bool) -> dict:
    cols = lmm.columns
    term = _term(h, cols.time, cols.between, lmm)
    test_name = {"time": cols.time, "arm": cols.between, "arm x time": f"{cols.time}:{cols.between}"}[h]
    test = _find_test(lmm.tests, test_name)
    est = se = np.nan
    if term is not None and term in lmm.fixed.index:
        est, se = float(lmm.fixed.loc[term, "estimate"]), float(lmm.fixed.loc[term, "se"])
    if has_arms and h == "time" and term in lmm.fixed.index:
        # The type-III test of time with two arms is about the mean of the arms' slopes.
        inter = _term("arm x time", cols.time, cols.between, lmm)
        if inter in lmm.fixed.index:
            w = np.zeros(len(lmm.fixed))
            idx = list(lmm.fixed.index)
            w[idx.index(term)] = 1.0
            w[idx.index(inter)] = 0.5
            est = float(w @ lmm.fixed["estimate"].to_numpy())
            se = float(np.sqrt(w @ lmm.cov_fixed.to_numpy() @ w))
    return {
        "hypothesis": h, "method": METHOD_LMM, "estimate": est, "se": se,
        "statistic": "F" if test is not None else "t",
        "value": test["F"] if test is not None else np.nan,
        "df_num": test["df_num"] if test is not None else np.nan,
        "df_den": test["df_den"] if test is not None else np.nan,
        "p": test["p"] if test is not None else np.nan, "p_gg": np.nan,
        "n_subjects": lmm.n_subjects, "n_obs": lmm.n_obs,
        "truth": _hypothesis_truth(truth, h, has_arms),
    }


def _find_test(tests: pd.DataFrame, name: str):
    """Row of an F-test table by term name, whatever the order of an interaction."""
    want = sorted(name.split(":"))
    for _, row in tests.iterrows():
        if sorted(str(row["term"]).split(":")) == want:
            return row
    return None


def _categorical_row(lmm_cat: LMMResult, h: str, truth, has_arms: bool) -> dict:
    cols = lmm_cat.columns
    visit = cols.visit
    name = {"time": visit, "arm": cols.between, "arm x time": f"{visit}:{cols.between}"}[h]
    test = _find_test(lmm_cat.tests, name)
    used = lmm_cat.fitted.index
    return {
        "hypothesis": h, "method": METHOD_LMM_CAT,
        "estimate": np.nan, "se": np.nan, "statistic": "F",
        "value": test["F"] if test is not None else np.nan,
        "df_num": test["df_num"] if test is not None else np.nan,
        "df_den": test["df_den"] if test is not None else np.nan,
        "p": test["p"] if test is not None else np.nan, "p_gg": np.nan,
        "n_subjects": lmm_cat.n_subjects, "n_obs": len(used),
        "truth": _hypothesis_truth(truth, h, has_arms),
    }


def _anova_row(anova: AnovaResult, h: str, lmm: LMMResult, truth, has_arms: bool) -> dict:
    cols = lmm.columns
    visit, between = cols.visit or cols.time, cols.between
    name = {"time": visit, "arm": between, "arm x time": f"{between}:{visit}"}[h]
    table = anova.table.rename(columns={"effect": "term"})
    test = _find_test(table, name)
    return {
        "hypothesis": h, "method": METHOD_ANOVA,
        "estimate": _complete_case_estimate(anova, lmm, h), "se": np.nan, "statistic": "F",
        "value": test["F"] if test is not None else np.nan,
        "df_num": test["df_num"] if test is not None else np.nan,
        "df_den": test["df_den"] if test is not None else np.nan,
        "p": test["p"] if test is not None else np.nan,
        "p_gg": test["p_gg"] if test is not None and "p_gg" in test else np.nan,
        "n_subjects": anova.n_subjects_used, "n_obs": anova.n_obs_used,
        "truth": _hypothesis_truth(truth, h, has_arms),
    }


def _complete_case_estimate(anova: AnovaResult, lmm: LMMResult, h: str) -> float:
    """The slope (or arm difference) that the complete cases' visit means show.

    The ANOVA has no slope; this is the least-squares slope of its cell means on
    the mean time of each visit, so a learner can see what listwise deletion
    does to the estimate (it is biased under MAR dropout).
    """
    means = anova.cell_means
    if means is None or len(means) == 0 or "mean_time" not in means.columns:
        return np.nan
    between = lmm.columns.between

    def slope(frame):
        t, m = frame["mean_time"].to_numpy(float), frame["mean"].to_numpy(float)
        if len(t) < 2 or np.ptp(t) == 0:
            return np.nan, np.nan
        b = np.polyfit(t, m, 1)
        return b[0], b[1]

    if between is None or between not in means.columns:
        return slope(means)[0] if h == "time" else np.nan
    groups = [g for _, g in means.groupby(between, sort=True, observed=True)]
    if len(groups) < 2:
        return np.nan
    (s0, i0), (s1, i1) = slope(groups[0]), slope(groups[1])
    if h == "time":
        return (s0 + s1) / 2
    if h == "arm":
        return i1 - i0
    return s1 - s0


def _notes(lmm: LMMResult, lmm_cat, anova, *, time: str, visit: str, data: pd.DataFrame) -> list[str]:
    """What differs between the methods, and why, in words a learner knows."""
    notes = []
    if anova is not None:
        n_drop, n_all = anova.n_subjects_dropped, lmm.n_subjects
        if n_drop:
            lost = lmm.n_obs - anova.n_obs_used
            notes.append(
                f"The RM-ANOVA dropped {n_drop} of {n_all} subjects who missed any visit "
                f"({lost} of their measurements were thrown away); the LMM used all {lmm.n_obs} "
                "measurements of every subject.")
        else:
            notes.append(f"Every subject has every visit, so both methods use the same {lmm.n_obs} measurements.")
    else:
        notes.append("The RM-ANOVA needs subjects with every visit and there were too few; "
                     "the LMM still uses every measurement.")
    if visit != time:
        spacing = data.groupby(visit, observed=True)[time].mean().sort_values().to_numpy()
        gaps = np.diff(spacing)
        if len(gaps) > 1 and np.ptp(gaps) > 1e-6 * max(1.0, float(np.abs(gaps).max())):
            notes.append("The visits are unequally spaced: the LMM uses the real times, the ANOVA treats "
                         "visits as labels and ignores how far apart they are.")
    if lmm.singular:
        notes.append("The LMM's subject variance is estimated at its boundary (0): the subjects differ no "
                     "more than the measurement noise explains, and the LMM and the ANOVA part ways.")
    if anova is not None and "eps_gg" in anova.table.columns:
        eps = anova.table["eps_gg"].dropna()
        if len(eps) and float(eps.min()) < 0.75:
            notes.append(f"Sphericity is doubtful (Greenhouse-Geisser epsilon {float(eps.min()):.2f}): "
                         "the ANOVA's corrected p-value is the one to read.")
    return notes


def format_comparison(table: pd.DataFrame) -> str:
    """Fixed-width text of a comparison table for the terminal."""
    show = table.copy()
    for col in ("estimate", "se", "value", "df_den", "truth"):
        show[col] = show[col].map(lambda v: "" if not np.isfinite(v) else f"{v:.4g}")
    show["df_num"] = show["df_num"].map(lambda v: "" if not np.isfinite(v) else f"{v:g}")
    for col in ("p", "p_gg"):
        show[col] = show[col].map(lambda v: "" if not np.isfinite(v) else f"{v:.3g}")
    if show["truth"].eq("").all():
        show = show.drop(columns="truth")
    return show.to_string(index=False)


def shrinkage(data: pd.DataFrame, lmm: LMMResult) -> pd.DataFrame:
    """Each subject's own estimate beside its LMM (partially pooled) estimate.

    Parameters
    ----------
    data : pandas.DataFrame
        The data the LMM was fitted to (not modified).
    lmm : LMMResult

    Returns
    -------
    pandas.DataFrame
        Indexed by subject: ``n_obs``, ``own_intercept`` and ``lmm_intercept``
        (and ``own_slope``, ``lmm_slope`` for a random-slope model), plus
        ``population_intercept`` (and ``population_slope``): the fixed-effects
        line of that subject's arm.

    Notes
    -----
    The own estimate comes from the subject's data alone, after removing the
    fixed part of the model: the mean (or least-squares line) of
    ``y - X beta`` plus the population line. The LMM's estimate is the
    population line plus the subject's BLUP. Subjects with few measurements
    or much noise are pulled most toward the population line.
    """
    cols = lmm.columns
    used = data.loc[lmm.fitted.index]
    codes, subjects = pd.factorize(used[cols.subject], sort=False)
    n_s = len(subjects)
    t = used[cols.time].to_numpy(float)
    re = lmm.ranef[cols.subject].reindex(subjects)
    u0 = re["(Intercept)"].to_numpy(float)
    slope_col = cols.time if cols.time in re.columns else None
    u1 = re[slope_col].to_numpy(float) if slope_col else np.zeros(n_s)
    uc_row = np.zeros(len(t))
    if cols.cluster is not None and cols.cluster in lmm.ranef:
        rc = lmm.ranef[cols.cluster]["(Intercept)"]
        uc_row = rc.reindex(used[cols.cluster].to_numpy()).to_numpy(float)
    # y - X beta, row by row: the data minus the population line of the row's subject
    marginal = lmm.fitted.to_numpy(float) - u0[codes] - u1[codes] * t - uc_row
    r = used[cols.y].to_numpy(float) - marginal
    pop_int, pop_slope = _population_lines(lmm, used, codes, n_s)
    uc = np.zeros(n_s)
    uc[codes] = uc_row          # the subject's own deviation includes its clinic's; so does the LMM's

    def total(values):
        return np.bincount(codes, weights=values, minlength=n_s)

    n = np.bincount(codes, minlength=n_s).astype(float)
    out = {"n_obs": n.astype(int), "population_intercept": pop_int}
    if slope_col:
        st, stt, sr, s_tr = total(t), total(t * t), total(r), total(t * r)
        den = n * stt - st * st
        ok = den > 1e-12 * np.maximum(1.0, n * stt)       # two or more distinct times
        with np.errstate(divide="ignore", invalid="ignore"):
            b1 = np.where(ok, (n * s_tr - st * sr) / den, np.nan)
            b0 = np.where(ok, (sr - b1 * st) / n, np.nan)
        out.update(population_slope=pop_slope, own_intercept=pop_int + b0, lmm_intercept=pop_int + u0 + uc,
                   own_slope=pop_slope + b1, lmm_slope=pop_slope + u1)
    else:
        out.update(own_intercept=pop_int + total(r) / n, lmm_intercept=pop_int + u0 + uc)
    return pd.DataFrame(out, index=pd.Index(subjects, name="subject"))


def _population_lines(lmm: LMMResult, used: pd.DataFrame, codes: np.ndarray, n_s: int):
    """Intercept and slope of the fixed-effects line of each subject's group (R-style term names)."""
    fixed = lmm.fixed["estimate"]
    time, between = lmm.columns.time, lmm.columns.between
    icpt = np.full(n_s, float(fixed.get("(Intercept)", 0.0)))
    slope = np.full(n_s, float(fixed.get(time, np.nan)))
    if between is not None:
        level = np.empty(n_s, dtype=object)
        level[codes] = used[between].to_numpy()
        for lv in pd.unique(level):
            here = level == lv
            icpt[here] += float(fixed.get(f"{between}{lv}", 0.0))
            slope[here] += float(fixed.get(f"{time}:{between}{lv}", 0.0))
    return icpt, slope
