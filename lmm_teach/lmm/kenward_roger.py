"""Kenward-Roger inference for the LMM's fixed effects, as pbkrtest 0.5.2 computes it.

pbkrtest (Halekoh & Hojsgaard 2014, *J. Stat. Softw.* 59(9)) works in the
variance-covariance parameters ``gamma``, in which the marginal covariance is
linear::

    V = sum_k gamma_k G_k
    gamma = (var(intercept) [, cov(intercept, time), var(time)] [, var(cluster)], sigma^2)
    G_k   = Z_s E_k Z_s'   (E_k: 1 at the entry (or the symmetric pair) of the subject's
                            random-effect covariance; Z_s = [1, time] per subject)
            1 1' within a cluster,  I for the residual

so the second derivatives vanish (R = 0), and it takes W = 2 I^-1 with ``I``
the *expected* REML information in gamma (:func:`lmm_teach.kenward_roger.reml_w`).
Everything else is the generic core :mod:`lmm_teach.kenward_roger`.

``V`` is block diagonal: one block per subject, or per cluster (with its
subjects) in a clinic model.  The pieces ``X'V^-1 X``, ``P_k``, ``Q_kl`` and
``tr(V^-1 G_k V^-1 G_l)`` are sums over blocks, computed in batches of blocks
of the same size; no n x n matrix is formed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from lmm_teach import kenward_roger as kr

__all__ = ["KRPieces", "kr_pieces", "kr_fixed_numbers", "kr_test_numbers"]


@dataclass(frozen=True)
class KRPieces:
    """What Kenward-Roger needs of one fitted LMM (pbkrtest's ``vcovAdj`` and its attributes)."""

    beta: np.ndarray  # (p,)
    phi: np.ndarray  # (p, p) (X'V^-1 X)^-1 = vcov(beta)
    phi_adj: np.ndarray  # (p, p) the adjusted covariance Phi_A
    P: np.ndarray  # (k, p, p)
    W: np.ndarray  # (k, k) 2 x inverse expected REML information in gamma
    gamma: np.ndarray  # (k,) the variance parameters


def _blocks(subject: np.ndarray, cluster: np.ndarray | None) -> np.ndarray:
    """Block label per row: the subject, or the connected subject-cluster component."""
    if cluster is None:
        return subject
    ns, nc = int(subject.max()) + 1, int(cluster.max()) + 1
    graph = coo_matrix((np.ones(subject.size), (subject, ns + cluster)), shape=(ns + nc, ns + nc))
    _, comp = connected_components(graph, directed=False)
    return comp[subject]


def _block_matrices(sub: np.ndarray, t: np.ndarray, q: int, clus: np.ndarray | None) -> np.ndarray:
    """(B, k, m, m): the G_k of B blocks of m rows each (``sub``, ``t``, ``clus``: (B, m) subject
    labels, times and cluster labels)."""
    same = (sub[:, :, None] == sub[:, None, :]).astype(float)
    Gs = [same]
    if q == 2:
        Gs += [same * (t[:, :, None] + t[:, None, :]), same * (t[:, :, None] * t[:, None, :])]
    B, m = sub.shape
    if clus is not None:
        Gs.append((clus[:, :, None] == clus[:, None, :]).astype(float))
    Gs.append(np.broadcast_to(np.eye(m), (B, m, m)))
    return np.stack(Gs, axis=1)


def kr_pieces(X: np.ndarray, subject: np.ndarray, *, time: np.ndarray | None, random_slope: bool,
              cluster: np.ndarray | None, theta: np.ndarray, sigma2: float, beta: np.ndarray) -> KRPieces:
    """Phi, Phi_A, P and W of an LMM at its REML estimate (pbkrtest ``vcovAdj``).

    Parameters
    ----------
    X : (n, p) fixed-effects design
    subject : (n,) subject codes 0..J-1
    time : (n,) numeric time (used with ``random_slope``)
    random_slope : bool
    cluster : (n,) cluster codes or None
    theta : lme4's theta on the data's time scale ((T00,) or (T00, T10, T11), then the cluster's)
    sigma2 : residual variance
    beta : (p,) fixed effects
    """
    q = 2 if random_slope else 1
    th = np.asarray(theta, float)
    s2 = float(sigma2)
    if q == 1:
        gamma = [s2 * th[0] ** 2]
    else:
        a, b, c = th[:3]
        gamma = [s2 * a * a, s2 * a * b, s2 * (b * b + c * c)]
    if cluster is not None:
        gamma.append(s2 * th[-1] ** 2)
    gamma.append(s2)
    gamma = np.array(gamma)
    k = gamma.size
    X = np.asarray(X, float)
    p = X.shape[1]
    subj = np.asarray(subject)
    clus = None if cluster is None else np.asarray(cluster)
    block = _blocks(subj, clus)
    order = np.argsort(block, kind="stable")
    sizes = np.bincount(block)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    tt = np.zeros(X.shape[0]) if time is None else np.asarray(time, float)

    XtVX = np.zeros((p, p))
    P = np.zeros((k, p, p))
    Q = np.zeros((k, k, p, p))
    ktrace = np.zeros((k, k))
    for m in np.unique(sizes[sizes > 0]):
        first = starts[sizes == m]
        rows = order[first[:, None] + np.arange(m)[None, :]]  # (B, m)
        Xb = X[rows]  # (B, m, p)
        G = _block_matrices(subj[rows], tt[rows], q, None if cluster is None else clus[rows])  # (B, k, m, m)
        B = rows.shape[0]
        V = np.tensordot(G, gamma, axes=([1], [0]))  # (B, m, m)
        Vi = np.linalg.inv(V)
        ViX = (Vi @ Xb).reshape(B * m, p)
        H = G @ Vi[:, None]  # (B, k, m, m): G_k V^-1
        O = H @ Xb[:, None]  # (B, k, m, p): G_k V^-1 X
        ViO = Vi[:, None] @ O
        # sums over blocks as single matrix products (rows b*m + i)
        Ok = O.transpose(1, 0, 2, 3).reshape(k, B * m, p)
        XtVX += Xb.reshape(B * m, p).T @ ViX
        P -= Ok.transpose(0, 2, 1) @ ViX
        lhs = Ok.transpose(0, 2, 1).reshape(k * p, B * m)
        rhs = ViO.transpose(1, 0, 2, 3).reshape(k, B * m, p).transpose(1, 0, 2).reshape(B * m, k * p)
        Q += (lhs @ rhs).reshape(k, p, k, p).transpose(0, 2, 1, 3)
        Hk = H.transpose(1, 0, 2, 3).reshape(k, -1)
        HkT = H.transpose(1, 0, 3, 2).reshape(k, -1)
        ktrace += Hk @ HkT.T
    XtVX = 0.5 * (XtVX + XtVX.T)
    phi = np.linalg.inv(XtVX)
    phi = 0.5 * (phi + phi.T)
    P = 0.5 * (P + P.transpose(0, 2, 1))
    W = kr.reml_w(ktrace, phi, P, Q)
    phi_adj = kr.adjusted_vcov(phi, P, Q, W)
    return KRPieces(beta=np.asarray(beta, float), phi=phi, phi_adj=phi_adj, P=P, W=W, gamma=gamma)


def kr_fixed_numbers(pc: KRPieces) -> np.ndarray:
    """(p, 8): estimate, KR se, KR df, t, p, 95 % CI (t on KR df), Wald z p-value (with the KR se).

    The columns of :func:`lmm_teach.lmm.tables.fixed_numbers`, as lmerTest's
    ``summary(m, ddf = "Kenward-Roger")``: ``se = sqrt(diag(Phi_A))``, df from
    pbkrtest's ``Lb_ddf``.
    """
    beta = pc.beta
    p = beta.size
    se = np.sqrt(np.clip(np.diag(pc.phi_adj), 0.0, None))
    df = np.array([kr.ddf_scale(np.eye(p)[j], pc.phi, pc.P, pc.W)[1] for j in range(p)])
    with np.errstate(divide="ignore", invalid="ignore"):
        t = beta / se
    half = special.stdtrit(df, 0.975) * se
    return np.column_stack([beta, se, df, t, 2.0 * special.stdtr(df, -np.abs(t)),
                            beta - half, beta + half, 2.0 * special.ndtr(-np.abs(t))])


def kr_test_numbers(pc: KRPieces, design) -> tuple[tuple, np.ndarray]:
    """Type-III F tests with Kenward-Roger F and df (lmerTest ``anova(m, ddf = "Kenward-Roger")``,
    i.e. pbkrtest ``KRmodcomp`` on each term's contrast): names and (r, 4) F, df_num, df_den, p."""
    names = tuple(term.name for term in design.terms)
    rows = []
    for name in names:
        res = kr.f_test(design.contrasts[name], pc.beta, pc.phi, pc.phi_adj, pc.P, pc.W)
        rows.append((res.F, res.df_num, res.df_den, res.p))
    return names, np.array(rows, dtype=float).reshape(-1, 4)
