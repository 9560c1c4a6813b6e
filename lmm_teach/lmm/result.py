"""LMMResult: what a mixed-model fit returns, with its summary, JSON and statsmodels twins."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from lmm_teach.jsonable import plain, records
from lmm_teach.lmm.engine import contrast_1d, contrast_md
from lmm_teach.lmm.lazy import LazyField
from lmm_teach.validate import Columns

__all__ = ["LMMResult"]


def _stars(p: float) -> str:
    if not np.isfinite(p):
        return ""
    return "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else "." if p < 0.1 else ""


def _q(name: str) -> str:
    """A column name as patsy reads it in a formula."""
    return name if str(name).isidentifier() else f"Q({str(name)!r})"


@dataclass(frozen=True, eq=False)
class LMMResult:
    """A fitted linear mixed model (see :func:`lmm_teach.fit_lmm`).

    Attributes
    ----------
    formula : str
        The model in lme4 syntax (also ``lme4_formula``).
    method : str
        "REML" or "ML".
    n_obs, n_subjects : int
        Rows used and subjects.
    columns : lmm_teach.validate.Columns
        The column roles.
    fixed : DataFrame
        Indexed by term: ``estimate, se, df, t, p, ci_low, ci_high, p_wald``
        (Satterthwaite df, or Kenward-Roger se and df: see ``ddf``; t-based
        95 % CI; ``p_wald`` is the Wald z-test).
    cov_fixed : DataFrame
        Covariance matrix of the fixed effects.
    tests : DataFrame
        ``term, F, df_num, df_den, p``: type-III F tests, Satterthwaite df
        (or Kenward-Roger's scaled F and df: see ``ddf``).
    variance : DataFrame
        ``group, var1, var2, vcov, sdcor`` as R's ``as.data.frame(VarCorr(m))``:
        a row with ``var2`` is a covariance, its ``sdcor`` the correlation.
    loglik : float
        REML or ML log-likelihood (``deviance = -2 loglik``).
    icc : float
        Intraclass correlation: the share of the variance of one measurement
        at time 0 that lies between subjects (subject plus cluster variance
        over the total); for a random slope, at time 0 only.
    singular : bool
        lme4's ``isSingular``: a variance estimated at 0 or a correlation at +-1.
    converged : bool
    ranef : dict
        Group name -> DataFrame of conditional modes (BLUPs) indexed by level,
        columns ``(Intercept)`` [and the time column].
    fitted : Series
        Subject-specific fitted values of the rows used, with their original index.
    random_tests : DataFrame
        ``term, loglik, LRT, df, p`` as ``lmerTest::ranova``.
    ddf : str
        The method of the fixed-effect tests: ``"Satterthwaite"`` or
        ``"Kenward-Roger"`` (``fit_lmm(..., df=...)``).  ``cov_fixed`` stays
        the plug-in ``vcov(beta)`` either way, as lme4's ``vcov``.
    warnings : tuple of str
        What a learner should know about this fit.
    terms : tuple of lmm_teach.lmm.terms.Term
        The fixed-effects terms: each term's ``name`` (``time``, ``arm``,
        ``time:arm``), the columns it involves (``variables``: ``"t"`` numeric
        time, ``"v"`` visit, ``"b"`` between factor) and the positions of its
        coefficients in ``fixed`` (``columns``).  Code that needs "the
        coefficients of arm" reads them here, never from name prefixes.
    beta : numpy.ndarray
        The fixed effects in the order of ``fixed`` (no DataFrame built).

    Methods ``contrast(l)`` and ``test(L)`` give Satterthwaite inference for
    any linear combination of the fixed effects (lmerTest's ``contest1D`` and
    ``contestMD``), the computation the method registry and the Monte Carlo
    worker share.

    Notes
    -----
    Every number is computed by :func:`~lmm_teach.fit_lmm`; the DataFrames
    (``fixed``, ``cov_fixed``, ``tests``, ``variance``, ``ranef``, ``fitted``,
    ``random_tests``, ``data``) are built from them on first access and then
    kept (:mod:`lmm_teach.lmm.lazy`), as statsmodels' results do.  The result
    is immutable and pickles either way.
    """

    # The tables are LazyFields: fit_lmm computes their numbers and hands over
    # recipes (lmm.lazy.Deferred) that build the DataFrames on first access.
    formula: str
    method: str
    n_obs: int
    n_subjects: int
    columns: Columns
    fixed: pd.DataFrame = LazyField()
    cov_fixed: pd.DataFrame = LazyField()
    tests: pd.DataFrame = LazyField()
    variance: pd.DataFrame = LazyField()
    loglik: float
    icc: float
    singular: bool
    converged: bool
    ranef: dict = LazyField()
    fitted: pd.Series = LazyField()
    random_tests: pd.DataFrame = LazyField()
    warnings: tuple = ()
    time_as: str = "numeric"
    random_slope: bool = False
    n_groups: dict = field(default_factory=dict)
    theta: tuple = ()
    sigma: float = float("nan")
    data: pd.DataFrame | None = LazyField(default=None)
    ddf: str = "Satterthwaite"
    terms: tuple = ()
    inference: tuple | None = field(default=None, repr=False, compare=False)  # (beta, vcov, VarparInfo)

    @property
    def beta(self) -> np.ndarray:
        """The fixed effects as an array, in the order of ``fixed``."""
        if self.inference is None:
            return self.fixed["estimate"].to_numpy(float)
        return self.inference[0]

    def contrast(self, l) -> tuple[float, float, float, float]:
        """``(estimate, se, df, p)`` of ``l @ beta``: t test with Satterthwaite df (lmerTest ``contest1D``)."""
        beta, vcov, info = self._inference()
        return contrast_1d(l, beta, vcov, info)

    def test(self, L) -> tuple[float, float, float, float]:
        """``(F, df_num, df_den, p)`` of ``L @ beta = 0``, Satterthwaite df (lmerTest ``contestMD``)."""
        beta, vcov, info = self._inference()
        return contrast_md(L, beta, vcov, info)

    def _inference(self):
        if self.inference is None:
            raise ValueError("this LMMResult carries no Satterthwaite information (built by hand?)")
        return self.inference

    # ------------------------------------------------------------------ basics
    @property
    def lme4_formula(self) -> str:
        """The formula in lme4 syntax (same as ``formula``)."""
        return self.formula

    @property
    def deviance(self) -> float:
        """-2 log-likelihood (the "REML criterion" for REML)."""
        return -2.0 * self.loglik

    def __repr__(self) -> str:
        return (f"LMMResult({self.formula!r}, method={self.method!r}, n_obs={self.n_obs}, "
                f"n_subjects={self.n_subjects}, loglik={self.loglik:.4f})")

    # ------------------------------------------------------------------ text
    def summary(self) -> str:
        """A text summary laid out like lme4's ``summary()`` with lmerTest's Satterthwaite (or Kenward-Roger) df."""
        how = "REML" if self.method == "REML" else "maximum likelihood"
        lines = [f"Linear mixed model fit by {how}. t-tests use {self.ddf}'s method",
                 f"Formula: {self.formula}", ""]
        if self.method == "REML":
            lines.append(f"REML criterion at convergence: {self.deviance:.4f}")
        else:
            lines.append(f"log-likelihood: {self.loglik:.4f}   deviance: {self.deviance:.4f}")
        lines += ["", "Random effects:"]
        rows = [("Groups", "Name", "Variance", "Std.Dev.", "Corr")]
        v = self.variance
        for _, r in v.iterrows():
            if r["var2"] is not None and not pd.isna(r["var2"]):
                continue
            corr = ""
            if r["group"] != "Residual":
                c = v[(v["group"] == r["group"]) & (v["var2"] == r["var1"])]
                if len(c):
                    val = c["sdcor"].iloc[0]
                    corr = "NaN" if pd.isna(val) else f"{val:.2f}"
            rows.append((str(r["group"]), "" if r["var1"] is None else str(r["var1"]),
                         f"{r['vcov']:.4g}", f"{r['sdcor']:.4g}", corr))
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        for row in rows:
            lines.append(" " + " ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        groups = ", ".join(f"{g}, {k}" for g, k in self.n_groups.items())
        lines.append(f"Number of obs: {self.n_obs}, groups:  {groups}")
        lines += ["", "Fixed effects:"]
        f = self.fixed
        tab = pd.DataFrame({
            "Estimate": f["estimate"].map(lambda x: f"{x:.5g}"),
            "Std. Error": f["se"].map(lambda x: f"{x:.4g}"),
            "df": f["df"].map(lambda x: f"{x:.2f}"),
            "t value": f["t"].map(lambda x: f"{x:.3f}"),
            "Pr(>|t|)": f["p"].map(lambda x: f"{x:.3g}"),
            "": f["p"].map(_stars),
        }, index=list(f.index))
        lines += tab.to_string().splitlines()
        lines.append("---")
        lines.append("Signif. codes:  0 '***' 0.001 '**' 0.01 '*' 0.05 '.' 0.1 ' ' 1")
        if len(self.tests):
            lines += ["", f"Type III tests of the fixed terms (F, {self.ddf} df):"]
            t = self.tests
            tt = pd.DataFrame({"F": t["F"].map(lambda x: f"{x:.4g}"),
                               "df_num": t["df_num"].map(lambda x: f"{x:.0f}"),
                               "df_den": t["df_den"].map(lambda x: f"{x:.2f}"),
                               "p": t["p"].map(lambda x: f"{x:.3g}")}).set_axis(list(t["term"]))
            lines += tt.to_string().splitlines()
        if len(self.random_tests):
            lines += ["", "Random-effect terms (likelihood-ratio tests, as lmerTest::ranova):"]
            rt = self.random_tests
            tr = pd.DataFrame({"logLik": rt["loglik"].map(lambda x: f"{x:.3f}"),
                               "LRT": rt["LRT"].map(lambda x: f"{x:.3f}"),
                               "df": rt["df"].map(lambda x: f"{x:.0f}"),
                               "p": rt["p"].map(lambda x: f"{x:.3g}")}).set_axis(list(rt["term"]))
            lines += tr.to_string().splitlines()
        lines += ["", f"ICC (share of variance between subjects, at time 0): {self.icc:.3f}"]
        if self.singular:
            lines.append("boundary (singular) fit: see the warnings")
        if self.warnings:
            lines += ["", "Warnings:"] + [f" - {w}" for w in self.warnings]
        return "\n".join(lines)

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict:
        """Plain-Python dict (JSON-ready: floats, None for NaN): the "lmm" key of ``lmm-teach fit``."""
        fixed = self.fixed.reset_index().rename(columns={"index": "term"})
        fixed = fixed.rename(columns={fixed.columns[0]: "term"})
        ranef = {}
        for group, frame in self.ranef.items():
            d = {"level": [plain(v) for v in frame.index]}
            for col in frame.columns:
                d[str(col)] = [plain(v) for v in frame[col].to_numpy()]
            ranef[str(group)] = d
        variance = [{"group": r["group"], "var1": r["var1"], "var2": r["var2"],
                     "vcov": plain(r["vcov"]), "sdcor": plain(r["sdcor"])}
                    for r in self.variance.to_dict("records")]
        return {
            "formula": self.formula,
            "method": self.method,
            "ddf": self.ddf,
            "time_as": self.time_as,
            "n_obs": int(self.n_obs),
            "n_subjects": int(self.n_subjects),
            "n_groups": {str(k): int(v) for k, v in self.n_groups.items()},
            "fixed": records(fixed),
            "tests": records(self.tests),
            "variance": variance,
            "loglik": plain(self.loglik),
            "deviance": plain(self.deviance),
            "icc": plain(self.icc),
            "singular": bool(self.singular),
            "converged": bool(self.converged),
            "random_tests": records(self.random_tests),
            "ranef": ranef,
            "warnings": list(self.warnings),
        }

    # ------------------------------------------------------------------ statsmodels
    def _statsmodels_spec(self) -> dict:
        c = self.columns
        if self.time_as == "categorical":
            main = f"C({_q(c.visit if c.visit is not None else c.time)})"
        else:
            main = _q(c.time)
        rhs = main if c.between is None else f"{main} * C({_q(c.between)})"
        spec = {"formula": f"{_q(c.y)} ~ {rhs}", "groups": c.subject, "re_formula": None, "vc_formula": None}
        if self.random_slope:
            spec["re_formula"] = f"~{_q(c.time)}"
        if c.cluster is not None:
            if self.random_slope:
                raise NotImplementedError(
                    "statsmodels' MixedLM cannot express correlated random intercepts and slopes of subjects "
                    "nested in clusters; fit it without the cluster or without the random slope to compare")
            spec.update(groups=c.cluster, re_formula="1", vc_formula={str(c.subject): f"0 + C({_q(c.subject)})"})
        return spec

    def statsmodels_code(self, data_name: str = "data", csv: str | None = None) -> str:
        """The pandas + statsmodels code that fits this model, as a string to show learners.

        Parameters
        ----------
        data_name : str
            What the learner's DataFrame is called in the code.
        csv : str, optional
            A CSV path to read it from (otherwise the code assumes the
            DataFrame exists).

        Notes
        -----
        statsmodels maximises the same REML/ML likelihood with another
        algorithm: estimates and variances agree to optimiser precision; its
        standard errors come from the joint information of all parameters and
        can differ from lme4's (and ours) in the third digit.
        """
        c = self.columns
        s = self._statsmodels_spec()
        args = [repr(s["formula"]), data_name, f"groups={s['groups']!r}"]
        if s["re_formula"] is not None:
            args.append(f"re_formula={s['re_formula']!r}")
        if s["vc_formula"] is not None:
            args.append(f"vc_formula={s['vc_formula']!r}")
        lines = ["import pandas as pd", "import statsmodels.formula.api as smf", ""]
        if csv is not None:
            lines.append(f"{data_name} = pd.read_csv({csv!r})")
        lines += [f"{data_name} = {data_name}.dropna(subset=[{c.y!r}])  # rows without an outcome are left out",
                  f"# {self.formula}  (the same model in R's lme4)",
                  f"model = smf.mixedlm({', '.join(args)})",
                  f"result = model.fit(reml={self.method == 'REML'})",
                  "print(result.summary())", ""]
        return "\n".join(lines)

    def to_statsmodels(self):
        """Fit the same model with statsmodels' ``MixedLM`` and return its results object.

        The rows used here (missing outcomes dropped) are passed to statsmodels.
        """
        import statsmodels.formula.api as smf

        if self.data is None:
            raise ValueError("this result does not keep its data; refit with fit_lmm to use statsmodels")
        s = self._statsmodels_spec()
        kw = {"groups": s["groups"]}
        if s["re_formula"] is not None:
            kw["re_formula"] = s["re_formula"]
        if s["vc_formula"] is not None:
            kw["vc_formula"] = s["vc_formula"]
        model = smf.mixedlm(s["formula"], self.data, **kw)
        return model.fit(reml=self.method == "REML")
