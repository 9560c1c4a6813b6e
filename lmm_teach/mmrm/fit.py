"""``fit_mmrm``: the mixed model for repeated measures (categorical visit [x arm], structured residual covariance)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from lmm_teach.kenward_roger import adjusted_vcov
from lmm_teach.lmm.lazy import Deferred
from lmm_teach.lmm.terms import level_label, reference_grid
from lmm_teach.mmrm import tables
from lmm_teach.mmrm.engine import evaluate, kr_pieces
from lmm_teach.mmrm.inference import Inference
from lmm_teach.mmrm.optimize import OPTIMIZERS, minimize
from lmm_teach.mmrm.problem import Problem, build_problem
from lmm_teach.mmrm.result import MMRMResult
from lmm_teach.mmrm.structures import get_structure
from lmm_teach.mmrm.tables import contrast_numbers, test_numbers, tukey, visit_labels
from lmm_teach.validate import DataError

__all__ = ["fit_mmrm", "fit_problem", "ProblemFit", "DF_METHODS"]

DF_METHODS = ("satterthwaite", "kenward-roger", "residual", "between-within")


def _df_method(df: str) -> str:
    key = str(df).strip().lower().replace("_", "-").replace(" ", "-")
    key = {"kr": "kenward-roger", "kenwardroger": "kenward-roger", "sat": "satterthwaite"}.get(key, key)
    if key not in DF_METHODS:
        raise DataError(f"unknown df method {df!r}: choose one of {', '.join(DF_METHODS)}")
    return key


def _start(pr: Problem) -> tuple[np.ndarray, np.ndarray]:
    """Start values from ordinary least squares residuals (per-visit SDs, pairwise correlations)."""
    X = pr.X3[pr.mask]
    yv = pr.y2[pr.mask]
    beta = np.linalg.lstsq(X, yv, rcond=None)[0]
    res = np.where(pr.mask, pr.y2 - pr.X3 @ beta, np.nan)
    sd, corr = _pairwise_moments(res, pr.mask)
    pooled = float(np.sqrt(np.nanmean(res ** 2))) or 1.0
    sd = np.where(np.isfinite(sd) & (sd > 1e-8 * pooled), sd, pooled)
    st = pr.structure
    default = st.start(np.full(pr.n_visits, pooled), np.eye(pr.n_visits))
    with np.errstate(all="ignore"):
        try:
            guess = st.start(sd, corr)
        except np.linalg.LinAlgError:
            guess = default
    if not np.all(np.isfinite(guess)):
        guess = default
    return guess, default


def _pairwise_moments(res: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column SDs (ddof 0) and pairwise-complete correlations (at least 3 pairs), NaN where undefined:
    pandas' ``DataFrame.std(ddof=0)`` and ``DataFrame.corr(min_periods=3)`` without a DataFrame."""
    m = mask.astype(float)
    r = np.where(mask, res, 0.0)
    with np.errstate(all="ignore"):
        n1 = m.sum(axis=0)
        mean1 = r.sum(axis=0) / n1
        sd = np.sqrt(((r - mean1) ** 2 * m).sum(axis=0) / n1)
        n = m.T @ m                      # rows where both visits are observed
        sa = r.T @ m                     # sum of visit a over those rows
        saa = (r * r).T @ m
        sab = r.T @ r
        cov = sab - sa * sa.T / n
        va = saa - sa * sa / n
        corr = cov / np.sqrt(va * va.T)
    corr[n < 3] = np.nan
    return sd, np.clip(corr, -1.0, 1.0)


def _identifiable(pr: Problem) -> None:
    st = pr.structure
    k = st.n_params(pr.n_visits)
    dof = pr.n_obs - pr.p
    if k >= dof:
        raise DataError(f"the {st.name} ({st.label}) covariance has {k} parameters but the data leave only {dof} "
                        f"residual degrees of freedom ({pr.n_obs} measurements, {pr.p} fixed effects): use a "
                        "structure with fewer parameters (ar1, cs, toep)")
    if st.name == "us":
        both = pr.mask.T.astype(int) @ pr.mask.astype(int)
        a, b = np.nonzero(both < 1)
        if len(a):
            va, vb = pr.visits[a[0]], pr.visits[b[0]]
            raise DataError(f"no subject was measured at both {pr.columns.visit} = {level_label(va)} and "
                            f"{level_label(vb)}, so the unstructured (us) covariance of those visits cannot be "
                            "estimated: use a structured covariance (ar1, toep, cs, ad)")


