"""MMRMResult: what ``fit_mmrm`` returns, with its summary and JSON."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from lmm_teach.jsonable import plain, records
from lmm_teach.lmm.lazy import LazyField
from lmm_teach.lmm.result import _stars

__all__ = ["MMRMResult"]

_DF_WORDS = {"satterthwaite": "Satterthwaite", "kenward-roger": "Kenward-Roger (adjusted covariance)",
             "residual": "residual (n - p)", "between-within": "between-within"}


@dataclass(frozen=True, eq=False)
class MMRMResult:
    """A fitted mixed model for repeated measures (see :func:`lmm_teach.fit_mmrm`).

    ``fixed``: estimate, se, df, t, p, lower, upper per coefficient (R's names);
    ``tests``: type-III F tests; ``covariance``/``correlation``: visit x visit
    DataFrames; ``lsmeans``: per visit (and between level) as emmeans gives them;
    ``lsmeans_diff``: between-level differences per visit (later minus earlier
    level, as emmeans' ``revpairwise``).
    """

    # The tables are LazyFields: fit_mmrm computes their numbers and hands over recipes
    # (lmm.lazy.Deferred) that build the DataFrames on first access.
    structure: str
    structure_label: str
    df_method: str
    method: str
    fixed: pd.DataFrame = LazyField()
    tests: pd.DataFrame = LazyField()
    covariance: pd.DataFrame = LazyField()
    correlation: pd.DataFrame = LazyField()
    loglik: float
    aic: float
    bic: float
    n_params: int
    n_obs: int
    n_subjects: int
    converged: bool
    optimizer: str
    warnings: tuple
    lsmeans: pd.DataFrame = LazyField()
    lsmeans_diff: pd.DataFrame = LazyField()
    theta: tuple
    vcov: pd.DataFrame = LazyField()
    columns: dict = field(default_factory=dict)
    conf_level: float = 0.95
    cov_matrix: np.ndarray | None = field(default=None, repr=False)

    @property
    def formula(self) -> str:
        c = self.columns
        rhs = c["visit"] if not c.get("between") else f"{c['visit']} * {c['between']}"
        cov_var = c["time"] if self.structure == "sp_exp" else c["visit"]
        return f"{c['y']} ~ {rhs} + {self.structure}({cov_var} | {c['subject']})"

    def summary(self) -> str:
        """A text summary laid out like R's ``summary(mmrm(...))`` plus LS-means."""
        lines = [f"MMRM fit by {self.method} with {self.structure_label} ({self.structure}) covariance; "
                 f"df: {_DF_WORDS[self.df_method]}",
                 f"Formula: {self.formula}",
                 f"Data: {self.n_obs} observations of {self.n_subjects} subjects",
                 "",
                 f"Model: {self.n_params} covariance parameters   logLik {self.loglik:.3f}   AIC {self.aic:.3f}   "
                 f"BIC {self.bic:.3f}   {'converged' if self.converged else 'NOT converged'} ({self.optimizer})",
                 "", "Coefficients:"]
        f = self.fixed
        tab = pd.DataFrame({"Estimate": f["estimate"].map(lambda v: f"{v:.4g}"),
                            "Std. Error": f["se"].map(lambda v: f"{v:.4g}"),
                            "df": f["df"].map(lambda v: f"{v:.2f}"),
                            "t value": f["t"].map(lambda v: f"{v:.3f}"),
                            "Pr(>|t|)": f["p"].map(lambda v: f"{v:.3g}"),
                            "": f["p"].map(_stars)}, index=f.index)
        lines += tab.to_string().splitlines()
        if len(self.tests):
            lines += ["", "Type III F tests:"]
            lines += self.tests.to_string(float_format=lambda v: f"{v:.4g}").splitlines()
        lines += ["", "Covariance (visit x visit):"]
        lines += self.covariance.to_string(float_format=lambda v: f"{v:.4g}").splitlines()
        lines += ["", "Correlation:"]
        lines += self.correlation.to_string(float_format=lambda v: f"{v:.3f}").splitlines()
        lines += ["", f"LS-means ({int(self.conf_level * 100)} % CI):"]
        lines += self.lsmeans.to_string(index=False, float_format=lambda v: f"{v:.4g}").splitlines()
        if len(self.lsmeans_diff):
            lines += ["", "Differences between groups at each visit:"]
            lines += self.lsmeans_diff.to_string(index=False, float_format=lambda v: f"{v:.4g}").splitlines()
        if self.warnings:
            lines += [""] + [f"Warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict:
        """Plain-Python dict (JSON-ready): one entry of the ``"mmrm"`` section of ``lmm-teach fit``."""
        fixed = self.fixed.reset_index()
        fixed = fixed.rename(columns={fixed.columns[0]: "term"})
        tests = self.tests.reset_index()
        tests = tests.rename(columns={tests.columns[0]: "term"})

        def with_labels(frame):
            out = []
            for r in records(frame):
                for key in ("visit", "group"):
                    if key in r:
                        r[key] = _label(r[key])
                out.append(r)
            return out

        return {
            "structure": self.structure,
            "formula": self.formula,
            "method": self.method,
            "df_method": self.df_method,
            "n_obs": int(self.n_obs),
            "n_subjects": int(self.n_subjects),
            "n_params": int(self.n_params),
            "loglik": plain(self.loglik),
            "aic": plain(self.aic),
            "bic": plain(self.bic),
            "converged": bool(self.converged),
            "optimizer": self.optimizer,
            "fixed": records(fixed),
            "tests": records(tests),
            "lsmeans": with_labels(self.lsmeans),
            "lsmeans_diff": with_labels(self.lsmeans_diff),
            "visits": [_label(v) for v in self.covariance.index],
            "covariance": [[plain(v) for v in row] for row in self.covariance.to_numpy()],
            "correlation": [[plain(v) for v in row] for row in self.correlation.to_numpy()],
            "cov_matrix": [[plain(v) for v in row] for row in np.asarray(self.cov_matrix)],
            "theta": [plain(v) for v in self.theta],
            "warnings": list(self.warnings),
        }


def _label(v):
    v = plain(v)
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v) if v is not None else None
