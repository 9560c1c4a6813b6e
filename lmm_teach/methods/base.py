"""The vocabulary of the registry: one data set as arrays, a method, a hypothesis, an answer.

Every method answers every hypothesis from the same :class:`Long` arrays,
whether they come from a learner's DataFrame (:func:`lmm_teach.analyze`) or
from a simulated replicate (the Monte Carlo worker): one code path, so the
Compare tab and a Monte Carlo replicate of the same data give the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import ndtr, ndtri, stdtr, stdtrit

__all__ = ["Answer", "Hypothesis", "Long", "Method", "t_interval", "trend_weights"]


@dataclass(frozen=True, eq=False)
class Long:
    """One data set in long format, as arrays (rows need no order).

    ``subject`` (0 .. J-1), ``visit`` (0 .. K-1, the visits in sorted order),
    ``group`` (0 .. G-1, the between factor's levels in sorted order, the first
    the reference; None without one) and ``cluster`` (None without one) are
    integer codes; ``y`` and ``time`` (the *observed* times) are floats.
    ``random_slope`` says whether the LMMs give subjects their own slopes;
    ``group_levels`` names the groups (A, B for a simulated design).
    """

    y: np.ndarray
    time: np.ndarray
    subject: np.ndarray
    visit: np.ndarray
    group: np.ndarray | None = None
    cluster: np.ndarray | None = None
    random_slope: bool = False
    n_visits: int = 0
    n_groups: int = 1
    group_levels: tuple = ()

    @classmethod
    def build(cls, *, y, time, subject, visit, group=None, cluster=None, random_slope=False,
              group_levels=None) -> Long:
        visit = np.asarray(visit, dtype=np.intp)
        group = None if group is None else np.asarray(group, dtype=np.intp)
        return cls(y=np.asarray(y, float), time=np.asarray(time, float), subject=np.asarray(subject, np.intp),
                   visit=visit, group=group, cluster=None if cluster is None else np.asarray(cluster, np.intp),
                   random_slope=bool(random_slope), n_visits=int(visit.max()) + 1 if visit.size else 0,
                   n_groups=1 if group is None else int(group.max()) + 1,
                   group_levels=tuple(group_levels) if group_levels is not None else ())

    def group_name(self, g: int) -> str:
        """The name of group ``g`` (its level, or A, B, C, ... when unknown)."""
        return str(self.group_levels[g]) if g < len(self.group_levels) else "ABCDEFGHIJ"[g]

    @property
    def n_obs(self) -> int:
        return int(self.y.size)

    @property
    def n_subjects(self) -> int:
        return int(np.unique(self.subject).size)

    def visit_times(self, rows: np.ndarray | None = None) -> np.ndarray:
        """The mean observed time of each visit (over ``rows``, a boolean mask, or all rows)."""
        v, t = (self.visit, self.time) if rows is None else (self.visit[rows], self.time[rows])
        n = np.bincount(v, minlength=self.n_visits)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.bincount(v, weights=t, minlength=self.n_visits) / n


@dataclass(frozen=True)
class Answer:
    """One method's answer to one hypothesis on one data set.

    ``estimate``, ``se`` and ``df`` belong to the hypothesis' estimand (NaN
    when it has several contrasts, e.g. three arms); ``ci_low``/``ci_high``
    its (1 - alpha) interval.  ``statistic`` (``"t"``, ``"z"``, ``"F"``,
    ``"chi2"``), ``value``, ``df_num``, ``df_den`` and ``p`` are the method's
    test of the hypothesis (for the visit-based methods an omnibus F over the
    visits).  ``p_uncorrected`` is the RM-ANOVA's p before the
    Greenhouse-Geisser correction (NaN for the other methods).
    """

    estimate: float
    se: float
    df: float
    ci_low: float
    ci_high: float
    statistic: str
    value: float
    df_num: float
    df_den: float
    p: float
    n_subjects: int
    n_obs: int
    singular: bool = False
    p_uncorrected: float = np.nan


@dataclass(frozen=True)
class Hypothesis:
    """A question a learner asks of a repeated-measures study.

    ``groups(G)`` gives the weights of the G groups' curves ((r, G): r = 1 for
    one estimand, r > 1 for an omnibus test over several contrasts);
    ``over_time`` says how each group's curve is summarised: ``"slope"`` (the
    change per unit of time: the linear trend of the visit means on the
    observed visit times), ``"average"`` (the mean over the visits) or
    ``"final"`` (the value at the last visit: its mean for a visit-based
    method, the line at its observed mean time for a numeric-time model).
    """

    key: str
    label: str
    question: str
    estimand: str
    over_time: str
    groups: Callable[[int], np.ndarray]
    truth: Callable[[Any], float]
    needs_groups: bool = False

    def applies(self, n_groups: int) -> bool:
        return n_groups >= 2 if self.needs_groups else True


@dataclass(frozen=True)
class Method:
    """An analysis a learner can compare.

    ``fit(long)`` fits one data set (raising ``ValueError`` or ``DataError``
    with a learner-readable message when it cannot); ``answer(fitted, hyp,
    long, alpha)`` returns the :class:`Answer`.  Methods that read the same
    fit (the LMM's t and Wald z tests) share a ``fit_key``.  ``default_study``
    says whether a Monte Carlo study runs the method when no analyses are
    named (False for a method that costs much more per replicate than the
    others: it is then run when asked for by its key).
    """

    key: str
    label: str
    short: str
    colour: str
    test: str
    model: str
    fit: Callable[[Long], Any]
    answer: Callable[[Any, Hypothesis, Long, float], Answer]
    order: int = 100
    fit_key: str = ""
    phrase: str = ""  # how a sentence names it ("the RM-ANOVA"); default: the label
    possessive: str = ""  # "the ANOVA's"; default: the phrase + "'s"
    default_study: bool = True

    def __post_init__(self):
        if not self.phrase:
            object.__setattr__(self, "phrase", self.label)
        if not self.possessive:
            object.__setattr__(self, "possessive", self.phrase + "'s")

    @property
    def fits(self) -> str:
        """The key of the fit this method reads (its own unless shared)."""
        return self.fit_key or self.key


# --------------------------------------------------------------------------- helpers for methods
def t_interval(est: float, se: float, df: float, alpha: float) -> tuple[float, float, float]:
    """Two-sided p-value and (1 - alpha) interval of a t (df = inf: z) statistic ``est / se``."""
    if not (np.isfinite(est) and np.isfinite(se) and se > 0 and df > 0):
        return np.nan, np.nan, np.nan
    if np.isinf(df):
        p = 2.0 * float(ndtr(-abs(est) / se))
        q = float(-ndtri(alpha / 2.0))
    else:
        p = 2.0 * float(stdtr(df, -abs(est) / se))
        q = float(stdtrit(df, 1.0 - alpha / 2.0))
    return p, est - q * se, est + q * se


def trend_weights(times: np.ndarray) -> np.ndarray:
    """Least-squares slope weights: ``slope = w @ m`` for visit means ``m`` at ``times``."""
    t = np.asarray(times, float)
    c = t - t.mean()
    ss = c @ c
    if not ss > 0:
        raise ValueError("all visits have the same mean time: there is no change over time to estimate")
    return c / ss


def visit_weights(h: Hypothesis, times: np.ndarray) -> np.ndarray:
    """Weights of the K visit means in a hypothesis (trend, average or the final visit)."""
    if h.over_time == "slope":
        return trend_weights(times)
    if h.over_time == "final":
        w = np.zeros(len(times))
        w[-1] = 1.0
        return w
    return np.full(len(times), 1.0 / len(times))
