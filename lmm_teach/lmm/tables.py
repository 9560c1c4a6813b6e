"""The tidy tables of an LMM fit, built from the engine's arrays.

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

__all__ = ["fixed_table", "tests_table", "variance_table", "ranef_frame"]

FIXED_COLUMNS = pd.Index(["estimate", "se", "df", "t", "p", "ci_low", "ci_high", "p_wald"], dtype=object)
TESTS_COLUMNS = pd.Index(["term", "F", "df_num", "df_den", "p"], dtype=object)
VARIANCE_COLUMNS = pd.Index(["group", "var1", "var2", "vcov", "sdcor"], dtype=object)


def _labels(values, name=None) -> pd.Index:
    return pd.Index(values, dtype=object, name=name)


def fixed_table(fit: EngineFit, names: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``fixed`` (estimate, se, Satterthwaite df, t, p, 95 % CI, Wald p) and ``cov_fixed``."""
    beta, V = fit.solution.beta, fit.vcov
    df = coefficient_df(V, fit.info)
    se = np.sqrt(np.diag(V))
    t = beta / se
    half = special.stdtrit(df, 0.975) * se
    table = np.column_stack([beta, se, df, t, 2.0 * special.stdtr(df, -np.abs(t)),
                             beta - half, beta + half, 2.0 * special.ndtr(-np.abs(t))])
    terms = _labels(names)
    return (pd.DataFrame(table, index=terms.rename("term"), columns=FIXED_COLUMNS),
            pd.DataFrame(V, index=terms, columns=terms))


def tests_table(fit: EngineFit, design) -> pd.DataFrame:
    """Type-III F tests with Satterthwaite denominator df, one row per fixed term."""
    names, rows = [], []
    for term in design.terms:
        names.append(term.name)
        rows.append(contest_md(design.contrasts[term.name], fit.solution.beta, fit.vcov, fit.info))
    values = np.array(rows, dtype=float).reshape(-1, 4)
    return pd.DataFrame({"term": names, "F": values[:, 0], "df_num": values[:, 1],
                         "df_den": values[:, 2], "p": values[:, 3]}, columns=TESTS_COLUMNS)


def variance_table(fit: EngineFit, *, subject: str, time: str, cluster: str | None) -> tuple[pd.DataFrame, float]:
    """R's ``as.data.frame(VarCorr(m))`` and the ICC at time 0 (see LMMResult.icc)."""
    th, s2 = fit.theta, fit.solution.sigma2
    s = np.sqrt(s2)
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
    group, var1, var2, vcov, sdcor = zip(*rows, strict=True)
    # var1/var2 hold None (R's NA) beside text: object columns, or pandas makes them NaN strings
    table = pd.DataFrame({"group": list(group), "var1": pd.Series(var1, dtype=object),
                          "var2": pd.Series(var2, dtype=object), "vcov": np.array(vcov, dtype=float),
                          "sdcor": np.array(sdcor, dtype=float)}, columns=VARIANCE_COLUMNS)
    return table, float((v0 + vc) / (v0 + vc + s2))


def ranef_frame(values: np.ndarray, levels: pd.Index, name: str, terms: list[str]) -> pd.DataFrame:
    """Conditional modes, one row per level of the grouping factor."""
    return pd.DataFrame(values.reshape(len(levels), -1), index=levels.rename(name), columns=_labels(terms))
