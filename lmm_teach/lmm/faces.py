"""The global optimum on the boundary: the faces of theta and the conditions of a (boundary) minimum.

theta is lme4's relative covariance factor: for ``(time | subject)`` the
lower-triangular ``T = [[a, 0], [b, c]]`` with ``a, c >= 0`` (``Sigma =
sigma^2 T T'``), and ``theta_c >= 0`` for a cluster.  A boundary estimate lies
on a *face*: ``c = 0`` (intercept and slope perfectly correlated), ``a = 0``
(no intercept variance; the deviance then depends on ``b^2 + c^2`` only),
``theta_c = 0``, or several at once.

Where the Cholesky map ``theta -> T T'`` is singular (``a = 0``) the usual
bound-constrained conditions on theta can hold at a point that is not a
minimum of the deviance over the covariance matrices: at ``(0, b, c)`` moving
``a`` changes the covariance ``a b`` to first order, and a local search can
stop there although a correlation of -1 or +1 is better (the saddle of
issue 9).  :func:`canonical` therefore writes such a point as ``(0, 0, r)``,
where the conditions on theta are those on the covariance matrix (the
gradient ``G`` of the deviance in ``T T'`` positive semi-definite with
``G T T' = 0``):

1. first order: every coordinate off its bound has a zero gradient (the
   Newton step on them, ``|H^-1 g|``, below ``NEWTON_TOL``, as lme4 checks);
   a coordinate on its bound has a gradient >= 0 (here exactly 0: the
   deviance is even in it);
2. second order: the Hessian over those coordinates and the bound ones whose
   gradient is 0 is positive semi-definite.

:func:`check` tests both; where the second fails it returns the direction of
negative curvature, which leads off the saddle.  :func:`search_faces`
minimises the deviance on every face (a batched grid, then Newton), tests
each face's optimum in the full space, leaves it along that direction when it
is not a minimum there, and keeps the best point found: a fit that ends on a
face has seen every other face and the interior reachable from them.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from lmm_teach.lmm.derivatives import analytic, supports_analytic
from lmm_teach.lmm.deviance import Problem, deviance
from lmm_teach.lmm.newton import _stencil_factors, newton_minimize

__all__ = ["Check", "canonical", "check", "search_faces", "BOUND_TOL", "NEWTON_TOL"]

#: A bounded theta below this (internal scale) counts as on its bound (lme4's isSingular tolerance).
BOUND_TOL = 1e-4
#: Largest Newton step in theta, ``|H^-1 g|``, still counted as converged (lme4 warns above 2e-3).
NEWTON_TOL = 1e-3
#: Negative curvature smaller than this share of the largest one is rounding (exact derivatives) ...
_CURV_EXACT = 1e-7
#: ... or truncation (central differences, step 1e-3 of theta).
_CURV_FD = 1e-5


@dataclass(frozen=True)
class Check:
    """The first- and second-order conditions of a (boundary) minimum at ``theta``."""

    theta: np.ndarray  # the canonical point tested (internal scale)
    dev: float
    minimum: bool  # both conditions hold
    newton_step: float  # max |H^-1 g| over the coordinates off their bound
    min_curvature: float  # smallest eigenvalue of the Hessian over the coordinates tested
    direction: np.ndarray | None  # a direction of descent (negative curvature or gradient), or None
    reason: str  # "" when a minimum; otherwise what fails, in words


def canonical(pr: Problem, theta: np.ndarray, *, reml: bool) -> tuple[np.ndarray, float | None]:
    """``theta`` with a vanishing intercept written as ``(0, 0, sqrt(b^2 + c^2))``.

    Returns ``(theta, deviance or None)``: the deviance of the new point when it
    had to be computed (an intercept theta below :data:`BOUND_TOL` is set to 0
    only where the deviance is not worse).
    """
    th = np.array(theta, dtype=float)
    if pr.q != 2 or th[0] >= BOUND_TOL or (th[0] == 0.0 and th[1] == 0.0):
        return th, None
    new = th.copy()
    new[0], new[1], new[2] = 0.0, 0.0, math.hypot(th[1], th[2])
    if th[0] == 0.0:
        return new, None  # the deviance depends on b^2 + c^2 only: the same value
    f_old, f_new = deviance(pr, np.vstack([th, new]), reml=reml)
    if f_new <= f_old + 1e-9 * max(1.0, abs(f_old)):
        return new, float(f_new)
    return th, None


def derivatives(pr: Problem, theta: np.ndarray, *, reml: bool):
    """``(deviance, gradient, Hessian, exact)`` at ``theta``: exact ones where implemented, else central
    differences (the stencil of :mod:`lmm_teach.lmm.newton`, one batch; the deviance is even in a bounded
    theta at 0, so the stencil may step below it)."""
    if supports_analytic(pr):
        pc = analytic(pr, theta, reml=reml)
        if pc is not None:
            return pc.dev, pc.grad, pc.hess, True, pc
    k = theta.size
    ufac, pairs = _stencil_factors(k)
    scale = np.maximum(np.abs(theta), 0.1)
    F = deviance(pr, theta[None] + ufac * scale, reml=reml)
    f = float(F[0])
    hg, hh = 1e-5 * scale, 1e-3 * scale
    g = (F[1:k + 1] - F[k + 1:2 * k + 1]) / (2.0 * hg)
    c0 = 2 * k + 1
    H = np.diag((F[c0:c0 + k] - 2.0 * f + F[c0 + k:c0 + 2 * k]) / (hh * hh))
    for n, (i, j) in enumerate(pairs):
        q0, q1, q2, q3 = F[c0 + 2 * k + 4 * n: c0 + 2 * k + 4 * n + 4]
        H[i, j] = H[j, i] = (q0 - q1 - q2 + q3) / (4.0 * hh[i] * hh[j])
    return f, g, H, False, None


def check(pr: Problem, theta: np.ndarray, *, reml: bool, pieces=None) -> tuple[Check, object]:
    """Test the conditions of a (boundary) minimum at ``theta`` (see the module docstring).

    ``pieces``: the exact derivatives at ``theta`` when the optimiser already
    has them (its last Newton step); they are used unless ``theta`` must be
    rewritten in its canonical form first.
    Returns ``(Check, pieces)``: ``pieces`` are the exact derivatives at the
    point tested when computed (they serve the Satterthwaite df), else None.
    A negative curvature counts only when a step along its direction (or,
    from a bound, into the feasible side) does lower the deviance: the
    Hessian's rounding cannot make a minimum look like a saddle.
    """
    th, _ = canonical(pr, theta, reml=reml)
    if pieces is not None and np.array_equal(th, theta):
        f, g, H, exact, pc = pieces.dev, pieces.grad, pieces.hess, True, pieces
    else:
        f, g, H, exact, pc = derivatives(pr, th, reml=reml)
    if not (math.isfinite(f) and np.all(np.isfinite(g)) and np.all(np.isfinite(H))):
        return Check(th, f, False, np.inf, np.nan, None, "the deviance could not be evaluated"), None
    if th.size == 1:
        chk = _conditions_one(pr, th, f, float(g[0]), float(H[0, 0]), exact, reml)
    else:
        chk = _conditions(pr, th, f, g, H, exact, reml)
    return chk, (pc if exact else None)


_PUSHED = "a variance on its bound 0 would lower the deviance if it grew"
_SADDLE = "the deviance curves downwards in some direction here (a saddle point, not a minimum)"


def _not_yet(step: float) -> str:
    return f"the Newton step is still {step:.2g} (the gradient is not yet zero)"


def _conditions(pr: Problem, th: np.ndarray, f: float, g: np.ndarray, H: np.ndarray, exact: bool,
                reml: bool) -> Check:
    """The conditions of :func:`check` at ``th`` from the deviance ``f``, its gradient and Hessian."""
    at = pr.bounded & (th <= 0.0)
    off = ~at
    gscale = 1e-6 * max(1.0, abs(f))
    step = 0.0
    if off.any():
        try:
            step = float(np.max(np.abs(np.linalg.solve(H[np.ix_(off, off)], g[off]))))
        except np.linalg.LinAlgError:
            step = np.inf
    pushed = at & (g < -gscale)  # a bound coordinate the gradient pushes inside
    test = off | (at & (np.abs(g) <= gscale))
    w, V = np.linalg.eigh(H[np.ix_(test, test)]) if test.any() else (np.zeros(1), np.zeros((1, 1)))
    lam = float(w[0])
    tol = (_CURV_EXACT if exact else _CURV_FD) * max(1.0, float(np.max(np.abs(w))))
    direction = None
    reason = ""
    if pushed.any():
        direction = np.where(pushed, 1.0, 0.0)
        reason = _PUSHED
    elif lam < -tol:
        d = np.zeros(th.size)
        d[test] = V[:, 0]
        if np.sum(d[at]) < 0 or (not at.any() and d[np.argmax(np.abs(d))] < 0):
            d = -d
        d[at] = np.maximum(d[at], 0.0)
        if _descends(pr, th, f, d, reml):
            direction = d
            reason = _SADDLE
    if not reason and step >= NEWTON_TOL:
        reason = _not_yet(step)
    return Check(th, f, not reason, step, lam, direction, reason)


def _conditions_one(pr: Problem, th: np.ndarray, f: float, g: float, h: float, exact: bool,
                    reml: bool) -> Check:
    """:func:`_conditions` for one theta (a random intercept) on Python floats: the same tests
    without numpy's calls on 1 x 1 matrices, which cost about a twentieth of such a fit."""
    at = bool(pr.bounded[0]) and th[0] <= 0.0
    gscale = 1e-6 * max(1.0, abs(f))
    step = 0.0 if at else (abs(g / h) if h != 0.0 else math.inf)
    lam = h if (not at or abs(g) <= gscale) else 0.0
    tol = (_CURV_EXACT if exact else _CURV_FD) * max(1.0, abs(lam))
    direction, reason = None, ""
    if at and g < -gscale:
        direction, reason = np.ones(1), _PUSHED
    elif lam < -tol and _descends(pr, th, f, np.ones(1), reml):
        direction, reason = np.ones(1), _SADDLE
    if not reason and step >= NEWTON_TOL:
        reason = _not_yet(step)
    return Check(th, f, not reason, step, lam, direction, reason)


