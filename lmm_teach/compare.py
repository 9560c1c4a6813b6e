"""The LMM beside the repeated-measures ANOVA, on the same data.

:func:`analyze` fits the three models a learner compares (the LMM with numeric
time, the LMM with categorical time, the RM-ANOVA on complete cases) and every
other method of the registry (the unstructured MMRM, OLS: :mod:`lmm_teach.methods`);
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
from lmm_teach.methods import HYPOTHESES as HYPOTHESIS_REGISTRY
from lmm_teach.methods import METHODS, Long, estimand_words, hypotheses_for, long_from_columns
from lmm_teach.notes import Note
from lmm_teach.validate import DataError

__all__ = ["Analysis", "analyze", "compare", "shrinkage", "HYPOTHESES", "COLUMNS"]

#: The questions a learner asks of a repeated-measures study, in display order (keys of
#: :data:`lmm_teach.methods.HYPOTHESES`).
HYPOTHESES = tuple(HYPOTHESIS_REGISTRY)

#: The columns of :func:`compare`'s table.  ``analysis`` is the method's key in
#: :data:`lmm_teach.methods.METHODS` (code matches keys, never labels).
COLUMNS = ["analysis", "hypothesis", "method", "estimand", "estimate", "se", "df", "ci_low", "ci_high",
           "statistic", "value", "df_num", "df_den", "p", "p_gg", "n_subjects", "n_obs", "truth"]


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
        :func:`compare` of every registered method (:mod:`lmm_teach.methods`).
    notes : tuple of str
        Plain-language lines on what differs between the methods and why
        (:class:`lmm_teach.notes.Note`: a ``str`` with a ``kind``).
    warnings : tuple of str
        Everything a learner should know about these fits (``Note`` records;
        ``kind="not_computed"`` with ``about`` the method's key when a method
        could not be computed).
    fits : mapping
        Method key -> the fitted object each registered method read (the
        LMMs are ``lmm`` and ``lmm_categorical`` themselves).
    """

    lmm: LMMResult
    lmm_categorical: LMMResult | None
    anova: AnovaResult | None
    comparison: pd.DataFrame
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    truth: Mapping[str, float] | None = field(default=None, repr=False)
    fits: Mapping[str, object] = field(default_factory=dict, repr=False, compare=False)

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
        warnings.append(Note(f"The LMM with categorical time could not be fitted: {exc}", kind="not_computed",
                             about="lmm_categorical"))
    try:
        anova = rm_anova(data, y=y, subject=subject, visit=visit, between=between, time=time)
        warnings += list(anova.warnings)
    except DataError as exc:
        anova = None
        warnings.append(Note(f"The RM-ANOVA could not be computed: {exc}", kind="not_computed", about="anova"))
    truth_map = _truth_map(truth)
    long = _long_of(lmm)
    fits, failed = _fits(lmm, lmm_cat, anova, long)
    for key, why in failed.items():
        warnings.append(Note(f"{METHODS[key].label} could not be computed: {why}", kind="not_computed", about=key))
    table = _table(fits, long, truth if hasattr(truth, "true_effects") else truth_map)
    notes = _notes(lmm, lmm_cat, anova, time=time, visit=visit, data=data)
    if lmm.ddf != "Satterthwaite":
        notes.append(Note(
            f"The LMM's own tables use {lmm.ddf} df; the side-by-side table gives every LMM row Satterthwaite df "
            "(the computation a Monte Carlo replicate runs), so its p-values can differ slightly.", kind="df"))
    if long.n_groups > 2:
        notes.append(Note(
            f"{between!r} has {long.n_groups} levels: 'arm' and 'arm x time' are each {long.n_groups - 1} "
            "contrasts, so every method answers them with one omnibus test (its F or chi-square with its df) "
            "and no single estimate; the estimates per contrast are in each model's own table.",
            kind="omnibus"))
    return Analysis(lmm=lmm, lmm_categorical=lmm_cat, anova=anova, comparison=table,
                    notes=tuple(notes), warnings=tuple(warnings), truth=truth_map, fits=fits)


