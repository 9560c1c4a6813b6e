"""Minimising the profiled deviance over theta (the relative covariance factor).

One free coordinate (a random intercept, or one variance of a reduced model):
a batched bracketing search on a log grid that contains the boundary 0, then,
for the subject intercept, a zoom and Newton steps safeguarded by the
bracket, and for a cluster variance zooms and a parabola.  Several: the
projected Newton method of :mod:`lmm_teach.lmm.newton`, whose gradient and
Hessian are central differences evaluated in one batch.  Both finish, for the
model itself, with the exact derivatives of :mod:`lmm_teach.lmm.derivatives`,
which then also serve the Satterthwaite df.  Bounded coordinates (the
diagonal of T, theta_c) have lower bound 0, as in lme4; a boundary optimum
comes out exactly 0.  An optimum on a boundary face is then checked against
every other face and the interior reachable from them
(:mod:`lmm_teach.lmm.faces`, called by :func:`lmm_teach.lmm.engine.fit_problem`).

Everything stays in numpy on purpose: scipy's compiled L-BFGS-B, with its own
BLAS thread pool, ran about 100 times slower interleaved with numpy's BLAS
calls on a busy two-core machine (measured: 1.4 ms per iteration instead of
0.004 ms).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from lmm_teach.lmm.derivatives import Pieces, analytic
from lmm_teach.lmm.deviance import Problem, deviance, linear_deviance
from lmm_teach.lmm.newton import newton_minimize

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


# theta is an SD ratio (random effect / residual): 1e-4 ... 1e3 covers every
# plausible fit; beyond, the grid is extended.
_GRID = np.concatenate(([0.0], np.logspace(-4, 3, 43)))
_GRID.setflags(write=False)
#: Points of the zoom into the grid's bracket in the subject-intercept search.
_ZOOM = 129
_ZOOM_UNIT = np.linspace(0.0, 1.0, _ZOOM)
_ZOOM_UNIT.setflags(write=False)


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
    batch (the stencil of :mod:`lmm_teach.lmm.newton`), each kept inside the bracket
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
        else:  # central differences (the stencil of lmm.newton, on Python floats)
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


def optimize(pr: Problem, *, reml: bool, free: np.ndarray | None = None,
             start: np.ndarray | None = None, trace: list | None = None) -> Optimum:
    """Minimise the profiled deviance over theta; coordinates not ``free`` stay at 0.

    One free coordinate: a bounded scalar search that includes the boundary
    theta = 0.  More: projected Newton from ``start`` (default: lme4's start,
    T = I, theta_c = 1).  ``trace``: a list that collects ``(stage, theta, deviance)``
    of the iterates (see :func:`~lmm_teach.lmm.newton.newton_minimize`).
    """
    k = pr.n_theta
    free = np.ones(k, bool) if free is None else np.asarray(free, bool)
    if start is None:
        start = np.array(([1.0] if pr.q == 1 else [1.0, 0.0, 1.0]) + ([1.0] if pr.n_clusters else []))
    start = np.where(free, start, 0.0)
    nfree = int(free.sum())
    if nfree == 0:
        d = linear_deviance(pr, reml=reml)
        if trace is not None:
            trace.append(("linear", start.copy(), d))
        return Optimum(start, d, np.isfinite(d), "")
    if nfree == 1:
        out = _optimize_1d(pr, int(np.flatnonzero(free)[0]), start, reml)
        if trace is not None:
            trace.append(("search 1-d", out.theta.copy(), out.dev))
        return out
    theta, f, converged, message, pieces = newton_minimize(pr, free, start, reml, trace)
    return Optimum(theta, f, converged, message, pieces=pieces, pieces_of=pr if pieces is not None else None)


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