def _descends(pr: Problem, th: np.ndarray, f: float, d: np.ndarray, reml: bool) -> bool:
    """Does some step along ``d`` (lengths 2^-j of theta's scale, in one batch) lower the deviance?"""
    scale = max(float(np.max(np.abs(th))), 0.1)
    s = scale * 2.0 ** -np.arange(0, 16)
    pts = th[None] + s[:, None] * (d / max(float(np.max(np.abs(d))), 1e-300))[None]
    pts[:, pr.bounded] = np.maximum(pts[:, pr.bounded], 0.0)
    fs = deviance(pr, pts, reml=reml)
    return bool(np.min(fs) < f - 1e-9 * max(1.0, abs(f)))


def escape(pr: Problem, chk: Check) -> np.ndarray:
    """A start off a saddle: ``theta + s d`` with ``d`` the descent direction of ``chk`` and ``s`` the
    step of that direction that lowers the deviance most (a batch of lengths)."""
    th, d = chk.theta, chk.direction
    d = d / max(float(np.max(np.abs(d))), 1e-300)
    scale = max(float(np.max(np.abs(th))), 0.1)
    s = scale * 2.0 ** -np.arange(0, 16)
    pts = th[None] + s[:, None] * d[None]
    pts[:, pr.bounded] = np.maximum(pts[:, pr.bounded], 0.0)
    return pts


