"""Satterthwaite degrees of freedom for the fixed effects, as lmerTest computes them.

Kuznetsova, Brockhoff & Christensen (2017), *lmerTest Package: Tests in Linear
Mixed Effects Models*, J. Stat. Softw. 82(13), section 3.

The variance parameters are ``varpar = (theta, sigma)``.  Their asymptotic
covariance is ``A = 2 H^+``, with ``H`` the Hessian of the (RE)ML deviance at
fixed ``sigma`` (lmerTest's ``devfun_vp``)::

    dev(theta, sigma) = D0(theta) + r2(theta) / sigma^2 + N log(2 pi sigma^2)

(``D0 = log det V*`` plus, for REML, ``log det X'V*^-1 X``; ``N = n - p`` for
REML, ``n`` for ML).  The ``sigma`` parts of ``H`` are analytic; so are the
``theta`` parts for subject random effects (:mod:`lmm_teach.lmm.derivatives`).
With a cluster level they are Richardson-extrapolated central differences of
the closed-form ``D0`` and ``r2`` (numDeriv's defaults, as lmerTest: relative
step 0.1, four halvings), evaluated in one batch.  ``vcov(beta) = sigma^2
(X'V*^-1 X)^-1`` is differentiated the same way (its Jacobian ``J_k``).

For a contrast ``l``: ``df = 2 (l'Cl)^2 / (g'A g)`` with ``g_k = l'J_k l``.  A
multi-row contrast ``L`` is rotated by the eigenvectors of ``L C L'`` into
independent t statistics whose dfs ``nu_m`` combine as in lmerTest's
``contestMD`` (``get_Fstat_ddf``).

With ``theta`` on the boundary 0 the deviance and ``vcov(beta)`` are even in
``theta``: the derivative in ``theta`` is exactly 0 and the df is ``N`` (the
residual df), as lmerTest reports.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy import special

from lmm_teach.lmm.derivatives import Pieces, analytic, supports_analytic
from lmm_teach.lmm.deviance import Problem, profile

__all__ = ["VarparInfo", "varpar_info", "contest1d", "contest_md", "coefficient_df", "richardson"]

# numDeriv's defaults (Gilbert & Varadhan, numDeriv::grad / genD).
_D, _EPS, _ZERO_TOL, _R = 0.1, 1e-4, float(np.sqrt(np.finfo(float).eps / 7e-7)), 4


@functools.lru_cache(maxsize=8)
def _unit_stencil(k: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit offsets (+e_i, -e_i, then +-e_i +-e_j for each pair) and the pairs (i, j)."""
    eye = np.eye(k)
    pairs = np.array([(i, j) for i in range(k) for j in range(i + 1, k)], dtype=np.intp).reshape(-1, 2)
    signs = np.array([(1, 1), (1, -1), (-1, 1), (-1, -1)], dtype=float)
    off = np.zeros((len(pairs), 4, k))
    for c, (i, j) in enumerate(pairs):
        off[c, :, i], off[c, :, j] = signs[:, 0], signs[:, 1]
    return np.vstack([eye, -eye, off.reshape(-1, k)]), pairs