def _long_of(lmm: LMMResult) -> Long:
    """The registry's arrays of the rows the LMM used (levels coded as fit_lmm codes them)."""
    c = lmm.columns
    return long_from_columns(lmm.data, y=c.y, subject=c.subject, time=c.time, visit=c.visit, between=c.between,
                             cluster=c.cluster, random_slope=lmm.random_slope)


def _fits(lmm, lmm_cat, anova, long: Long, methods=None) -> tuple[dict, dict]:
    """Every registered method's fit of these data: the LMMs as fitted, the others by their own ``fit``.

    The RM-ANOVA is left out when ``anova`` is None (it could not be computed);
    a method whose fit fails is reported in the second dict (key -> reason).
    """
    fits: dict[str, object] = {"lmm": lmm}
    if lmm_cat is not None:
        fits["lmm_categorical"] = lmm_cat
    failed = {}
    for key, m in METHODS.items():
        if methods is not None and key not in methods:
            continue
        k = m.fits
        if k in fits or k in failed or k == "lmm_categorical" or (k == "anova" and anova is None):
            continue
        try:
            with np.errstate(all="ignore"):
                fits[k] = METHODS.get(k, m).fit(long)
        except (ValueError, DataError, np.linalg.LinAlgError) as exc:
            failed[k] = str(exc)
    return fits, failed


def _truth_map(truth) -> dict[str, float] | None:
    if truth is None:
        return None
    if hasattr(truth, "true_effects"):
        truth = truth.true_effects()
    return {str(k): float(v) for k, v in dict(truth).items()}


def _truth_of(h, truth, long: Long) -> float:
    """The true value of a hypothesis' estimand, from a Design or a mapping like ``Design.true_effects()``.

    With a mapping, the "arm" estimand (averaged over the visits) is evaluated
    at the data's mean visit time, the "final" one at the final visit's
    observed mean time.
    """
    if truth is None or long.n_groups > 2:
        return np.nan
    if hasattr(truth, "true_effects"):
        return float(h.truth(truth))
    if not truth:
        return np.nan
    arms = long.n_groups == 2
    inter = truth.get("time:arm", 0.0)
    if h.key == "time":
        return truth.get("time", np.nan) + (inter / 2 if arms else 0.0)
    if h.key == "arm":
        return truth.get("arm", np.nan) + inter * float(np.nanmean(long.visit_times()))
    if h.key == "final":
        return truth.get("arm", np.nan) + inter * float(long.visit_times()[-1])
    return truth.get("time:arm", np.nan)