def fit_mmrm(data: pd.DataFrame, *, y: str, subject: str, visit: str, between: str | None = None,
             time: str | None = None, covariance: str = "us", df: str = "satterthwaite", method: str = "REML",
             start=None, exact: bool = False, conf_level: float = 0.95) -> MMRMResult:
    """Fit ``y ~ visit [* between]`` with a structured covariance of a subject's visits (R's ``mmrm``).

    Parameters
    ----------
    data : long DataFrame, one row per measurement; a missing visit is an absent row (or a missing ``y``).
    y, subject, visit : column names; ``visit`` is treated as a factor (levels sorted).
    between : optional between-subject factor (e.g. the arm); the model has the visit x between interaction.
    time : numeric time column, needed by ``sp_exp`` (spatial exponential in time).
    covariance : one of ``us, toep, toeph, ar1, ar1h, cs, csh, ad, adh, sp_exp``.
    df : ``"satterthwaite"``, ``"kenward-roger"`` (adjusted covariance and df), ``"residual"`` (n - p) or
        ``"between-within"``.
    method : ``"REML"`` (default) or ``"ML"``; Kenward-Roger needs REML.
    start : optional start values of the covariance parameters (R mmrm's parameterisation).
    exact : False (default) runs R mmrm's own optimiser first (L-BFGS-B from its standard start with R's
        stopping rule), which reproduces R's numbers; its estimates can sit about 1e-4 (relative) short of
        the exact optimum.  True goes straight to Newton's method with the exact Hessian from moment-based
        start values, which reaches the optimum to machine precision in a few iterations (and is faster).

    Raises
    ------
    DataError
        For unusable data or options, in words (a duplicated visit, too many parameters, sp_exp without time).
    """
    st = get_structure(covariance)
    dfm = _df_method(df)
    meth = str(method).strip().upper()
    if meth not in ("REML", "ML"):
        raise DataError(f"method must be 'REML' or 'ML', got {method!r}")
    reml = meth == "REML"
    if dfm == "kenward-roger" and not reml:
        raise DataError("Kenward-Roger degrees of freedom need a REML fit: use method='REML'")
    for role, col in (("visit", visit), ("subject", subject), ("y", y)):
        if col is None:
            raise DataError(f"fit_mmrm needs the {role} column")
    pr = build_problem(data, y=y, subject=subject, visit=visit, between=between, time=time, structure=st)
    _identifiable(pr)
    warnings = list(pr.notes)
    if pr.n_dropped:
        warnings.append(f"{pr.n_dropped} rows with a missing {y!r} were left out (an MMRM uses every observed "
                        "visit; missing visits are simply absent)")
    k = st.n_params(pr.n_visits)
    user = None
    if start is not None:
        user = np.asarray(start, float).ravel()
        if user.size != k:
            raise DataError(f"start has {user.size} values but the {st.name} covariance has {k} parameters")
        if not np.isfinite(evaluate(pr, user, order=0, reml=reml).f):
            warnings.append("the given start values make a covariance matrix that is not positive definite; "
                            "the fit started from values computed from the data instead")
            user = None
    r_start = None if (exact or start is not None) else st.r_start(pr.n_visits)
    opt, ev, theta_vcov, singular = _optimum(pr, _starts(pr, user), reml=reml, r_start=r_start)
    if not opt.converged:
        warnings.append(f"the {st.name} fit did not converge ({opt.message}); the numbers are from the best "
                        "point found and may be unreliable: try a simpler structure")
    if singular:
        warnings.append(f"the data barely identify the {k} parameters of the {st.name} covariance (its "
                        "information matrix is singular): standard errors and df may be unreliable")
    phi = ev.phi
    vcov = phi
    if dfm == "kenward-roger":
        Q, R = kr_pieces(pr, ev, opt.theta)
        vcov = adjusted_vcov(phi, ev.P, Q, theta_vcov, R)
    inf = Inference(beta=ev.beta, vcov=vcov, phi=phi, W=theta_vcov, P=ev.P,
                    method="kenward-roger" if dfm == "kenward-roger" else "satterthwaite")
    plain_df = _plain_df(pr, dfm)
    loglik = -opt.f
    aic = -2 * loglik + 2 * k
    bic = -2 * loglik + k * np.log(pr.n_subjects)
    fixed, lsm, diffs = _contrast_tables(pr, inf, conf_level, plain_df)
    terms = tuple(term.name for term in pr.design.terms)
    tests = test_numbers(inf, [pr.design.contrasts[t] for t in terms], plain_df=plain_df)
    varcorr, sigma = _covariance_matrices(pr, ev.sigma, opt.theta)
    labels = visit_labels(pr.visits)
    return MMRMResult(
        structure=st.name, structure_label=st.label, df_method=dfm, method=meth, fixed=fixed,
        tests=Deferred(tables.tests_frame, (terms, *tests)),
        covariance=Deferred(tables.matrix_frame, (sigma, labels, pr.columns.visit)),
        correlation=Deferred(tables.correlation_frame, (sigma, labels, pr.columns.visit)),
        loglik=float(loglik), aic=float(aic), bic=float(bic),
        n_params=k, n_obs=pr.n_obs, n_subjects=pr.n_subjects, converged=bool(opt.converged),
        optimizer=opt.optimizer, warnings=tuple(warnings), lsmeans=lsm, lsmeans_diff=diffs,
        theta=tuple(float(x) for x in opt.theta), vcov=Deferred(tables.matrix_frame, (vcov, pr.design.names, None)),
        columns={"y": y, "subject": subject, "visit": visit, "between": between, "time": time},
        conf_level=conf_level, cov_matrix=varcorr,
    )


