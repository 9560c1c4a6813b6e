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


# (time | subject): D_k = det(I + T'Z_k T) and the numerators N00, N01, N11 of P_k = N / D_k are
# polynomials in theta = (a, b, c) whose coefficients are 1, z00, z01, z11 and det Z_k (see
# deviance._pattern_terms).  _Q2_TERMS lists, for each function and each derivative (value, d/da,
# d/db, d/dc, then the pairs aa, ab, ac, bb, bc, cc), the nonzero coefficients as
# (function, derivative, basis element, polynomial in theta).
_Q2_TERMS = [
    # D = 1 + a^2 z00 + 2ab z01 + (b^2 + c^2) z11 + a^2 c^2 det
    (0, 0, 0, lambda a, b, c: 1.0), (0, 0, 1, lambda a, b, c: a * a), (0, 0, 2, lambda a, b, c: 2 * a * b),
    (0, 0, 3, lambda a, b, c: b * b + c * c), (0, 0, 4, lambda a, b, c: a * a * c * c),
    (0, 1, 1, lambda a, b, c: 2 * a), (0, 1, 2, lambda a, b, c: 2 * b), (0, 1, 4, lambda a, b, c: 2 * a * c * c),
    (0, 2, 2, lambda a, b, c: 2 * a), (0, 2, 3, lambda a, b, c: 2 * b),
    (0, 3, 3, lambda a, b, c: 2 * c), (0, 3, 4, lambda a, b, c: 2 * a * a * c),
    (0, 4, 1, lambda a, b, c: 2.0), (0, 4, 4, lambda a, b, c: 2 * c * c), (0, 5, 2, lambda a, b, c: 2.0),
    (0, 6, 4, lambda a, b, c: 4 * a * c), (0, 7, 3, lambda a, b, c: 2.0),
    (0, 9, 3, lambda a, b, c: 2.0), (0, 9, 4, lambda a, b, c: 2 * a * a),
    # N00 = a^2 + a^2 c^2 z11
    (1, 0, 0, lambda a, b, c: a * a), (1, 0, 3, lambda a, b, c: a * a * c * c),
    (1, 1, 0, lambda a, b, c: 2 * a), (1, 1, 3, lambda a, b, c: 2 * a * c * c),
    (1, 3, 3, lambda a, b, c: 2 * a * a * c),
    (1, 4, 0, lambda a, b, c: 2.0), (1, 4, 3, lambda a, b, c: 2 * c * c), (1, 6, 3, lambda a, b, c: 4 * a * c),
    (1, 9, 3, lambda a, b, c: 2 * a * a),
    # N01 = ab - a^2 c^2 z01
    (2, 0, 0, lambda a, b, c: a * b), (2, 0, 2, lambda a, b, c: -a * a * c * c),
    (2, 1, 0, lambda a, b, c: b), (2, 1, 2, lambda a, b, c: -2 * a * c * c), (2, 2, 0, lambda a, b, c: a),
    (2, 3, 2, lambda a, b, c: -2 * a * a * c), (2, 4, 2, lambda a, b, c: -2 * c * c), (2, 5, 0, lambda a, b, c: 1.0),
    (2, 6, 2, lambda a, b, c: -4 * a * c), (2, 9, 2, lambda a, b, c: -2 * a * a),
    # N11 = b^2 + c^2 + a^2 c^2 z00
    (3, 0, 0, lambda a, b, c: b * b + c * c), (3, 0, 1, lambda a, b, c: a * a * c * c),
    (3, 1, 1, lambda a, b, c: 2 * a * c * c), (3, 2, 0, lambda a, b, c: 2 * b),
    (3, 3, 0, lambda a, b, c: 2 * c), (3, 3, 1, lambda a, b, c: 2 * a * a * c),
    (3, 4, 1, lambda a, b, c: 2 * c * c), (3, 6, 1, lambda a, b, c: 4 * a * c),
    (3, 7, 0, lambda a, b, c: 2.0), (3, 9, 0, lambda a, b, c: 2.0), (3, 9, 1, lambda a, b, c: 2 * a * a),
]
_Q2_INDEX = np.ravel_multi_index(np.array([t[:3] for t in _Q2_TERMS]).T, (4, 10, 5))
_Q2_POLY = [t[3] for t in _Q2_TERMS]


def _pattern_derivatives_q2(pr: Problem, th: np.ndarray):
    """(time | subject): the entries of P_k, dP_k, d2P_k (for S) and log D_k with derivatives.

    ``P_k = N_k / D_k`` with polynomial numerators and denominator (see
    ``_Q2_TERMS``), so the quotient rule gives every derivative::

        dP_i   = (dN_i - P dD_i) / D
        d2P_ij = (d2N_ij - dP_i dD_j - dP_j dD_i - P d2D_ij) / D
        d log D_i = dD_i / D,   d2 log D_ij = d2D_ij / D - dD_i dD_j / D^2
    """
    _, _, I, J, _, _ = _layout(2)
    a, b, c = (float(v) for v in th[:3])
    C = np.zeros(4 * 10 * 5)
    C[_Q2_INDEX] = [f(a, b, c) for f in _Q2_POLY]
    F = (C.reshape(40, 5) @ pr.pattern_basis).reshape(4, 10, -1)  # (function, derivative, pattern)
    iD = 1.0 / F[0, 0]
    dD, d2D = F[0, 1:4], F[0, 4:]
    P = F[1:, 0] * iD  # (3 entries, K)
    dP = (F[1:, 1:4] - P[:, None] * dD) * iD  # (3, 3, K)
    d2P = (F[1:, 4:] - dP[:, I] * dD[J] - dP[:, J] * dD[I] - P[:, None] * d2D) * iD  # (3, 6, K)
    dl = dD * iD
    d2l = d2D * iD - dl[I] * dl[J]
    coef = np.concatenate((P[None], dP.swapaxes(0, 1), d2P.swapaxes(0, 1))).reshape(10, -1)  # [entry][pattern]
    cnt = pr.count
    return coef, float(cnt @ np.log(F[0, 0])), dl @ cnt, d2l @ cnt


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
