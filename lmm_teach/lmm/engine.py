"""The LMM engine on numpy arrays: fit, Satterthwaite tests, random-term LRTs.

:func:`fit_arrays` is the fast entry point for code that fits thousands of
models (the Monte Carlo studies): no pandas, no validation, no names.
:func:`fit_lmm` (``lmm_teach.lmm.fit``) validates a DataFrame, builds the
design and calls :func:`fit_problem` here.

Example
-------
>>> import numpy as np
>>> from lmm_teach.lmm.engine import fit_arrays
>>> rng = np.random.default_rng(1)
>>> subject = np.repeat(np.arange(30), 5)
>>> time = np.tile(np.arange(5.0), 30)
>>> y = 10 - 0.5 * time + rng.normal(0, 2, 30)[subject] + rng.normal(0, 1, 150)
>>> X = np.column_stack([np.ones(150), time])
>>> fit = fit_arrays(y, X, subject, time=time, contrasts={"time": [0, 1]})
>>> round(float(fit.beta[1]), 2), round(float(fit.df[1]))
(-0.48, 119)
>>> round(fit.tests["time"][2])  # F, df_num, df_den, p
119
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmm_teach.lmm.derivatives import analytic, supports_analytic
from lmm_teach.lmm.deviance import Problem, Solution, build_problem, deviance, profile, solve_at
from lmm_teach.lmm.faces import BOUND_TOL, NEWTON_TOL, check, escape, search_faces
from lmm_teach.lmm.newton import newton_minimize
from lmm_teach.lmm.optimize import Optimum, optimize, slope_start
from lmm_teach.lmm.ranova import RandomTerm, random_terms
from lmm_teach.lmm.satterthwaite import VarparInfo, contest1d, contest_md, varpar_info

__all__ = ["ArrayFit", "EngineFit", "contrast_1d", "contrast_md", "fit_arrays", "fit_problem", "unfittable_reason",
           "not_converged_message", "SINGULAR_TOL", "NEWTON_TOL"]

#: lme4's ``isSingular(tol = 1e-4)``: a theta bounded at 0 (an SD ratio) below this is "on the boundary".
SINGULAR_TOL = 1e-4


def unfittable_reason(n: int, p: int, n_subjects: int, *, random_slope: bool, cluster: bool,
                      subject: str = "subject") -> str | None:
    """Why a model cannot be fitted to ``n`` rows of ``n_subjects`` subjects with ``p`` fixed effects, or None.

    The one rule that :func:`lmm_teach.fit_lmm` (a :class:`~lmm_teach.validate.DataError`
    with this message) and the Monte Carlo worker (a failed replicate with
    this reason) apply, so that they never disagree on what can be fitted:
    more rows than fixed effects plus variance parameters, more rows than
    subjects (lme4: each grouping factor needs fewer levels than observations)
    and, with a random slope, more rows than random effects (two per subject).
    """
    q = 2 if random_slope else 1
    n_theta = (1 if q == 1 else 3) + (1 if cluster else 0)
    if n <= p + n_theta:
        return (f"{n} measurements are too few for {p} fixed effects and {n_theta + 1} variance "
                f"parameters: collect more data or simplify the model")
    if n <= n_subjects:
        return (f"every {subject} has a single measurement: the variance between {subject}s cannot be "
                f"told apart from the residual variance; a mixed model needs repeated measurements")
    if random_slope and n <= q * n_subjects:
        return (f"a random slope needs more measurements ({n}) than random effects "
                f"({q} per {subject}, {q * n_subjects}): most {subject}s need three or more visits; "
                f"drop random_slope")
    return None


def not_converged_message(reason: str, newton_step: float) -> str:
    """What a learner reads when a fit did not reach a minimum (``EngineFit.reason``)."""
    why = reason or f"the Newton step is still {newton_step:.2g}"
    return ("The fit did not converge: the variance estimates are not at a minimum of the REML/ML criterion "
            f"({why}). The estimates, standard errors and p-values may be wrong; simplify the random part "
            "(e.g. drop the random slope) or collect more data.")


@dataclass(frozen=True, eq=False)
class EngineFit:
    """A complete fit on arrays (what :class:`LMMResult` is built from)."""

    problem: Problem
    reml: bool
    optimum: Optimum
    solution: Solution
    vcov: np.ndarray  # vcov(beta) = sigma^2 (X'V*^-1 X)^-1
    info: VarparInfo | None
    singular: bool
    converged: bool
    newton_step: float  # max |H^-1 g| over the interior theta (0 when all on the boundary)
    reduced: tuple  # ((RandomTerm, deviance), ...) for the random-term LRTs
    reason: str = ""  # why not converged (faces.check), "" when converged

    @property
    def loglik(self) -> float:
        return -0.5 * self.solution.dev

    @property
    def theta(self) -> np.ndarray:
        """lme4's theta (the relative covariance factor on the data's time scale)."""
        return self.problem.external(self.optimum.theta)


def _is_singular(pr: Problem, theta: np.ndarray) -> bool:
    """lme4's isSingular on the internal theta (converted to lme4's scale)."""
    return bool(np.any(pr.external(theta)[pr.bounded] < SINGULAR_TOL))


def _start_from(pr: Problem, reduced: list[tuple[RandomTerm, Optimum]], reml: bool) -> np.ndarray | None:
    """A start for the full model from the reduced fits (each of them knows part of theta).

    The slope of ``(time | subject)`` starts from a moment estimate (the spread
    of the subjects' own OLS slopes), its correlation from 0.
    """
    if not reduced:
        return None
    start = np.array(([1.0] if pr.q == 1 else [1.0, 0.0, 1.0]) + ([1.0] if pr.n_clusters else []))
    for term, opt in reduced:
        free = np.array(term.free)
        start[free] = opt.theta[free]
    if pr.q == 2 and not any(term.free[2] for term, _ in reduced):
        # no reduced fit knows the slope: start it from the (1 | subject) fit's sigma^2 and moments
        opt = reduced[0][1]
        r2 = opt.pieces.r2 if opt.pieces is not None else float(profile(pr, opt.theta[None], reml=reml)["r2"][0])
        s2 = r2 / (pr.n - pr.p if reml else pr.n)
        start[1], start[2] = 0.0, slope_start(pr, s2)
    # Stay off the boundary: there the deviance, even in theta, is stationary.
    diag = pr.bounded
    start[diag] = np.maximum(start[diag], 0.05)
    return start


def fit_problem(pr: Problem, *, reml: bool = True, random_terms: list[RandomTerm] = (),
                satterthwaite: bool = True, trace: list | None = None) -> EngineFit:
    """Fit a prepared :class:`Problem`: optimum, solution, Satterthwaite info, reduced fits.

    The reduced models of ``random_terms`` are fitted first; they are nested
    in the full model and give it a good start.  An optimum on a boundary
    face, or one where the conditions of a minimum fail, is followed by the
    search of every face (:func:`lmm_teach.lmm.faces.search_faces`); the
    result is ``converged`` only where the first- and second-order conditions
    of a (boundary) minimum hold at the point returned (:func:`~lmm_teach.lmm.faces.check`).
    ``trace``: a list collecting ``(stage, theta, deviance)`` of the iterates
    (internal theta; see :func:`lmm_teach.lmm.surface.optimizer_path`).
    """
    reduced = []
    for term in random_terms:
        free = np.array(term.free, bool)
        reduced.append((term, optimize(pr, reml=reml, free=free)))
    opt = optimize(pr, reml=reml, start=_start_from(pr, reduced, reml), trace=trace)
    # A reduced fit better than the full one means the full search missed the
    # optimum: restart the full model from the best reduced fit.
    for _term, r in reduced:
        if r.dev < opt.dev - 1e-8:
            alt = optimize(pr, reml=reml, start=np.where(pr.bounded, np.maximum(r.theta, 1e-2), r.theta),
                           trace=trace)
            if alt.dev < opt.dev:
                opt = alt
    chk, pieces = check(pr, opt.theta, reml=reml, pieces=opt.pieces if opt.pieces_of is pr else None)
    if pr.n_theta > 1 and (not chk.minimum or np.any(pr.bounded & (chk.theta < BOUND_TOL))):
        th, _ = search_faces(pr, reml=reml, theta=chk.theta, dev=chk.dev, trace=trace,
                             optimize_fn=lambda free, start: optimize(pr, reml=reml, free=free, start=start))
        chk, pieces = check(pr, th, reml=reml)
        for _ in range(3):  # off a saddle the search still stands on
            if chk.minimum or chk.direction is None:
                break
            pts = escape(pr, chk)
            fs = deviance(pr, pts, reml=reml)
            j = int(np.argmin(fs))
            if not fs[j] < chk.dev:
                break
            th, f, _, _, _ = newton_minimize(pr, np.ones(pr.n_theta, bool), pts[j], reml, trace)
            if not f < chk.dev:
                break
            chk, pieces = check(pr, th, reml=reml)
    theta = chk.theta
    ok = bool(chk.minimum and np.isfinite(chk.dev))
    opt = Optimum(theta, chk.dev, ok, chk.reason)
    # One exact evaluation at the optimum serves the solution and the Satterthwaite df.
    if pieces is None and supports_analytic(pr):
        pieces = analytic(pr, theta, reml=reml)
    sol = solve_at(pr, theta, reml=reml, pieces=pieces)
    vcov = sol.sigma2 * sol.Pbeta
    info = varpar_info(pr, theta, reml=reml, pieces=pieces) if satterthwaite else None
    converged = bool(ok and np.isfinite(sol.dev))
    return EngineFit(problem=pr, reml=reml, optimum=opt, solution=sol, vcov=vcov, info=info,
                     singular=_is_singular(pr, theta), converged=converged, newton_step=chk.newton_step,
                     reduced=tuple((t, r.dev) for t, r in reduced), reason=chk.reason)


@dataclass(frozen=True, eq=False)
class ArrayFit:
    """The numbers of one fit, as plain arrays (see :func:`fit_arrays`)."""

    beta: np.ndarray  # (p,) fixed effects
    se: np.ndarray  # (p,) standard errors
    df: np.ndarray  # (p,) Satterthwaite df (NaN when not computed)
    t: np.ndarray  # (p,) t statistics
    p: np.ndarray  # (p,) two-sided p-values with Satterthwaite df
    cov_beta: np.ndarray  # (p, p)
    theta: np.ndarray  # lme4's relative covariance factor (SD ratios to sigma)
    sigma: float  # residual SD
    loglik: float  # REML or ML log-likelihood
    converged: bool
    singular: bool
    tests: dict  # name -> (F, df_num, df_den, p) for each contrast asked for
    reason: str = ""  # why not converged ("" when converged)
    info: VarparInfo | None = None  # Satterthwaite information (None without satterthwaite)

    def contrast(self, l) -> tuple[float, float, float, float]:
        """``(estimate, se, df, p)`` of ``l'beta`` with Satterthwaite df (lmerTest ``contest1D``)."""
        return contrast_1d(l, self.beta, self.cov_beta, self.info)

    def test(self, L) -> tuple[float, float, float, float]:
        """``(F, df_num, df_den, p)`` of ``L beta = 0`` with Satterthwaite df (lmerTest ``contestMD``)."""
        return contrast_md(L, self.beta, self.cov_beta, self.info)


def contrast_1d(l, beta: np.ndarray, vcov: np.ndarray, info: VarparInfo | None) -> tuple[float, float, float, float]:
    """``(estimate, se, df, p)`` of one contrast; df and p NaN without Satterthwaite information."""
    l = np.asarray(l, float)
    if info is None:
        return float(l @ beta), float(np.sqrt(l @ vcov @ l)), np.nan, np.nan
    return contest1d(l, beta, vcov, info)


def contrast_md(L, beta: np.ndarray, vcov: np.ndarray, info: VarparInfo | None) -> tuple[float, float, float, float]:
    """``(F, df_num, df_den, p)`` of ``L beta = 0``; df_den and p NaN without Satterthwaite information."""
    L = np.atleast_2d(np.asarray(L, float))
    if info is None:
        Lb = L @ beta
        return float(Lb @ np.linalg.solve(L @ vcov @ L.T, Lb)) / L.shape[0], float(L.shape[0]), np.nan, np.nan
    return contest_md(L, beta, vcov, info)


def fit_arrays(
    y: np.ndarray,
    X: np.ndarray,
    subject: np.ndarray,
    *,
    time: np.ndarray | None = None,
    random_slope: bool = False,
    cluster: np.ndarray | None = None,
    method: str = "REML",
    contrasts: dict | None = None,
    satterthwaite: bool = True,
    as_fit_lmm: bool = False,
) -> ArrayFit:
    """Fit ``y ~ X + (1 | subject)`` or ``(time | subject)`` [``+ (1 | cluster)``] on arrays.

    Parameters
    ----------
    y : (n,) float array, no missing values.
    X : (n, p) float array of full column rank whose first column is the
        intercept (ones): the fixed-effects design, built by the caller.
    subject : (n,) integer array of subject codes (any integers; rows need not
        be sorted).
    time : (n,) float array; required with ``random_slope``.
    random_slope : bool
        Correlated random intercept and slope on ``time`` per subject.
    cluster : (n,) integer array of cluster codes, constant within subject
        (subjects nested in clusters), or None.
    method : "REML" or "ML"
    contrasts : dict name -> array (p,) or (r, p), optional
        Hypotheses ``L beta = 0`` to test with Satterthwaite F tests (lmerTest's
        ``contestMD``); e.g. ``{"time": [0, 1, 0, 0.5]}`` for the type-III time
        test of ``y ~ time * arm``.
    satterthwaite : bool
        Compute the Satterthwaite df (about half of the work); without it
        ``df``, ``p`` and the tests' ``df_den`` are NaN.
    as_fit_lmm : bool
        Start the optimiser as :func:`lmm_teach.fit_lmm` does, from the fits
        of the reduced models of ``lmerTest::ranova`` (a random slope, a
        cluster): the same path gives the same optimum to the last digits,
        where a different start stops within the optimiser's tolerance
        (about 1e-6 relative with a random slope).  Random-intercept fits
        need no reduced fit and are unchanged.

    Returns
    -------
    ArrayFit
        ``beta, se, df, t, p, cov_beta, theta, sigma, loglik, converged,
        singular, tests, reason``.  Nothing is validated beyond what the algebra
        needs: it is the caller's job to pass clean arrays.

    Raises
    ------
    ValueError
        When the model cannot be fitted to so few rows (:func:`unfittable_reason`,
        the rule and message of ``fit_lmm``'s ``DataError``).

    Notes
    -----
    The same profiled REML/ML deviance, optimiser and lmerTest-style
    Satterthwaite df as :func:`lmm_teach.fit_lmm` (no random-term tests, no
    conditional modes, no DataFrames).  A 240-row random-intercept fit takes
    about half a millisecond, with a random slope about one
    (``benchmarks/bench_fit.py``).
    """
    subject = np.asarray(subject)
    codes = np.unique(subject, return_inverse=True)[1].ravel()
    ccodes = None
    if cluster is not None:
        ccodes = np.unique(np.asarray(cluster), return_inverse=True)[1].ravel()
    reml = _reml(method)
    why = unfittable_reason(len(codes), np.shape(X)[1], int(codes.max()) + 1 if codes.size else 0,
                            random_slope=random_slope, cluster=cluster is not None)
    if why is not None:  # the same rule, and words, as fit_lmm's DataError
        raise ValueError(why)
    pr = build_problem(np.asarray(y, float), np.asarray(X, float), codes, time=time,
                       random_slope=random_slope, cluster=ccodes)
    terms = ()
    if as_fit_lmm and (random_slope or cluster is not None):
        terms = random_terms(2 if random_slope else 1, cluster is not None, subject="s", time="t", cluster="c")
    fit = fit_problem(pr, reml=reml, satterthwaite=satterthwaite, random_terms=terms)
    beta, vcov = fit.solution.beta, fit.vcov
    se = np.sqrt(np.diag(vcov))
    tstat = beta / se
    df = np.full(pr.p, np.nan)
    pval = np.full(pr.p, np.nan)
    tests = {}
    if satterthwaite:
        eye = np.eye(pr.p)
        for j in range(pr.p):
            _, _, df[j], pval[j] = contest1d(eye[j], beta, vcov, fit.info)
    for name, L in (contrasts or {}).items():
        tests[name] = contrast_md(L, beta, vcov, fit.info)
    return ArrayFit(beta=beta, se=se, df=df, t=tstat, p=pval, cov_beta=vcov, theta=fit.theta,
                    sigma=float(np.sqrt(fit.solution.sigma2)), loglik=fit.loglik, converged=fit.converged,
                    singular=fit.singular, tests=tests, reason=fit.reason, info=fit.info)


def _reml(method: str) -> bool:
    m = str(method).upper()
    if m not in ("REML", "ML"):
        raise ValueError(f"method must be 'REML' or 'ML', not {method!r}")
    return m == "REML"
