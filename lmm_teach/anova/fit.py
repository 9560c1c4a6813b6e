"""The repeated-measures ANOVA, as afex computes it, on the subjects with every visit.

:func:`rm_anova` turns a long table into the complete-case subjects x visits
matrix (listwise deletion, reported by subject id) and hands it to the exact
algebra of :mod:`lmm_teach.anova.algebra`.  The numbers follow
``afex::aov_ez(subject, y, data, within = visit, between = between)``: type-III
sums of squares, Mauchly's test, Greenhouse-Geisser and Huynh-Feldt epsilons
(the latter printed uncapped), generalised eta squared.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from lmm_teach.anova.algebra import EFFECT_KEYS, rm_anova_arrays
from lmm_teach.jsonable import plain_level
from lmm_teach.validate import Columns, DataError, check_long

__all__ = ["rm_anova", "rm_anova_arrays", "AnovaResult"]

_SHOWN_IDS = 10  # how many dropped subject ids a warning lists before "and N more"


@dataclass(frozen=True, eq=False)
class AnovaResult:
    """A repeated-measures ANOVA: the table of F tests and what it was computed on.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per effect (``arm``, ``visit``, ``arm:visit``; the between
        factor first, as afex): ``effect, F, df_num, df_den, p, ges, eps_gg,
        p_gg, eps_hf, p_hf, mauchly_w, mauchly_p, ss_effect, ss_error``.  The
        sphericity columns are NaN for the between-subject effect; ``eps_hf``
        is uncapped, ``p_hf`` uses ``min(1, eps_hf)``.
    n_subjects_used, n_subjects_dropped : int
        Complete subjects analysed, and subjects left out for missing a visit.
    dropped_subjects : tuple
        The ids of the subjects left out, as they are in the data.
    n_obs_used : int
        Values analysed: ``n_subjects_used`` x number of visits (duplicate rows
        in a cell count once, as their mean).
    cell_means : pandas.DataFrame
        ``[between,] visit, mean, sd, n`` of the complete cases, in visit
        order (and ``mean_time``, the mean time of each cell, when ``time`` is given).
    warnings : tuple of str
        What a learner should know about the data this ANOVA used.
    columns : Columns
        The column roles used.
    visit_levels : tuple
        The visits (levels of the within factor), in the order used.
    """

    table: pd.DataFrame
    n_subjects_used: int
    n_subjects_dropped: int
    dropped_subjects: tuple
    n_obs_used: int
    cell_means: pd.DataFrame
    warnings: tuple[str, ...] = ()
    columns: Columns | None = None
    visit_levels: tuple = field(default=())

    def to_dict(self) -> dict:
        """The ``"anova"`` object of the JSON contract: plain Python values, None for NaN."""
        effects = [{key: plain_level(row[key]) for key in ("effect", *EFFECT_KEYS)}
                   for row in self.table.to_dict("records")]
        return {
            "n_subjects_used": int(self.n_subjects_used),
            "n_subjects_dropped": int(self.n_subjects_dropped),
            "dropped_subjects": [plain_level(s) for s in self.dropped_subjects],
            "n_obs_used": int(self.n_obs_used),
            "effects": effects,
            "cell_means": [{k: plain_level(v) for k, v in r.items()} for r in self.cell_means.to_dict("records")],
            "warnings": list(self.warnings),
        }

    def summary(self) -> str:
        """A readable table, like afex's print, with the sphericity corrections."""
        cols = self.columns
        lines = ["Repeated-measures ANOVA (type-III sums of squares, as afex::aov_ez)"]
        if cols is not None:
            lines.append(f"Response: {cols.y}; within: {cols.visit} ({len(self.visit_levels)} visits: "
                         f"{', '.join(map(str, self.visit_levels))})"
                         + (f"; between: {cols.between}" if cols.between else ""))
        n_all = self.n_subjects_used + self.n_subjects_dropped
        line = f"Subjects: {self.n_subjects_used} of {n_all} have every visit and are analysed"
        if self.n_subjects_dropped:
            line += f"; {self.n_subjects_dropped} dropped (listwise deletion): {_id_list(self.dropped_subjects)}"
        lines += [line, ""]
        t = self.table
        main = pd.DataFrame({
            "Effect": t["effect"],
            "df": [f"{a:g}, {b:g}" for a, b in zip(t["df_num"], t["df_den"], strict=True)],
            "MSE": _fmt(t["ss_error"] / t["df_den"], "{:.4g}"),
            "F": _fmt(t["F"], "{:.3f}"),
            "ges": _fmt(t["ges"], "{:.3f}"),
            "p": [_fmt_p(p) for p in t["p"]],
        })
        lines.append(main.to_string(index=False))
        within = t[t["eps_gg"].notna()]
        if len(within):
            sph = pd.DataFrame({
                "Effect": within["effect"],
                "Mauchly W": _fmt(within["mauchly_w"], "{:.4f}"),
                "p (Mauchly)": [_fmt_p(p) for p in within["mauchly_p"]],
                "eps GG": _fmt(within["eps_gg"], "{:.4f}"),
                "p (GG)": [_fmt_p(p) for p in within["p_gg"]],
                "eps HF": _fmt(within["eps_hf"], "{:.4f}"),
                "p (HF)": [_fmt_p(p) for p in within["p_hf"]],
            })
            lines += ["", "Sphericity: Mauchly's test and the corrected p-values", sph.to_string(index=False)]
            if (within["eps_hf"] > 1).any():
                lines.append("(eps HF above 1 is shown as computed; p (HF) treats it as 1, as afex does)")
        if self.warnings:
            lines += ["", "Warnings:"] + [f"- {w}" for w in self.warnings]
        return "\n".join(lines)


