"""The LMM with numeric time: Satterthwaite t tests (lmerTest) and the Wald z variant.

``y ~ time [* group] + (1 | subject)`` (``(time | subject)`` with random slopes,
``+ (1 | cluster)`` with clusters), REML.  Each hypothesis is one contrast of
the coefficients (:mod:`lmm_teach.methods.curves`): with two arms "time" is
``time + time:armB / 2`` (the type-III test of time), "arm" the arms'
difference at the mean visit time, "arm x time" ``time:armB``.  With three or
more arms the arm hypotheses are tested with one F test of their G - 1
contrasts.  The Wald z variant reads the same fit and ignores the uncertainty
of the variance estimates (anti-conservative in small samples).
"""

from __future__ import annotations

import numpy as np
from scipy.special import chdtrc

from lmm_teach.lmm.engine import fit_arrays
from lmm_teach.methods.base import Answer, Hypothesis, Long, Method, t_interval
from lmm_teach.methods.curves import design_matrix, numeric_contrast

__all__ = ["LMM", "LMM_WALD"]


def fit(long: Long):
    """REML fit on arrays (:func:`lmm_teach.lmm.engine.fit_arrays`); an :class:`~lmm_teach.LMMResult` of
    the same data gives the same numbers (same design, same engine)."""
    X = design_matrix(long, categorical=False)
    return fit_arrays(long.y, X, long.subject, time=long.time, random_slope=long.random_slope,
                      cluster=long.cluster, as_fit_lmm=True)


def _answer(fitted, h: Hypothesis, long: Long, alpha: float, *, wald: bool) -> Answer:
    L = numeric_contrast(h, long)
    n = dict(n_subjects=long.n_subjects, n_obs=long.n_obs, singular=bool(fitted.singular))
    if L.shape[0] == 1:
        est, se, df, _ = fitted.contrast(L[0])
        if wald:
            df = np.inf
        p, lo, hi = t_interval(est, se, df, alpha)
        return Answer(estimate=est, se=se, df=df, ci_low=lo, ci_high=hi, statistic="z" if wald else "t",
                      value=est / se if se > 0 else np.nan, df_num=1.0, df_den=df, p=p, **n)
    F, dfn, dfd, p = fitted.test(L)
    if wald:
        return Answer(np.nan, np.nan, np.nan, np.nan, np.nan, "chi2", F * dfn, dfn, np.inf,
                      float(chdtrc(dfn, F * dfn)), **n)
    return Answer(np.nan, np.nan, np.nan, np.nan, np.nan, "F", F, dfn, dfd, p, **n)


def answer(fitted, h: Hypothesis, long: Long, alpha: float) -> Answer:
    """Satterthwaite t test (F test with several contrasts) of the hypothesis' contrast."""
    return _answer(fitted, h, long, alpha, wald=False)


def answer_wald(fitted, h: Hypothesis, long: Long, alpha: float) -> Answer:
    """Wald z test (chi-square with several contrasts) of the same contrast."""
    return _answer(fitted, h, long, alpha, wald=True)


LMM = Method(key="lmm", label="LMM, numeric time", short="LMM", colour="#0072B2", test="t, Satterthwaite df",
             model="y ~ time [* arm] + (1 | subject) or (time | subject) [+ (1 | clinic)], REML",
             fit=fit, answer=answer, order=10,
    phrase="the LMM (t test, Satterthwaite df)", possessive="the LMM's")
LMM_WALD = Method(key="lmm_wald", label="LMM, numeric time (Wald z)", short="LMM (Wald z)", colour="#56B4E9",
                  test="z (Wald)", model="the same fit as the LMM; the normal approximation (df = infinity)",
                  fit=fit, answer=answer_wald, order=20, fit_key="lmm",
    phrase="the LMM's Wald z-test", possessive="the Wald z-test's")
METHODS = (LMM, LMM_WALD)