def faces(pr: Problem) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """The faces of theta below the interior: ``(name, free, zero)`` masks (``zero``: the theta at 0).

    Every non-empty set of bounded theta at 0; for ``(time | subject)`` the
    intercept's ``a = 0`` also fixes ``b = 0`` (the deviance there depends on
    ``b^2 + c^2`` only: ``(0, 0, r)`` stands for the whole face).
    """
    k = pr.n_theta
    bounded = np.flatnonzero(pr.bounded)
    names = {0: "intercept variance 0", 2: "correlation +-1"} if pr.q == 2 else {0: "subject variance 0"}
    if pr.n_clusters:
        names[k - 1] = "cluster variance 0"
    out = []
    for r in range(1, bounded.size + 1):
        for zs in itertools.combinations(bounded.tolist(), r):
            zero = np.zeros(k, bool)
            zero[list(zs)] = True
            if pr.q == 2 and zero[0]:
                zero[1] = True
            out.append((", ".join(names.get(z, str(z)) for z in zs), ~zero, zero))
    return out


def _polar_starts(pr: Problem, free: np.ndarray, base: np.ndarray, reml: bool, n_best: int = 2) -> list:
    """Starts on the face ``c = 0`` (``Sigma`` of rank one, ``v = (a, b) = rho (cos phi, sin phi)``): the
    deviance on a polar grid (25 directions, 17 radii, one batch); the best point of each local minimum
    of the profile over the direction, best first (at most ``n_best``)."""
    phis = np.linspace(-0.5 * np.pi, 0.5 * np.pi, 25)[:-1]  # phi = +-pi/2 are the same Sigma
    rhos = np.logspace(-2, 1.5, 17)
    P, R = np.meshgrid(phis, rhos, indexing="ij")
    pts = np.repeat(base[None], P.size, axis=0)
    pts[:, 0] = (R * np.cos(P)).ravel()
    pts[:, 1] = (R * np.sin(P)).ravel()
    pts[:, 2] = 0.0
    fs = deviance(pr, pts, reml=reml).reshape(P.shape)
    prof = fs.min(axis=1)
    n = prof.size
    local = [i for i in range(n) if prof[i] <= prof[(i - 1) % n] and prof[i] <= prof[(i + 1) % n]
             and np.isfinite(prof[i])]
    local.sort(key=lambda i: prof[i])
    starts = []
    for i in local[:n_best]:
        if i == 0:
            continue  # a = 0: the face "intercept variance 0" covers it
        j = int(np.argmin(fs[i]))
        starts.append(pts[i * rhos.size + j].copy())
    return starts


