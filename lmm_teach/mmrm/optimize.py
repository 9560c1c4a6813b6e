"""Minimising the MMRM objective: optimisers tried in order, the first that converges wins.

0. ``l-bfgs-b`` from R mmrm's standard start with R's ``optim`` settings
   (``factr = 1e7``, ``pgtol = 0``, 5 corrections, 100 iterations): what
   R's ``mmrm`` does, so that its numbers are reproduced to many digits (its
   stopping rule leaves the estimates within about 1e-4 of the exact optimum);
   used when ``exact=False`` (the default of ``fit_mmrm``).  Where it stops, the
   Hessian (which R's convergence rule needs) gives the Newton decrement, how far
   above the minimum it stopped: within ``R_SLACK`` the fit ends there, otherwise
   the optimisers below run and R's point is kept only if it is within
   ``R_SLACK`` of the minimum they find;
1. ``newton``: Newton-Raphson with the exact Hessian, a step limited to a
   trust radius, the Hessian's eigenvalues floored when it is not positive
   definite, and halving until the objective decreases (a few iterations from
   the moment-based start);
2. ``bfgs`` and ``l-bfgs-b`` (scipy) with the exact gradient;
3. ``nelder-mead`` without derivatives.

Converged means: the gradient is below tolerance and the Hessian is positive
definite (a minimum, not a saddle).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import optimize as sopt

from lmm_teach.mmrm.engine import Evaluation, evaluate
from lmm_teach.mmrm.problem import Problem

__all__ = ["OPTIMIZERS", "Optimum", "minimize"]

GRAD_TOL = 1e-5
R_SLACK = 1e-3  # how far below the exact optimum R's own optimiser may stop and still be kept


@dataclass(frozen=True)
class Optimum:
    theta: np.ndarray
    f: float
    converged: bool
    optimizer: str
    iterations: int
    message: str
    tried: tuple
    ev: Evaluation | None = None  # at theta, with gradient and Hessian (None when nothing was finite)


def _is_min(ev) -> bool:
    if ev.grad is None or ev.hess is None or not np.all(np.isfinite(ev.hess)):
        return False
    scale = max(1.0, abs(ev.f)) ** 0.5
    if np.max(np.abs(ev.grad)) > GRAD_TOL * scale:
        return False
    return _positive_definite(ev)


def _newton(pr: Problem, theta: np.ndarray, reml: bool, max_iter: int = 100):
    ev = evaluate(pr, theta, order=2, reml=reml)
    if not np.isfinite(ev.f):
        return theta, ev, 0, "the start values give a covariance matrix that is not positive definite"
    radius = 2.0
    for it in range(1, max_iter + 1):
        g, H = ev.grad, ev.hess
        w, U = np.linalg.eigh(H)
        floor = 1e-8 * max(1.0, np.abs(w).max())
        w_mod = np.where(w > floor, w, np.maximum(np.abs(w), floor))
        step = -U @ ((U.T @ g) / w_mod)
        norm = np.max(np.abs(step))
        if norm > radius:
            step *= radius / norm
        t = 1.0
        accepted = False
        for _ in range(40):
            cand = theta + t * step
            ev_c = evaluate(pr, cand, order=2, reml=reml)
            if np.isfinite(ev_c.f) and ev_c.f <= ev.f + 1e-4 * t * float(g @ step) + 1e-12 * abs(ev.f):
                accepted = True
                break
            t *= 0.5
        if not accepted:
            return theta, ev, it, "Newton: no step decreases the objective"
        df = ev.f - ev_c.f
        theta, ev = cand, ev_c
        if _is_min(ev) and df < 1e-10 * max(1.0, abs(ev.f)):
            return theta, ev, it, "converged"
        if _is_min(ev) and np.max(np.abs(step * t)) < 1e-9:
            return theta, ev, it, "converged"
    return theta, ev, max_iter, "Newton: iteration limit"


class _Objective:
    """``f(x)`` and ``grad(x)`` for scipy from one evaluation: scipy asks for them one after the other at
    the same point (its own ``jac=True`` memo costs more per step than this one).  ``bad`` is the value
    where the covariance is not positive definite (the gradient is then 0)."""

    def __init__(self, pr: Problem, reml: bool, bad: float):
        self.pr, self.reml, self.bad = pr, reml, bad
        self._key, self._grad = None, None

    def f(self, x: np.ndarray) -> float:
        ev = evaluate(self.pr, x, order=1, reml=self.reml)
        ok = np.isfinite(ev.f)
        self._key, self._grad = x.tobytes(), (ev.grad if ok else np.zeros_like(x))
        return ev.f if ok else self.bad

    def grad(self, x: np.ndarray) -> np.ndarray:
        if x.tobytes() != self._key:
            self.f(x)
        return self._grad


def _scipy(pr: Problem, theta: np.ndarray, reml: bool, method: str):
    obj = _Objective(pr, reml, 1e300)

    def fun0(x):
        ev = evaluate(pr, x, order=0, reml=reml)
        return ev.f if np.isfinite(ev.f) else 1e300

    if method == "nelder-mead":
        res = sopt.minimize(fun0, theta, method="Nelder-Mead",
                            options={"maxiter": 20000, "maxfev": 40000, "xatol": 1e-10, "fatol": 1e-12})
    else:
        res = sopt.minimize(obj.f, theta, jac=obj.grad, method={"bfgs": "BFGS", "l-bfgs-b": "L-BFGS-B"}[method],
                            options={"maxiter": 5000, "gtol": 1e-8} if method == "bfgs" else {"maxiter": 5000})
    x = res.x
    ev = evaluate(pr, x, order=2, reml=reml)
    # polish with Newton from there (cheap when close)
    if np.isfinite(ev.f):
        x2, ev2, _, _ = _newton(pr, x, reml, max_iter=20)
        if np.isfinite(ev2.f) and ev2.f <= ev.f:
            x, ev = x2, ev2
    return x, ev, int(res.get("nit", 0)), str(res.message)


def _r_lbfgsb(pr: Problem, theta: np.ndarray, reml: bool):
    """R's ``optim(method = "L-BFGS-B")`` with its default control, as mmrm calls it.

    Returns ``(theta, evaluation with Hessian, iterations, converged, message)``; converged is R's
    rule (the optimiser reports success and the Hessian is positive definite).
    """
    obj = _Objective(pr, reml, np.inf)
    res = sopt.minimize(obj.f, theta, jac=obj.grad, method="L-BFGS-B",
                        options={"maxcor": 5, "ftol": 1e7 * np.finfo(float).eps, "gtol": 0.0, "maxiter": 100})
    ev = evaluate(pr, res.x, order=2, reml=reml)
    ok = bool(res.success) and _positive_definite(ev)
    return res.x, ev, int(res.nit), ok, str(res.message)


def _positive_definite(ev) -> bool:
    if ev.hess is None or not np.isfinite(ev.f) or not np.all(np.isfinite(ev.hess)):
        return False
    w = np.linalg.eigvalsh(ev.hess)
    return bool(w[0] > 1e-10 * max(1.0, abs(w[-1])))


def _newton_decrement(ev) -> float:
    """``g' H^-1 g / 2``: how far the objective lies above the minimum of its quadratic model (H PD)."""
    return 0.5 * float(ev.grad @ np.linalg.solve(ev.hess, ev.grad))


