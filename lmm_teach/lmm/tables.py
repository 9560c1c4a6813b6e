"""The tidy tables of an LMM fit: numbers from the engine's arrays, frames on demand.

Each table has two halves.  ``*_numbers`` computes its numbers as numpy
arrays (run eagerly by ``fit_lmm``: every estimate, df and p-value exists when
the fit returns); ``*_frame`` turns them into the pandas object that
:class:`~lmm_teach.lmm.result.LMMResult` shows (run on first access, see
:mod:`lmm_teach.lmm.lazy`).  The frame builders are module-level functions of
plain arguments so that a result holding their recipes pickles.

pandas infers the type of every list of labels it is given (with pandas 3, a
string inference that costs more than the whole REML fit of a small study), so
column labels are prebuilt ``object`` indexes and numbers go in as one float
block where possible.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special

from lmm_teach.lmm.engine import EngineFit
from lmm_teach.lmm.satterthwaite import coefficient_df, contest_md

__all__ = ["fixed_numbers", "fixed_frame", "cov_frame", "test_numbers", "tests_frame", "variance_numbers",
           "variance_frame", "ranef_frame", "ranef_frames", "fitted_series"]

FIXED_COLUMNS = pd.Index(["estimate", "se", "df", "t", "p", "ci_low", "ci_high", "p_wald"], dtype=object)
TESTS_COLUMNS = pd.Index(["term", "F", "df_num", "df_den", "p"], dtype=object)
VARIANCE_COLUMNS = pd.Index(["group", "var1", "var2", "vcov", "sdcor"], dtype=object)


def _labels(values, name=None) -> pd.Index:
    return pd.Index(list(values), dtype=object, name=name)


# --------------------------------------------------------------------------- fixed effects
def fixed_numbers(fit: EngineFit) -> np.ndarray:
    """(p, 8): estimate, se, Satterthwaite df, t, p, 95 % CI (t-based), Wald z p-value."""
    beta, V = fit.solution.beta, fit.vcov
    df = coefficient_df(V, fit.info)
    se = np.sqrt(np.diag(V))
    t = beta / se
    half = special.stdtrit(df, 0.975) * se
    return np.column_stack([beta, se, df, t, 2.0 * special.stdtr(df, -np.abs(t)),
                            beta - half, beta + half, 2.0 * special.ndtr(-np.abs(t))])


def fixed_frame(table: np.ndarray, names: tuple) -> pd.DataFrame:
    """``fixed``: the rows of :func:`fixed_numbers` indexed by term."""
    return pd.DataFrame(table, index=_labels(names, "term"), columns=FIXED_COLUMNS)


def cov_frame(V: np.ndarray, names: tuple) -> pd.DataFrame:
    """``cov_fixed``: vcov(beta) with the term names on both axes."""
    terms = _labels(names)
    return pd.DataFrame(V, index=terms, columns=terms)


# --------------------------------------------------------------------------- F tests
def test_numbers(fit: EngineFit, design) -> tuple[tuple, np.ndarray]:
    """Type-III F tests with Satterthwaite denominator df: term names and (r, 4) F, df_num, df_den, p."""
    names = tuple(term.name for term in design.terms)
    rows = [contest_md(design.contrasts[name], fit.solution.beta, fit.vcov, fit.info) for name in names]
    return names, np.array(rows, dtype=float).reshape(-1, 4)


def tests_frame(names: tuple, values: np.ndarray) -> pd.DataFrame:
    """``tests``: ``term, F, df_num, df_den, p``, one row per fixed term."""
    return pd.DataFrame({"term": list(names), "F": values[:, 0], "df_num": values[:, 1],
                         "df_den": values[:, 2], "p": values[:, 3]}, columns=TESTS_COLUMNS)


# --------------------------------------------------------------------------- variance components
def variance_numbers(fit: EngineFit, *, subject: str, time: str, cluster: str | None) -> tuple[tuple, float]:
    """The rows of R's ``as.data.frame(VarCorr(m))`` and the ICC at time 0 (see LMMResult.icc)."""
    th, s2 = fit.theta, fit.solution.sigma2
    s = float(np.sqrt(s2))
    rows = []
    if fit.problem.q == 1:
        v0 = s2 * th[0] ** 2
        rows.append((subject, "(Intercept)", None, v0, s * th[0]))
    else:
        a, b, c = th[:3]
        v0, v1, c01 = s2 * a * a, s2 * (b * b + c * c), s2 * a * b
        corr = c01 / np.sqrt(v0 * v1) if v0 > 0 and v1 > 0 else np.nan
        rows += [(subject, "(Intercept)", None, v0, np.sqrt(v0)), (subject, time, None, v1, np.sqrt(v1)),
                 (subject, "(Intercept)", time, c01, corr)]
    vc = 0.0
    if cluster is not None:
        vc = s2 * th[-1] ** 2
        rows.append((cluster, "(Intercept)", None, vc, s * th[-1]))
    rows.append(("Residual", None, None, s2, s))
    return tuple(rows), float((v0 + vc) / (v0 + vc + s2))


def variance_frame(rows: tuple) -> pd.DataFrame:
    """``variance``: ``group, var1, var2, vcov, sdcor`` from :func:`variance_numbers`."""
    group, var1, var2, vcov, sdcor = zip(*rows, strict=True)
    index = pd.RangeIndex(len(rows))
    # var1/var2 hold None (R's NA) beside text: object columns, or pandas makes them NaN strings
    return pd.DataFrame({"group": list(group), "var1": pd.Series(var1, dtype=object, index=index),
                         "var2": pd.Series(var2, dtype=object, index=index), "vcov": np.array(vcov, dtype=float),
                         "sdcor": np.array(sdcor, dtype=float)}, index=index, columns=VARIANCE_COLUMNS)


# --------------------------------------------------------------------------- conditional modes, fitted values
def ranef_frame(values: np.ndarray, levels, name: str, terms) -> pd.DataFrame:
    """Conditional modes, one row per level of the grouping factor (``levels``: its sorted levels)."""
    index = levels.rename(name) if isinstance(levels, pd.Index) else pd.Index(levels, name=name)
    return pd.DataFrame(values.reshape(len(index), -1), index=index, columns=_labels(terms))


def ranef_frames(groups: tuple) -> dict:
    """``ranef``: group name -> :func:`ranef_frame`, from ``((name, values, levels, terms), ...)``."""
    return {name: ranef_frame(values, levels, name, terms) for name, values, levels, terms in groups}


def fitted_series(values: np.ndarray, index: pd.Index) -> pd.Series:
    """``fitted``: subject-specific fitted values with the original row labels."""
    return pd.Series(values, index=index, name="fitted")
