"""Exact first and second derivatives of the profiled deviance in theta (subject random effects).

For ``(1 | subject)`` and ``(time | subject)`` without a cluster level,
everything the deviance needs is a sum over the patterns k of closed-form
q x q matrices (:mod:`lmm_teach.lmm.deviance`)::

    M_k = I + T'Z_k T,   W_k = M_k^-1 T',   P_k = T W_k,   E_k = I - Z_k P_k
    Q = G'G - sum_k P_k : S_k,   log det V* = sum_k n_k log det M_k

(``Z_k = Z_i'Z_i`` of the pattern, ``T`` the lower-triangular relative
covariance factor, theta its entries column by column).  ``T`` is linear in
theta: ``dT_i = e_r e_c'`` for the entry ``(r, c)`` of theta_i.  Differentiating
(matrix calculus, as in Bates et al. 2015 section 3, but for the per-pattern
blocks)::

    dP_i   = E' dT_i W + (E' dT_i W)'
    dW_j   = M^-1 (dT_j' E - T'Z dT_j W)
    d2P_ij = C_ij + C_ij',   C_ij = -dP_j Z dT_i W + E' dT_i dW_j
    d log det M / dtheta_i       = 2 (W Z)[c_i, r_i]
    d2 log det M / dtheta_i dtheta_j = 2 (dW_j Z)[c_i, r_i]

and, with ``beta`` the GLS estimate and ``u = (-beta, 1)``, the pieces of the
profiled deviance ``D0 = log det V* [+ log det X'V*^-1 X]`` and ``r2 = u'Q u``::

    d r2_i      = u' dQ_i u                         (envelope theorem)
    d2 r2_ij    = u' d2Q_ij u - 2 (dQ_i u)_X' Pb (dQ_j u)_X,     Pb = (X'V*^-1 X)^-1
    d logdet Qxx_i  = tr(Pb dQxx_i)
    d2 logdet Qxx_ij = tr(Pb d2Qxx_ij) - tr(Pb dQxx_i Pb dQxx_j)
    d Pb_i      = -Pb dQxx_i Pb

One evaluation gives the deviance, its gradient and Hessian (for the Newton
optimiser) and what lmerTest's Satterthwaite df need (the Hessian of
``devfun_vp`` and the Jacobian of vcov(beta)), exactly, where numDeriv's
Richardson extrapolation needs 1 + 4 (2k + 2k(k-1)) deviance evaluations.
The tests compare both (tests/test_lmm_engine.py).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from lmm_teach.lmm.deviance import _LOG_2PI, Problem

__all__ = ["Pieces", "analytic", "supports_analytic"]


@dataclass(frozen=True, eq=False)
class Pieces:
    """The profiled deviance at one theta with its exact derivatives."""

    dev: float
    D0: float
    r2: float
    Q: np.ndarray  # (m, m) G'V*^-1 G
    Pb: np.ndarray  # (p, p) (X'V*^-1 X)^-1
    beta_c: np.ndarray  # (p,) GLS fixed effects on the centred y
    gD0: np.ndarray  # (k,)
    HD0: np.ndarray  # (k, k)
    gr2: np.ndarray  # (k,)
    Hr2: np.ndarray  # (k, k)
    gPb: np.ndarray  # (k, p, p)
    N: int  # n - p (REML) or n (ML)

    @property
    def grad(self) -> np.ndarray:
        """Gradient of the profiled deviance in theta."""
        return self.gD0 + self.N * self.gr2 / self.r2

    @property
    def hess(self) -> np.ndarray:
        """Hessian of the profiled deviance in theta."""
        return self.HD0 + self.N * (self.Hr2 / self.r2 - np.outer(self.gr2, self.gr2) / self.r2**2)


def supports_analytic(pr: Problem) -> bool:
    """Exact derivatives are implemented for subject random effects without a cluster level."""
    return pr.n_clusters == 0


@functools.lru_cache(maxsize=4)
def _layout(q: int):
    """Positions (r, c) in T of each theta, the pairs i <= j (and the pair of each (i, j)), the entries of P
    that multiply the blocks of S."""
    if q == 1:
        r, c = np.array([0]), np.array([0])
        entries = (np.array([0]), np.array([0]))
    else:
        r, c = np.array([0, 1, 1]), np.array([0, 0, 1])
        entries = (np.array([0, 0, 1]), np.array([0, 1, 1]))  # S00, S01 (both off-diagonals), S11
    k = r.size
    I, J = np.triu_indices(k)
    full = np.empty((k, k), dtype=np.intp)
    full[I, J] = full[J, I] = np.arange(I.size)
    return r, c, I, J, full, entries


def _pattern_derivatives_q1(pr: Problem, a: float):
    """(1 | subject): P_k = a^2 / (1 + a^2 n_k) and log det M_k = log(1 + a^2 n_k), with derivatives in a."""
    z = pr.z00
    u = a * a
    M = 1.0 + u * z
    iM = 1.0 / M
    P = u * iM
    dP = 2.0 * a * iM * iM
    d2P = (2.0 - 6.0 * u * z) * iM * iM * iM
    coef = np.stack([P, dP, d2P])  # (3, K)
    logdet = np.log(M)
    dl = 2.0 * a * z * iM
    d2l = 2.0 * z * (1.0 - u * z) * iM * iM
    c = pr.count
    return coef, float(c @ logdet), (c @ dl)[None], (c @ d2l)[None]


def _pattern_derivatives_q2(pr: Problem, th: np.ndarray):
    """(time | subject): the entries of P_k, dP_k, d2P_k (for S) and log det M_k with derivatives."""
    q, K = 2, pr.count.size
    r, c, I, J, _, (ei, ej) = _layout(q)
    k = r.size
    T = np.array([[th[0], 0.0], [th[1], th[2]]])
    Z = np.empty((K, q, q))
    Z[:, 0, 0] = pr.z00
    Z[:, 0, 1] = Z[:, 1, 0] = pr.z01
    Z[:, 1, 1] = pr.z11
    TZ = T.T @ Z  # (K, q, q): T'Z_k
    M = TZ @ T + np.eye(q)
    det = M[:, 0, 0] * M[:, 1, 1] - M[:, 0, 1] * M[:, 1, 0]
    Minv = np.stack([M[:, 1, 1], -M[:, 0, 1], -M[:, 1, 0], M[:, 0, 0]], axis=1).reshape(K, q, q) / det[:, None, None]
    W = Minv @ T.T  # (K, q, q)
    P = T @ W
    E = np.eye(q) - Z @ P
    WZ = W @ Z
    # first derivatives: A_i = E' dT_i W = E[r_i, :]' (x) W[c_i, :]
    Er, Wc = E[:, r, :], W[:, c, :]  # (K, k, q)
    A = Er[..., :, None] * Wc[..., None, :]
    dP = A + A.swapaxes(-1, -2)  # (K, k, q, q)
    dl = 2.0 * WZ[:, c, r]  # (K, k)
    # dW_j = M^-1 (dT_j' E - T'Z dT_j W): rows c_j of the first part hold E[r_j, :]
    B = -(TZ[:, :, r].swapaxes(1, 2)[..., :, None] * Wc[..., None, :])  # (K, k, q, q)
    B[:, np.arange(k), c, :] += Er
    dW = Minv[:, None] @ B
    d2l = 2.0 * (dW @ Z[:, None])[:, J, c[I], r[I]]  # (K, npair)
    # second derivatives: C_ij = -dP_j Z dT_i W + E' dT_i dW_j
    dPZ_cols = (dP @ Z[:, None]).swapaxes(-1, -2)  # [.., j, col, row]
    C = (E[:, r[I], :][..., :, None] * dW[:, J, c[I], :][..., None, :]
         - dPZ_cols[:, J, r[I], :][..., :, None] * W[:, c[I], :][..., None, :])
    d2P = C + C.swapaxes(-1, -2)  # (K, npair, q, q)
    coef = np.concatenate([P[:, None], dP, d2P], axis=1)[:, :, ei, ej]  # (K, R, ne)
    coef = coef.transpose(1, 2, 0).reshape(coef.shape[1], -1)  # (R, ne * K): [entry][pattern] as S
    cnt = pr.count
    return coef, float(cnt @ np.log(det)), cnt @ dl, cnt @ d2l


def analytic(pr: Problem, theta: np.ndarray, *, reml: bool) -> Pieces | None:
    """The profiled deviance at one (internal) theta with its exact gradient and Hessian.

    Returns None when ``Q`` is not positive definite (a perfect fit), where
    the deviance is infinite.
    """
    p, m = pr.p, pr.m
    _, _, I, J, full, _ = _layout(pr.q)
    k = full.shape[0]
    th = np.asarray(theta, dtype=float)
    if pr.q == 1:
        coef, logdet, g_logdet, h_logdet = _pattern_derivatives_q1(pr, float(th[0]))
    else:
        coef, logdet, g_logdet, h_logdet = _pattern_derivatives_q2(pr, th)
    # Q and its derivatives: one product with the pattern sums S ([S00; S01; S11])
    PS = (coef @ pr.S).reshape(-1, m, m)
    Q = pr.GtG - PS[0]
    dQ, d2Q = -PS[1:1 + k], -PS[1 + k:]
    try:
        L = np.linalg.cholesky(Q)
    except np.linalg.LinAlgError:
        return None
    diag = np.diagonal(L)
    r2 = float(diag[p]) ** 2
    if not (r2 > 0.0 and math.isfinite(r2)):
        return None
    Pb = np.linalg.inv(Q[:p, :p])
    beta_c = Pb @ Q[:p, p]
    u = np.append(-beta_c, 1.0)
    dQu = dQ @ u  # (k, m)
    gr2 = dQu @ u
    dQuX = dQu[:, :p]
    Hr2 = (d2Q @ u @ u)[full] - 2.0 * (dQuX @ Pb @ dQuX.T)
    PdQ = Pb @ dQ[:, :p, :p]  # (k, p, p)
    gPb = -(PdQ @ Pb)
    N = pr.n - p if reml else pr.n
    if reml:
        D0 = logdet + 2.0 * float(np.log(diag[:p]).sum())
        gD0 = g_logdet + np.einsum("iaa->i", PdQ)
        HD0 = (h_logdet + np.einsum("ab,nba->n", Pb, d2Q[:, :p, :p]))[full] - np.einsum("iab,jba->ij", PdQ, PdQ)
    else:
        D0, gD0, HD0 = logdet, g_logdet, h_logdet[full]
    dev = D0 + N * (1.0 + _LOG_2PI + math.log(r2 / N))
    return Pieces(dev=float(dev), D0=float(D0), r2=r2, Q=Q, Pb=Pb, beta_c=beta_c, gD0=gD0, HD0=HD0,
                  gr2=gr2, Hr2=Hr2, gPb=gPb, N=N)
