"""Degrees of freedom for the MMRM: Satterthwaite and Kenward-Roger (as R's mmrm computes them).

Satterthwaite for a contrast ``c``: ``df = 2 (c' Phi c)^2 / (g' W g)`` with
``g_i = c' dPhi/dtheta_i c`` and ``W`` the inverse Hessian of ``-l`` at the
optimum (the covariance of theta-hat); ``dPhi/dtheta_i = -Phi P_i Phi``.

Kenward-Roger: the covariance of beta-hat is adjusted,
``Phi_A = Phi + 2 Phi [sum_ij W_ij (Q_ij - P_i Phi P_j - R_ij / 4)] Phi``
(R_ij from the second derivatives of Sigma, in mmrm's parameterisation), and
the denominator df and F scale come from Kenward & Roger (1997) eqs. (A1,
A2, B, E, rho) with the unadjusted ``Phi`` (as mmrm and pbkrtest do).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import special

__all__ = ["Inference", "satterthwaite_1d", "satterthwaite_md", "kr_adjusted", "kr_df"]


@dataclass(frozen=True, eq=False)
class Inference:
    """What a test needs: beta, its covariance (adjusted for KR), and the df machinery."""

    beta: np.ndarray
    vcov: np.ndarray        # Phi (Satterthwaite) or Phi_A (Kenward-Roger)
    phi: np.ndarray         # the unadjusted Phi
    W: np.ndarray           # covariance of theta-hat
    P: np.ndarray           # (k, p, p)
    method: str             # "satterthwaite" or "kenward-roger"
    jac: np.ndarray = field(init=False, repr=False)  # dPhi/dtheta_i = -Phi P_i Phi, (k, p, p)

    def __post_init__(self):
        object.__setattr__(self, "jac", -(self.phi[None] @ self.P @ self.phi[None]))

    def test_1d(self, c: np.ndarray) -> tuple[float, float, float, float, float]:
        """``(estimate, se, df, t, p)`` for ``c' beta``."""
        c = np.asarray(c, float)
        est = float(c @ self.beta)
        se = float(np.sqrt(max(c @ self.vcov @ c, 0.0)))
        if self.method == "kenward-roger":
            df, _ = kr_df(self.phi, c[None, :], self.W, self.P)
        else:
            df = satterthwaite_1d(c, self.phi, self.W, self.jac)
        t = est / se if se > 0 else np.nan
        p = float(2.0 * special.stdtr(df, -abs(t))) if np.isfinite(t) else np.nan
        return est, se, df, t, p

    def test_md(self, L: np.ndarray) -> tuple[float, float, float, float]:
        """``(F, df_num, df_den, p)`` for ``L beta = 0``."""
        L = np.atleast_2d(np.asarray(L, float))
        if self.method == "kenward-roger":
            q = L.shape[0]
            Lb = L @ self.beta
            F0 = float(Lb @ np.linalg.solve(L @ self.vcov @ L.T, Lb)) / q
            m, lam = kr_df(self.phi, L, self.W, self.P)
            F = lam * F0
            return F, float(q), m, float(special.fdtrc(q, m, F))
        return satterthwaite_md(L, self.beta, self.phi, self.W, self.jac)


def satterthwaite_1d(c, phi, W, jac) -> float:
    var = float(c @ phi @ c)
    g = (jac @ c) @ c
    denom = float(g @ W @ g)
    return 2.0 * var ** 2 / denom if denom > 0 else np.inf


def _md_denominator(nu: np.ndarray) -> float:
    if nu.size == 1:
        return float(nu[0])
    if np.all(np.abs(np.diff(nu)) < np.sqrt(np.finfo(float).eps)):
        return float(nu.mean())
    if np.any(nu <= 2):
        return 2.0
    e = float(np.sum(nu / (nu - 2.0)))
    return 2.0 * e / (e - nu.size)


def satterthwaite_md(L, beta, phi, W, jac) -> tuple[float, float, float, float]:
    """The F test of ``L beta = 0``: independent t's along the eigenvectors of ``L Phi L'``."""
    VL = L @ phi @ L.T
    d, U = np.linalg.eigh(VL)
    d, U = d[::-1], U[:, ::-1]
    tol = max(np.sqrt(np.finfo(float).eps) * d[0], 0.0)
    q = int((d > tol).sum())
    UL = (U.T @ L)[:q]
    t2 = (UL @ beta) ** 2 / d[:q]
    F = float(t2.sum() / q)
    nu = np.array([satterthwaite_1d(u, phi, W, jac) for u in UL])
    ddf = _md_denominator(nu)
    return F, float(q), ddf, float(special.fdtrc(q, ddf, F))


def kr_adjusted(phi, W, P, Q, R) -> np.ndarray:
    """Kenward-Roger's adjusted covariance of beta-hat."""
    Z = np.tensordot(W, P, axes=1)                      # Z_i = sum_j W_ij P_j
    inner = np.tensordot(W, Q, axes=([0, 1], [0, 1])) - (P @ phi @ Z).sum(axis=0)
    if R is not None:
        inner = inner - 0.25 * np.tensordot(W, R, axes=([0, 1], [0, 1]))
    A = phi + 2.0 * phi @ inner @ phi
    return (A + A.T) / 2


def kr_df(phi, L, W, P) -> tuple[float, float]:
    """Kenward-Roger's denominator df ``m`` and F scale ``lambda`` for the hypothesis ``L beta = 0``."""
    L = np.atleast_2d(L)
    q = L.shape[0]
    Theta = L.T @ np.linalg.solve(L @ phi @ L.T, L)
    M = [Theta @ phi @ Pi @ phi for Pi in P]
    tr = np.array([np.trace(m) for m in M])
    A1 = float(tr @ W @ tr)
    A2 = float(sum(W[i, j] * np.sum(M[i] * M[j].T) for i in range(len(M)) for j in range(len(M))))
    B = (A1 + 6.0 * A2) / (2.0 * q)
    g = ((q + 1) * A1 - (q + 4) * A2) / ((q + 2) * A2)
    den = 3 * q + 2 - 2 * g
    c1, c2, c3 = g / den, (q - g) / den, (q + 2 - g) / den
    e_star = 1.0 / (1.0 - A2 / q)
    v_star = 2.0 / q * (1 + c1 * B) / ((1 - c2 * B) ** 2 * (1 - c3 * B))
    rho = v_star / (2.0 * e_star ** 2)
    m = 4.0 + (q + 2.0) / (q * rho - 1.0)
    lam = m / (e_star * (m - 2.0))
    return float(m), float(lam)
