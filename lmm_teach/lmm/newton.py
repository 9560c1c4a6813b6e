"""Newton's method in several theta at once: differences in one batch, bounds, an exact finish.

The gradient and Hessian of the profiled deviance come from central
differences evaluated in one batch (:func:`_stencil`); the step is a damped
Newton step inside a trust radius, shortened to respect the bounds theta >= 0
of the diagonal of T and of theta_c (a boundary optimum is reached exactly).
Without a cluster level, the last steps use the exact derivatives of
:mod:`lmm_teach.lmm.derivatives`.  Called by :func:`lmm_teach.lmm.optimize.optimize`.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from lmm_teach.lmm.derivatives import analytic, supports_analytic
from lmm_teach.lmm.deviance import Problem, deviance

__all__ = ["newton_minimize"]


@functools.lru_cache(maxsize=8)
def _stencil(k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The central-difference stencil: unit offsets (the centre, +-e_i for the gradient, +-e_i for the
    Hessian's diagonal, +-e_i +-e_j for each pair i < j), which rows use the gradient's step, the pairs."""
    eye = np.eye(k)
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    cross = []
    for i, j in pairs:
        for si, sj in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
            d = np.zeros(k)
            d[i], d[j] = si, sj
            cross.append(d)
    unit = np.vstack([np.zeros((1, k)), eye, -eye, eye, -eye] + ([np.array(cross)] if cross else []))
    grad_rows = np.zeros((unit.shape[0], 1), dtype=bool)
    grad_rows[1:2 * k + 1] = True
    I = np.array([i for i, _ in pairs], dtype=np.intp)
    J = np.array([j for _, j in pairs], dtype=np.intp)
    for a in (unit, grad_rows, I, J):
        a.setflags(write=False)
    return unit, grad_rows, I, J


@functools.lru_cache(maxsize=8)
def _stencil_factors(k: int) -> tuple[np.ndarray, list]:
    """The stencil of :func:`_stencil` with its steps as fractions of the scale (1e-5 for the
    gradient's rows, 1e-3 for the Hessian's), and its pairs as Python tuples."""
    unit, grad_rows, I, J = _stencil(k)
    ufac = unit * np.where(grad_rows, 1e-5, 1e-3)
    ufac.setflags(write=False)
    return ufac, list(zip(I.tolist(), J.tolist(), strict=True))


_ALPHAS = 2.0 ** -np.arange(1, 31)
#: Below this promised decrease of the deviance, Newton finishes with exact steps (see newton_minimize).
_FINISH = 1e-5
#: Converged when the full Newton step promises less than this decrease of the deviance (the
#: central differences resolve it: their gradient's rounding noise is ~1e-8 of a deviance ~1e3).
_CONVERGED = 1e-11


def _damped_step(w: np.ndarray, V: np.ndarray, c: np.ndarray, radius: float) -> np.ndarray:
    """Levenberg-Marquardt step ``-(H + mu I)^-1 g`` with ``mu >= 0`` so that ``|step| <= radius``.

    ``H = V diag(w) V'`` with ``w > 0`` and ``c = V'g``; mu solves the secular
    equation by Newton's method on ``1/|s(mu)| - 1/radius`` (More & Sorensen 1983).
    """
    mu = 0.0
    for _ in range(50):
        s = c / (w + mu)
        norm = float(np.sqrt(s @ s))
        if norm <= radius * (1.0 + 1e-6):
            break
        d3 = float(np.sum(c * c / (w + mu) ** 3))
        mu += (norm / radius - 1.0) * norm**2 / d3
    return -V @ (c / (w + mu))


