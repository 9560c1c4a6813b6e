"""The repeated-measures ANOVA of the complete cases (afex::aov_ez), Greenhouse-Geisser-corrected.

Subjects missing any visit are dropped (listwise deletion); duplicate
measurements in a visit are averaged.  The tests are the RM-ANOVA's F tests
(:func:`lmm_teach.anova.rm_anova_arrays`): the within effects (visit,
group:visit) with the Greenhouse-Geisser correction, the between effect
without one.  The estimate of a hypothesis is the same contrast of the
complete cases' visit means as for the other visit-based method: per subject
``b_i = w @ y_i`` (``w`` the trend weights on the complete cases' observed
mean visit times, or 1/K for an average), combined over the groups; its SE
and df (N - G) come from the pooled variance of the ``b_i`` (the RM-ANOVA's
polynomial contrast with its own error term, as SPSS prints under "Tests of
within-subjects contrasts").  For the "arm" hypothesis with two groups this
t test is the RM-ANOVA's between F test (t^2 = F).  A hypothesis about one
visit ("final") has no RM-ANOVA term: it is tested by that t test (the
pooled-variance two-sample t test of the complete cases' final-visit values;
a one-way F test of the G - 1 contrasts with more groups).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import fdtrc

from lmm_teach.anova.algebra import rm_anova_arrays
from lmm_teach.methods.base import Answer, Hypothesis, Long, Method, t_interval, visit_weights

__all__ = ["ANOVA", "complete_cases"]

_TERM = {"time": "within", "arm": "between", "arm x time": "between:within"}


@dataclass(frozen=True, eq=False)
class AnovaFit:
    Y: np.ndarray  # complete subjects x visits
    groups: np.ndarray | None  # group code of each complete subject
    times: np.ndarray  # observed mean time of each visit over the complete cases' rows
    tests: dict  # term -> (F, df_num, df_den, p, p_gg)
    singular: bool = False
    converged: bool = True


def complete_cases(long: Long) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """``(Y, groups, keep)``: the subjects x visits matrix of the subjects seen at every visit
    (duplicates averaged), their group codes (None without groups) and the mask of those subjects."""
    m, k = int(long.subject.max()) + 1, long.n_visits
    cell = long.subject * k + long.visit
    count = np.bincount(cell, minlength=m * k).reshape(m, k)
    total = np.bincount(cell, weights=long.y, minlength=m * k).reshape(m, k)
    keep = (count > 0).all(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        Y = total[keep] / count[keep]
    groups = None
    if long.group is not None:
        group_of = np.zeros(m, dtype=np.intp)
        group_of[long.subject] = long.group
        groups = group_of[keep]
    return Y, groups, keep


def fit(long: Long) -> AnovaFit:
    Y, groups, keep = complete_cases(long)
    if groups is not None:
        n_g = np.bincount(groups, minlength=long.n_groups)
        if n_g.min() < 2:
            g = int(np.argmin(n_g))
            raise ValueError(f"fewer than 2 complete subjects in arm {long.group_name(g)}")
    elif Y.shape[0] < 2:
        raise ValueError("fewer than 2 complete subjects")
    res = rm_anova_arrays(Y, groups)
    tests = {}
    for i, term in enumerate(res["terms"]):
        tests[term] = (float(res["F"][i]), float(res["df_num"][i]), float(res["df_den"][i]), float(res["p"][i]),
                       float(res["p_gg"][i]) if term != "between" else float(res["p"][i]))
    return AnovaFit(Y=Y, groups=groups, times=long.visit_times(keep[long.subject]), tests=tests)


def answer(fitted: AnovaFit, h: Hypothesis, long: Long, alpha: float) -> Answer:
    Y, groups = fitted.Y, fitted.groups
    b = Y @ visit_weights(h, fitted.times)  # each complete subject's own slope (or mean)
    n_cc, k = Y.shape
    if groups is None:
        means, n_g, resid = np.array([b.mean()]), np.array([n_cc]), b - b.mean()
    else:
        n_g = np.bincount(groups, minlength=long.n_groups)
        means = np.bincount(groups, weights=b, minlength=long.n_groups) / n_g
        resid = b - means[groups]
    df = float(n_cc - len(n_g))
    A = h.groups(len(n_g))
    s2 = resid @ resid / df  # pooled variance of the subjects' slopes (or means, or final values)
    est = se = lo = hi = p_one = np.nan
    if A.shape[0] == 1:
        est, se = float(A[0] @ means), float(np.sqrt(s2 * np.sum(A[0] ** 2 / n_g)))
        p_one, lo, hi = t_interval(est, se, df, alpha)
    statistic, p_raw = "F", np.nan
    if h.key in _TERM:
        value, dfn, dfd, p_raw, p = fitted.tests[_TERM[h.key]]
    elif A.shape[0] == 1:
        statistic, value, dfn, dfd, p = "t", est / se if se > 0 else np.nan, 1.0, df, p_one
    else:  # one-way F test of the G - 1 contrasts on the pooled variance
        Am = A @ means
        r = A.shape[0]
        value = float(Am @ np.linalg.solve(s2 * (A / n_g) @ A.T, Am)) / r
        dfn, dfd, p = float(r), df, float(fdtrc(r, df, value))
    return Answer(estimate=est, se=se, df=df if A.shape[0] == 1 else np.nan, ci_low=lo, ci_high=hi,
                  statistic=statistic, value=value, df_num=dfn, df_den=dfd, p=p, n_subjects=n_cc, n_obs=n_cc * k,
                  p_uncorrected=p_raw)


ANOVA = Method(key="anova", label="RM-ANOVA, complete cases", short="RM-ANOVA", colour="#D55E00",
               test="F, Greenhouse-Geisser", model="within = visit [, between = arm], complete cases only",
               fit=fit, answer=answer, order=40,
    phrase="the RM-ANOVA", possessive="the ANOVA's")
METHODS = (ANOVA,)