def _starts(pr: Problem, user: np.ndarray | None = None):
    """``starts()`` gives ``(start, fallback start)`` (the user's start or moment-based values, and the
    values of a diagonal covariance): computed only when an optimiser needs them (R's run does not)."""
    def starts():
        guess, default = _start(pr)
        return (guess if user is None else user), default
    return starts


def _optimum(pr: Problem, starts, *, reml: bool, r_start, optimizers=OPTIMIZERS):
    """Minimise; ``(optimum, evaluation with Hessian, covariance of theta-hat, information singular?)``."""
    st = pr.structure
    opt = minimize(pr, starts, reml=reml, r_start=r_start, optimizers=optimizers)
    if not np.isfinite(opt.f):
        raise DataError(f"the {st.name} ({st.label}) covariance could not be fitted: every optimiser met a "
                        "covariance matrix that is not positive definite; try a simpler structure")
    ev = opt.ev
    w = np.linalg.eigvalsh(ev.hess)
    singular = bool(w[0] <= 1e-8 * max(1.0, abs(w[-1])))
    theta_vcov = np.linalg.pinv(ev.hess) if singular else np.linalg.inv(ev.hess)
    return opt, ev, (theta_vcov + theta_vcov.T) / 2, singular


@dataclass(frozen=True, eq=False)
class ProblemFit:
    """An MMRM fitted to a :class:`~lmm_teach.mmrm.problem.Problem` without tables: what a method reads.

    ``contrast(l)`` and ``test(L)`` have the signatures of
    :meth:`lmm_teach.LMMResult.contrast` and :meth:`~lmm_teach.LMMResult.test`
    (Satterthwaite df, as R's ``mmrm`` by default); ``sigma`` is the visit x
    visit covariance; ``singular`` says that the covariance parameters'
    information matrix is singular (SEs and df may then be unreliable).
    """

    inference: Inference
    sigma: np.ndarray
    theta: np.ndarray
    loglik: float
    converged: bool
    optimizer: str
    singular: bool
    n_subjects: int
    n_obs: int

    @property
    def beta(self) -> np.ndarray:
        return self.inference.beta

    def contrast(self, l) -> tuple[float, float, float, float]:
        """``(estimate, se, df, p)`` of ``l @ beta``: t test with Satterthwaite df."""
        est, se, df, _, p = self.inference.test_1d(l)
        return est, se, df, p

    def test(self, L) -> tuple[float, float, float, float]:
        """``(F, df_num, df_den, p)`` of ``L @ beta = 0``, Satterthwaite df."""
        return self.inference.test_md(L)