#: The optimisers :func:`minimize` tries, in order.
OPTIMIZERS = ("newton", "bfgs", "l-bfgs-b", "nelder-mead")


def minimize(pr: Problem, starts: Callable[[], tuple[np.ndarray, np.ndarray | None]], *, reml: bool,
             r_start: np.ndarray | None = None, optimizers: tuple[str, ...] = OPTIMIZERS) -> Optimum:
    """Try the optimisers in order from ``start``; the first that reaches a minimum is kept.

    ``starts()`` gives ``(start, fallback_start)``, the second (or None) used when Newton's method meets
    a covariance that is not positive definite from the first; it is called only if the optimisers run.

    ``optimizers`` may leave out the slow last resorts (a Monte Carlo replicate whose likelihood has no
    interior optimum should fail in a second, not in a minute of Nelder-Mead).

    With ``r_start`` (R mmrm's standard start), R's own L-BFGS-B run comes first and is kept when it
    converged (R's rule: optimiser success and a positive definite Hessian) to within ``R_SLACK`` of
    the minimum: then the numbers are R's.  Where it stopped, the Newton decrement ``g' H^-1 g / 2``
    (from the Hessian R's rule needs anyway) says how far above the minimum that is; a larger one (a
    stop far short) sends the fit to the optimisers, and R's point is kept only if it lies within
    ``R_SLACK`` of the minimum they find.
    """
    r_run = None
    if r_start is not None:
        r_run = _r_lbfgsb(pr, r_start, reml)
        xr, evr, itr, okr, _ = r_run
        if okr and _newton_decrement(evr) <= R_SLACK:
            return Optimum(theta=xr, f=float(evr.f), converged=True, optimizer="l-bfgs-b", iterations=itr,
                           message="converged", tried=(("l-bfgs-b (as R mmrm)", "converged"),), ev=evr)
    start, fallback_start = starts()
    tried = []
    best = None
    for name in optimizers:
        x0 = start
        if best is not None and np.isfinite(best[1].f):
            x0 = best[0]
        if name == "newton":
            x, ev, it, msg = _newton(pr, x0, reml)
        else:
            x, ev, it, msg = _scipy(pr, x0, reml, name)
        ok = np.isfinite(ev.f) and _is_min(ev)
        tried.append((name, "converged" if ok else msg))
        if best is None or (np.isfinite(ev.f) and ev.f < best[1].f):
            best = (x, ev, name, it)
        if ok:
            if r_run is not None:
                xr, evr, itr, okr, msgr = r_run
                # R's own run is kept when it reached the same optimum (its stopping rule leaves it within
                # about 1e-4 of the maximum log-likelihood); a local optimum or a stop far short is not
                if okr and evr.f <= ev.f + R_SLACK:
                    return Optimum(theta=xr, f=float(evr.f), converged=True, optimizer="l-bfgs-b", iterations=itr,
                                   message="converged", tried=(("l-bfgs-b (as R mmrm)", "converged"),), ev=evr)
                tried.insert(0, ("l-bfgs-b (as R mmrm)", msgr if not okr else
                                 f"stopped {evr.f - ev.f:.3g} below the maximum log-likelihood"))
            return Optimum(theta=x, f=float(ev.f), converged=True, optimizer=name, iterations=it,
                           message="converged", tried=tuple(tried), ev=ev)
        if name == "newton" and not np.isfinite(ev.f) and fallback_start is not None:
            start = fallback_start
            best = None
    x, ev, name, it = best if best is not None else (start, None, "none", 0)
    return Optimum(theta=x, f=float(ev.f) if ev is not None else np.inf, converged=False, optimizer=name,
                   iterations=it, message="; ".join(f"{n}: {m}" for n, m in tried), tried=tuple(tried), ev=ev)
