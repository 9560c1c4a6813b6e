"""The LMM with categorical time: the likelihood twin of the RM-ANOVA.

``y ~ visit [* group] + (1 | subject) [+ (1 | cluster)]``, REML (a random
intercept only: when subjects have their own slopes its covariance model is
wrong and, under MAR dropout, it is biased too; Molenberghs & Kenward 2007,
ch. 5).  Its tests are lmerTest's type-III F tests with Satterthwaite df
(visit, group, visit:group); its estimates are the trend (or the average) of
the model's visit means over the observed mean visit times, with their
Satterthwaite df.
"""

from __future__ import annotations

import numpy as np

from lmm_teach.lmm.engine import fit_arrays
from lmm_teach.methods.base import Answer, Hypothesis, Long, Method, t_interval
from lmm_teach.methods.curves import categorical_contrast, design_matrix, type3

__all__ = ["LMM_CATEGORICAL"]

_TERM = {"time": ("v",), "arm": ("b",), "arm x time": ("v", "b")}


def fit(long: Long):
    """REML fit on arrays; an :class:`~lmm_teach.LMMResult` with ``time_as="categorical"`` gives the same."""
    X = design_matrix(long, categorical=True)
    return fit_arrays(long.y, X, long.subject, cluster=long.cluster, as_fit_lmm=True)


def answer(fitted, h: Hypothesis, long: Long, alpha: float) -> Answer:
    L = categorical_contrast(h, long, long.visit_times())
    F, dfn, dfd, p = fitted.test(type3(long, True, _TERM[h.key]))
    est = se = df = lo = hi = np.nan
    if L.shape[0] == 1:
        est, se, df, _ = fitted.contrast(L[0])
        _, lo, hi = t_interval(est, se, df, alpha)
    return Answer(estimate=est, se=se, df=df, ci_low=lo, ci_high=hi, statistic="F", value=F, df_num=dfn,
                  df_den=dfd, p=p, n_subjects=long.n_subjects, n_obs=long.n_obs, singular=bool(fitted.singular))


LMM_CATEGORICAL = Method(
    key="lmm_categorical", label="LMM, categorical time", short="LMM (categorical)", colour="#009E73",
    test="F, Satterthwaite df", model="y ~ visit [* arm] + (1 | subject) [+ (1 | clinic)], REML",
    fit=fit, answer=answer, order=30,
    phrase="the LMM with categorical time", possessive="the categorical-time LMM's")
METHODS = (LMM_CATEGORICAL,)
