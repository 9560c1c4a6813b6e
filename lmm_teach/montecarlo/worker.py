"""One chunk of a Monte Carlo study: simulate each replicate and analyse it.

This is the code a worker process runs.  It works on arrays (no DataFrames):
the fast array-level entry points of :mod:`lmm_teach.simulate`,
:mod:`lmm_teach.lmm.engine` and :mod:`lmm_teach.anova.algebra`.  The estimands
and tests of each analysis are described in :mod:`lmm_teach.montecarlo`.

Every analysis of every replicate is guarded: an exception, or a result that is
not a finite number, marks that analysis of that replicate as failed (with its
message kept) and the study goes on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr, ndtri, stdtr, stdtrit

from lmm_teach.anova.algebra import rm_anova_arrays
from lmm_teach.lmm.engine import fit_arrays
from lmm_teach.montecarlo.run import Chunk
from lmm_teach.simulate import SimArrays, simulate_arrays

__all__ = ["ANALYSES", "LABELS", "TESTS", "Plan", "run_chunk", "slots_for"]

#: The analyses a study can run, in display order.
ANALYSES = ("lmm", "lmm_wald", "lmm_categorical", "anova", "ols")

#: What a learner reads in the table's ``method`` column.
LABELS = {
    "lmm": "LMM, numeric time",
    "lmm_wald": "LMM, numeric time (Wald z)",
    "lmm_categorical": "LMM, categorical time",
    "anova": "RM-ANOVA, complete cases",
    "ols": "OLS, ignoring subjects",
}

#: The test behind each analysis' rejection rate.
TESTS = {
    "lmm": "t, Satterthwaite df",
    "lmm_wald": "z (Wald)",
    "lmm_categorical": "F, Satterthwaite df",
    "anova": "F, Greenhouse-Geisser",
    "ols": "t, n - p df",
}

FIELDS = ("estimate", "se", "p", "ci_low", "ci_high", "n_subjects", "n_obs")


def slots_for(analyses: tuple[str, ...], arms: bool) -> tuple[tuple[str, str], ...]:
    """The (analysis, hypothesis) pairs of a study, in table order."""
    hyps = ("time", "arm x time") if arms else ("time",)
    return tuple((a, h) for a in analyses for h in hyps)


@dataclass(frozen=True)
class Plan:
    """What a worker needs besides the seeds (small and picklable)."""

    design: object  # lmm_teach.design.Design
    analyses: tuple[str, ...]
    alpha: float


# --------------------------------------------------------------------------- helpers
def _t_ci(est: float, se: float, df: float, alpha: float) -> tuple[float, float, float]:
    """Two-sided t-test p-value and (1 - alpha) CI (df = inf gives the z versions)."""
    if not (np.isfinite(est) and np.isfinite(se) and se > 0 and df > 0):
        return np.nan, np.nan, np.nan
    if np.isinf(df):
        p = 2.0 * float(ndtr(-abs(est) / se))
        q = float(-ndtri(alpha / 2.0))
    else:
        p = 2.0 * float(stdtr(df, -abs(est) / se))
        q = float(stdtrit(df, 1.0 - alpha / 2.0))
    return p, est - q * se, est + q * se


def _linear_trend_weights(times) -> np.ndarray:
    """Least-squares slope weights: slope = sum_k w_k m_k for visit means m_k at times t_k."""
    t = np.asarray(times, float)
    c = t - t.mean()
    return c / (c @ c)


def _hyp_contrasts(arms: bool):
    """Weights of the two arms in each hypothesis: ("time": mean of the arms'
    slopes, as the type-III test of time; "arm x time": B minus A)."""
    if arms:
        return {"time": (0.5, 0.5), "arm x time": (-1.0, 1.0)}
    return {"time": (1.0,)}


# --------------------------------------------------------------------------- analyses
def _check_rank(X: np.ndarray, why: str) -> None:
    """Refuse a fixed-effects design whose coefficients are not all estimable."""
    if np.linalg.matrix_rank(X) < X.shape[1]:
        raise ValueError(f"the fixed effects cannot all be estimated ({why})")


def _numeric_design(s: SimArrays) -> np.ndarray:
    """Columns (Intercept), time [, armB, time:armB] of ``y ~ time [* arm]``."""
    n = s.y.size
    cols = [np.ones(n), s.time]
    if s.arm is not None:
        a = s.arm.astype(float)
        cols += [a, s.time * a]
    X = np.column_stack(cols)
    _check_rank(X, "an arm has no measurement after baseline" if s.arm is not None
                else "no measurement after baseline")
    return X


def analyse_ols(s: SimArrays, design, alpha: float) -> dict:
    """Ordinary least squares of ``y ~ time [* arm]``, as if every row were a new subject."""
    n = s.y.size
    X = _numeric_design(s)
    xtx_inv = np.linalg.inv(X.T @ X)
    beta = xtx_inv @ (X.T @ s.y)
    resid = s.y - X @ beta
    df = n - X.shape[1]
    cov = xtx_inv * (resid @ resid / df)
    out = {}
    for h, L in _numeric_contrasts(s.arm is not None).items():
        est, se = float(L @ beta), float(np.sqrt(L @ cov @ L))
        p, lo, hi = _t_ci(est, se, df, alpha)
        out[h] = dict(estimate=est, se=se, p=p, ci_low=lo, ci_high=hi, n_subjects=design.n_subjects, n_obs=n)
    return out


def _numeric_contrasts(arms: bool) -> dict[str, np.ndarray]:
    """Contrasts on the coefficients (Intercept), time [, armB, time:armB]."""
    if arms:
        return {"time": np.array([0.0, 1.0, 0.0, 0.5]), "arm x time": np.array([0.0, 0.0, 0.0, 1.0])}
    return {"time": np.array([0.0, 1.0])}


def complete_cases(s: SimArrays, m: int, k: int) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """The subjects x visits matrix of the subjects seen at every visit.

    Returns ``(Y, groups, keep)``: Y (N x K), the arm code of each row (None
    without arms) and the boolean mask of the complete subjects.
    """
    counts = np.bincount(s.subject, minlength=m)
    keep = counts == k
    full = np.full((m, k), np.nan)
    full[s.subject, s.visit] = s.y
    groups = None
    if s.arm is not None:
        arm_of = np.zeros(m, dtype=np.intp)
        arm_of[s.subject] = s.arm
        groups = arm_of[keep]
    return full[keep], groups, keep


def analyse_anova(s: SimArrays, design, alpha: float) -> dict:
    """Complete-case RM-ANOVA (GG-corrected F tests) and its linear-trend estimate.

    The estimate is the least-squares slope of the complete cases' visit means
    on the planned visit times (per arm), which equals the mean of the complete
    subjects' own slopes; its SE and CI come from those per-subject slopes (the
    linear polynomial contrast of the RM-ANOVA with its own error term, as
    SPSS prints under "Tests of within-subjects contrasts").
    """
    k = design.n_visits
    Y, groups, keep = complete_cases(s, design.n_subjects, k)
    if groups is not None:
        n_g = np.bincount(groups, minlength=2)
        if n_g.min() < 2:
            # rm_anova_arrays would see a single group and drop the arm factor
            arm = "AB"[int(np.argmin(n_g))]
            raise ValueError(f"fewer than 2 complete subjects in arm {arm}")
    elif Y.shape[0] < 2:
        raise ValueError("fewer than 2 complete subjects")
    res = rm_anova_arrays(Y, groups)
    p_of = dict(zip(res["terms"], res["p_gg"], strict=True))
    b = Y @ _linear_trend_weights(design.visit_times)  # each complete subject's own slope
    n_cc = Y.shape[0]
    weights = _hyp_contrasts(s.arm is not None)
    if groups is None:
        means, n_g = np.array([b.mean()]), np.array([n_cc])
        resid = b - means[0]
    else:
        n_g = np.bincount(groups, minlength=2)
        means = np.array([b[groups == g].mean() for g in (0, 1)])
        resid = b - means[groups]
    df = n_cc - len(n_g)
    s2 = resid @ resid / df  # pooled variance of the subjects' slopes
    out = {}
    for h, w in weights.items():
        w = np.asarray(w)
        est = float(w @ means)
        se = float(np.sqrt(s2 * np.sum(w * w / n_g)))
        _, lo, hi = _t_ci(est, se, df, alpha)
        p = float(p_of["within" if h == "time" else "between:within"])
        out[h] = dict(estimate=est, se=se, p=p, ci_low=lo, ci_high=hi,
                      n_subjects=n_cc, n_obs=n_cc * k)
    return out


def _lmm_options(s: SimArrays, design) -> dict:
    """The random part the design calls for: a random slope if subjects have
    their own slopes, a clinic intercept if there are clinics."""
    return {"time": s.time, "random_slope": design.sd_slope > 0,
            "cluster": s.clinic if design.n_clinics else None}


def analyse_lmm(s: SimArrays, design, alpha: float) -> dict:
    """LMM with numeric time, REML: Satterthwaite t and Wald z for each hypothesis.

    ``y ~ time [* arm] + (1 | subject)`` (``(time | subject)`` with random
    slopes, ``+ (1 | clinic)`` with clinics).
    """
    n = s.y.size
    X = _numeric_design(s)
    L = _numeric_contrasts(s.arm is not None)
    opts = _lmm_options(s, design)
    fit = fit_arrays(s.y, X, s.subject, contrasts=L, **opts)
    return _lmm_cells(fit, L, alpha, n_subjects=design.n_subjects, n_obs=n)


def _lmm_cells(fit, contrasts: dict, alpha: float, *, n_subjects: int, n_obs: int,
               tests: dict | None = None) -> dict:
    """Estimate, SE, Satterthwaite and Wald p and CI of each 1-df contrast.

    ``tests`` maps a hypothesis to the name of the (multi-df) F test that
    gives its p-value instead of the contrast's own t test.
    """
    if not fit.converged:
        # not an optimum: counted as a failed fit (lme4 would warn), never used as one
        raise ValueError("the REML fit did not converge" + (f" ({fit.reason})" if fit.reason else ""))
    out = {}
    for h, l in contrasts.items():
        l = np.asarray(l, float)
        est, se = float(l @ fit.beta), float(np.sqrt(l @ fit.cov_beta @ l))
        df = fit.tests[h][2]  # the Satterthwaite df of this contrast (lmerTest contest1D)
        p, lo, hi = _t_ci(est, se, df, alpha)
        wp, wlo, whi = _t_ci(est, se, np.inf, alpha)
        if tests is not None:
            p = float(fit.tests[tests[h]][3])
        out[h] = dict(estimate=est, se=se, p=p, ci_low=lo, ci_high=hi, wald_p=wp, wald_ci_low=wlo,
                      wald_ci_high=whi, n_subjects=n_subjects, n_obs=n_obs,
                      singular=fit.singular)
    return out


def analyse_lmm_categorical(s: SimArrays, design, alpha: float) -> dict:
    """LMM with categorical time: type-III F tests (Satterthwaite) of visit and
    visit:arm, and the linear trend of the model's visit means as the estimate.

    ``y ~ visit [* arm] + (1 | subject) [+ (1 | clinic)]``, REML, with
    treatment coding (visit 0 and arm A the references).
    """
    n, k = s.y.size, design.n_visits
    V = np.zeros((n, k - 1))
    later = s.visit > 0
    V[np.flatnonzero(later), s.visit[later] - 1] = 1.0
    cols = [np.ones((n, 1)), V]
    arms = s.arm is not None
    if arms:
        a = s.arm.astype(float)[:, None]
        cols += [a, V * a]
    X = np.hstack(cols)
    empty = np.flatnonzero(X.sum(axis=0) == 0)
    if empty.size:
        # e.g. nobody left at the last visit (in one arm): that mean is not estimable
        raise ValueError("a visit has no measurements" + (" in an arm" if empty[0] > k else ""))
    _check_rank(X, "a visit was attended in one arm only")
    w = _linear_trend_weights(design.visit_times)[1:]  # visit 0 is the reference: its weight drops out
    zeros = np.zeros
    if arms:
        # coefficient blocks: [intercept | visit 1..k-1 | armB | visit:armB 1..k-1]
        main = np.hstack([zeros((k - 1, 1)), np.eye(k - 1), zeros((k - 1, 1)), 0.5 * np.eye(k - 1)])
        inter = np.hstack([zeros((k - 1, k + 1)), np.eye(k - 1)])
        trend = {"time": w @ main, "arm x time": w @ inter}
        f_tests = {"visit": main, "visit:arm": inter}
        which = {"time": "visit", "arm x time": "visit:arm"}
    else:
        main = np.hstack([zeros((k - 1, 1)), np.eye(k - 1)])
        trend = {"time": w @ main}
        f_tests = {"visit": main}
        which = {"time": "visit"}
    fit = fit_arrays(s.y, X, s.subject, contrasts={**trend, **f_tests},
                     cluster=s.clinic if design.n_clinics else None)
    return _lmm_cells(fit, trend, alpha, n_subjects=design.n_subjects, n_obs=n, tests=which)


# --------------------------------------------------------------------------- the chunk
def _short(exc: BaseException) -> str:
    """One line for the study's warnings: our own messages as they are, anything
    unexpected (a bug somewhere) with its type, so that it is not mistaken for
    a property of the data."""
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if not isinstance(exc, ValueError) or not msg:
        msg = f"unexpected {type(exc).__name__}" + (f" ({msg})" if msg else "")
    return msg[:200]


def run_chunk(chunk: Chunk) -> dict:
    """Simulate and analyse replicates ``chunk.start .. chunk.stop - 1``.

    Returns plain arrays (cheap to send back from a process): ``rep`` (n,),
    for each of :data:`FIELDS` a float array (n, n_slots), ``singular`` and
    ``failed`` bool arrays (n, n_slots), ``errors`` a list of
    ``(rep, analysis, message)`` and ``n``.
    """
    plan: Plan = chunk.payload
    design, alpha = plan.design, plan.alpha
    slots = slots_for(plan.analyses, design.arms)
    col = {slot: j for j, slot in enumerate(slots)}
    n, n_slots = chunk.stop - chunk.start, len(slots)
    out = {f: np.full((n, n_slots), np.nan) for f in FIELDS}
    singular = np.zeros((n, n_slots), bool)
    failed = np.zeros((n, n_slots), bool)
    errors: list[tuple[int, str, str]] = []
    wanted = plan.analyses
    # lmm and lmm_wald share one fit; so do the categorical LMM's hypotheses
    need_lmm = "lmm" in wanted or "lmm_wald" in wanted
    for r, rep in enumerate(range(chunk.start, chunk.stop)):
        try:
            sim = simulate_arrays(design, np.random.Generator(np.random.PCG64(chunk.seeds.child(rep))))
        except Exception as exc:  # a broken replicate must not end the study
            failed[r, :] = True
            errors += [(rep, a, "simulation failed: " + _short(exc)) for a in wanted]
            continue
        results: dict[str, dict] = {}
        for name, fn in (("lmm", analyse_lmm if need_lmm else None),
                         ("lmm_categorical", analyse_lmm_categorical if "lmm_categorical" in wanted else None),
                         ("anova", analyse_anova if "anova" in wanted else None),
                         ("ols", analyse_ols if "ols" in wanted else None)):
            if fn is None:
                continue
            try:
                # degenerate replicates give NaN (then counted as failed), not console noise
                with np.errstate(all="ignore"):
                    res = fn(sim, design, alpha)
            except Exception as exc:
                for a in ((name, "lmm_wald") if name == "lmm" else (name,)):
                    if a in wanted:
                        errors.append((rep, a, _short(exc)))
                        for (b, _h), j in col.items():
                            if b == a:
                                failed[r, j] = True
                continue
            if name == "lmm":
                results.update(_split_wald(res))
            else:
                results[name] = res
        for (a, h), j in col.items():
            if failed[r, j]:
                continue
            cell = results[a][h]
            for f in FIELDS:
                out[f][r, j] = cell[f]
            singular[r, j] = bool(cell.get("singular", False))
            if not (np.isfinite(cell["estimate"]) and np.isfinite(cell["p"])):
                failed[r, j] = True
                errors.append((rep, a, "no finite estimate or p-value"))
    return {"n": n, "rep": np.arange(chunk.start, chunk.stop), **out, "singular": singular,
            "failed": failed, "errors": errors}


def _split_wald(res: dict) -> dict:
    """One LMM fit answers two analyses: Satterthwaite t ("lmm") and Wald z ("lmm_wald")."""
    lmm, wald = {}, {}
    for h, cell in res.items():
        lmm[h] = {k: v for k, v in cell.items() if not k.startswith("wald_")}
        wald[h] = dict(lmm[h], p=cell["wald_p"], ci_low=cell["wald_ci_low"], ci_high=cell["wald_ci_high"])
    return {"lmm": lmm, "lmm_wald": wald}
