"""Contrasts on the coefficients of the treatment-coded models ``y ~ time [* group]`` and ``y ~ visit [* group]``.

The coefficient layout is the one :func:`lmm_teach.fit_lmm` uses
(:mod:`lmm_teach.lmm.terms`): ``(Intercept), time, groupB, ..., time:groupB,
...`` with numeric time, ``(Intercept), visit1, ..., groupB, ...,
visit1:groupB, ...`` with categorical time.  A hypothesis (its group weights
and its summary over time) becomes the rows ``L`` of ``L @ beta``.
"""

from __future__ import annotations

import numpy as np

from lmm_teach.lmm.terms import _columns, _structure
from lmm_teach.methods.base import Hypothesis, Long, visit_weights

__all__ = ["design_matrix", "numeric_contrast", "categorical_contrast", "type3"]


def _nb(long: Long) -> int:
    return long.n_groups if long.group is not None else 0


def design_matrix(long: Long, *, categorical: bool) -> np.ndarray:
    """X of ``y ~ time [* group]`` or ``y ~ visit [* group]``, exactly as :func:`lmm_teach.fit_lmm` builds it."""
    X, _ = _columns(None if categorical else long.time, long.visit if categorical else None, long.group,
                    long.n_visits, _nb(long), full=False)
    empty = np.flatnonzero(~X.any(axis=0))
    if empty.size:
        raise ValueError("a visit has no measurements" + (" in an arm" if categorical and empty[0] > long.n_visits
                                                          else ""))
    if np.linalg.matrix_rank(X) < X.shape[1]:
        why = ("a visit was attended in one arm only" if categorical
               else "an arm has no measurement after baseline" if long.group is not None
               else "no measurement after baseline")
        raise ValueError(f"the fixed effects cannot all be estimated ({why})")
    return X


def _keys(long: Long, categorical: bool) -> tuple:
    return _structure(categorical, long.n_visits if categorical else 0, _nb(long))[0]


def numeric_contrast(h: Hypothesis, long: Long) -> np.ndarray:
    """Rows L for ``y ~ time [* group]``: slopes, or the curves at the mean visit time (``average``) or at
    the final visit's observed mean time (``final``)."""
    keys = _keys(long, False)
    G = max(long.n_groups, 1)
    at = 0.0
    if h.over_time == "average":
        at = float(np.nanmean(long.visit_times()))
    elif h.over_time == "final":
        at = float(long.visit_times()[-1])
    C = np.zeros((G, len(keys)))  # group g's slope (or value at `at`) in coefficients
    for i, key in enumerate(keys):
        for g in range(G):
            if key == ("1",):
                C[g, i] = 0.0 if h.over_time == "slope" else 1.0
            elif key == ("t",):
                C[g, i] = 1.0 if h.over_time == "slope" else at
            elif key == ("b", g):
                C[g, i] = 0.0 if h.over_time == "slope" else 1.0
            elif key == ("t", "b", g):
                C[g, i] = 1.0 if h.over_time == "slope" else at
    return h.groups(G) @ C


def categorical_contrast(h: Hypothesis, long: Long, times: np.ndarray) -> np.ndarray:
    """Rows L for ``y ~ visit [* group]``: the trend (average, final value) of the model's visit means."""
    keys = _keys(long, True)
    G, K = max(long.n_groups, 1), long.n_visits
    w = visit_weights(h, times)
    C = np.zeros((G, len(keys)))
    for i, key in enumerate(keys):
        for g in range(G):
            if key == ("1",):
                C[g, i] = w.sum()
            elif key[0] == "v" and len(key) == 2:
                C[g, i] = w[key[1]]
            elif key == ("b", g):
                C[g, i] = w.sum()
            elif len(key) == 4 and key[2:] == ("b", g):
                C[g, i] = w[key[1]]
    del K
    return h.groups(G) @ C


def type3(long: Long, categorical: bool, term: tuple) -> np.ndarray:
    """lmerTest's type-III contrast of a term (``("v",)``, ``("b",)``, ``("v", "b")``, ...)."""
    return _structure(categorical, long.n_visits if categorical else 0, _nb(long))[2][term]
