"""Degrees of freedom for the MMRM: Satterthwaite and Kenward-Roger (as R's mmrm computes them).

Satterthwaite for a contrast ``c``: ``df = 2 (c' Phi c)^2 / (g' W g)`` with
``g_i = c' dPhi/dtheta_i c`` and ``W`` the inverse Hessian of ``-l`` at the
optimum (the covariance of theta-hat); ``dPhi/dtheta_i = -Phi P_i Phi``.

Kenward-Roger: :mod:`lmm_teach.kenward_roger` (the generic core) adjusts the
covariance of beta-hat with ``Phi``, ``P``, ``Q``, ``R`` (from the second
derivatives of Sigma, in mmrm's parameterisation) and ``W`` (the inverse
observed Hessian, as mmrm) and gives the denominator df and F scale.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import special

from lmm_teach.kenward_roger import ddf_scale

__all__ = ["Inference", "satterthwaite_1d", "satterthwaite_md", "satterthwaite_rows"]


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
            _, df = ddf_scale(c[None, :], self.phi, self.P, self.W)
        else:
            df = satterthwaite_1d(c, self.phi, self.W, self.jac)
        t = est / se if se > 0 else np.nan
        p = float(2.0 * special.stdtr(df, -abs(t))) if np.isfinite(t) else np.nan
        return est, se, df, t, p

    def test_rows(self, C: np.ndarray) -> tuple[np.ndarray, ...]:
        """``(estimate, se, df, t, p)`` arrays for the contrasts in the rows of ``C``, as :meth:`test_1d`
        gives them one by one (Satterthwaite's df for all rows in a few products)."""
        C = np.atleast_2d(np.asarray(C, float))
        est = C @ self.beta
        se = np.sqrt(np.maximum(((C @ self.vcov) * C).sum(axis=1), 0.0))
        if self.method == "kenward-roger":
            df = np.array([ddf_scale(c[None, :], self.phi, self.P, self.W)[1] for c in C])
        else:
            df = satterthwaite_rows(C, self.phi, self.W, self.jac)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(se > 0, est / np.where(se > 0, se, 1.0), np.nan)
        p = np.where(np.isfinite(t), 2.0 * special.stdtr(df, -np.abs(t)), np.nan)
        return est, se, df, t, p

    def test_md(self, L: np.ndarray) -> tuple[float, float, float, float]:
        """``(F, df_num, df_den, p)`` for ``L beta = 0``."""
        L = np.atleast_2d(np.asarray(L, float))
        if self.method == "kenward-roger":
            q = L.shape[0]
            Lb = L @ self.beta
            F0 = float(Lb @ np.linalg.solve(L @ self.vcov @ L.T, Lb)) / q
            lam, m = ddf_scale(L, self.phi, self.P, self.W)
            F = lam * F0
            return F, float(q), m, float(special.fdtrc(q, m, F))
        return satterthwaite_md(L, self.beta, self.phi, self.W, self.jac)


def satterthwaite_1d(c, phi, W, jac) -> float:
    var = float(c @ phi @ c)
    g = (jac @ c) @ c
    denom = float(g @ W @ g)
    return 2.0 * var ** 2 / denom if denom > 0 else np.inf


def satterthwaite_rows(C, phi, W, jac) -> np.ndarray:
    """:func:`satterthwaite_1d` for every row ``c`` of ``C`` at once: ``2 (c' Phi c)^2 / (g' W g)``."""
    var = ((C @ phi) * C).sum(axis=1)
    g = ((C @ jac) * C).sum(axis=2).T                  # (m, k): g_i = c' dPhi/dtheta_i c, per row
    denom = ((g @ W) * g).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denom > 0, 2.0 * var ** 2 / np.where(denom > 0, denom, 1.0), np.inf)


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
    nu = satterthwaite_rows(UL, phi, W, jac)
    ddf = _md_denominator(nu)
    return F, float(q), ddf, float(special.fdtrc(q, ddf, F))
