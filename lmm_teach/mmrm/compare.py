"""``compare_covariances``: the covariance structures of the MMRM side by side, with the LMMs.

Every model has the same fixed part (``visit [* between]``, visit a factor), so
their REML log-likelihoods are comparable: AIC and BIC choose among them, and
a likelihood-ratio test compares two nested structures.  The random-intercept
LMM is compound symmetry with a non-negative correlation (same log-likelihood
as ``cs`` when the correlation is positive); the random-slope
LMM gives the covariance ``Z G Z' + s2 I`` of a line per subject (4
parameters): both are covariance models of the same kind and sit in the same
table.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from lmm_teach.jsonable import records
from lmm_teach.mmrm.fit import fit_mmrm
from lmm_teach.mmrm.structures import STRUCTURES
from lmm_teach.validate import DataError

__all__ = ["CovarianceComparison", "compare_covariances", "NESTED"]

# (smaller, larger): the smaller is the larger with some parameters fixed
NESTED = (
    ("cs", "csh"), ("cs", "toep"), ("csh", "us"), ("toep", "toeph"), ("toeph", "us"),
    ("ar1", "ar1h"), ("ar1", "ad"), ("ar1", "toep"), ("ar1h", "adh"), ("ar1h", "toeph"), ("ad", "adh"),
    ("adh", "us"), ("lmm: random intercept", "lmm: random slope"),
    ("lmm: random slope", "us"),
)


@dataclass(frozen=True, eq=False)
class CovarianceComparison:
    """``table``: one row per model (parameters, logLik, AIC, BIC, which is best); ``lrt``: nested pairs."""

    table: pd.DataFrame
    lrt: pd.DataFrame
    fits: dict = field(repr=False, default_factory=dict)
    method: str = "REML"

    @property
    def best_aic(self) -> str:
        return str(self.table["aic"].idxmin())

    @property
    def best_bic(self) -> str:
        return str(self.table["bic"].idxmin())

    def summary(self) -> str:
        t = self.table.copy()
        lines = [f"Covariance structures compared ({self.method}; same fixed effects, so the likelihoods compare)",
                 t.to_string(float_format=lambda v: f"{v:.3f}"), "",
                 f"Smallest AIC: {self.best_aic}   smallest BIC: {self.best_bic}"]
        if len(self.lrt):
            lines += ["", "Likelihood-ratio tests of nested structures (the smaller one holds?):",
                      self.lrt.to_string(index=False, float_format=lambda v: f"{v:.4g}"),
                      "(a variance on its boundary makes these p-values conservative)"]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        table = self.table.reset_index().rename(columns={"index": "model"})
        return {"method": self.method, "models": records(table), "lrt": records(self.lrt),
                "best_aic": self.best_aic, "best_bic": self.best_bic}


def compare_covariances(data: pd.DataFrame, *, y: str, subject: str, visit: str, between: str | None = None,
                        time: str | None = None, structures=None, lmm: bool = True,
                        method: str = "REML") -> CovarianceComparison:
    """Fit every structure (default: all of R mmrm's that the data allow) and the two LMMs; compare them.

    A structure the data cannot support (too many parameters, ``sp_exp`` without
    ``time``) gets a row with its reason in ``note`` instead of numbers; the
    LMMs need the numeric ``time`` column.
    """
    names = list(STRUCTURES) if structures is None else [str(s).lower() for s in structures]
    rows, fits = {}, {}
    for name in names:
        try:
            fit = fit_mmrm(data, y=y, subject=subject, visit=visit, between=between, time=time, covariance=name,
                           method=method, exact=True)
        except DataError as exc:
            if name not in STRUCTURES:
                raise
            rows[name] = {"kind": "mmrm", "n_params": STRUCTURES[name].n_params(_n_visits(data, visit, y)),
                          "loglik": np.nan, "aic": np.nan, "bic": np.nan, "converged": False, "note": str(exc)}
            continue
        fits[name] = fit
        rows[name] = {"kind": "mmrm", "n_params": fit.n_params, "loglik": fit.loglik, "aic": fit.aic,
                      "bic": fit.bic, "converged": fit.converged, "note": "; ".join(fit.warnings)}
    if lmm and time is not None:
        from lmm_teach.lmm import fit_lmm

        n_subj = data.loc[data[y].notna(), subject].nunique()
        for label, slope, k in (("lmm: random intercept", False, 2), ("lmm: random slope", True, 4)):
            try:
                m = fit_lmm(data, y=y, subject=subject, time=time, visit=visit, between=between,
                            random_slope=slope, time_as="categorical", method=method)
            except DataError as exc:
                rows[label] = {"kind": "lmm", "n_params": k, "loglik": np.nan, "aic": np.nan, "bic": np.nan,
                               "converged": False, "note": str(exc)}
                continue
            fits[label] = m
            ll = float(m.loglik)
            rows[label] = {"kind": "lmm", "n_params": k, "loglik": ll, "aic": -2 * ll + 2 * k,
                           "bic": -2 * ll + k * np.log(n_subj), "converged": bool(m.converged),
                           "note": "; ".join(m.warnings)}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table["best"] = ""
    ok = table["aic"].notna()
    if ok.any():
        table.loc[table.loc[ok, "aic"].idxmin(), "best"] += "AIC "
        table.loc[table.loc[ok, "bic"].idxmin(), "best"] += "BIC"
    table["best"] = table["best"].str.strip()
    tests = []
    for small, big in NESTED:
        if small in fits and big in fits:
            a, b = rows[small], rows[big]
            lr = max(2.0 * (b["loglik"] - a["loglik"]), 0.0)
            d = int(b["n_params"] - a["n_params"])
            tests.append({"smaller": small, "larger": big, "LRT": lr, "df": d,
                          "p": float(stats.chi2.sf(lr, d)) if d > 0 else np.nan})
    lrt = pd.DataFrame(tests, columns=["smaller", "larger", "LRT", "df", "p"])
    return CovarianceComparison(table=table, lrt=lrt, fits=fits, method=str(method).upper())


def _n_visits(data, visit, y) -> int:
    return int(data.loc[data[y].notna(), visit].nunique())


