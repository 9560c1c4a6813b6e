"""The Kenward-Roger (1997) small-sample adjustment, for any Gaussian model with a structured covariance.

Kenward, M. G. & Roger, J. H. (1997), *Small sample inference for fixed effects
from restricted maximum likelihood*, Biometrics 53(3), 983-997.

The model is ``y ~ N(X beta, V(theta))`` with ``k`` variance parameters
``theta``.  At the REML estimate the caller computes, from its own (block
diagonal) structure:

=======  =========  ===================================================================
name     shape      definition
=======  =========  ===================================================================
``phi``  (p, p)     ``Phi = (X' V^-1 X)^-1``, the plug-in covariance of beta-hat
``P``    (k, p, p)  ``P_i = X' (dV^-1/dtheta_i) X = -X' V^-1 V_i V^-1 X``
``Q``    (k,k,p,p)  ``Q_ij = X' V^-1 V_i V^-1 V_j V^-1 X``  (``V_i = dV/dtheta_i``)
``R``    (k,k,p,p)  ``R_ij = X' V^-1 V_ij V^-1 X``  (``V_ij = d2V/dtheta_i dtheta_j``);
                    ``None`` when V is linear in theta (then R = 0)
``W``    (k, k)     the covariance matrix of theta-hat
=======  =========  ===================================================================

The adjusted covariance of beta-hat (KR eq. 2 with the bias term of eq. 3)::

    Phi_A = Phi + 2 Phi { sum_ij W_ij (Q_ij - P_i Phi P_j - R_ij / 4) } Phi

For ``H0: L beta = 0`` (``L`` is q x p of full row rank), with
``Theta = L' (L Phi L')^-1 L`` (the *unadjusted* Phi, as KR and pbkrtest do)::

    A1 = sum_ij W_ij tr(Theta Phi P_i Phi) tr(Theta Phi P_j Phi)
    A2 = sum_ij W_ij tr(Theta Phi P_i Phi Theta Phi P_j Phi)
    B  = (A1 + 6 A2) / (2q),   g = ((q+1) A1 - (q+4) A2) / ((q+2) A2)
    c1, c2, c3 = g, q - g, q + 2 - g   each divided by 3q + 2(1 - g)
    E* = 1 / (1 - A2/q),       V* = (2/q) (1 + c1 B) / ((1 - c2 B)^2 (1 - c3 B))
    rho = V* / (2 E*^2),       m = 4 + (q + 2) / (q rho - 1)       (denominator df)
    lambda = m / (E* (m - 2))                                       (F scale)
    F = lambda / q * (L beta)' (L Phi_A L')^-1 (L beta)  ~  F(q, m)

For q = 1 ``A1 = A2 = A``, ``m = 2/A`` and ``lambda = 1``: the t test with
``se = sqrt(l' Phi_A l)`` and ``m`` df.  Where ``|m - 2| < 0.01`` the scale is
set to 1 (as pbkrtest does).

Public functions
----------------
``adjusted_vcov(phi, P, Q, W, R=None) -> Phi_A`` (p, p)
``ddf_scale(L, phi, P, W) -> (scale, ddf)``: lambda and m of the contrast L (q x p or p)
``t_test(l, beta, phi, phi_adj, P, W) -> KRTest`` (one row)
``f_test(L, beta, phi, phi_adj, P, W) -> KRTest`` (any rows; F scaled by lambda)
``reml_w(ktrace, phi, P, Q) -> W``: 2 times the inverse of the expected REML
information ``I_ij = tr(V^-1 V_i V^-1 V_j) - 2 tr(Phi Q_ij) + tr(Phi P_i Phi P_j)``
(KR's and pbkrtest's choice of W; ``ktrace[i, j] = tr(V^-1 V_i V^-1 V_j)``).

All functions are pure numpy/scipy; nothing here knows about the model that
produced the pieces (the LMM side is :mod:`lmm_teach.lmm.kenward_roger`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

__all__ = ["KRTest", "adjusted_vcov", "ddf_scale", "t_test", "f_test", "reml_w"]


@dataclass(frozen=True)
class KRTest:
    """A Kenward-Roger test of ``L beta = 0``.

    ``statistic`` is ``t`` for one row (``estimate / se``) and the scaled
    ``F`` for several; ``F_unscaled`` is the Wald F with Phi_A before the
    scale ``lambda``; ``df_num = q``, ``df_den = m``.
    """

    estimate: np.ndarray  # (q,) L beta
    se: np.ndarray  # (q,) sqrt(diag(L Phi_A L'))
    statistic: float  # t (q = 1) or lambda * F_unscaled
    F: float  # lambda * F_unscaled (t^2 for q = 1)
    F_unscaled: float
    scale: float  # lambda
    df_num: int
    df_den: float
    p: float


def _check_pieces(phi: np.ndarray, P: np.ndarray, W: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    phi = np.asarray(phi, float)
    P = np.asarray(P, float)
    W = np.asarray(W, float)
    p = phi.shape[0]
    if phi.shape != (p, p):
        raise ValueError(f"phi must be square, not {phi.shape}")
    if P.ndim != 3 or P.shape[1:] != (p, p):
        raise ValueError(f"P must be (k, {p}, {p}), not {P.shape}")
    k = P.shape[0]
    if W.shape != (k, k):
        raise ValueError(f"W must be ({k}, {k}) for {k} variance parameters, not {W.shape}")
    return phi, P, W


def adjusted_vcov(phi: np.ndarray, P: np.ndarray, Q: np.ndarray, W: np.ndarray,
                  R: np.ndarray | None = None) -> np.ndarray:
    """The Kenward-Roger adjusted covariance ``Phi_A`` of the fixed effects (p x p).

    Parameters
    ----------
    phi : (p, p) ``(X' V^-1 X)^-1``
    P : (k, p, p) ``-X' V^-1 V_i V^-1 X``
    Q : (k, k, p, p) ``X' V^-1 V_i V^-1 V_j V^-1 X``
    W : (k, k) covariance of theta-hat
    R : (k, k, p, p) or None, ``X' V^-1 V_ij V^-1 X`` (None: V linear in theta)

    Returns
    -------
    ndarray (p, p)
        ``Phi + 2 Phi {sum_ij W_ij (Q_ij - P_i Phi P_j - R_ij/4)} Phi``, symmetrised.

    Examples
    --------
    >>> import numpy as np
    >>> phi = np.eye(2); P = np.zeros((1, 2, 2)); Q = np.zeros((1, 1, 2, 2)); W = np.eye(1)
    >>> adjusted_vcov(phi, P, Q, W).tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """
    phi, P, W = _check_pieces(phi, P, W)
    k, p = P.shape[0], phi.shape[0]
    Q = np.asarray(Q, float)
    if Q.shape != (k, k, p, p):
        raise ValueError(f"Q must be ({k}, {k}, {p}, {p}), not {Q.shape}")
    U = np.einsum("ij,ijab->ab", W, Q)
    PPhi = P @ phi  # (k, p, p): P_i Phi
    U -= np.einsum("ij,iab,jbc->ac", W, PPhi, P)
    if R is not None:
        R = np.asarray(R, float)
        if R.shape != (k, k, p, p):
            raise ValueError(f"R must be ({k}, {k}, {p}, {p}), not {R.shape}")
        U -= 0.25 * np.einsum("ij,ijab->ab", W, R)
    out = phi + 2.0 * phi @ U @ phi
    return 0.5 * (out + out.T)


def _as_rows(L: np.ndarray, p: int) -> np.ndarray:
    L = np.atleast_2d(np.asarray(L, float))
    if L.shape[1] != p:
        raise ValueError(f"the contrast has {L.shape[1]} columns for {p} fixed effects")
    return L


def ddf_scale(L: np.ndarray, phi: np.ndarray, P: np.ndarray, W: np.ndarray) -> tuple[float, float]:
    """Kenward-Roger F scale ``lambda`` and denominator df ``m`` for ``H0: L beta = 0``.

    Parameters
    ----------
    L : (q, p) or (p,) contrast of full row rank
    phi, P, W : as in :func:`adjusted_vcov`

    Returns
    -------
    (scale, ddf) : floats
        ``lambda`` (1 for q = 1) and ``m``; ``(1.0, inf)`` when the variance
        parameters carry no uncertainty into ``L beta`` (A2 = 0).

    Examples
    --------
    >>> import numpy as np
    >>> phi = np.eye(1); P = -np.ones((1, 1, 1)); W = np.array([[0.1]])
    >>> [round(v, 6) for v in ddf_scale([1.0], phi, P, W)]   # A = 0.1: m = 2/A
    [1.0, 20.0]
    """
    phi, P, W = _check_pieces(phi, P, W)
    L = _as_rows(L, phi.shape[0])
    q = L.shape[0]
    LPhi = L @ phi
    Theta = L.T @ np.linalg.solve(LPhi @ L.T, L)
    ThetaPhi = Theta @ phi
    M = ThetaPhi @ P @ phi  # (k, p, p): Theta Phi P_i Phi
    tr = np.trace(M, axis1=1, axis2=2)
    A1 = float(tr @ W @ tr)
    A2 = float(np.einsum("ij,iab,jba->", W, M, M))
    if not np.isfinite(A1 + A2):
        return float("nan"), float("nan")
    if abs(A2) < 1e-300:
        return 1.0, float("inf")
    with np.errstate(divide="ignore", invalid="ignore"):
        B = (A1 + 6.0 * A2) / (2.0 * q)
        g = ((q + 1) * A1 - (q + 4) * A2) / ((q + 2) * A2)
        den = 3.0 * q + 2.0 * (1.0 - g)
        c1, c2, c3 = g / den, (q - g) / den, (q + 2 - g) / den
        v0 = 1.0 + c1 * B
        v0 = 0.0 if abs(v0) < 1e-10 else v0
        v1, v2 = 1.0 - c2 * B, 1.0 - c3 * B
        ratio = 1.0 if (abs(1.0 - A2 / q) < 1e-14 and abs(v1) < 1e-14) else (1.0 - A2 / q) / v1
        rho = ratio**2 * v0 / (q * v2)
        m = np.float64(4.0) + (q + 2.0) / np.float64(q * rho - 1.0)
        scale = 1.0 if abs(m - 2.0) < 0.01 else m * (1.0 - A2 / q) / (m - 2.0)
    return float(scale), float(m)


def f_test(L: np.ndarray, beta: np.ndarray, phi: np.ndarray, phi_adj: np.ndarray, P: np.ndarray,
           W: np.ndarray) -> KRTest:
    """The Kenward-Roger F test of ``L beta = 0`` (pbkrtest ``KRmodcomp``).

    ``F = lambda / q * (L beta)' (L Phi_A L')^-1 (L beta)`` on ``(q, m)`` df,
    with ``(lambda, m)`` from :func:`ddf_scale`.

    Examples
    --------
    >>> import numpy as np
    >>> phi = np.eye(1); P = -np.ones((1, 1, 1)); W = np.array([[0.1]])
    >>> r = f_test([[1.0]], np.array([2.0]), phi, phi, P, W)
    >>> round(r.F, 6), r.df_num, round(r.df_den, 6)
    (4.0, 1, 20.0)
    """
    phi, P, W = _check_pieces(phi, P, W)
    L = _as_rows(L, phi.shape[0])
    q = L.shape[0]
    beta = np.asarray(beta, float)
    est = L @ beta
    VA = L @ np.asarray(phi_adj, float) @ L.T
    F_u = float(est @ np.linalg.solve(VA, est)) / q
    scale, m = ddf_scale(L, phi, P, W)
    F = scale * F_u
    p = float(special.fdtrc(q, m, F)) if np.isfinite(m) else float(special.chdtrc(q, q * F))
    se = np.sqrt(np.clip(np.diag(VA), 0.0, None))
    stat = float(est[0] / se[0]) if q == 1 and se[0] > 0 else F
    return KRTest(estimate=est, se=se, statistic=stat, F=F, F_unscaled=F_u, scale=scale, df_num=q,
                  df_den=m, p=p)


def t_test(l: np.ndarray, beta: np.ndarray, phi: np.ndarray, phi_adj: np.ndarray, P: np.ndarray,
           W: np.ndarray) -> KRTest:
    """The Kenward-Roger t test of one contrast ``l' beta = 0`` (lmerTest ``contest1D``, KR).

    ``t = l'beta / sqrt(l' Phi_A l)`` on ``m`` df; ``p`` is two-sided.
    """
    l = np.asarray(l, float).reshape(1, -1)
    r = f_test(l, beta, phi, phi_adj, P, W)
    t = float(r.estimate[0] / r.se[0]) if r.se[0] > 0 else float("nan")
    p = float(2.0 * special.stdtr(r.df_den, -abs(t))) if np.isfinite(t) else float("nan")
    return KRTest(estimate=r.estimate, se=r.se, statistic=t, F=t * t, F_unscaled=r.F_unscaled, scale=r.scale,
                  df_num=1, df_den=r.df_den, p=p)


def reml_w(ktrace: np.ndarray, phi: np.ndarray, P: np.ndarray, Q: np.ndarray) -> np.ndarray:
    """``W = 2 I^-1`` from the expected REML information (KR 1997 section 2; pbkrtest ``vcovAdj``).

    ``I_ij = tr(V^-1 V_i V^-1 V_j) - 2 tr(Phi Q_ij) + tr(Phi P_i Phi P_j)``
    (= ``tr(S V_i S V_j)`` with the REML projection ``S``).  A nearly singular
    ``I`` (smallest |eigenvalue| <= 1e-10) is inverted by the Moore-Penrose
    inverse with tolerance ``sqrt(eps) * largest singular value`` (as MASS::ginv).
    """
    phi, P, _ = _check_pieces(phi, P, np.eye(np.asarray(P).shape[0]))
    Q = np.asarray(Q, float)
    I = (np.asarray(ktrace, float) - 2.0 * np.einsum("ab,ijba->ij", phi, Q)
         + np.einsum("iab,jba->ij", phi @ P, phi @ P))
    I = 0.5 * (I + I.T)
    if np.min(np.abs(np.linalg.eigvalsh(I))) > 1e-10:
        return 2.0 * np.linalg.inv(I)
    return 2.0 * np.linalg.pinv(I, rcond=np.sqrt(np.finfo(float).eps), hermitian=True)
