"""Likelihood-ratio tests of the random-effect terms, as ``lmerTest::ranova``.

Each random term is reduced (``(time | subject)`` to ``(1 | subject)``: the
slope variance and the covariance go, 2 df) or removed (``(1 | subject)``,
``(1 | clinic)``: 1 df), the reduced model is refitted with the same method
(REML stays REML) and ``LRT = -2 (loglik_reduced - loglik_full)`` is referred
to a chi-square.  When no random term remains the reduced model is a linear
model; its REML log-likelihood (R's ``logLik(lm, REML = TRUE)``) is the
profiled deviance at theta = 0, which is what we evaluate.

In this parameterisation every reduction sets some theta to 0, so a reduced
model is the same deviance optimised over fewer coordinates.

The chi-square reference is conservative for a variance on its boundary
(Self & Liang 1987; the p-value of a 1-df test is about twice too large), as
in lmerTest; we report it unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special

__all__ = ["RandomTerm", "random_terms", "lrt_numbers", "lrt_frame", "lrt_table"]


@dataclass(frozen=True)
class RandomTerm:
    """A reduction of the random part: its ranova label, the theta kept free, the LRT df."""

    label: str
    free: tuple[bool, ...]
    df: int


def random_terms(q: int, has_cluster: bool, *, subject: str, time: str, cluster: str | None) -> list[RandomTerm]:
    """The rows of ranova for ``(1 | subject)`` or ``(time | subject)`` [+ ``(1 | cluster)``]."""
    c = [True] if has_cluster else []
    if q == 1:
        rows = [RandomTerm(f"(1 | {subject})", tuple([False] + c), 1)]
    else:
        rows = [RandomTerm(f"{time} in ({time} | {subject})", tuple([True, False, False] + c), 2)]
    if has_cluster:
        k = (1 if q == 1 else 3)
        rows.append(RandomTerm(f"(1 | {cluster})", tuple([True] * k + [False]), 1))
    return rows


_COLUMNS = pd.Index(["term", "loglik", "LRT", "df", "p"], dtype=object)


def lrt_numbers(full_dev: float, reduced: list[tuple[RandomTerm, float]]) -> tuple:
    """``(terms, loglik, LRT, df, p)`` from the full and the reduced deviances (-2 loglik)."""
    dev = np.array([d for _, d in reduced], dtype=float)
    df = np.array([t.df for t, _ in reduced], dtype=np.int64)
    # The reduced model is nested in the full one: a negative LRT can only be
    # optimiser noise (at most ~1e-9 here); report it as 0.
    lrt = np.maximum(dev - full_dev, 0.0)
    return tuple(t.label for t, _ in reduced), -0.5 * dev, lrt, df, special.chdtrc(df, lrt)


def lrt_frame(terms: tuple, loglik: np.ndarray, lrt: np.ndarray, df: np.ndarray, p: np.ndarray) -> pd.DataFrame:
    """The ``random_tests`` table: ``term, loglik, LRT, df, p`` (from :func:`lrt_numbers`)."""
    return pd.DataFrame({"term": list(terms), "loglik": loglik, "LRT": lrt, "df": df, "p": p}, columns=_COLUMNS)


def lrt_table(full_dev: float, reduced: list[tuple[RandomTerm, float]]) -> pd.DataFrame:
    """``term, loglik, LRT, df, p`` from the full and the reduced deviances (-2 loglik)."""
    return lrt_frame(*lrt_numbers(full_dev, reduced))
