"""The numbers of an MMRM fit and the tables that show them, built on first access.

:func:`contrast_numbers` computes estimate, se, df, t, p and the confidence
limits of many contrasts at once (one stack: the coefficients, the LS-means,
their differences); :func:`test_numbers` the type-III F tests.  The
``*_frame`` functions turn those arrays into the DataFrames of
:class:`~lmm_teach.mmrm.result.MMRMResult`; ``fit_mmrm`` hands them over as
:class:`~lmm_teach.lmm.lazy.Deferred` recipes, because building a dozen small
DataFrames costs more than the whole fit of a small trial, and a slider being
dragged reads none of them (see :mod:`lmm_teach.lmm.lazy`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy import special, stats

from lmm_teach.lmm.terms import level_label
from lmm_teach.mmrm.inference import Inference

__all__ = ["NUMBER_COLUMNS", "contrast_numbers", "test_numbers", "fixed_frame", "tests_frame", "lsmeans_frame",
           "diffs_frame", "matrix_frame", "correlation_frame"]

NUMBER_COLUMNS = ("estimate", "se", "df", "t", "p", "lower", "upper")


def contrast_numbers(inf: Inference, C: np.ndarray, *, conf_level: float,
                     plain_df: Callable | None = None) -> dict[str, np.ndarray]:
    """Estimate, se, df, t, p and the ``conf_level`` limits of each row ``c`` of ``C`` (``c' beta``).

    ``plain_df`` (residual or between-within df) replaces the model-based df of a row.
    """
    est, se, df, t, p = inf.test_rows(C)
    if plain_df is not None:
        df = np.array([plain_df(c) for c in C], dtype=float)
        p = np.where(np.isfinite(t), 2.0 * special.stdtr(df, -np.abs(t)), np.nan)
    q = 0.5 + conf_level / 2
    crit = np.where(np.isfinite(df), special.stdtrit(df, q), special.ndtri(q))
    return {"estimate": est, "se": se, "df": df, "t": t, "p": p, "lower": est - crit * se, "upper": est + crit * se}


def tukey(numbers: dict[str, np.ndarray], n_groups: int, conf_level: float) -> dict[str, np.ndarray]:
    """Pairwise differences among ``n_groups`` > 2 levels: Tukey-adjusted p and limits (as emmeans)."""
    t, df, est, se = numbers["t"], numbers["df"], numbers["estimate"], numbers["se"]
    p = stats.studentized_range.sf(np.abs(t) * np.sqrt(2), n_groups, df)
    crit = stats.studentized_range.ppf(conf_level, n_groups, df) / np.sqrt(2)
    return {**numbers, "p": p, "lower": est - crit * se, "upper": est + crit * se}


def test_numbers(inf: Inference, contrasts: list[np.ndarray], *,
                 plain_df: Callable | None = None) -> tuple[np.ndarray, ...]:
    """``(F, df_num, df_den, p)`` arrays of the tests ``L beta = 0``, one per ``L`` in ``contrasts``."""
    out = []
    for L in contrasts:
        F, dn, dd, p = inf.test_md(L)
        if plain_df is not None:
            dd = min(plain_df(r) for r in L)
            p = float(special.fdtrc(dn, dd, F))
        out.append((F, dn, dd, p))
    return tuple(np.array(col, dtype=float) for col in zip(*out, strict=True)) if out else (np.empty(0),) * 4


def fixed_frame(names: tuple, numbers: dict) -> pd.DataFrame:
    """One row per coefficient, indexed by its R name."""
    return pd.DataFrame({k: numbers[k] for k in NUMBER_COLUMNS}, index=pd.Index(names, name="term"))


def tests_frame(terms: tuple, F, df_num, df_den, p) -> pd.DataFrame:
    """Type-III F tests, indexed by term."""
    if not terms:
        return pd.DataFrame(columns=["F", "df_num", "df_den", "p"])
    return pd.DataFrame({"F": F, "df_num": df_num, "df_den": df_den, "p": p}, index=pd.Index(terms, name="term"))


def lsmeans_frame(visits: list, groups: list | None, numbers: dict) -> pd.DataFrame:
    """LS-means per visit (and between level), as emmeans lists them."""
    cols = {"visit": visits} if groups is None else {"visit": visits, "group": groups}
    return pd.DataFrame({**cols, **{k: numbers[k] for k in NUMBER_COLUMNS}})


def diffs_frame(visits: list, labels: list, numbers: dict | None) -> pd.DataFrame:
    """Differences between levels at each visit (later minus earlier level); empty without a between factor."""
    if numbers is None:
        return pd.DataFrame(columns=["visit", "contrast", *NUMBER_COLUMNS])
    return pd.DataFrame({"visit": visits, "contrast": labels, **{k: numbers[k] for k in NUMBER_COLUMNS}})


def matrix_frame(matrix: np.ndarray, labels: list, name: str | None) -> pd.DataFrame:
    """A square matrix with the same labels on both sides (``name`` names both axes' index)."""
    index = pd.Index(labels, name=name)
    return pd.DataFrame(matrix, index=index, columns=index)


def correlation_frame(sigma: np.ndarray, labels: list, name: str) -> pd.DataFrame:
    """The correlation matrix of a covariance matrix."""
    sd = np.sqrt(np.diag(sigma))
    return matrix_frame(sigma / np.outer(sd, sd), labels, name)


def visit_labels(visits) -> list[str]:
    """Visit levels as the tables label them (2.0 -> '2')."""
    return [level_label(v) for v in visits]
