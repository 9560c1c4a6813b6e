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
observed visits (pattern ``p``) share ``W_p``; with the design of a subject's
class (its arm) written at every visit, ``X_s' W_s = X_c' W_p``.  The
objective and the gradient then need only the per-pattern inverses and the
cells' sufficient statistics (:mod:`lmm_teach.mmrm.problem`):
``sum_s (W_s - B_s - e_s e_s') = sum_p (n_p W_p - W_p A_p W_p)`` with
``A_p = sum_s (r_s r_s' + X_s Phi X_s')`` over the pattern's subjects.  The
Hessian's traces are sums over the non-empty (pattern, class) cells, taken
into ``V^2 x V^2`` matrices contracted with the derivatives.  The cost per
evaluation depends on the number of patterns, not of subjects.

This runs dozens of times per fit (R's L-BFGS-B takes 40 to 80 steps), on
small arrays: the cost is numpy's per-call overhead more than arithmetic, so
each step is a few whole-array products.  The unstructured covariance's
derivatives are contracted in closed form (:meth:`Structure.contract
<lmm_teach.mmrm.structures.Structure.contract>`) instead of being built as
``(k, V, V)`` and ``(k, k, V, V)`` arrays (at 10 visits, 55 parameters: 300 000
numbers per Hessian).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy.linalg import lapack

from lmm_teach.mmrm.problem import Problem

__all__ = ["Evaluation", "evaluate", "kr_pieces"]

LOG_2PI = float(np.log(2.0 * np.pi))
_dposv = lapack.get_lapack_funcs("posv", dtype=np.float64)


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


@functools.lru_cache(maxsize=16)
def _eye(n: int) -> np.ndarray:
    eye = np.eye(n)
    eye.setflags(write=False)
    return eye


def _pattern_inverses(pr: Problem, S: np.ndarray):
    """Per-pattern ``W_p`` (P, V, V), zero at the missing visits, and ``log|V| = sum_p n_p log|Sigma_p|``;
    None if not positive definite."""
    mo = pr.pat_mo
    blocks = np.where(mo, S, _eye(pr.n_visits))     # identity at the missing visits: same inverse, det 1
    try:
        L = np.linalg.cholesky(blocks)
    except np.linalg.LinAlgError:
        return None
    logdet = 2.0 * float(pr.pat_count @ np.log(L.diagonal(0, 1, 2)).sum(axis=1))  # sum_p n_p log|Sigma_p|
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
    st = pr.structure
    # a structure that contracts its derivatives in closed form (us) needs no dSigma for a gradient and no
    # d2Sigma for a Hessian
    sigma_order = order - 1 if (order >= 1 and not st.spatial and st.closed_contract) else order
    try:
        with np.errstate(all="ignore"):
            S, dS, d2S = st.sigma(theta, V, pr.dist, order=sigma_order)
    except (FloatingPointError, ValueError):
        return _BAD
    if not math.isfinite(S.sum()):  # a NaN or an infinity anywhere makes the sum one
        return _BAD
    if pr.structure.spatial:
        return _evaluate_per_subject(pr, theta, S, dS, d2S, order, reml)
    return _evaluate_grouped(pr, theta, S, dS, d2S, order, reml)


def _solve_fixed(XtWX, Xty):
    """``(beta, Phi, log|X' V^-1 X|)`` with ``Phi = (X' V^-1 X)^-1``, or None if not positive definite.

    One LAPACK ``dposv`` call factors the p x p matrix and solves for beta and Phi together (numpy's
    ``cholesky`` and ``inv`` cost more in their checks than in the arithmetic at this size).
    """
    p = len(Xty)
    rhs = np.empty((p, p + 1))
    rhs[:, 0] = Xty
    rhs[:, 1:] = _eye(p)
    U, sol, info = _dposv(XtWX, rhs, overwrite_a=True, overwrite_b=True)
    if info != 0:
        return None
    phi = sol[:, 1:]
    return sol[:, 0], (phi + phi.T) / 2, 2.0 * float(np.log(U.diagonal()).sum())


def _deviance(pr, logdet, logdet_xtwx, quad, reml):
    if reml:
        dev = (pr.n_obs - pr.p) * LOG_2PI + logdet + logdet_xtwx + quad
    else:
        dev = pr.n_obs * LOG_2PI + logdet + quad
    return 0.5 * dev


def _evaluate_grouped(pr, theta, S, dS, d2S, order, reml):
    """Non-spatial structures: sums over (pattern, class) cells of subjects (see :mod:`~lmm_teach.mmrm.problem`)."""
    inv = _pattern_inverses(pr, S)
    if inv is None:
        return _BAD
    Wp, logdet = inv
    core = _core(pr, Wp, logdet, reml)
    if core is None:
        return _BAD
    f, phi, beta, mu = core
    if order < 1:
        return Evaluation(f=f, grad=None, hess=None, beta=beta, phi=phi, sigma=S)
    V, k = pr.n_visits, len(theta)
    A = _cell_outer(pr, beta, mu, phi if reml else None)
    E = Wp @ A @ Wp                 # per pattern: sum of W (r r' [+ X Phi X']) W over its subjects
    Msum = (pr.pat_count @ Wp.reshape(-1, V * V) - E.sum(axis=0).ravel()).reshape(V, V)
    if order < 2:
        grad = dS.reshape(k, -1) @ Msum.ravel() if dS is not None else pr.structure.contract(theta, Msum)
        return Evaluation(f=f, grad=0.5 * grad, hess=None, beta=beta, phi=phi, sigma=S, dS=dS)
    if d2S is None:                 # closed form (us)
        grad2, A2 = pr.structure.contract(theta, Msum, second=True)
    else:
        grad2, A2 = dS.reshape(k, -1) @ Msum.ravel(), d2S.reshape(k, k, -1) @ Msum.ravel()
    return _hessian_grouped(pr, f, beta, phi, mu, S, dS, d2S, Wp, E, grad2, A2, reml)


def _core(pr, Wp, logdet, reml):
    """``(f, Phi, beta, mu)`` from the pattern inverses; ``mu`` ``(C, V)`` are the classes' fitted means.

    ``X' V^-1 X = sum_c X_c' (sum_p n_pc W_p) X_c``, ``X' V^-1 y = sum_c X_c' sum_p W_p ysum_pc`` and
    ``y' V^-1 y = sum_p <W_p, sum y y'>``; then ``r' V^-1 r = y' V^-1 y - beta' X' V^-1 y``.  One LAPACK
    call (``dposv``) factors ``X' V^-1 X`` and solves for ``beta`` and ``Phi`` together.
    """
    V = pr.n_visits
    Wbar = (pr.pc_nT @ Wp.reshape(-1, V * V)).reshape(-1, V, V)
    XtWX = (pr.cls_XT @ Wbar @ pr.cls_X).sum(axis=0)
    Wys = pr.pc_y_flat @ Wp.reshape(-1, V)            # (C, V): sum_p W_p ysum_pc (W_p symmetric)
    Xty = pr.cls_X_flatT @ Wys.ravel()
    fixed = _solve_fixed(XtWX, Xty)
    if fixed is None:
        return None
    beta, phi, logdet_xtwx = fixed
    quad = float(Wp.ravel() @ pr.pat_yy.ravel() - beta @ Xty)
    f = _deviance(pr, logdet, logdet_xtwx, quad, reml)
    if not np.isfinite(f):
        return None
    return f, phi, beta, pr.cls_X @ beta


def _cell_outer(pr, beta, mu, phi):
    """Per pattern ``sum_s r_s r_s'`` (plus ``X_s Phi X_s'`` when ``phi`` is given: REML), ``(P, V, V)``.

    With ``ysum_pc`` the cell's sum of y and ``mu_c = X_c beta``:
    ``sum y y' - sum_c (ysum_pc mu_c' + mu_c ysum_pc') + sum_c n_pc (mu_c mu_c' [+ X_c Phi X_c'])``.
    """
    V = pr.n_visits
    bb = np.outer(beta, beta)
    Q = pr.cls_X @ (bb + phi if phi is not None else bb) @ pr.cls_XT   # mu_c mu_c' [+ X_c Phi X_c']
    T = pr.pc_yT @ mu                                   # (P, V, V): sum_c ysum_pc mu_c'
    return pr.pat_yy - T - T.transpose(0, 2, 1) + (pr.pc_n @ Q.reshape(-1, V * V)).reshape(-1, V, V)


def _hessian_grouped(pr, f, beta, phi, mu, S, dS, d2S, Wp, E, grad2, A2, reml):
    """Gradient and Hessian with ``E_p = W_p A_p W_p`` (A from :func:`_cell_outer`) and the groups' ``W X``.

    ``H = 1/4 [A2_ij - tr(W S_i W S_j) + 2 tr(E S_i W S_j) - 2 c_i' Phi c_j - tr(Phi P_i Phi P_j)]``
    summed over subjects, with ``c_i = sum_s X_s' W_s S_i W_s r_s``; the last term (REML only) and the
    ``X Phi X'`` part of ``E`` come from the derivative of ``log|X' V^-1 X|``; ``A2_ij = <S_ij, Msum>``
    and ``grad2 = <S_i, Msum>`` are given.
    """
    V, p = pr.n_visits, pr.p
    k = dS.shape[0]
    VV = V * V
    D = dS.reshape(k, VV)
    n = pr.gn
    Wg = Wp[pr.gpat]                                   # (Gn, V, V)
    Gg = Wg @ pr.gX                                    # (Gn, V, p): W X per group
    rsum = pr.pc_y[pr.gpat, pr.gcls] - n[:, None] * mu[pr.gcls]
    esum = (Wg @ rsum[:, :, None])[:, :, 0]            # sum over a group's subjects of W r
    Ggr = Gg.reshape(-1, V * p)
    KG = ((n[:, None] * Ggr).T @ Ggr).reshape(V, p, V, p).transpose(0, 2, 1, 3).reshape(VV, p * p)
    P = -(D @ KG).reshape(k, p, p)                     # X' dV^-1/dtheta_i X
    Wpf = Wp.reshape(-1, VV)
    K_WW = ((Wpf * pr.pat_count[:, None]).T @ Wpf).reshape(V, V, V, V).transpose(0, 2, 1, 3).reshape(VV, VV)
    K_EW = (E.reshape(-1, VV).T @ Wpf).reshape(V, V, V, V).transpose(0, 2, 3, 1).reshape(VV, VV)
    c = D @ (Ggr.T @ esum).reshape(V, p, V).transpose(0, 2, 1).reshape(VV, p)  # (k, p)
    T_EW = D @ K_EW @ D.T
    H2 = A2 - D @ K_WW @ D.T + (T_EW + T_EW.T) - 2.0 * c @ phi @ c.T
    if reml:
        Y = phi @ P                                    # tr(Y_i Y_j) as one product
        H2 = H2 - Y.reshape(k, -1) @ Y.transpose(0, 2, 1).reshape(k, -1).T
    H = 0.25 * (H2 + H2.T)
    return Evaluation(f=f, grad=0.5 * grad2, hess=H, beta=beta, phi=phi, P=P, sigma=S, W=Wg, G=Gg,
                      dS=dS, d2S=d2S)


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
    fixed = _solve_fixed(XtWX, Xty)
    if fixed is None:
        return _BAD
    beta, phi, logdet_xtwx = fixed
    r = pr.y2 - pr.X3 @ beta
    e = (W @ r[:, :, None])[:, :, 0]
    f = _deviance(pr, logdet, logdet_xtwx, float(np.sum(e * r)), reml)
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


def kr_pieces(pr: Problem, ev: Evaluation, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kenward-Roger's ``Q_ij = X'V^-1 V_i V^-1 V_j V^-1 X`` and ``R_ij = X'V^-1 V_ij V^-1 X``, (k, k, p, p)."""
    G, W, dS, d2S = ev.G, ev.W, ev.dS, ev.d2S  # per group (non-spatial) or per subject (spatial)
    if d2S is None:  # a structure with closed-form contractions left the second derivatives out
        d2S = pr.structure.sigma(theta, pr.n_visits, pr.dist, order=2)[2]
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