def fit_problem(pr: Problem, *, reml: bool = True) -> ProblemFit:
    """REML (or ML) fit of a Problem straight to the optimum (Newton with the exact Hessian).

    The path of a Monte Carlo replicate and of the method registry
    (:mod:`lmm_teach.methods.mmrm`): no tables and no R-style L-BFGS-B run,
    whose stopping point :func:`fit_mmrm` reproduces by default (``exact=False``)
    and which lies within about 1e-4 of this optimum.  Satterthwaite df.

    Raises
    ------
    DataError
        When the covariance cannot be estimated (too many parameters, two visits never seen together,
        no positive definite covariance found).
    """
    _identifiable(pr)
    opt, ev, theta_vcov, singular = _optimum(pr, _starts(pr), reml=reml, r_start=None,
                                             optimizers=("newton", "bfgs"))
    inf = Inference(beta=ev.beta, vcov=ev.phi, phi=ev.phi, W=theta_vcov, P=ev.P, method="satterthwaite")
    return ProblemFit(inference=inf, sigma=ev.sigma, theta=np.asarray(opt.theta, float), loglik=-float(opt.f),
                      converged=bool(opt.converged), optimizer=opt.optimizer, singular=singular,
                      n_subjects=pr.n_subjects, n_obs=pr.n_obs)


def _plain_df(pr: Problem, dfm: str):
    """Residual (n - p) or between-within df, or None for the model-based methods."""
    if dfm == "residual":
        d = float(pr.n_obs - pr.p)
        return lambda c: d
    if dfm == "between-within":
        # coefficients that vary within subjects get the within df, the others the between df
        n_between_params = 1 + (len(pr.groups) - 1 if pr.groups else 0)
        between_df = float(pr.n_subjects - n_between_params)
        within_df = float(pr.n_obs - pr.n_subjects - (pr.p - n_between_params))
        within_cols = np.array([any(part.startswith(str(pr.columns.visit)) for part in name.split(":"))
                                for name in pr.design.names])

        def df_of(c):
            c = np.asarray(c)
            return within_df if np.any(within_cols & (np.abs(c) > 1e-12)) else between_df
        return df_of
    return None


def _contrast_tables(pr: Problem, inf: Inference, conf_level: float, plain_df):
    """Coefficients, LS-means and their differences between levels: one stack of contrasts, three tables.

    The LS-means are emmeans' reference grid (every visit x between level, the between level varying
    fastest); the differences are later minus earlier level at each visit (emmeans' ``revpairwise``),
    Tukey-adjusted when there are more than two levels.
    """
    p, nv = pr.p, len(pr.visits)
    ng = len(pr.groups)
    grid = reference_grid(nv, ng)
    pairs = [(a, b) for a in range(ng) for b in range(a + 1, ng)]
    diff_rows = np.array([grid[i * ng + b] - grid[i * ng + a] for i in range(nv) for a, b in pairs]).reshape(-1, p)
    num = contrast_numbers(inf, np.vstack([np.eye(p), grid, diff_rows]), conf_level=conf_level, plain_df=plain_df)
    end_grid = p + len(grid)
    coef = {k: v[:p] for k, v in num.items()}
    lsm = {k: v[p:end_grid] for k, v in num.items()}
    dif = {k: v[end_grid:] for k, v in num.items()}
    if ng > 2:  # emmeans adjusts the pairwise p-values with Tukey's method
        dif = tukey(dif, ng, conf_level)
    visits = list(pr.visits)
    if ng:
        lsm_args = ([v for v in visits for _ in range(ng)], [g for _ in visits for g in pr.groups], lsm)
        diff_args = ([v for v in visits for _ in pairs],
                     [f"{level_label(pr.groups[b])} - {level_label(pr.groups[a])}" for _ in visits for a, b in pairs],
                     dif)
    else:
        lsm_args, diff_args = (visits, None, lsm), ([], [], None)
    return (Deferred(tables.fixed_frame, (pr.design.names, coef)), Deferred(tables.lsmeans_frame, lsm_args),
            Deferred(tables.diffs_frame, diff_args))


def _covariance_matrices(pr: Problem, sigma: np.ndarray, theta: np.ndarray):
    """R's VarCorr matrix and the visit x visit covariance.

    For ``sp_exp`` the visit x visit matrix is taken at each visit's median time, and
    VarCorr's matrix is the 2 x 2 covariance of two measurements one time unit apart.
    """
    st = pr.structure
    if not st.spatial:
        return np.asarray(sigma), sigma
    t2 = np.where(pr.mask, pr.times, np.nan)
    med = np.nanmedian(t2, axis=0)
    d = np.abs(med[:, None] - med[None, :])[None]
    sigma = st.sigma(theta, pr.n_visits, d, order=0)[0][0]
    unit = np.array([[[0.0, 1.0], [1.0, 0.0]]])
    return np.asarray(st.sigma(theta, 2, unit, order=0)[0][0]), sigma