def rm_anova(data: pd.DataFrame, *, y: str, subject: str, visit: str, between: str | None = None,
             time: str | None = None) -> AnovaResult:
    """Repeated-measures ANOVA of ``y`` over the visits, on the subjects with every visit.

    Parameters
    ----------
    data : pandas.DataFrame
        Long table, one row per measurement.  Not modified.
    y, subject, visit : str
        Columns of the outcome, the subject id and the visit label (the
        within-subject factor).
    between : str, optional
        Column of a between-subject factor (e.g. ``arm``), constant per subject.
    time : str, optional
        Column of the numeric time; only used to add the mean time of each
        visit to ``cell_means`` (for plotting the complete-case means).

    Returns
    -------
    AnovaResult

    Raises
    ------
    DataError
        When a column is missing, the between factor varies within a subject,
        or fewer than 2 subjects (in some group) have every visit.

    Notes
    -----
    The visits are the levels of ``visit`` that occur in the data, ordered by
    the categories of a categorical column, numerically for numbers, and
    naturally for text (``week2`` before ``week10``).  Subjects lacking any
    visit are removed first (listwise deletion) and listed in the warnings; the
    linear mixed model, by contrast, uses every observation.  Several rows of
    the same subject and visit are averaged.  For complete subject i in group
    g at visit j the model is ::

        y_ij = mu + alpha_g + beta_j + (alpha beta)_gj + pi_i(g) + e_ij

    with a subject effect pi_i(g); F tests use type-III sums of squares, and
    the within-subject tests come with Mauchly's test of sphericity and the
    Greenhouse-Geisser and Huynh-Feldt corrections, exactly as
    ``afex::aov_ez(subject, y, data, within = visit, between = between)``
    (afex 1.2; see :func:`lmm_teach.anova.algebra.rm_anova_arrays` for the
    formulas).

    Examples
    --------
    >>> import lmm_teach
    >>> res = rm_anova(lmm_teach.load_bp(), y="bp", subject="patient", visit="time")
    >>> res.table[["effect", "F", "df_num", "df_den"]].round(3).to_dict("records")
    [{'effect': 'time', 'F': 135.164, 'df_num': 2, 'df_den': 18}]
    """
    use_time = time is not None and time != visit
    columns = Columns(y=y, subject=subject, visit=visit, between=between, time=time if use_time else None)
    tidy = check_long(data, columns)
    notes: list[str] = []
    n_missing_y = len(data) - len(tidy)
    if n_missing_y:
        notes.append(f"{n_missing_y} row{'s' if n_missing_y != 1 else ''} with a missing {y!r} "
                     f"{'were' if n_missing_y != 1 else 'was'} ignored.")

    v_codes, visit_levels = _ordered_codes(tidy[visit])
    s_codes, subjects = _ordered_codes(tidy[subject])
    k, n_all = len(visit_levels), len(subjects)
    values = tidy[y].to_numpy(float)
    flat = s_codes * k + v_codes
    counts = np.bincount(flat, minlength=n_all * k).reshape(n_all, k)
    sums = np.bincount(flat, weights=values, minlength=n_all * k).reshape(n_all, k)
    complete = (counts > 0).all(axis=1)

    dup = counts > 1
    if dup.any():
        i, j = np.argwhere(dup)[0]
        n_dup = int(dup.sum())
        notes.append(f"{n_dup} subject/visit cell{'s' if n_dup != 1 else ''} had more than one row "
                     f"(e.g. subject {plain_level(subjects[i])!r} at {visit} {plain_level(visit_levels[j])!r} has "
                     f"{counts[i, j]} rows); the rows of a cell were averaged.")

    groups = None
    group_levels: tuple = ()
    if between is not None:
        first_row = np.full(n_all, -1)
        first_row[s_codes[::-1]] = np.arange(len(s_codes))[::-1]
        b_codes, group_levels = _ordered_codes(tidy[between].iloc[first_row])
        groups = b_codes

    _check_enough(complete, counts, groups, group_levels, visit_levels, visit, between)
    dropped = tuple(plain_level(s) for s in np.asarray(subjects, dtype=object)[~complete])
    if dropped:
        notes.append(f"{len(dropped)} of {n_all} subjects lack at least one of the {k} visits and were left "
                     f"out (listwise deletion): {_id_list(dropped)}. The RM-ANOVA uses "
                     f"{int(complete.sum())} subjects; the LMM can use every observation.")

    Y = sums[complete] / counts[complete]
    # Every group kept >= 2 complete subjects (_check_enough), so the codes stay 0..G-1.
    g = None if groups is None else groups[complete]
    out = rm_anova_arrays(Y, g)
    if k > 2 and out["df_error_between"] < k - 1:
        notes.append(f"Mauchly's test needs more complete subjects than visits ({int(complete.sum())} "
                     f"subjects, {k} visits{', in ' + str(len(group_levels)) + ' groups' if g is not None else ''}"
                     "): it is not reported.")
    if not np.isfinite(out["F"]).all():
        notes.append(f"{y!r} does not vary within subjects around the visit means: the F tests are undefined.")

    names = {"within": visit}
    if between is not None:
        names |= {"between": between, "between:within": f"{between}:{visit}"}
    # The uncorrected df are whole numbers; numpy casts here (DataFrame.astype costs ms).
    columns_out = {key: out[key] for key in EFFECT_KEYS}
    columns_out |= {"df_num": out["df_num"].astype(np.int64), "df_den": out["df_den"].astype(np.int64)}
    table = pd.DataFrame({"effect": [names[t] for t in out["terms"]], **columns_out})

    times = None
    if time is not None:
        # time == visit: the visit labels themselves are the times (NaN if they are not numbers).
        tv = (tidy[time] if use_time else pd.to_numeric(tidy[time].astype(object), errors="coerce"))
        tv = tv.to_numpy(float)
        tsum = np.bincount(flat, weights=tv, minlength=n_all * k).reshape(n_all, k)
        times = tsum[complete] / counts[complete]
    cell_means = _cell_means(Y, times, g, visit_levels, group_levels, visit=visit, between=between)
    return AnovaResult(
        table=table, n_subjects_used=int(complete.sum()), n_subjects_dropped=len(dropped),
        dropped_subjects=dropped, n_obs_used=int(Y.size), cell_means=cell_means,
        warnings=tuple(notes), columns=Columns(y=y, subject=subject, visit=visit, between=between, time=time),
        visit_levels=tuple(plain_level(v) for v in visit_levels),
    )


