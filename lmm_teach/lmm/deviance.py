"""The profiled (RE)ML deviance of a linear mixed model, from per-subject sums.

The model, in the formulation of lme4 (Bates, Maechler, Bolker & Walker 2015,
*J. Stat. Softw.* 67(1), sections 3.1-3.4)::

    y = X beta + Z Lambda(theta) u + eps,    u ~ N(0, sigma^2 I),  eps ~ N(0, sigma^2 I)

with two kinds of random effects:

* per subject i, ``q = 1`` (intercept) or ``q = 2`` (intercept and time)
  effects ``b_i = T u_i``; ``T`` is lower triangular, ``theta_s = (T00)`` or
  ``(T00, T10, T11)`` (lme4's column-wise order);
* optionally a clinic intercept ``b_c = theta_c u_c`` (subjects nested in clinics).

With ``V* = I + Z Lambda Lambda' Z'`` (so that ``Var(y) = sigma^2 V*``) and
``G = [X, y]``, everything the deviance needs is the small matrix
``Q(theta) = G' V*^-1 G`` and ``log det V*`` (= ``log det(Lambda'Z'Z Lambda + I)``,
lme4's ``ldL2``).  The lower Cholesky factor ``R`` of ``Q`` holds lme4's ``R_X``
in its leading block and the penalized residual sum of squares ``r^2`` as the
square of its last diagonal element.  The profiled deviances are (eqs. 34 and 41
of the paper)::

    ML:    log det V* + n (1 + log(2 pi r^2 / n))
    REML:  log det V* + log det(X'V*^-1 X) + (n - p) (1 + log(2 pi r^2 / (n - p)))

Structure is exploited instead of forming ``Z``.  Per subject,
``V_i^-1 = I - Z_i P_i Z_i'`` with ``P_i = T (I + T'Z_i'Z_i T)^-1 T'`` (Woodbury), so
``G'V^-1 G = G'G - sum_i (Z_i'G_i)' P_i (Z_i'G_i)``: ``P_i`` depends on the subject
only through ``Z_i'Z_i``.  Subjects with the same ``Z_i'Z_i`` (same number of
visits, same times: most subjects of a designed study) form a *pattern*, and the
sum becomes ``sum_k P_k : S_k`` with ``S_k = sum_{i in k} (Z_i'G_i) (x) (Z_i'G_i)``
precomputed once.  A deviance evaluation costs O(patterns), not O(n), and is
vectorised over a batch of theta values (used by the finite differences).
The clinic level is a second Woodbury step on the few clinics: ``Z_c'V_s^-1 Z_c``
is diagonal because clinics nest subjects, so no (subjects x subjects) matrix
is ever formed.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Problem", "build_problem", "evaluate", "profile", "deviance", "linear_deviance", "solve_at", "Solution"]

_LOG_2PI = float(np.log(2.0 * np.pi))


@dataclass(frozen=True, eq=False)
class Problem:
    """Sufficient statistics of one LMM: everything the deviance needs, O(patterns) in size.

    Built once by :func:`build_problem`; immutable afterwards.
    """

    n: int  # observations
    p: int  # fixed-effect columns
    q: int  # random effects per subject: 1 (intercept) or 2 (intercept, time)
    n_subjects: int
    n_clusters: int  # 0 without a clinic level
    y_shift: float  # y was centred by this constant (added back to the intercept)
    t_scale: float  # the random slope uses time / t_scale internally (1 without a slope)
    GtG: np.ndarray  # (m, m), m = p + 1, G = [X, y - y_shift]
    # one entry per pattern k (subjects sharing Z_i'Z_i and the clinic):
    count: np.ndarray  # (K,) subjects in the pattern
    z00: np.ndarray  # (K,) n_i
    z01: np.ndarray  # (K,) sum of t   (zeros when q = 1)
    z11: np.ndarray  # (K,) sum of t^2 (zeros when q = 1)
    S: np.ndarray  # (q(q+1)/2 * K, m*m): [S00; S01; S11]; S00 sums g0 g0' over the pattern
    #                (g0 = sum_rows G), S01 of g0 g1' + g1 g0' and S11 of g1 g1' (g1 = sum_rows t G, q = 2)
    R0: np.ndarray  # (K, m) sum over the pattern of g0 (clinic level only)
    R1: np.ndarray  # (K, m) sum over the pattern of g1
    cluster_starts: np.ndarray  # patterns are sorted by clinic: start of each clinic
    # per subject (for the conditional modes):
    ZtG: np.ndarray  # (J, q, m)
    subject_pattern: np.ndarray  # (J,)
    subject_cluster: np.ndarray  # (J,) or empty
    mono_coef: np.ndarray | None = None  # (6, 4K) for q = 2: see _pattern_terms

    @property
    def m(self) -> int:
        return self.p + 1

    @property
    def n_theta(self) -> int:
        return (1 if self.q == 1 else 3) + (1 if self.n_clusters else 0)

    def external(self, theta: np.ndarray) -> np.ndarray:
        """theta on the data's time scale (lme4's theta) from the internal one."""
        th = np.array(theta, dtype=float)
        if self.q == 2:
            th[1:3] /= self.t_scale
        return th

    def internal(self, theta: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`external`."""
        th = np.array(theta, dtype=float)
        if self.q == 2:
            th[1:3] *= self.t_scale
        return th

    @functools.cached_property
    def lower(self) -> np.ndarray:
        """Lower bounds of theta: 0 for the diagonal of T and theta_c, none for T10 (read-only)."""
        lo = [0.0] if self.q == 1 else [0.0, -np.inf, 0.0]
        out = np.array(lo + ([0.0] if self.n_clusters else []))
        out.setflags(write=False)
        return out

    @functools.cached_property
    def pattern_basis(self) -> np.ndarray:
        """(5, K): 1, z00, z01, z11 and det Z_k per pattern, the coefficients of the (time | subject)
        polynomials of :func:`_pattern_terms` (read-only)."""
        out = np.vstack([np.ones_like(self.z00), self.z00, self.z01, self.z11,
                         self.z00 * self.z11 - self.z01 * self.z01])
        out.setflags(write=False)
        return out

    @functools.cached_property
    def bounded(self) -> np.ndarray:
        """Which theta are bounded below by 0 (read-only)."""
        out = self.lower == 0.0
        out.setflags(write=False)
        return out