def newton_minimize(pr: Problem, free: np.ndarray, start: np.ndarray, reml: bool, trace: list | None = None) -> tuple:
    """A damped Newton method over the free coordinates, with bounds theta_diag >= 0.

    Each iteration evaluates, in one batch, the deviance at the trial point and
    a central-difference gradient and Hessian around it.  The Hessian is made
    positive definite through its eigenvalues (|lambda|, floored); the step is
    Levenberg-Marquardt damped to stay within a trust radius (which doubles
    after each accepted step), then shortened so that no bounded coordinate
    falls below a tenth of its value (or, once it is below 1e-3, below 0: a
    boundary optimum is reached exactly).  Shortening keeps the direction, so
    the step always descends; a trial point that does not lower the deviance
    is backtracked along it (Armijo, one batch of step lengths).  A bounded
    coordinate at 0 has a zero gradient there (the deviance is even in it):
    it stays at 0 when its curvature is positive (a boundary optimum) and is
    pushed inside when it is negative.  Converged when the full Newton step
    promises less than ``_CONVERGED`` (1e-11) of deviance.

    Returns ``(theta, deviance, converged, message, pieces)``, ``pieces`` the
    exact derivatives at theta when the exact finish below converged.

    With exact derivatives (subject random effects), once
    the step promises less than ``_FINISH``, the Hessian is positive definite
    and the bounded theta stay above 1e-3, the full Newton step is taken and checked
    with one exact evaluation instead of another batch: accepted (converged)
    when it lowers the deviance and the exact Newton step from there promises
    less than ``_CONVERGED``.  Its derivatives are kept for the Satterthwaite df.

    ``trace``: a list to which each point where derivatives are taken is
    appended as ``("newton", theta, deviance)`` (the full internal theta).
    """
    idx = np.flatnonzero(free)
    k = idx.size
    rk = range(k)
    # The bookkeeping is on Python floats: k is at most 4, and each numpy call
    # on such tiny arrays costs more than the arithmetic.
    bounded = pr.bounded[idx].tolist()
    exact = supports_analytic(pr)
    pieces = None
    ufac, pairs = _stencil_factors(k)

    def dev(X):
        if k == start.size:  # every theta free
            return deviance(pr, X, reml=reml)
        th = np.repeat(start[None], X.shape[0], axis=0)
        th[:, idx] = X
        return deviance(pr, th, reml=reml)

    x = [max(v, 0.0) if b else v for v, b in zip(start[idx].tolist(), bounded, strict=True)]
    radius = 1.0  # theta is an SD ratio (time rescaled): steps of order one are large
    x_prev = f_prev = d_prev = slope_prev = None
    converged, message = False, "the Newton iterations did not converge"
    f = np.inf
    for _ in range(100):
        scale = [max(abs(v), 0.1) for v in x]
        # the centre, +-hg e_i (gradient), +-hh e_i and +-hh e_i +-hh e_j (Hessian): hg = 1e-5, hh = 1e-3 of scale
        F = dev(np.array(x) + ufac * np.array(scale)).tolist()
        f = F[0]
        if trace is not None:
            trace.append(("newton", _full(start, idx, x), f))
        if f_prev is not None:
            if not f < f_prev:  # the trial point failed: backtrack along the same (descent) direction
                fc = dev(np.array(x_prev) + _ALPHAS[:, None] * np.array(d_prev))
                ok = fc <= f_prev + 1e-4 * _ALPHAS * slope_prev
                j = int(np.argmax(ok)) if ok.any() else int(np.argmin(fc))
                if not fc[j] < f_prev:  # no descent left: the optimum, up to the deviance's noise
                    x, f = x_prev, f_prev
                    converged, message = True, ""
                    break
                alpha = float(_ALPHAS[j])
                x = [a + alpha * d for a, d in zip(x_prev, d_prev, strict=True)]
                radius = max(math.sqrt(sum(d * d for d in d_prev)) * alpha, 1e-8)
                f_prev = None  # re-derive at the backtracked point
                continue
            radius = max(radius, 2.0 * math.sqrt(sum(d * d for d in d_prev)))
        hg = [1e-5 * v for v in scale]
        hh = [1e-3 * v for v in scale]
        g = [(F[1 + i] - F[1 + k + i]) / (2.0 * hg[i]) for i in rk]
        c0 = 2 * k + 1
        H = [[0.0] * k for _ in rk]
        for i in rk:
            H[i][i] = (F[c0 + i] - 2.0 * f + F[c0 + k + i]) / (hh[i] * hh[i])
        for n, (i, j) in enumerate(pairs):
            q0, q1, q2, q3 = F[c0 + 2 * k + 4 * n: c0 + 2 * k + 4 * n + 4]
            H[i][j] = H[j][i] = (q0 - q1 - q2 + q3) / (4.0 * hh[i] * hh[j])
        at_bound = [b and v <= 0.0 for b, v in zip(bounded, x, strict=True)]
        push = [at_bound[i] and H[i][i] < 0 for i in rk]
        if any(push):  # 0 is a maximum along these coordinates: leave it
            x = [0.1 * scale[i] if push[i] else x[i] for i in rk]
            f_prev = None
            continue
        act = [i for i in rk if not (at_bound[i] and g[i] >= -1e-8)]
        if not act:
            converged, message = True, ""
            break
        full = len(act) == k
        w, V = np.linalg.eigh(np.array(H if full else [[H[i][j] for j in act] for i in act]))
        positive = bool(w[0] > 0.0)
        w = np.maximum(np.abs(w), 1e-8 * max(np.abs(w).max(), 1e-8))
        c = V.T @ np.array([g[i] for i in act])
        promise = float(c @ (c / w))
        if promise < _CONVERGED:  # the full Newton step promises nothing more
            converged, message = True, ""
            break
        if exact and full and positive and promise < _FINISH:
            xa = np.array(x)
            done, x_new, f_new, pc = _exact_finish(pr, xa, f, xa - V @ (c / w), pr.bounded[idx], reml,
                                                   start, idx)
            if done:
                x, f, pieces = x_new.tolist(), f_new, (pc if k == pr.n_theta else None)
                converged, message = True, ""
                break
            if x_new is not xa:  # a better point, not yet converged: derive again (batch) there
                x, f_prev = x_new.tolist(), None
                continue
        step = [0.0] * k
        for i, s_i in zip(act, _damped_step(w, V, c, radius).tolist(), strict=True):
            step[i] = s_i
        # the longest fraction of the step that keeps the bounded coordinates
        # above a tenth of their value (above 0 once they are small)
        floor = [0.1 * v if v > 1e-3 else 0.0 for v in x]
        shrink = [i for i in rk if bounded[i] and step[i] < 0]
        alpha = min(1.0, min((floor[i] - x[i]) / step[i] for i in shrink)) if shrink else 1.0
        new = [x[i] + alpha * step[i] for i in rk]
        for i in rk:
            if bounded[i]:
                if floor[i] == 0.0 and new[i] < 1e-12 * scale[i]:
                    new[i] = 0.0  # land exactly on the bound
                new[i] = max(new[i], 0.0)
        d_prev = [new[i] - x[i] for i in rk]
        x_prev, f_prev, slope_prev = x, f, sum(g[i] * d_prev[i] for i in rk)
        x = new
    # Below lme4's singular tolerance the deviance is flat to rounding in a
    # bounded coordinate (it is even there): prefer the boundary when as good.
    tiny = [bounded[i] and 0.0 < x[i] < 1e-4 for i in rk]
    if any(tiny):
        x0 = [0.0 if tiny[i] else x[i] for i in rk]
        f0 = float(dev(np.array([x0]))[0])
        if f0 <= f + 1e-9 * max(1.0, abs(f)):
            x, f, pieces = x0, min(f, f0), None
    theta = _full(start, idx, x)
    if trace is not None and (not trace or trace[-1][2] != f):
        trace.append(("newton", theta.copy(), float(f)))
    return theta, float(f), converged, message, pieces