def _check_enough(complete, counts, groups, group_levels, visit_levels, visit, between) -> None:
    """Raise DataError unless at least 2 subjects (in every group) have every visit."""
    k, n_all = len(visit_levels), len(complete)
    n_ok = int(complete.sum())
    hint = "the LMM can still use every observation"
    if n_ok < 2:
        missing = (counts == 0).sum(axis=0)
        j = int(np.argmax(missing))
        raise DataError(
            f"only {n_ok} of {n_all} subjects {'has' if n_ok == 1 else 'have'} all {k} visits of {visit!r} "
            f"({visit} {plain_level(visit_levels[j])!r} is missing for {int(missing[j])} subjects); "
            f"the RM-ANOVA needs at least 2; {hint}")
    if groups is None:
        return
    for code, level in enumerate(group_levels):
        in_group = groups == code
        n_g = int((complete & in_group).sum())
        if n_g < 2:
            raise DataError(
                f"in {between!r} group {plain_level(level)!r} only {n_g} of {int(in_group.sum())} subjects "
                f"{'has' if n_g == 1 else 'have'} all {k} visits of {visit!r}; the RM-ANOVA needs at least 2 "
                f"complete subjects per group; {hint} (or leave out {between!r})")


def _ordered_codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Codes 0..L-1 of ``values`` and its L levels in teaching order.

    Categories keep their declared order, numbers sort numerically, anything
    else naturally by its text ("week2" < "week10"); only levels that occur count.
    """
    codes, uniques = pd.factorize(values, sort=False)
    if isinstance(values.dtype, pd.CategoricalDtype):
        order = np.argsort(np.asarray(uniques.codes), kind="stable")
        levels = np.asarray(uniques.astype(object))
    elif pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
        levels = np.asarray(uniques, dtype=object)
        order = np.argsort(np.asarray(uniques), kind="stable")
    else:
        levels = np.asarray(uniques, dtype=object)
        order = np.array(sorted(range(len(levels)), key=lambda i: _natural_key(levels[i])), dtype=np.intp)
    rank = np.empty(len(order), dtype=np.intp)
    rank[order] = np.arange(len(order))
    return rank[codes], levels[order]


def _natural_key(value) -> tuple:
    # Digits compare as numbers, text case-insensitively: visit2 < visit10 < Visit11.
    parts = re.split(r"(\d+)", str(value))
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p.lower()) for p in parts if p) + (str(value),)


def _cell_means(Y, times, g, visit_levels, group_levels, *, visit, between) -> pd.DataFrame:
    """Complete-case means per visit (and group), with SD and n, in level order."""
    k = Y.shape[1]
    g = np.zeros(len(Y), np.intp) if g is None else g
    n_groups = int(g.max()) + 1
    parts: dict[str, list] = {"mean": [], "sd": [], "n": []}
    if times is not None:
        parts["mean_time"] = []
    for code in range(n_groups):
        rows_in = g == code
        sub = Y[rows_in]
        parts["mean"].append(sub.mean(axis=0))
        parts["sd"].append(sub.std(axis=0, ddof=1))  # >= 2 subjects per group (_check_enough)
        parts["n"].append(np.full(k, len(sub)))
        if times is not None:
            parts["mean_time"].append(times[rows_in].mean(axis=0))
    frame = {} if between is None else {between: [plain_level(lv) for lv in group_levels for _ in range(k)]}
    frame[visit] = [plain_level(v) for v in visit_levels] * n_groups
    if times is not None:
        frame["mean_time"] = np.concatenate(parts["mean_time"])
    frame |= {"mean": np.concatenate(parts["mean"]), "sd": np.concatenate(parts["sd"]),
              "n": np.concatenate(parts["n"])}
    return pd.DataFrame(frame)


def _id_list(ids) -> str:
    shown = ", ".join(map(str, ids[:_SHOWN_IDS]))
    return shown + (f" and {len(ids) - _SHOWN_IDS} more" if len(ids) > _SHOWN_IDS else "")


def _fmt(values, spec: str) -> list[str]:
    return ["" if not np.isfinite(v) else spec.format(v) for v in np.asarray(values, float)]


def _fmt_p(p: float) -> str:
    if not np.isfinite(p):
        return ""
    return "<.0001" if p < 1e-4 else f"{p:.4f}"