def richardson(func, x: np.ndarray) -> tuple[list, list, list]:
    """Gradients and Hessians of the outputs of ``func`` at ``x`` (Richardson extrapolation).

    ``func`` maps a batch of points (B, k) to a tuple of arrays with leading
    dimension B.  Returns, per output, the gradient (k, ...), the Hessian
    (k, k, ...) and the value at ``x``.  All points are evaluated in a single call.  Central
    differences with steps h, h/2, h/4, h/8 (numDeriv's d = 0.1 relative,
    eps = 1e-4 near 0), extrapolated to h -> 0.
    """
    x = np.asarray(x, float)
    k = x.size
    unit, pairs = _unit_stencil(k)
    h0 = np.where(np.abs(x) < _ZERO_TOL, _EPS, _D * np.abs(x))
    hs = h0[None, :] / 2.0 ** np.arange(_R)[:, None]  # (R, k)
    pts = x + unit[None] * hs[:, None, :]  # (R, n_unit, k)
    outs = func(np.vstack([x[None], pts.reshape(-1, k)]))
    npair = len(pairs)
    w = 4.0 ** np.arange(1, _R)
    grads, hessians, centres = [], [], []
    for f in outs:
        tail = f.shape[1:]
        f0 = f[0]
        fl = f[1:].reshape((_R, unit.shape[0]) + tail)
        h = hs.reshape((_R, k) + (1,) * len(tail))
        fp, fm = fl[:, :k], fl[:, k:2 * k]
        G = (fp - fm) / (2.0 * h)
        Hd = (fp - 2.0 * f0 + fm) / h**2
        if npair:
            q = fl[:, 2 * k:].reshape((_R, npair, 4) + tail)
            hi = hs[:, pairs[:, 0]].reshape((_R, npair) + (1,) * len(tail))
            hj = hs[:, pairs[:, 1]].reshape((_R, npair) + (1,) * len(tail))
            Ho = (q[:, :, 0] - q[:, :, 1] - q[:, :, 2] + q[:, :, 3]) / (4.0 * hi * hj)
        for m in range(_R - 1):  # eliminate h^2, h^4, h^6 (halving steps: factors 4^m)
            G = (w[m] * G[1:] - G[:-1]) / (w[m] - 1.0)
            Hd = (w[m] * Hd[1:] - Hd[:-1]) / (w[m] - 1.0)
            if npair:
                Ho = (w[m] * Ho[1:] - Ho[:-1]) / (w[m] - 1.0)
        H = np.zeros((k, k) + tail)
        H[np.arange(k), np.arange(k)] = Hd[0]
        if npair:
            H[pairs[:, 0], pairs[:, 1]] = Ho[0]
            H[pairs[:, 1], pairs[:, 0]] = Ho[0]
        grads.append(G[0])
        hessians.append(H)
        centres.append(f0)
    return grads, hessians, centres


@dataclass(frozen=True)
class VarparInfo:
    """Derivative information at the optimum, as lmerTest stores it on the model."""

    A: np.ndarray  # (k+1, k+1) asymptotic covariance of (theta, sigma): 2 H^+
    jac: np.ndarray  # (k+1, p, p) derivative of vcov(beta) in each varpar
    hessian: np.ndarray  # (k+1, k+1) Hessian of devfun_vp
    eigenvalues: np.ndarray  # of the Hessian (lmerTest warns on <= 1e-8)
    grad_profiled: np.ndarray  # (k,) gradient of the profiled deviance in theta
    hess_profiled: np.ndarray  # (k, k) its Hessian


def varpar_info(pr: Problem, theta: np.ndarray, *, reml: bool, tol: float = 1e-8,
                pieces: Pieces | None = None) -> VarparInfo:
    """The covariance of the variance parameters and the Jacobian of vcov(beta).

    Mirrors ``lmerTest:::as_lmerModLmerTest`` (tolerance ``tol`` for the
    Moore-Penrose inverse of the Hessian).  The derivatives in theta are exact
    (:mod:`lmm_teach.lmm.derivatives`) for subject random effects, where
    lmerTest's numDeriv approximates them to about 1e-10; with a cluster level
    they are Richardson-extrapolated differences as numDeriv's.  ``pieces``:
    the exact derivatives at ``theta`` when already computed.
    """
    p = pr.p
    N = pr.n - p if reml else pr.n
    if pieces is None and supports_analytic(pr):
        pieces = analytic(pr, theta, reml=reml)
    if pieces is not None:
        gD0, gr2, gPb, HD0, Hr2, r2, Pb = (pieces.gD0, pieces.gr2, pieces.gPb, pieces.HD0, pieces.Hr2,
                                           pieces.r2, pieces.Pb)
    else:
        def parts(th):
            pr_ = profile(pr, th, reml=reml)
            return pr_["D0"], pr_["r2"], np.linalg.inv(pr_["Q"][:, :p, :p])

        (gD0, gr2, gPb), (HD0, Hr2, _), (_, r2, Pb) = richardson(parts, theta)
        r2 = float(r2)
    s2 = r2 / N
    s = np.sqrt(s2)
    k = theta.size
    H = np.empty((k + 1, k + 1))
    H[:k, :k] = HD0 + Hr2 / s2
    H[:k, k] = H[k, :k] = -2.0 * gr2 / s**3
    H[k, k] = 6.0 * r2 / s2**2 - 2.0 * N / s2
    H = 0.5 * (H + H.T)
    evals, evecs = np.linalg.eigh(H)
    pos = evals > tol
    A = 2.0 * (evecs[:, pos] / evals[pos]) @ evecs[:, pos].T
    jac = np.empty((k + 1, p, p))
    jac[:k] = s2 * gPb
    jac[k] = 2.0 * s * Pb
    grad = gD0 + N * gr2 / r2
    hess = HD0 + N * (Hr2 / r2 - np.outer(gr2, gr2) / r2**2)
    return VarparInfo(A=A, jac=jac, hessian=H, eigenvalues=evals[::-1], grad_profiled=grad, hess_profiled=hess)


