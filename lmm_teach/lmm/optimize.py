"""Minimising the profiled deviance over theta (the relative covariance factor).

One free coordinate (a random intercept, or one variance of a reduced model):
a batched bracketing search on a log grid that contains the boundary 0, then,
for the subject intercept, a zoom and Newton steps safeguarded by the
bracket, and for a cluster variance zooms and a parabola.  Several: a
projected Newton method whose gradient and Hessian are central differences
evaluated in one batch.  Both finish, for the model itself, with the exact
derivatives of :mod:`lmm_teach.lmm.derivatives`, which then also serve the
Satterthwaite df.  Bounded coordinates
(the diagonal of T, theta_c) have lower bound 0, as in lme4; a boundary
optimum comes out exactly 0.

Everything stays in numpy on purpose: scipy's compiled L-BFGS-B, with its own
BLAS thread pool, ran about 100 times slower interleaved with numpy's BLAS
calls on a busy two-core machine (measured: 1.4 ms per iteration instead of
0.004 ms).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace

import numpy as np

from lmm_teach.lmm.derivatives import Pieces, analytic, supports_analytic
from lmm_teach.lmm.deviance import Problem, deviance, linear_deviance

__all__ = ["Optimum", "optimize", "slope_start", "intercept_view"]


@dataclass(frozen=True)
class Optimum:
    theta: np.ndarray
    dev: float
    converged: bool
    message: str
    # the exact derivatives at theta when the search computed them (Newton in the
    # subject intercept); ``pieces_of`` says for which problem (a reduced fit
    # works on an intercept-only view of it)
    pieces: Pieces | None = None
    pieces_of: Problem | None = None


def intercept_view(pr: Problem) -> Problem:
    """The same data with ``(1 | subject)`` only: the deviance of ``pr`` at theta = (a, 0, ..., 0).

    With the slope's theta and the cluster's at 0, ``P_k`` reduces to
    ``a^2 / (1 + a^2 n_k)`` times the S00 block, and the clinic step of
    :func:`~lmm_teach.lmm.deviance.evaluate` changes nothing.
    """
    if pr.q == 1 and not pr.n_clusters:
        return pr
    K = pr.count.size
    zeros = np.zeros(K)
    return replace(pr, q=1, n_clusters=0, t_scale=1.0, z01=zeros, z11=zeros, S=pr.S[:K], R1=np.zeros((K, pr.m)),
                   cluster_starts=np.zeros(0, dtype=np.intp), ZtG=pr.ZtG[:, :1],
                   subject_cluster=np.zeros(0, dtype=np.intp))


def _diag_index(pr: Problem) -> list[int]:
    """Positions of theta that are bounded below by 0."""
    return [j for j, lo in enumerate(pr.lower) if lo == 0.0]


# theta is an SD ratio (random effect / residual): 1e-4 ... 1e3 covers every
# plausible fit; beyond, the grid is extended.
_GRID = np.concatenate(([0.0], np.logspace(-4, 3, 43)))
_GRID.setflags(write=False)


def _grid_1d(dev) -> tuple[np.ndarray, np.ndarray, int]:
    """A log grid of theta_j with the boundary 0, extended upwards while the minimum is at its end."""
    xs = _GRID
    fs = dev(xs)
    i = int(np.argmin(fs))
    while i == len(xs) - 1 and xs[-1] < 1e8:
        xs = xs[-1] * np.logspace(0, 2, 9)
        fs = dev(xs)
        i = int(np.argmin(fs))
    return xs, fs, i


def _snap_to_boundary(dev, best: float, fbest: float) -> tuple[float, float]:
    """Below lme4's singular tolerance the deviance is flat to rounding (it is even
    in theta): prefer the boundary itself when it is as good."""
    if 0.0 < best < 1e-4:
        f0 = float(dev([0.0])[0])
        if f0 <= fbest + 1e-9 * max(1.0, abs(fbest)):
            return 0.0, min(f0, fbest)
    return best, fbest


def _optimize_1d(pr: Problem, j: int, base: np.ndarray, reml: bool) -> Optimum:
    """Minimise over theta_j >= 0 by batched bracketing: a log grid with 0, then zooms.

    Each stage evaluates 129 points of the current bracket in one call and keeps
    the two intervals around the best, so the bracket shrinks 64-fold; a final
    parabola through the best three points polishes the interior minimum.
    theta_j = 0 is on every grid that touches the boundary, so a boundary
    optimum comes out exactly 0 (as lme4's does).  The subject intercept alone
    (``j = 0``, the other theta at 0) goes to :func:`_optimize_intercept`.
    """
    if j == 0 and not np.any(base[1:]):
        return _optimize_intercept(pr, base, reml)

    def dev(values):
        th = np.repeat(base[None], len(values), axis=0)
        th[:, j] = values
        return deviance(pr, th, reml=reml)

    xs, fs, i = _grid_1d(dev)
    if not np.isfinite(fs[i]):
        return Optimum(base.copy(), np.inf, False, "the deviance could not be evaluated")
    return _zoom_1d(dev, xs, fs, i, base, j)


def _zoom_1d(dev, xs, fs, i, base, j) -> Optimum:
    """Zoom into the grid's bracket around its best point (129 points a stage), then a parabola."""
    best, fbest = float(xs[i]), float(fs[i])
    lo, hi = xs[max(i - 1, 0)], xs[min(i + 1, len(xs) - 1)]
    for _ in range(12):
        # the parabola below is accurate to ~width^2: stop zooming at 1e-4
        if hi - lo <= 1e-4 * max(best, 1e-3):
            break
        xs = np.linspace(lo, hi, 129)
        fs = dev(xs)
        i = int(np.argmin(fs))
        if fs[i] <= fbest:
            best, fbest = float(xs[i]), float(fs[i])
        lo, hi = xs[max(i - 1, 0)], xs[min(i + 1, 128)]
    if 0 < i < len(xs) - 1:  # parabolic vertex through the best point and its neighbours
        x0, x1, x2 = xs[i - 1: i + 2]
        f0, f1, f2 = fs[i - 1: i + 2]
        den = (x1 - x0) * (f1 - f2) - (x1 - x2) * (f1 - f0)
        if den != 0.0:
            xv = x1 - 0.5 * ((x1 - x0) ** 2 * (f1 - f2) - (x1 - x2) ** 2 * (f1 - f0)) / den
            if x0 < xv < x2:
                fv = float(dev([xv])[0])
                if fv < fbest:
                    best, fbest = float(xv), fv
    best, fbest = _snap_to_boundary(dev, best, fbest)
    theta = base.copy()
    theta[j] = best
    ok = best < 1e8
    return Optimum(theta, fbest, ok, "" if ok else "the variance ratio grows without bound")


def _optimize_intercept(pr: Problem, base: np.ndarray, reml: bool) -> Optimum:
    """Minimise over the subject intercept's theta_0 >= 0, the other theta at 0.

    The grid of :func:`_grid_1d` brackets the minimum and one zoom
    (``_ZOOM`` points) narrows the bracket; a parabola through the zoom's best
    point and its neighbours starts Newton steps (on the intercept-only view of
    the problem) whose derivatives are central differences evaluated in one
    batch (the stencil of :func:`_optimize_nd`), each kept inside the bracket
    (the sign of the derivative shrinks it; a step that leaves it is replaced
    by bisection).  For the model itself (not a reduced one), once the steps
    are below 1e-4 of theta the exact derivatives take over (one or two
    evaluations), and the last one is kept for the Satterthwaite df.
    Converged when the next step would change theta by less than 1e-9 of
    itself; a result no better than the grid falls back to the zooms of
    :func:`_zoom_1d`.
    """
    view = intercept_view(pr)

    def dev(values):
        return deviance(view, np.asarray(values, dtype=float).reshape(-1, 1), reml=reml)

    xs, fs, i = _grid_1d(dev)
    if not np.isfinite(fs[i]):
        return Optimum(base.copy(), np.inf, False, "the deviance could not be evaluated")
    fgrid = float(fs[i])
    lo, hi = float(xs[max(i - 1, 0)]), float(xs[min(i + 1, len(xs) - 1)])
    zs = lo + (hi - lo) * _ZOOM_UNIT  # np.linspace(lo, hi, _ZOOM)
    zs[-1] = hi
    fz = dev(zs)
    i2 = int(np.argmin(fz))
    x = float(zs[i2])
    lo, hi = float(zs[max(i2 - 1, 0)]), float(zs[min(i2 + 1, _ZOOM - 1)])
    if 0 < i2 < _ZOOM - 1:  # the vertex of the parabola through the best point and its neighbours
        (x0, x1, x2), (f0, f1, f2) = zs[i2 - 1: i2 + 2], fz[i2 - 1: i2 + 2]
        den = (x1 - x0) * (f1 - f2) - (x1 - x2) * (f1 - f0)
        if den != 0.0:
            xv = x1 - 0.5 * ((x1 - x0) ** 2 * (f1 - f2) - (x1 - x2) ** 2 * (f1 - f0)) / den
            if x0 < xv < x2:
                x = float(xv)
    # For the model itself (not a reduced one), the last steps use the exact
    # derivatives: the evaluation at the optimum then serves the Satterthwaite df.
    exact_end = view is pr
    converged, f, pc, small = False, np.inf, None, False
    for _ in range(60):
        if exact_end and small:
            pc = analytic(view, np.array([x]), reml=reml)
            if pc is None:
                break
            f, g, h = pc.dev, float(pc.grad[0]), float(pc.hess[0, 0])
        else:  # central differences (the stencil of _optimize_nd, on Python floats)
            pc = None
            scale = max(abs(x), 0.1)
            hg, hh = 1e-5 * scale, 1e-3 * scale
            f, fgp, fgm, fhp, fhm = dev([x, x + hg, x - hg, x + hh, x - hh]).tolist()
            if not math.isfinite(f):
                break
            g, h = (fgp - fgm) / (2.0 * hg), (fhp - 2.0 * f + fhm) / (hh * hh)
        if g > 0.0:
            hi = min(hi, x)
        elif g < 0.0:
            lo = max(lo, x)
        xn = x - g / h if h > 0.0 else np.nan
        if not lo <= xn <= hi:
            xn = 0.5 * (lo + hi)
        if xn <= 0.0 < x:
            xn = 0.0  # the boundary: the deviance is even, its derivative 0 there
        if abs(xn - x) <= 1e-9 * max(x, 1e-8):
            converged = True
            break
        small = abs(xn - x) <= 1e-4 * max(x, 1e-8)
        x = xn
    if not converged or f > fgrid + 1e-9 * max(1.0, abs(fgrid)):
        return _zoom_1d(lambda v: deviance(pr, _put(base, 0, v), reml=reml), xs, fs, i, base, 0)
    best, fbest = _snap_to_boundary(dev, x, f)
    theta = base.copy()
    theta[0] = best
    ok = best < 1e8
    keep = pc is not None and best == x
    return Optimum(theta, fbest, ok, "" if ok else "the variance ratio grows without bound",
                   pieces=pc if keep else None, pieces_of=view if keep else None)


def _put(base: np.ndarray, j: int, values) -> np.ndarray:
    th = np.repeat(base[None], len(values), axis=0)
    th[:, j] = values
    return th


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


def _fd_batch(x: np.ndarray, hg: np.ndarray, hh: np.ndarray) -> np.ndarray:
    """The centre, a gradient stencil with steps hg and a Hessian stencil with steps hh."""
    unit, grad_rows, _, _ = _stencil(x.size)
    return x + unit * np.where(grad_rows, hg, hh)


def _fd_derivs(f: np.ndarray, k: int, hg: np.ndarray, hh: np.ndarray):
    """Gradient and Hessian from the values of :func:`_fd_batch`'s points."""
    _, _, I, J = _stencil(k)
    g = (f[1:k + 1] - f[k + 1:2 * k + 1]) / (2.0 * hg)
    c = 2 * k + 1
    H = np.diag((f[c:c + k] - 2.0 * f[0] + f[c + k:c + 2 * k]) / hh**2)
    if I.size:
        q = f[c + 2 * k:].reshape(-1, 4)
        H[I, J] = H[J, I] = (q[:, 0] - q[:, 1] - q[:, 2] + q[:, 3]) / (4.0 * hh[I] * hh[J])
    return g, H


@functools.lru_cache(maxsize=8)
def _stencil_factors(k: int) -> tuple[np.ndarray, list]:
    """The stencil of :func:`_stencil` with its steps as fractions of the scale (1e-5 for the
    gradient's rows, 1e-3 for the Hessian's), and its pairs as Python tuples."""
    unit, grad_rows, I, J = _stencil(k)
    ufac = unit * np.where(grad_rows, 1e-5, 1e-3)
    ufac.setflags(write=False)
    return ufac, list(zip(I.tolist(), J.tolist(), strict=True))


_ALPHAS = 2.0 ** -np.arange(1, 31)
#: Points of the zoom into the grid's bracket in the subject-intercept search.
_ZOOM = 129
_ZOOM_UNIT = np.linspace(0.0, 1.0, _ZOOM)
_ZOOM_UNIT.setflags(write=False)
#: Below this promised decrease of the deviance, Newton finishes with one exact step (see _optimize_nd).
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


def _optimize_nd(pr: Problem, free: np.ndarray, start: np.ndarray, reml: bool) -> Optimum:
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

    With exact derivatives (subject random effects, every theta free), once
    the step promises less than ``_FINISH``, the Hessian is positive definite
    and the bounded theta stay above 1e-3, the full Newton step is taken and checked
    with one exact evaluation instead of another batch: accepted (converged)
    when it lowers the deviance and the exact Newton step from there promises
    less than ``_CONVERGED``.  Its derivatives are kept for the Satterthwaite df.
    """
    idx = np.flatnonzero(free)
    k = idx.size
    rk = range(k)
    # The bookkeeping is on Python floats: k is at most 4, and each numpy call
    # on such tiny arrays costs more than the arithmetic.
    bounded = pr.bounded[idx].tolist()
    exact = supports_analytic(pr) and k == pr.n_theta
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
            done, x_new, f_new, pc = _exact_finish(pr, xa, f, xa - V @ (c / w), pr.bounded[idx], reml)
            if done:
                x, f, pieces = x_new.tolist(), f_new, pc
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
    theta = start.copy()
    theta[idx] = x
    return Optimum(theta, float(f), converged, message, pieces=pieces, pieces_of=pr if pieces is not None else None)


def _exact_finish(pr: Problem, x: np.ndarray, f: float, new: np.ndarray, bounded: np.ndarray, reml: bool):
    """Newton steps with the exact derivatives from ``x`` (deviance ``f``), the first to ``new``.

    Steps are taken while they stay well inside the bounds (above 1e-3: near
    a bound the batch loop lands on it exactly), lower the deviance and the
    Hessian stays positive definite; at most three (from a promise below
    ``_FINISH`` the second is usually the last).  Returns ``(converged, x, f,
    pieces)``: the last point that lowered the deviance, with its exact
    derivatives when converged (the next step promises less than
    ``_CONVERGED``).
    """
    for _ in range(3):
        if not (np.all(new[bounded] > 1e-3) and np.all(x[bounded] > 1e-3)):
            break
        pc = analytic(pr, new, reml=reml)
        if pc is None or not pc.dev <= f:
            break
        x, f = new, pc.dev
        w, V = np.linalg.eigh(pc.hess)
        if not w[0] > 0.0:
            break
        c = V.T @ pc.grad
        if float(c @ (c / w)) < _CONVERGED:
            return True, x, f, pc
        new = x - V @ (c / w)
    return False, x, f, None


def optimize(pr: Problem, *, reml: bool, free: np.ndarray | None = None,
             start: np.ndarray | None = None) -> Optimum:
    """Minimise the profiled deviance over theta; coordinates not ``free`` stay at 0.

    One free coordinate: a bounded scalar search that includes the boundary
    theta = 0.  More: projected Newton from ``start`` (default: lme4's start,
    T = I, theta_c = 1).
    """
    k = pr.n_theta
    free = np.ones(k, bool) if free is None else np.asarray(free, bool)
    if start is None:
        start = np.array(([1.0] if pr.q == 1 else [1.0, 0.0, 1.0]) + ([1.0] if pr.n_clusters else []))
    start = np.where(free, start, 0.0)
    nfree = int(free.sum())
    if nfree == 0:
        d = linear_deviance(pr, reml=reml)
        return Optimum(start, d, np.isfinite(d), "")
    if nfree == 1:
        return _optimize_1d(pr, int(np.flatnonzero(free)[0]), start, reml)
    return _optimize_nd(pr, free, start, reml)


def slope_start(pr: Problem, sigma2: float) -> float:
    """A moment estimate of theta for the slope: the spread of the subjects' own OLS slopes.

    var(b_i) - sigma^2 mean(1 / Sxx_i) over subjects with two or more
    distinct times, as an SD ratio to sigma (floored): only a starting value.
    """
    p = pr.p
    k = pr.subject_pattern
    n, st, stt = pr.z00[k], pr.z01[k], pr.z11[k]
    sy, sty = pr.ZtG[:, 0, p], pr.ZtG[:, 1, p]
    sxx = stt - st * st / n
    ok = sxx > 1e-12 * np.maximum(stt, 1.0)
    if ok.sum() < 2:
        return 0.1
    slopes = (sty[ok] - st[ok] * sy[ok] / n[ok]) / sxx[ok]
    var_b = slopes.var(ddof=1) - sigma2 * np.mean(1.0 / sxx[ok])
    floor = 0.05 * np.sqrt(sigma2 * np.mean(1.0 / sxx[ok]))
    return float(max(np.sqrt(max(var_b, 0.0)), floor) / np.sqrt(sigma2))
