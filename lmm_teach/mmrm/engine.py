"""The MMRM likelihood: REML (or ML) deviance, its exact gradient and Hessian, Kenward-Roger pieces.

With ``V`` the block-diagonal covariance (block ``Sigma_s`` per subject),
``W_s = Sigma_s^-1`` (zero at a subject's missing visits), ``G_s = W_s X_s``,
``Phi = (X' V^-1 X)^-1``, ``e_s = W_s r_s`` and ``B_s = G_s Phi G_s'``:

* ``-2 l_R = (n-p) log 2 pi + log|V| + log|X' V^-1 X| + r' V^-1 r``;
* ``d(-2 l_R)/d theta_i = <S_i, sum_s (W_s - B_s - e_s e_s')>`` with ``S_i = dSigma/dtheta_i``;
* the Hessian adds ``<S_ij, same sum>`` to traces of products of ``S_i``,
  ``W_s``, ``B_s`` and ``e_s e_s'``.

For the non-spatial structures every ``S_i`` is the same ``V x V`` matrix for
all subjects (a subject uses its sub-block), so each sum over subjects is
taken once, grouped by visit pattern, into a ``V^2 x V^2`` matrix that is then
contracted with the derivatives: the cost per evaluation grows with the
number of subjects only through a few matrix products.
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
    W: np.ndarray | None = None         # per-subject inverses (N, V, V)
    G: np.ndarray | None = None         # W X (N, V, p)
    dS: np.ndarray | None = None
    d2S: np.ndarray | None = None


_BAD = Evaluation(f=np.inf, grad=None, hess=None)


def _inverses(pr: Problem, S: np.ndarray):
    """Per-subject W (N, V, V) and sum of log-determinants, or None when a block is not positive definite."""
    V = pr.n_visits
    eye = np.eye(V)
    if pr.structure.spatial:
        m = pr.mask
        mo = m[:, :, None] & m[:, None, :]
        blocks = np.where(mo, S, eye)
    else:
        m = pr.pat_mask
        mo = m[:, :, None] & m[:, None, :]
        blocks = np.where(mo, S[None], eye)
    try:
        L = np.linalg.cholesky(blocks)
    except np.linalg.LinAlgError:
        return None
    logdet = 2.0 * np.log(np.diagonal(L, axis1=1, axis2=2)).sum(axis=1)
    if not np.all(np.isfinite(logdet)):
        return None
    Winv = np.linalg.inv(blocks) * mo
    if pr.structure.spatial:
        return Winv, float(logdet.sum()), None
    return Winv[pr.pat_idx], float(pr.pat_count @ logdet), Winv


def _per_pattern(pr: Problem, A: np.ndarray) -> np.ndarray:
    """Sums of a per-subject array over the subjects of each pattern."""
    return np.add.reduceat(A[pr.pat_order], pr.pat_starts, axis=0)


def evaluate(pr: Problem, theta: np.ndarray, *, order: int = 2, reml: bool = True) -> Evaluation:
    """The objective ``-l(theta)`` with (``order`` >= 1) its gradient and (2) its Hessian."""
    V, p, N = pr.n_visits, pr.p, pr.n_subjects
    try:
        with np.errstate(all="ignore"):
            S, dS, d2S = pr.structure.sigma(theta, V, pr.dist, order=order)
    except (FloatingPointError, ValueError):
        return _BAD
    if not np.all(np.isfinite(S)):
        return _BAD
    inv = _inverses(pr, S)
    if inv is None:
        return _BAD
    W, logdet, Wp = inv
    G = W @ pr.X3
    XtWX = np.tensordot(pr.X3, G, axes=([0, 1], [0, 1]))
    Xty = np.tensordot(G, pr.y2, axes=([0, 1], [0, 1]))
    try:
        Lx = np.linalg.cholesky(XtWX)
    except np.linalg.LinAlgError:
        return _BAD
    phi = np.linalg.inv(XtWX)
    phi = (phi + phi.T) / 2
    beta = phi @ Xty
    r = pr.y2 - pr.X3 @ beta
    e = (W @ r[:, :, None])[:, :, 0]
    quad = float(np.sum(e * r))
    n = pr.n_obs
    if reml:
        dev = (n - p) * LOG_2PI + logdet + 2.0 * np.log(np.diag(Lx)).sum() + quad
    else:
        dev = n * LOG_2PI + logdet + quad
    f = 0.5 * dev
    if not np.isfinite(f):
        return _BAD
    if order < 1:
        return Evaluation(f=f, grad=None, hess=None, beta=beta, phi=phi, sigma=S, W=W, G=G)
    GPhi = G @ phi
    if pr.structure.spatial:
        return _evaluate_per_subject(pr, f, beta, phi, S, dS, d2S, W, G, GPhi, e, order, reml)
    k = dS.shape[0]
    D = dS.reshape(k, V * V)
    Bsum = np.tensordot(GPhi, G, axes=([0, 2], [0, 2])) if reml else 0.0
    Msum = (pr.pat_count[:, None, None] * Wp).sum(axis=0) - Bsum - e.T @ e
    grad2 = D @ Msum.ravel()
    if order < 2:
        return Evaluation(f=f, grad=0.5 * grad2, hess=None, beta=beta, phi=phi, sigma=S, W=W, G=G, dS=dS)
    # P_i = X' dV^-1/dtheta_i X = -sum_s G_s' S_i G_s
    Gr = G.reshape(N, V * p)
    KG = (Gr.T @ Gr).reshape(V, p, V, p).transpose(0, 2, 1, 3).reshape(V * V, p * p)
    P = -(D @ KG).reshape(k, p, p)
    cnt = pr.pat_count[:, None]
    Wpf = Wp.reshape(-1, V * V)
    VV = V * V
    K_WW = ((Wpf * cnt).T @ Wpf).reshape(V, V, V, V).transpose(0, 2, 1, 3).reshape(VV, VV)
    E = (e[:, :, None] * e[:, None, :]).reshape(N, VV)
    Epf = _per_pattern(pr, E)
    K_EW = (Epf.T @ Wpf).reshape(V, V, V, V).transpose(0, 2, 3, 1).reshape(VV, VV)
    c = D @ (Gr.T @ e).reshape(V, p, V).transpose(0, 2, 1).reshape(VV, p)  # (k, p)
    A2 = d2S.reshape(k, k, VV) @ Msum.ravel()
    T_WW = D @ K_WW @ D.T
    T_EW = D @ K_EW @ D.T
    H2 = A2 - T_WW + (T_EW + T_EW.T) - 2.0 * c @ phi @ c.T
    if reml:
        B = (GPhi @ G.transpose(0, 2, 1)).reshape(N, VV)
        Bpf = _per_pattern(pr, B)
        K_WB = (Wpf.T @ Bpf).reshape(V, V, V, V).transpose(3, 0, 1, 2).reshape(VV, VV)
        T_WB = D @ K_WB @ D.T
        Y = phi @ P
        T_PP = np.einsum("ipq,jqp->ij", Y, Y)
        H2 = H2 + (T_WB + T_WB.T) - T_PP
    H = 0.25 * (H2 + H2.T)
    return Evaluation(f=f, grad=0.5 * grad2, hess=H, beta=beta, phi=phi, P=P, sigma=S, W=W, G=G, dS=dS, d2S=d2S)


def _evaluate_per_subject(pr, f, beta, phi, S, dS, d2S, W, G, GPhi, e, order, reml):
    """The same sums when every subject has its own Sigma (spatial structures: few parameters)."""
    B = GPhi @ G.transpose(0, 2, 1) if reml else 0.0
    M = W - B - e[:, :, None] * e[:, None, :]
    grad2 = np.einsum("skab,sab->k", dS, M)
    SG = dS @ G[:, None]
    P = -np.einsum("sap,siaq->ipq", G, SG)
    if order < 2:
        return Evaluation(f=f, grad=0.5 * grad2, hess=None, beta=beta, phi=phi, P=P, sigma=S, W=W, G=G, dS=dS)
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
    G, W, dS, d2S = ev.G, ev.W, ev.dS, ev.d2S
    N, V, p = G.shape
    if pr.structure.spatial:
        SG = dS @ G[:, None]                      # (N, k, V, p)
        WSG = W[:, None] @ SG
        Q = np.einsum("siap,sjaq->ijpq", SG, WSG)
        R = np.einsum("sap,sijab,sbq->ijpq", G, d2S, G, optimize=True)
        return Q, R
    k = dS.shape[0]
    SG = np.einsum("iab,sbp->isap", dS, G)        # (k, N, V, p)
    WSG = np.einsum("sab,isbp->isap", W, SG)
    A = SG.transpose(1, 2, 0, 3).reshape(N * V, k * p)
    B = WSG.transpose(1, 2, 0, 3).reshape(N * V, k * p)
    Q = (A.T @ B).reshape(k, p, k, p).transpose(0, 2, 1, 3)
    Gr = G.reshape(N, V * p)
    KG = (Gr.T @ Gr).reshape(V, p, V, p).transpose(0, 2, 1, 3).reshape(V * V, p * p)
    R = (d2S.reshape(k * k, V * V) @ KG).reshape(k, k, p, p)
    return Q, R
