"""The LMM with categorical time: the likelihood twin of the RM-ANOVA.

``y ~ visit [* group] + (1 | subject) [+ (1 | cluster)]``, REML (a random
intercept only: when subjects have their own slopes its covariance model is
wrong and, under MAR dropout, it is biased too; Molenberghs & Kenward 2007,
ch. 5).  Its tests of the hypotheses over the whole visit profile ("time",
"arm", "arm x time") are lmerTest's type-III F tests with Satterthwaite df
(visit, group, visit:group); its estimates are the trend (or the average) of
the model's visit means over the observed mean visit times, with their
Satterthwaite df.  A hypothesis about one visit ("final") is tested by its own
contrast: a t test (an F test of the G - 1 contrasts with more groups).

:func:`answer` reads only ``fitted.contrast`` and ``fitted.test``, so the
MMRM (:mod:`lmm_teach.methods.mmrm`), whose coefficients are laid out the
same way, answers with it too.
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
    """The hypothesis' contrast of the visit means; the type-III F test of its term, or (a hypothesis
    about one visit) the t test of the contrast itself (F with several contrasts).

    ``fitted`` is anything with ``contrast(l) -> (est, se, df, p)``, ``test(L) -> (F, dfn, dfd, p)`` and
    ``singular`` over the coefficients of ``y ~ visit [* group]`` (an LMMResult, an MMRM fit).
    """
    L = categorical_contrast(h, long, long.visit_times())
    est = se = df = lo = hi = p_one = np.nan
    if L.shape[0] == 1:
        est, se, df, p_one = fitted.contrast(L[0])
        _, lo, hi = t_interval(est, se, df, alpha)
    term = _TERM.get(h.key)
    if term is not None:
        statistic, (value, dfn, dfd, p) = "F", fitted.test(type3(long, True, term))
    elif L.shape[0] == 1:
        statistic, value, dfn, dfd, p = "t", est / se if se > 0 else np.nan, 1.0, df, p_one
    else:
        statistic, (value, dfn, dfd, p) = "F", fitted.test(L)
    return Answer(estimate=est, se=se, df=df, ci_low=lo, ci_high=hi, statistic=statistic, value=value,
                  df_num=dfn, df_den=dfd, p=p, n_subjects=long.n_subjects, n_obs=long.n_obs,
                  singular=bool(fitted.singular))


LMM_CATEGORICAL = Method(
    key="lmm_categorical", label="LMM, categorical time", short="LMM (categorical)", colour="#009E73",
    test="F, Satterthwaite df", model="y ~ visit [* arm] + (1 | subject) [+ (1 | clinic)], REML",
    fit=fit, answer=answer, order=30,
    phrase="the LMM with categorical time", possessive="the categorical-time LMM's")
METHODS = (LMM_CATEGORICAL,)