def _face_starts(pr: Problem, free: np.ndarray, zero: np.ndarray, best: np.ndarray, reml: bool) -> list:
    base = np.where(zero, 0.0, best)
    if pr.q == 2 and free[0] and free[1] and not free[2]:
        return _polar_starts(pr, free, base, reml)
    # projected from the best point so far, bounded free theta kept off their bound
    start = np.where(free & pr.bounded, np.maximum(base, 0.05), base)
    if pr.q == 2 and free[2] and not free[0]:  # a = b = 0: the slope's total on c
        start[2] = max(math.hypot(best[1], best[2]), 0.05)
    return [start]


def search_faces(pr: Problem, *, reml: bool, theta: np.ndarray, dev: float, optimize_fn,
                 trace: list | None = None) -> tuple[np.ndarray, float]:
    """The best of ``theta`` (deviance ``dev``), the optimum of every face and the minima reached from them.

    ``optimize_fn(free=..., start=...)`` minimises over the ``free`` theta
    (the others held at ``start``'s values) and returns an
    :class:`~lmm_teach.lmm.optimize.Optimum`.  On each face (:func:`faces`)
    the deviance is minimised; a face optimum that is not a minimum in the
    full space (:func:`check`) is left along its direction of descent and
    Newton continues over every theta from there.
    """
    best_th, best_f = np.array(theta, dtype=float), float(dev)
    k = pr.n_theta
    everything = np.ones(k, bool)

    def consider(th, f, stage):
        nonlocal best_th, best_f
        if trace is not None:
            trace.append((stage, np.array(th, dtype=float), float(f)))
        if f < best_f:
            best_th, best_f = np.array(th, dtype=float), float(f)

    seen = []  # the points already tested (faces meet: the same optimum can come from two)

    def known(th):
        for s in seen:
            if np.all(np.abs(s - th) <= 1e-6 * np.maximum(np.abs(th), 1.0)):
                return True
        seen.append(np.array(th, dtype=float))
        return False

    for name, free, zero in faces(pr):
        for start in _face_starts(pr, free, zero, best_th, reml):
            opt = optimize_fn(free=free, start=start)
            if not np.isfinite(opt.dev):
                continue
            consider(opt.theta, opt.dev, f"face: {name}")
            th0, _ = canonical(pr, opt.theta, reml=reml)
            if known(th0):
                continue
            chk, _ = check(pr, th0, reml=reml)
            if chk.minimum or chk.direction is None or (pr.q == 2 and not np.any(free)):
                # (time | subject) at theta = 0: a descent from there adds a matrix of rank one,
                # a point of the face c = 0, whose optimum the polar grid has found
                continue
            pts = escape(pr, chk)
            fs = deviance(pr, pts, reml=reml)
            j = int(np.argmin(fs))
            if not fs[j] < chk.dev:
                continue
            th, f, _, _, _ = newton_minimize(pr, everything, pts[j], reml, trace)
            consider(th, f, f"from face: {name}")
    return best_th, best_f