def _full(start: np.ndarray, idx: np.ndarray, x) -> np.ndarray:
    theta = np.array(start, dtype=float)
    theta[idx] = x
    return theta


def _exact_finish(pr: Problem, x: np.ndarray, f: float, new: np.ndarray, bounded: np.ndarray, reml: bool,
                  start: np.ndarray, idx: np.ndarray):
    """Newton steps with the exact derivatives from ``x`` (deviance ``f``), the first to ``new``.

    Steps are taken while they stay well inside the bounds (above 1e-3: near
    a bound the batch loop lands on it exactly), lower the deviance and the
    Hessian stays positive definite; at most three (from a promise below
    ``_FINISH`` the second is usually the last).  Returns ``(converged, x, f,
    pieces)``: the last point that lowered the deviance, with its exact
    derivatives when converged (the next step promises less than
    ``_CONVERGED``).  ``x`` holds the free theta ``idx`` (the others as in
    ``start``): the derivatives are those of the free coordinates.
    """
    sub = idx.size < start.size
    for _ in range(3):
        if not (np.all(new[bounded] > 1e-3) and np.all(x[bounded] > 1e-3)):
            break
        pc = analytic(pr, _full(start, idx, new) if sub else new, reml=reml)
        if pc is None or not pc.dev <= f:
            break
        x, f = new, pc.dev
        grad, hess = (pc.grad[idx], pc.hess[np.ix_(idx, idx)]) if sub else (pc.grad, pc.hess)
        w, V = np.linalg.eigh(hess)
        if not w[0] > 0.0:
            break
        c = V.T @ grad
        if float(c @ (c / w)) < _CONVERGED:
            return True, x, f, pc
        new = x - V @ (c / w)
    return False, x, f, None
