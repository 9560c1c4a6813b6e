"""fit_lmm: validate a long DataFrame, build the model, fit it, explain the result."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from lmm_teach.lmm.deviance import Problem, build_problem
from lmm_teach.lmm.engine import SINGULAR_TOL, EngineFit, _reml, fit_problem, not_converged_message, unfittable_reason
from lmm_teach.lmm.kenward_roger import kr_fixed_numbers, kr_pieces, kr_test_numbers
from lmm_teach.lmm.lazy import Deferred
from lmm_teach.lmm.ranova import lrt_frame, lrt_numbers, random_terms
from lmm_teach.lmm.result import LMMResult
from lmm_teach.lmm.tables import (
    cov_frame,
    fitted_series,
    fixed_frame,
    fixed_numbers,
    ranef_frames,
    test_numbers,
    tests_frame,
    variance_frame,
    variance_numbers,
)
from lmm_teach.lmm.terms import FixedDesign, factor_codes, fixed_design, sorted_codes
from lmm_teach.validate import Columns, DataError, LongArrays, check_long_arrays

__all__ = ["fit_lmm", "build_model", "Model"]


def _r_name(name: str) -> str:
    """A column name as R reads it in a formula (backticks when needed)."""
    s = str(name)
    ok = s.replace("_", "a").replace(".", "a").isalnum() and not s[0].isdigit()
    return s if ok else f"`{s}`"


def _formula(y, subject, time, visit, between, cluster, random_slope, categorical) -> str:
    main = f"factor({_r_name(visit if visit is not None else time)})" if categorical else _r_name(time)
    rhs = main if between is None else f"{main} * {_r_name(between)}"
    re = f"({_r_name(time)} | {_r_name(subject)})" if random_slope else f"(1 | {_r_name(subject)})"
    out = f"{_r_name(y)} ~ {rhs} + {re}"
    if cluster is not None:
        out += f" + (1 | {_r_name(cluster)})"
    return out


@dataclass(frozen=True, eq=False)
class Model:
    """A checked long table as the arrays of one model: codes, fixed-effects design, the Problem."""

    checked: LongArrays
    subj: np.ndarray
    subj_levels: object
    clus: np.ndarray | None
    clus_levels: object
    design: FixedDesign
    pr: Problem
    t: np.ndarray


def build_model(data: pd.DataFrame, columns: Columns, *, random_slope: bool = False,
                time_as: str = "numeric") -> Model:
    """Validate ``data`` for the model of :func:`fit_lmm` and build its :class:`Problem` (no fit).

    Raises the same :class:`DataError` as :func:`fit_lmm` (the shared rule of
    :func:`lmm_teach.lmm.engine.unfittable_reason` on what can be fitted).
    """
    if time_as not in ("numeric", "categorical"):
        raise ValueError(f"time_as must be 'numeric' or 'categorical', not {time_as!r}")
    categorical = time_as == "categorical"
    y, subject, time, cluster = columns.y, columns.subject, columns.time, columns.cluster
    # The checked columns as arrays: the tidy frame (result.data) is built
    # only if someone asks for it.
    checked = check_long_arrays(data, columns)
    values = checked.values
    subj, subj_levels = sorted_codes(checked.subject_codes, checked.subject_levels, values[subject])
    clus, clus_levels = (factor_codes(values[cluster]) if cluster is not None else (None, []))
    design = fixed_design(values, time=time, visit=columns.visit, between=columns.between,
                          categorical=categorical)
    n, p = design.X.shape
    reason = unfittable_reason(n, p, len(subj_levels), random_slope=random_slope, cluster=cluster is not None,
                               subject=subject)
    if reason is not None:
        raise DataError(reason)
    t = values[time]
    pr = build_problem(values[y], design.X, subj, time=t, random_slope=random_slope, cluster=clus)
    return Model(checked=checked, subj=subj, subj_levels=subj_levels, clus=clus, clus_levels=clus_levels,
                 design=design, pr=pr, t=t)


def fit_lmm(
    data: pd.DataFrame,
    *,
    y: str,
    subject: str,
    time: str,
    visit: str | None = None,
    between: str | None = None,
    cluster: str | None = None,
    random_slope: bool = False,
    time_as: str = "numeric",
    method: str = "REML",
    df: str = "satterthwaite",
) -> LMMResult:
    """Fit a linear mixed model to long repeated-measures data.

    Parameters
    ----------
    data : DataFrame
        One row per measurement. It is not modified.
    y, subject, time : str
        Columns of the outcome, the subject id and the (numeric) time.
    visit : str, optional
        Column of the visit label: the factor of ``time_as="categorical"``
        (default there: the distinct values of ``time``).
    between : str, optional
        A between-subject factor (e.g. treatment arm), crossed with time.
    cluster : str, optional
        A level above subject (e.g. clinic): adds ``(1 | cluster)``.
    random_slope : bool
        Random intercept *and* slope on time per subject, correlated.
    time_as : {"numeric", "categorical"}
        A straight line in time, or one mean per visit.
    method : {"REML", "ML"}
    df : {"satterthwaite", "kenward-roger"}
        The small-sample method of the fixed-effect t and F tests:
        Satterthwaite (lmerTest's default) or Kenward-Roger (pbkrtest; REML
        only), whose standard errors are also adjusted for the uncertainty of
        the variance estimates.

    Returns
    -------
    LMMResult

    Raises
    ------
    DataError
        Bad columns or values (see :func:`lmm_teach.validate.check_long`), a
        rank-deficient fixed-effects design, or too few observations.

    Notes
    -----
    The model (lme4 syntax) is ``y ~ time [* between] + (1 | subject)`` or
    ``(time | subject)``, optionally ``+ (1 | cluster)``; with categorical time
    ``y ~ factor(visit) [* between] + ...``.  In matrix form
    ``y = X beta + Z b + eps`` with ``b ~ N(0, sigma^2 Lambda Lambda')``,
    ``eps ~ N(0, sigma^2 I)``.  Factors use treatment coding, first (sorted)
    level as reference, R-style names (``armB``, ``time:armB``, ``visit2``).

    The fit is an exact profiled REML/ML optimisation in the relative
    covariance factor theta (Bates et al. 2015, lme4); fixed effects get
    Satterthwaite df and type-III F tests as in lmerTest (Kuznetsova et al.
    2017), or with ``df="kenward-roger"`` Kenward-Roger standard errors, df and
    scaled F tests as pbkrtest (Kenward & Roger 1997; Halekoh & Hojsgaard
    2014; :mod:`lmm_teach.lmm.kenward_roger`); random terms get likelihood-ratio tests as ``lmerTest::ranova``.
    The numbers match R to the reference tolerances (tests/test_lmm_reference.py).

    Examples
    --------
    >>> import lmm_teach
    >>> bp = lmm_teach.load_bp()
    >>> m = lmm_teach.fit_lmm(bp, y="bp", subject="patient", time="time_num")
    >>> m.fixed.loc["time_num", ["estimate", "df"]].round(2).tolist()
    [-4.05, 19.0]
    >>> print(m.formula)
    bp ~ time_num + (1 | patient)
    >>> kr = lmm_teach.fit_lmm(bp, y="bp", subject="patient", time="time_num", df="kenward-roger")
    >>> kr.fixed.loc["(Intercept)", ["se", "df"]].round(3).tolist()
    [2.194, 9.233]
    """
    reml = _reml(method)
    ddf = _ddf(df, reml)
    columns = Columns(y=y, subject=subject, time=time, visit=visit, between=between, cluster=cluster)
    model = build_model(data, columns, random_slope=random_slope, time_as=time_as)
    checked, subj, subj_levels, clus, clus_levels = (model.checked, model.subj, model.subj_levels, model.clus,
                                                     model.clus_levels)
    design, pr, t, q = model.design, model.pr, model.t, model.pr.q
    categorical = time_as == "categorical"
    n_missing = checked.n_dropped
    X = design.X
    n, J = pr.n, pr.n_subjects
    rterms = random_terms(q, cluster is not None, subject=subject, time=time, cluster=cluster)
    fit = fit_problem(pr, reml=reml, random_terms=rterms)

    # Every number now (numpy), every table on first access (lmm.lazy).
    names = design.names
    if ddf == "Kenward-Roger":
        pieces = kr_pieces(X, subj, time=t, random_slope=random_slope, cluster=clus,
                           theta=fit.theta, sigma2=fit.solution.sigma2, beta=fit.solution.beta)
        fixed = kr_fixed_numbers(pieces)
        test_names, tests = kr_test_numbers(pieces, design)
    else:
        fixed = fixed_numbers(fit)
        test_names, tests = test_numbers(fit, design)
    variance, icc = variance_numbers(fit, subject=subject, time=time, cluster=cluster)
    sol = fit.solution
    ranef = [(subject, sol.b_subject, subj_levels, ("(Intercept)", time)[:q])]
    b_row = sol.b_subject[subj, 0]
    if q == 2:
        b_row = b_row + sol.b_subject[subj, 1] * t
    n_groups = {subject: J}
    if cluster is not None:
        ranef.append((cluster, sol.b_cluster, clus_levels, ("(Intercept)",)))
        b_row = b_row + sol.b_cluster[clus]
        n_groups[cluster] = len(clus_levels)
    fitted = X @ sol.beta + b_row
    random_tests = lrt_numbers(sol.dev, list(fit.reduced))
    warn = _warnings(fit, n_missing=n_missing, y=y, subject=subject, time=time, cluster=cluster,
                     n_clusters=len(clus_levels))
    return LMMResult(
        formula=_formula(y, subject, time, visit, between, cluster, random_slope, categorical),
        method="REML" if reml else "ML", n_obs=n, n_subjects=J, columns=columns,
        fixed=Deferred(fixed_frame, (fixed, names)), cov_fixed=Deferred(cov_frame, (fit.vcov, names)),
        tests=Deferred(tests_frame, (test_names, tests)), variance=Deferred(variance_frame, (variance,)),
        loglik=fit.loglik, icc=icc, singular=fit.singular, converged=fit.converged,
        ranef=Deferred(ranef_frames, (tuple(ranef),)), fitted=Deferred(fitted_series, (fitted, checked.index)),
        random_tests=Deferred(lrt_frame, random_tests), warnings=tuple(warn), time_as=time_as,
        random_slope=bool(random_slope), n_groups=n_groups, theta=tuple(float(x) for x in fit.theta),
        sigma=float(np.sqrt(sol.sigma2)), data=Deferred(LongArrays.frame, (checked,)), ddf=ddf,
        terms=design.terms, inference=(sol.beta, fit.vcov, fit.info),
    )


def _ddf(df: str, reml: bool) -> str:
    """The df method's display name ("Satterthwaite" or "Kenward-Roger") from ``df``."""
    key = str(df).lower().replace("_", "-").replace(" ", "-")
    if key in ("satterthwaite", "satt"):
        return "Satterthwaite"
    if key in ("kenward-roger", "kr", "kenward-rogers"):
        if not reml:
            raise ValueError("Kenward-Roger df are defined for REML fits only (as in lmerTest and pbkrtest): "
                             "use method='REML' or df='satterthwaite'")
        return "Kenward-Roger"
    raise ValueError(f"df must be 'satterthwaite' or 'kenward-roger', not {df!r}")


def _warnings(fit: EngineFit, *, n_missing: int, y: str, subject: str, time: str,
              cluster: str | None, n_clusters: int) -> list[str]:
    out = []
    if n_missing:
        out.append(f"{n_missing} row{'s' if n_missing != 1 else ''} with a missing outcome ({y!r}) "
                   f"{'were' if n_missing != 1 else 'was'} left out; the model uses the other {fit.problem.n} "
                   "(as lme4 does).")
    # Judge the boundary on the scale-free theta (time / RMS(time)): lme4's
    # isSingular (theta < 1e-4 in the data's time unit) also fires when time
    # is merely counted in small steps (seconds, days over decades).
    th = fit.optimum.theta
    tiny = SINGULAR_TOL
    if fit.problem.q == 1 and th[0] < tiny:
        out.append(f"Singular fit: the variance between {subject}s is estimated as 0. Measurements of the "
                   f"same {subject} are no more alike than measurements of different {subject}s would be by "
                   "chance, so the random intercept adds nothing: the fixed effects equal those of ordinary "
                   "regression. This is a property of these data, not an error.")
    if fit.problem.q == 2:
        a, b, c = th[:3]
        if a < tiny:
            out.append(f"Singular fit: the variance of the {subject}s' intercepts is estimated as 0; "
                       "consider a model without it.")
        if c < tiny:
            if abs(b) < tiny:
                out.append(f"Singular fit: the variance of the {subject}s' slopes is estimated as 0: "
                           f"{subject}s do not differ in their change over {time} beyond chance; "
                           "a random-intercept model is enough.")
            else:
                sign = "+1" if a * b > 0 else "-1"
                out.append(f"Singular fit: the random intercepts and slopes are perfectly correlated "
                           f"({sign}): the data cannot tell the two apart; consider dropping the random slope.")
        elif fit.singular and a >= tiny:
            out.append(f"lme4 would call this fit singular only because {time!r} is counted in small units "
                       f"(the slope's SD is tiny per unit of {time}); the estimates are fine. Rescaling {time!r} "
                       "(e.g. days to years) removes the message.")
    if cluster is not None and th[-1] < tiny:
        out.append(f"The variance between {cluster}s is estimated as 0 (a boundary estimate): {cluster}s differ "
                   f"no more than their {subject}s would by chance.")
    if cluster is not None and n_clusters < 5:
        out.append(f"Only {n_clusters} {cluster}s: their variance rests on {n_clusters} values and is very "
                   "uncertain.")
    if not fit.converged:
        out.append(not_converged_message(fit.reason, fit.newton_step))
    elif fit.info is not None and np.any(fit.info.eigenvalues < -1e-8):
        out.append("The curvature of the likelihood in the variance parameters is negative in some direction: "
                   "the Satterthwaite df are unreliable.")
    return out