def contest1d(l: np.ndarray, beta: np.ndarray, vcov: np.ndarray, info: VarparInfo) -> tuple[float, float, float, float]:
    """``(estimate, se, df, p)`` of the contrast ``l'beta`` (lmerTest ``contest1D``)."""
    l = np.asarray(l, float)
    var = float(l @ vcov @ l)
    g = np.einsum("i,kij,j->k", l, info.jac, l)
    denom = float(g @ info.A @ g)
    df = 2.0 * var**2 / denom if denom > 0 else np.inf
    est = float(l @ beta)
    se = np.sqrt(var)
    p = float(2.0 * special.stdtr(df, -abs(est) / se)) if se > 0 else np.nan
    return est, se, df, p


def coefficient_df(vcov: np.ndarray, info: VarparInfo) -> np.ndarray:
    """Satterthwaite df of every coefficient at once (``contest1d`` with unit vectors)."""
    g = np.diagonal(info.jac, axis1=1, axis2=2).T  # (p, k+1): g_jk = J_k[j, j]
    denom = np.einsum("jk,kl,jl->j", g, info.A, g)
    var = np.diag(vcov)
    with np.errstate(divide="ignore"):
        return np.where(denom > 0, 2.0 * var**2 / denom, np.inf)


def _fstat_ddf(nu: np.ndarray, tol: float = 1e-8) -> float:
    """lmerTest's ``get_Fstat_ddf``: the denominator df of an F built from independent t's."""
    if nu.size == 1:
        return float(nu[0])
    if np.all(np.abs(np.diff(nu)) < tol):
        return float(nu.mean())
    if np.any(nu <= 2):
        return 2.0
    E = float(np.sum(nu / (nu - 2.0)))
    return 2.0 * E / (E - nu.size)


def contest_md(L: np.ndarray, beta: np.ndarray, vcov: np.ndarray, info: VarparInfo,
               eps: float = float(np.sqrt(np.finfo(float).eps))) -> tuple[float, float, float, float]:
    """``(F, df_num, df_den, p)`` for the hypothesis ``L beta = 0`` (lmerTest ``contestMD``)."""
    L = np.atleast_2d(np.asarray(L, float))
    if L.shape[0] == 1:  # one row: the t test (the eigen-rotation below is the identity)
        est, se, df, _ = contest1d(L[0], beta, vcov, info)
        if se > 0:
            F = (est / se) ** 2
            return F, 1.0, df, float(special.fdtrc(1.0, df, F))
    VL = L @ vcov @ L.T
    d, P = np.linalg.eigh(VL)
    d, P = d[::-1], P[:, ::-1]  # decreasing, as R's eigen()
    tol = max(eps * d[0], 0.0)
    pos = d > tol
    q = int(pos.sum())
    PtL = (P.T @ L)[:q]
    if q == 1:
        est, se, df, _ = contest1d(PtL[0], beta, vcov, info)
        F = (est / se) ** 2
        return F, 1.0, df, float(special.fdtrc(1.0, df, F))
    t2 = (PtL @ beta) ** 2 / d[:q]
    F = float(t2.sum() / q)
    g = np.einsum("mi,kij,mj->mk", PtL, info.jac, PtL)
    denom = np.einsum("mk,kl,ml->m", g, info.A, g)
    with np.errstate(divide="ignore"):
        nu = np.where(denom > 0, 2.0 * d[:q] ** 2 / denom, np.inf)
    ddf = _fstat_ddf(nu)
    return F, float(q), ddf, float(special.fdtrc(q, ddf, F))