def _table(fits: Mapping, long: Long, truth, *, alpha: float = 0.05) -> pd.DataFrame:
    """One row per (hypothesis, method) with an answer, in the registry's order."""
    rows = []
    for h in hypotheses_for(long.n_groups):
        words = estimand_words(h, long.n_groups, long.group_levels or None)
        t = _truth_of(h, truth, long)
        for key, m in METHODS.items():
            if m.fits not in fits:
                continue
            with np.errstate(all="ignore"):
                a = m.answer(fits[m.fits], h, long, alpha)
            rows.append({
                "analysis": key, "hypothesis": h.key, "method": m.label, "estimand": words,
                "estimate": a.estimate, "se": a.se, "df": a.df, "ci_low": a.ci_low, "ci_high": a.ci_high,
                "statistic": a.statistic, "value": a.value, "df_num": a.df_num, "df_den": a.df_den, "p": a.p,
                # the RM-ANOVA's within effects carry the Greenhouse-Geisser correction
                "p_gg": a.p if key == "anova" and h.key in ("time", "arm x time") else np.nan,
                "n_subjects": a.n_subjects, "n_obs": a.n_obs, "truth": t})
    return pd.DataFrame(rows, columns=COLUMNS)


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
        The LMM with numeric time (its data give every other method's data).
    anova : AnovaResult, optional
        The RM-ANOVA of the same data; without it the RM-ANOVA rows are left out.
    lmm_categorical : LMMResult, optional
        The LMM with categorical time; without it its rows are left out.
    truth : Design or mapping, optional
        The simulation's design (or ``Design.true_effects()``), for column ``truth``.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`COLUMNS`: ``analysis`` (the method's key in
        :data:`lmm_teach.methods.METHODS`), ``hypothesis`` (a key of
        :data:`lmm_teach.methods.HYPOTHESES`), ``method`` (its label),
        ``estimand`` (what the estimate estimates, in words), ``estimate,
        se, df, ci_low, ci_high`` (NaN when a hypothesis has several
        contrasts), the method's test ``statistic, value, df_num, df_den,
        p`` (``p_gg`` repeats the RM-ANOVA's Greenhouse-Geisser p of its
        within effects), ``n_subjects, n_obs`` used, and ``truth``.  Every
        number comes from the registry's methods, the computation a Monte
        Carlo replicate of the same data runs.
    """
    long = _long_of(lmm)
    fits, _ = _fits(lmm, lmm_categorical, anova, long)
    return _table(fits, long, truth if hasattr(truth, "true_effects") else _truth_map(truth))


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
    """Fixed-width text of a comparison table for the terminal, each hypothesis' estimand below it."""
    show = table.drop(columns=[c for c in ("method", "estimand", "ci_low", "ci_high") if c in table.columns])
    for col in ("estimate", "se", "df", "value", "df_den", "truth"):
        if col in show.columns:
            show[col] = show[col].map(lambda v: "" if not np.isfinite(v) else f"{v:.4g}")
    show["df_num"] = show["df_num"].map(lambda v: "" if not np.isfinite(v) else f"{v:g}")
    for col in ("p", "p_gg"):
        show[col] = show[col].map(lambda v: "" if not np.isfinite(v) else f"{v:.3g}")
    if show["truth"].eq("").all():
        show = show.drop(columns="truth")
    if show["p_gg"].eq("").all():
        show = show.drop(columns="p_gg")
    lines = [show.to_string(index=False), "", "What each estimate estimates:"]
    if "estimand" in table.columns:
        for hyp, words in table.drop_duplicates("hypothesis")[["hypothesis", "estimand"]].itertuples(index=False):
            lines.append(f"  {hyp}: {words}")
    lines += ["", "Methods:"] + [f"  {key}: {m.label} ({m.test}); {m.model}" for key, m in METHODS.items()
                                 if key in set(table["analysis"])]
    return "\n".join(lines)


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
    pop_int, pop_slope = population_lines(lmm, used, codes, n_s)
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


def population_lines(lmm: LMMResult, used: pd.DataFrame, codes: np.ndarray, n_s: int):
    """Intercept and slope of the fixed-effects line of each subject's group (numeric time).

    Read from the fit's terms (``lmm.terms``: which coefficients belong to time,
    the between factor and their interaction), never from coefficient names.
    """
    from lmm_teach.lmm.terms import factor_codes

    beta = np.asarray(lmm.beta, float)
    by_vars = {term.variables: term.columns for term in lmm.terms}
    icpt = np.full(n_s, beta[0])  # the intercept is the first column (terms.fixed_design), in no term
    slope = np.full(n_s, beta[by_vars[frozenset({"t"})][0]] if frozenset({"t"}) in by_vars else np.nan)
    if lmm.columns.between is not None:
        level = np.zeros(n_s, dtype=np.intp)
        level[codes] = factor_codes(used[lmm.columns.between])[0]  # 0 = reference, as the fit codes it
        arm, arm_time = by_vars.get(frozenset({"b"}), ()), by_vars.get(frozenset({"t", "b"}), ())
        extra = level > 0
        if arm:
            icpt[extra] += beta[np.asarray(arm)[level[extra] - 1]]
        if arm_time:
            slope[extra] += beta[np.asarray(arm_time)[level[extra] - 1]]
    return icpt, slope