def _segments(codes: np.ndarray, n_groups: int) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Row order that makes ``codes`` contiguous (None when they are), the start and size of each group."""
    order = np.argsort(codes, kind="stable") if codes.size > 1 and (codes[1:] < codes[:-1]).any() else None
    counts = np.bincount(codes, minlength=n_groups)
    starts = np.zeros(n_groups, dtype=np.intp)
    np.cumsum(counts[:-1], out=starts[1:])
    return order, starts, counts


def build_problem(
    y: np.ndarray,
    X: np.ndarray,
    subject: np.ndarray,
    *,
    time: np.ndarray | None = None,
    random_slope: bool = False,
    cluster: np.ndarray | None = None,
) -> Problem:
    """Precompute the per-subject and per-pattern sums of one model.

    Parameters
    ----------
    y : (n,) float array
    X : (n, p) float array, full column rank, first column the intercept (ones).
    subject : (n,) int array of codes 0 ... J-1, every code present.
    time : (n,) float array, needed for ``random_slope``.
    random_slope : bool
        ``(time | subject)`` instead of ``(1 | subject)``.
    cluster : (n,) int array of codes 0 ... C-1 or None; constant within subject.
    """
    y = np.asarray(y, dtype=float)
    X = np.asarray(X, dtype=float)
    n, p = X.shape
    m = p + 1
    J = int(subject.max()) + 1
    q = 2 if random_slope else 1
    # Centring y leaves theta, the slopes and every variance unchanged (the
    # intercept absorbs it) and keeps the sums below free of cancellation.
    shift = float(y.mean()) if (X[:, 0] == 1.0).all() else 0.0
    order, starts, counts = _segments(subject, J)
    # Per row: G = [X, y - shift], and for the slope also t G, t and t^2; one
    # pass of sums per subject gives Z_i'G and Z_i'Z_i.
    width = m if q == 1 else 2 * m + 2
    A = np.empty((n, width))
    A[:, :p] = X
    A[:, p] = y - shift
    t_scale = 1.0
    if q == 2:
        t = np.asarray(time, float)
        # The slope's theta scales with the unit of time (days vs years: 365-fold);
        # the optimiser and its finite differences work on time / RMS(time), where
        # theta is of order one.  Problem.external() converts back.
        t_scale = math.sqrt(float(t @ t) / n) or 1.0
        t = t / t_scale
        np.multiply(t[:, None], A[:, :m], out=A[:, m:2 * m])
        A[:, 2 * m] = t
        np.multiply(t, t, out=A[:, 2 * m + 1])
    if order is not None:
        A = A[order]
        cl = None if cluster is None else cluster[order]
    else:
        cl = cluster
    G = A[:, :m]
    sums = np.add.reduceat(A, starts, axis=0)  # (J, width)
    n_i = counts.astype(float)
    if q == 2:
        ZtG = sums[:, :2 * m].reshape(J, 2, m)
        st, stt = sums[:, 2 * m], sums[:, 2 * m + 1]
    else:
        ZtG = sums[:, None, :]
        st = stt = np.zeros(J)
    C = 0
    subj_cl = np.zeros(J, dtype=np.intp)
    if cl is not None:
        C = int(cl.max()) + 1
        subj_cl = np.asarray(cl[starts], dtype=np.intp)
    # Patterns: subjects with the same clinic and the same Z_i'Z_i, sorted by
    # clinic (so that each clinic's patterns are contiguous).
    porder = np.lexsort((stt, st, n_i, subj_cl))
    keys = np.column_stack([subj_cl.astype(float), n_i, st, stt])[porder]
    new_pattern = np.empty(J, dtype=bool)
    new_pattern[0] = True
    (keys[1:] != keys[:-1]).any(axis=1, out=new_pattern[1:])
    pstarts = np.flatnonzero(new_pattern)
    uniq = keys[pstarts].T.copy()  # (4, K): clinic, n_i, sum t, sum t^2 per pattern
    K = pstarts.size
    inverse = np.empty(J, dtype=np.intp)
    inverse[porder] = np.cumsum(new_pattern) - 1
    pcount = np.diff(np.append(pstarts, J)).astype(float)

    def by_pattern(a: np.ndarray) -> np.ndarray:
        return np.add.reduceat(a[porder], pstarts, axis=0)

    # S_k: the sums over the pattern of (Z_i'G)(Z_i'G)' blocks, as rows [S00; S01; S11]
    outer = ZtG[:, :, None, :, None] * ZtG[:, None, :, None, :]  # (J, q, q, m, m)
    if q == 2:
        blocks = np.empty((J, 3, m * m))
        blocks[:, 0] = outer[:, 0, 0].reshape(J, m * m)
        np.add(outer[:, 0, 1], outer[:, 1, 0], out=blocks[:, 1].reshape(J, m, m))
        blocks[:, 2] = outer[:, 1, 1].reshape(J, m * m)
        S = by_pattern(blocks).transpose(1, 0, 2).reshape(3 * K, m * m)
    else:
        S = by_pattern(outer.reshape(J, m * m))
    if C:
        R0 = by_pattern(ZtG[:, 0])
        R1 = by_pattern(ZtG[:, 1]) if q == 2 else np.zeros((K, m))
        cstarts = np.searchsorted(uniq[0].astype(np.intp), np.arange(C))
    else:  # only the clinic step of evaluate() reads them
        R0 = R1 = np.zeros((K, m))
        cstarts = np.zeros(0, dtype=np.intp)
    z00, z01, z11 = uniq[1], uniq[2], uniq[3]
    return Problem(
        n=n, p=p, q=q, n_subjects=J, n_clusters=C, y_shift=shift, t_scale=t_scale, GtG=G.T @ G,
        count=pcount, z00=z00, z01=z01, z11=z11,
        S=S, R0=R0, R1=R1, cluster_starts=cstarts,
        ZtG=ZtG, subject_pattern=inverse, subject_cluster=subj_cl if C else np.zeros(0, dtype=np.intp),
        mono_coef=_rational_coefficients(z00, z01, z11) if q == 2 else None,
    )


def _rational_coefficients(z00: np.ndarray, z01: np.ndarray, z11: np.ndarray) -> np.ndarray:
    """(6, 4K): D_k and the numerators of P_k (see :func:`_pattern_terms`) as linear maps of the
    monomials (1, a^2, ab, b^2, c^2, a^2 c^2), for every pattern k."""
    K = z00.size
    C = np.zeros((6, 4 * K))
    D, N00, N01, N11 = (slice(i * K, (i + 1) * K) for i in range(4))
    C[0, D], C[1, D], C[2, D], C[3, D], C[4, D] = 1.0, z00, 2.0 * z01, z11, z11
    C[5, D] = z00 * z11 - z01 * z01  # det Z_k >= 0
    C[1, N00], C[5, N00] = 1.0, z11
    C[2, N01], C[5, N01] = 1.0, -z01
    C[3, N11], C[4, N11], C[5, N11] = 1.0, 1.0, z00
    return C


_SQ_I, _SQ_J = np.array([0, 0, 1, 2]), np.array([0, 1, 1, 2])  # a^2, ab, b^2, c^2


def _pattern_terms(pr: Problem, th: np.ndarray):
    """P_k = T (I + T'Z_k'Z_k T)^-1 T' (its entries) and log det(I + T'Z_k'Z_k T), batched.

    For (time | subject), T = [[a, 0], [b, c]] and Z_k = [[z00, z01], [z01, z11]],
    written out (Sylvester: det(I + T'ZT) = det(I + Z TT'))::

        D_k = det(I + T'Z_k T) = 1 + a^2 z00 + 2ab z01 + (b^2 + c^2) z11 + a^2 c^2 (z00 z11 - z01^2)
        P_k = [[a^2 + a^2 c^2 z11,  ab - a^2 c^2 z01], [., b^2 + c^2 + a^2 c^2 z00]] / D_k

    so all patterns cost one product with the coefficients of :func:`_rational_coefficients`.
    Returns ``(P, None, None, log D)`` with ``P`` (B, 3K) laid out as ``S``
    ([P00 | P01 | P11]), or for (1 | subject) ``(P00, None, None, log D)``.
    """
    if pr.q == 1:
        a2 = th[:, 0:1] ** 2  # (B, 1)
        d = 1.0 + a2 * pr.z00  # (B, K)
        return a2 / d, None, None, np.log(d)
    B, K = th.shape[0], pr.z00.size
    sq = th[:, _SQ_I] * th[:, _SQ_J]
    mono = np.concatenate((np.ones((B, 1)), sq, sq[:, 0:1] * sq[:, 3:4]), axis=1)  # (B, 6)
    DN = mono @ pr.mono_coef  # (B, 4K): D, N00, N01, N11
    D = DN[:, :K]
    P = (DN[:, K:].reshape(B, 3, K) / D[:, None, :]).reshape(B, 3 * K)
    return P, None, None, np.log(D)


def evaluate(pr: Problem, thetas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``log det V*`` (B,) and ``Q = G'V*^-1 G`` (B, m, m) for a batch of theta (B, n_theta)."""
    th = np.atleast_2d(np.asarray(thetas, dtype=float))
    B, m = th.shape[0], pr.m
    P, _, _, logdet_k = _pattern_terms(pr, th)
    logdet = logdet_k @ pr.count
    Q = (pr.GtG.reshape(1, m * m) - P @ pr.S).reshape(B, m, m)
    if pr.n_clusters:
        # Second Woodbury step, on the clinics (nested: Z_c'V_s^-1 Z_c is diagonal).
        # v = P_k z_k with z_k = Z_i'1 = (n_i, sum t); s_k = 1'V_i^-1 1; h_i = G_i'V_i^-1 1.
        K = pr.z00.size
        if pr.q == 1:
            v0 = P * pr.z00
            s = pr.z00 - v0 * pr.z00
            hk = v0[:, :, None] * pr.R0[None]
        else:
            P00, P01, P11 = P[:, :K], P[:, K:2 * K], P[:, 2 * K:]
            v0 = P00 * pr.z00 + P01 * pr.z01
            v1 = P01 * pr.z00 + P11 * pr.z01
            s = pr.z00 - (v0 * pr.z00 + v1 * pr.z01)
            hk = v0[:, :, None] * pr.R0[None] + v1[:, :, None] * pr.R1[None]
        cs = pr.cluster_starts
        S_c = np.add.reduceat(s * pr.count, cs, axis=1)  # (B, C)
        H = np.add.reduceat(pr.R0, cs, axis=0)[None] - np.add.reduceat(hk, cs, axis=1)  # (B, C, m)
        tc2 = th[:, -1:] ** 2
        dc = 1.0 + tc2 * S_c
        logdet = logdet + np.log(dc).sum(axis=1)
        w = tc2 / dc
        Q = Q - np.einsum("bc,bcm,bcn->bmn", w, H, H)
    return logdet, Q


def profile(pr: Problem, thetas: np.ndarray, *, reml: bool) -> dict:
    """The pieces of the profiled deviance for a batch of theta.

    Returns a dict of arrays over the batch: ``dev`` (profiled deviance),
    ``D0`` (``log det V*`` plus, for REML, ``log det X'V*^-1 X``), ``r2``
    (penalized RSS) and ``Q``.  ``dev`` is inf where ``Q`` is not positive
    definite (a perfect fit).
    """
    logdet, Q = evaluate(pr, thetas)
    p = pr.p
    try:
        chol = np.linalg.cholesky(Q)
    except np.linalg.LinAlgError:
        chol = np.full_like(Q, np.nan)
        for j in range(Q.shape[0]):
            try:
                chol[j] = np.linalg.cholesky(Q[j])
            except np.linalg.LinAlgError:
                pass
    diag = np.diagonal(chol, axis1=1, axis2=2)
    r2 = diag[:, p] * diag[:, p]
    N = pr.n - p if reml else pr.n
    with np.errstate(divide="ignore", invalid="ignore"):
        D0 = logdet + 2.0 * np.log(diag[:, :p]).sum(axis=1) if reml else logdet
        dev = D0 + N * (1.0 + _LOG_2PI + np.log(r2 / N))
    dev[~np.isfinite(dev)] = np.inf
    return {"dev": dev, "D0": D0, "r2": r2, "Q": Q}


def deviance(pr: Problem, thetas: np.ndarray, *, reml: bool) -> np.ndarray:
    """The profiled REML or ML deviance (-2 log-likelihood) for a batch of theta."""
    return profile(pr, thetas, reml=reml)["dev"]


def linear_deviance(pr: Problem, *, reml: bool) -> float:
    """The deviance at theta = 0 (no random effects: the linear model, R's ``logLik(lm, REML)``).

    The same number as ``deviance(pr, 0)``: with theta = 0, V* = I, Q = G'G and
    log det V* = 0 exactly.
    """
    try:
        L = np.linalg.cholesky(pr.GtG)
    except np.linalg.LinAlgError:
        return np.inf
    diag = np.diagonal(L)
    p = pr.p
    r2 = float(diag[p]) ** 2
    N = pr.n - p if reml else pr.n
    D0 = 2.0 * float(np.log(diag[:p]).sum()) if reml else 0.0
    dev = D0 + N * (1.0 + _LOG_2PI + np.log(r2 / N)) if r2 > 0 else np.inf
    return float(dev) if np.isfinite(dev) else np.inf


# --------------------------------------------------------------------------- the solution
@dataclass(frozen=True)
class Solution:
    """Everything at one (internal) theta: fixed effects, sigma, conditional modes."""

    theta: np.ndarray
    beta: np.ndarray  # (p,), on the original y scale
    sigma2: float
    Pbeta: np.ndarray  # (X'V*^-1 X)^-1: vcov(beta) = sigma2 * Pbeta
    dev: float
    D0: float
    r2: float
    b_subject: np.ndarray  # (J, q) conditional modes
    b_cluster: np.ndarray  # (C,)


def solve_at(pr: Problem, theta: np.ndarray, *, reml: bool, pieces=None) -> Solution:
    """Fixed effects, sigma^2 and the conditional modes (BLUPs) at ``theta``.

    ``pieces``: the :class:`~lmm_teach.lmm.derivatives.Pieces` at ``theta``
    when already computed (they hold Q, its solution and the deviance).
    """
    theta = np.asarray(theta, float)
    p = pr.p
    if pieces is not None:
        Pbeta, beta_c, r2, dev, D0 = pieces.Pb, pieces.beta_c, pieces.r2, pieces.dev, pieces.D0
    else:
        prof = profile(pr, theta[None], reml=reml)
        Q = prof["Q"][0]
        Pbeta = np.linalg.inv(Q[:p, :p])
        beta_c = np.linalg.solve(Q[:p, :p], Q[:p, p])
        r2, dev, D0 = float(prof["r2"][0]), float(prof["dev"][0]), float(prof["D0"][0])
    sigma2 = r2 / (pr.n - p if reml else pr.n)
    # Conditional modes b = Lambda Lambda' Z' V*^-1 (y - X beta) (lme4's ranef).
    P, _, _, _ = _pattern_terms(pr, theta[None])
    K = pr.z00.size
    P00, P01, P11 = P[:, :K], P[:, K:2 * K], P[:, 2 * K:]
    k = pr.subject_pattern
    Ztr = pr.ZtG[:, :, p] - pr.ZtG[:, :, :p] @ beta_c  # (J, q): Z_i'r_i
    if pr.q == 1:
        Pi = P00[0, k][:, None, None]
        z = pr.z00[k][:, None]
    else:
        Pi = np.empty((k.size, 2, 2))
        Pi[:, 0, 0], Pi[:, 0, 1], Pi[:, 1, 0], Pi[:, 1, 1] = P00[0, k], P01[0, k], P01[0, k], P11[0, k]
        z = np.column_stack([pr.z00[k], pr.z01[k]])  # Z_i'1
    b_c = np.zeros(pr.n_clusters)
    if pr.n_clusters:
        tc2 = theta[-1] ** 2
        Pz = np.einsum("iab,ib->ia", Pi, z)
        e = np.bincount(pr.subject_cluster, Ztr[:, 0] - np.einsum("ia,ia->i", Pz, Ztr), pr.n_clusters)
        s = np.bincount(pr.subject_cluster, z[:, 0] - np.einsum("ia,ia->i", Pz, z), pr.n_clusters)
        b_c = tc2 * e / (1.0 + tc2 * s)
        Ztr = Ztr - b_c[pr.subject_cluster][:, None] * z
    b_s = np.einsum("iab,ib->ia", Pi, Ztr)
    if pr.q == 2:
        b_s[:, 1] /= pr.t_scale  # per unit of the data's time
    beta = beta_c.copy()
    beta[0] += pr.y_shift
    return Solution(theta=theta, beta=beta, sigma2=sigma2, Pbeta=Pbeta, dev=dev, D0=D0, r2=r2,
                    b_subject=b_s, b_cluster=b_c)
