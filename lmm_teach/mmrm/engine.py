"""The MMRM likelihood: REML (or ML) deviance, its exact gradient and Hessian, Kenward-Roger pieces.

With ``V`` the block-diagonal covariance (block ``Sigma_s`` per subject),
``W_s = Sigma_s^-1`` (zero at a subject's missing visits), ``G_s = W_s X_s``,
``Phi = (X' V^-1 X)^-1``, ``e_s = W_s r_s`` and ``B_s = G_s Phi G_s'``:

* ``-2 l_R = (n-p) log 2 pi + log|V| + log|X' V^-1 X| + r' V^-1 r``;
* ``d(-2 l_R)/d theta_i = <S_i, sum_s (W_s - B_s - e_s e_s')>`` with ``S_i = dSigma/dtheta_i``;
* the Hessian adds ``<S_ij, same sum>`` to traces of products of ``S_i``,
  ``W_s``, ``B_s`` and ``e_s e_s'``.

For the non-spatial structures every ``S_i`` is the same ``V x V`` matrix for
all subjects (a subject uses its sub-block), and subjects with the same
observed visits and between level share ``W_s`` and ``X_s``: each sum over
subjects is a sum over these groups (sizes and sums of y and y y'), taken into
``V^2 x V^2`` matrices that are then contracted with the derivatives.  The
cost per evaluation depends on the number of groups, not of subjects.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmm_teach.mmrm.problem import Problem

__all__ = ["Evaluation", "evaluate", "kr_pieces"]

LOG_2PI = float(np.log(2.0 * np.pi))


@dataclass(frozen=True, eq=False)
class Evaluation:
    """The objective (half the deviance: minus the log-likelihood) and what came with it."""

    f: float
    grad: np.ndarray | None
    hess: np.ndarray | None
    beta: np.ndarray | None = None
    phi: np.ndarray | None = None       # (X' V^-1 X)^-1
    P: np.ndarray | None = None         # X' dV^-1/dtheta_i X, (k, p, p)
    sigma: np.ndarray | None = None     # Sigma (V x V), or per subject for spatial structures
    W: np.ndarray | None = None         # inverses per group of subjects (per subject for spatial structures)
    G: np.ndarray | None = None         # W X, likewise
    dS: np.ndarray | None = None
    d2S: np.ndarray | None = None


_BAD = Evaluation(f=np.inf, grad=None, hess=None)


def _pattern_inverses(pr: Problem, S: np.ndarray):
    """Per-pattern ``W_p`` (P, V, V), zero at the missing visits, and log-determinants; None if not PD."""
    m = pr.pat_mask
    mo = m[:, :, None] & m[:, None, :]
    blocks = np.where(mo, S[None], np.eye(pr.n_visits))
    try:
        L = np.linalg.cholesky(blocks)
    except np.linalg.LinAlgError:
        return None
    logdet = 2.0 * np.log(np.diagonal(L, axis1=1, axis2=2)).sum(axis=1)
    if not np.all(np.isfinite(logdet)):
        return None
    return np.linalg.inv(blocks) * mo, logdet


def _subject_inverses(pr: Problem, S: np.ndarray):
    """Per-subject inverses (N, V, V) when every subject has its own Sigma (spatial structures)."""
    m = pr.mask
    mo = m[:, :, None] & m[:, None, :]
    blocks = np.where(mo, S, np.eye(pr.n_visits))
    try:
        L = np.linalg.cholesky(blocks)
    except np.linalg.LinAlgError:
        return None
    logdet = 2.0 * np.log(np.diagonal(L, axis1=1, axis2=2)).sum()
    if not np.isfinite(logdet):
        return None
    return np.linalg.inv(blocks) * mo, float(logdet)


def evaluate(pr: Problem, theta: np.ndarray, *, order: int = 2, reml: bool = True) -> Evaluation:
    """The objective ``-l(theta)`` with (``order`` >= 1) its gradient and (2) its Hessian."""
    V = pr.n_visits
    try:
        with np.errstate(all="ignore"):
            S, dS, d2S = pr.structure.sigma(theta, V, pr.dist, order=order)
    except (FloatingPointError, ValueError):
        return _BAD
    if not np.all(np.isfinite(S)):
        return _BAD
    if pr.structure.spatial:
        return _evaluate_per_subject(pr, theta, S, dS, d2S, order, reml)
    return _evaluate_grouped(pr, S, dS, d2S, order, reml)


def _deviance(pr, logdet, XtWX_chol, quad, reml):
    n, p = pr.n_obs, pr.p
    if reml:
        dev = (n - p) * LOG_2PI + logdet + 2.0 * np.log(np.diag(XtWX_chol)).sum() + quad
    else:
        dev = n * LOG_2PI + logdet + quad
    return 0.5 * dev


def _evaluate_grouped(pr, S, dS, d2S, order, reml):
    """Non-spatial structures: sums over groups of subjects with the same visits and the same design."""
    V, p = pr.n_visits, pr.p
    inv = _pattern_inverses(pr, S)
    if inv is None:
        return _BAD
    Wp, logdet_p = inv
    logdet = float(pr.pat_count @ logdet_p)
    X, n, ysum, yy = pr.gX, pr.gn, pr.gy, pr.gyy
    Wg = Wp[pr.gpat]                                   # (Gn, V, V)
    Gg = Wg @ X                                        # (Gn, V, p)
    XtWX = X.reshape(-1, p).T @ (n[:, None, None] * Gg).reshape(-1, p)
    Xty = Gg.reshape(-1, p).T @ ysum.reshape(-1)
    try:
        Lx = np.linalg.cholesky(XtWX)
    except np.linalg.LinAlgError:
        return _BAD
    phi = np.linalg.inv(XtWX)
    phi = (phi + phi.T) / 2
    beta = phi @ Xty
    mu = X @ beta                                      # (Gn, V): fitted means of the group's visits
    Wmu = (Wg @ mu[:, :, None])[:, :, 0]
    Wy = (Wg @ ysum[:, :, None])[:, :, 0]
    quad = float(np.sum(Wg * yy) - 2.0 * np.sum(Wmu * ysum) + np.sum(n[:, None] * Wmu * mu))
    f = _deviance(pr, logdet, Lx, quad, reml)
    if not np.isfinite(f):
        return _BAD
    if order < 1:
        return Evaluation(f=f, grad=None, hess=None, beta=beta, phi=phi, sigma=S, W=Wg, G=Gg)
    k = dS.shape[0]
    VV = V * V
    D = dS.reshape(k, VV)
    esum = Wy - n[:, None] * Wmu                       # sum over a group's subjects of W r
    # sum of W r r' W over a group's subjects: W (Syy - s mu' - mu s' + n mu mu') W
    C = (yy - ysum[:, :, None] * mu[:, None, :] - mu[:, :, None] * ysum[:, None, :]
         + n[:, None, None] * mu[:, :, None] * mu[:, None, :])
    E = Wg @ C @ Wg
    Msum = (pr.pat_count[:, None, None] * Wp).sum(axis=0) - E.sum(axis=0)
    if reml:
        GPhi = Gg @ phi
        B = n[:, None, None] * (GPhi @ Gg.transpose(0, 2, 1))  # sum over the group of G Phi G'
        Msum = Msum - B.sum(axis=0)
    grad2 = D @ Msum.ravel()
    if order < 2:
        return Evaluation(f=f, grad=0.5 * grad2, hess=None, beta=beta, phi=phi, sigma=S, W=Wg, G=Gg, dS=dS)
    Ggr = Gg.reshape(-1, V * p)
    KG = ((n[:, None] * Ggr).T @ Ggr).reshape(V, p, V, p).transpose(0, 2, 1, 3).reshape(VV, p * p)
    P = -(D @ KG).reshape(k, p, p)                     # X' dV^-1/dtheta_i X
    Wpf = Wp.reshape(-1, VV)
    Wgf = Wg.reshape(-1, VV)
    K_WW = ((Wpf * pr.pat_count[:, None]).T @ Wpf).reshape(V, V, V, V).transpose(0, 2, 1, 3).reshape(VV, VV)
    K_EW = (E.reshape(-1, VV).T @ Wgf).reshape(V, V, V, V).transpose(0, 2, 3, 1).reshape(VV, VV)
    c = D @ (Ggr.T @ esum).reshape(V, p, V).transpose(0, 2, 1).reshape(VV, p)  # (k, p)
    A2 = d2S.reshape(k, k, VV) @ Msum.ravel()
    T_WW = D @ K_WW @ D.T
    T_EW = D @ K_EW @ D.T
    H2 = A2 - T_WW + (T_EW + T_EW.T) - 2.0 * c @ phi @ c.T
    if reml:
        K_WB = (Wgf.T @ B.reshape(-1, VV)).reshape(V, V, V, V).transpose(3, 0, 1, 2).reshape(VV, VV)
        T_WB = D @ K_WB @ D.T
        Y = phi @ P
        T_PP = np.einsum("ipq,jqp->ij", Y, Y)
        H2 = H2 + (T_WB + T_WB.T) - T_PP
    H = 0.25 * (H2 + H2.T)
    return Evaluation(f=f, grad=0.5 * grad2, hess=H, beta=beta, phi=phi, P=P, sigma=S, W=Wg, G=Gg, dS=dS, d2S=d2S)


def _evaluate_per_subject(pr, theta, S, dS, d2S, order, reml):
    """Every subject has its own Sigma (spatial structures, few parameters): plain sums over subjects."""
    p = pr.p
    inv = _subject_inverses(pr, S)
    if inv is None:
        return _BAD
    W, logdet = inv
    G = W @ pr.X3
    XtWX = pr.X3.reshape(-1, p).T @ G.reshape(-1, p)
    Xty = G.reshape(-1, p).T @ pr.y2.reshape(-1)
    try:
        Lx = np.linalg.cholesky(XtWX)
    except np.linalg.LinAlgError:
        return _BAD
    phi = np.linalg.inv(XtWX)
    phi = (phi + phi.T) / 2
    beta = phi @ Xty
    r = pr.y2 - pr.X3 @ beta
    e = (W @ r[:, :, None])[:, :, 0]
    f = _deviance(pr, logdet, Lx, float(np.sum(e * r)), reml)
    if not np.isfinite(f):
        return _BAD
    if order < 1:
        return Evaluation(f=f, grad=None, hess=None, beta=beta, phi=phi, sigma=S, W=W, G=G)
    return _derivatives_per_subject(f, beta, phi, S, dS, d2S, W, G, e, order, reml)


def _derivatives_per_subject(f, beta, phi, S, dS, d2S, W, G, e, order, reml):
    GPhi = G @ phi
    B = GPhi @ G.transpose(0, 2, 1) if reml else 0.0
    M = W - B - e[:, :, None] * e[:, None, :]
    grad2 = np.einsum("skab,sab->k", dS, M)
    if order < 2:
        return Evaluation(f=f, grad=0.5 * grad2, hess=None, beta=beta, phi=phi, sigma=S, W=W, G=G, dS=dS)
    SG = dS @ G[:, None]
    P = -np.einsum("sap,siaq->ipq", G, SG)
    A2 = np.einsum("sklab,sab->kl", d2S, M)
    SW = dS @ W[:, None]
    T_WW = np.einsum("siab,sjba->ij", SW, SW)
    u = (dS @ e[:, None, :, None])[..., 0]
    T_EW = np.einsum("sia,sab,sjb->ij", u, W, u, optimize=True)
    c = np.einsum("sap,sia->ip", G, u)
    H2 = A2 - T_WW + 2.0 * T_EW - 2.0 * c @ phi @ c.T
    if reml:
        SB = dS @ B[:, None]
        T_WB = np.einsum("siab,sjba->ij", SW, SB)
        Y = phi @ P
        H2 = H2 + 2.0 * T_WB - np.einsum("ipq,jqp->ij", Y, Y)
    H = 0.25 * (H2 + H2.T)
    return Evaluation(f=f, grad=0.5 * grad2, hess=H, beta=beta, phi=phi, P=P, sigma=S, W=W, G=G, dS=dS, d2S=d2S)


def kr_pieces(pr: Problem, ev: Evaluation) -> tuple[np.ndarray, np.ndarray]:
    """Kenward-Roger's ``Q_ij = X'V^-1 V_i V^-1 V_j V^-1 X`` and ``R_ij = X'V^-1 V_ij V^-1 X``, (k, k, p, p)."""
    G, W, dS, d2S = ev.G, ev.W, ev.dS, ev.d2S  # per group (non-spatial) or per subject (spatial)
    V, p = G.shape[1], G.shape[2]
    if pr.structure.spatial:
        SG = dS @ G[:, None]                      # (N, k, V, p)
        WSG = W[:, None] @ SG
        Q = np.einsum("siap,sjaq->ijpq", SG, WSG)
        R = np.einsum("sap,sijab,sbq->ijpq", G, d2S, G, optimize=True)
        return Q, R
    k = dS.shape[0]
    n = pr.gn
    SG = np.einsum("iab,gbp->igap", dS, G)        # (k, Gn, V, p): S_i G_g
    WSG = W[None] @ SG
    A = (n[None, :, None, None] * SG).transpose(1, 2, 0, 3).reshape(-1, k * p)
    B = WSG.transpose(1, 2, 0, 3).reshape(-1, k * p)
    Q = (A.T @ B).reshape(k, p, k, p).transpose(0, 2, 1, 3)
    Gr = G.reshape(-1, V * p)
    KG = ((n[:, None] * Gr).T @ Gr).reshape(V, p, V, p).transpose(0, 2, 1, 3).reshape(V * V, p * p)
    R = (d2S.reshape(k * k, V * V) @ KG).reshape(k, k, p, p)
    return Q, R
