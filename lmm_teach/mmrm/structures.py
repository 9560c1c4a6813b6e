"""Residual covariance structures of the MMRM, with the names of R's ``mmrm``.

Each structure is a small named unit: its number of parameters for ``n``
visits, its start values, and ``Sigma(theta)`` with the first and second
derivatives with respect to ``theta``.  The parameterisation is R mmrm's own
(so that Kenward-Roger, which uses second derivatives, agrees with it):

* standard deviations enter as ``log sd`` (``sp_exp``: ``log variance``);
* a correlation ``rho`` in (-1, 1) enters as ``theta / sqrt(1 + theta^2)``;
* the compound-symmetry correlation enters as
  ``invlogit(theta) (1 + a) - a`` with ``a = 1 / (n - 1)`` (so that the
  matrix stays positive definite);
* the spatial exponential correlation ``rho^distance`` has
  ``rho = invlogit(theta)``;
* ``us`` is the Cholesky factor ``L`` with ``L[i, i] = exp(theta_i)`` and
  ``L[i, j] = exp(theta_i) theta_k`` below the diagonal (row by row).

Non-spatial structures give one ``n x n`` matrix over all visits (a subject
with missing visits uses the sub-block of its observed visits); ``sp_exp``
gives one matrix per subject from the distances between its own times.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["Structure", "STRUCTURES", "get_structure"]


@dataclass(frozen=True)
class Structure:
    """A covariance structure: name, description, parameter count and Sigma(theta) with derivatives."""

    name: str
    label: str
    n_params: Callable[[int], int]
    spatial: bool
    heterogeneous: bool
    _build: Callable = None  # (theta, n, dist) -> (Sigma, dSigma, d2Sigma)
    _start: Callable = None  # (sd, corr, n) -> theta
    _contract: Callable | None = None  # (theta, M, second) -> <dSigma_i, M> [, <d2Sigma_ij, M>], closed form

    @property
    def closed_contract(self) -> bool:
        """Does :meth:`contract` work without building the derivatives of Sigma (us)?"""
        return self._contract is not None

    def contract(self, theta: np.ndarray, M: np.ndarray, *, second: bool = False):
        """``g_i = <dSigma/dtheta_i, M>`` (``M`` symmetric ``n x n``): the chain rule of a gradient;
        with ``second``, ``(g, Z)`` and ``Z_ij = <d2Sigma/dtheta_i dtheta_j, M>`` (for a Hessian).

        Non-spatial structures only.
        """
        theta = np.asarray(theta, float)
        if self._contract is not None:
            return self._contract(theta, M, second)
        k = len(theta)
        _, dS, d2S = self.sigma(theta, len(M), order=2 if second else 1)
        g = dS.reshape(k, -1) @ M.ravel()
        return (g, d2S.reshape(k, k, -1) @ M.ravel()) if second else g

    def sigma(self, theta: np.ndarray, n: int, dist: np.ndarray | None = None, *, order: int = 2):
        """``(Sigma, dSigma, d2Sigma)``: shapes ``(..., n, n)``, ``(..., k, n, n)``, ``(..., k, k, n, n)``.

        ``dist`` (spatial structures only) holds the distances ``(subjects, n, n)``.
        Derivatives beyond ``order`` are None.
        """
        return self._build(np.asarray(theta, float), n, dist, order)

    def r_start(self, n: int) -> np.ndarray:
        """R mmrm's standard start values (``std_start``): zeros, and 0.5 for the ar1 correlation parameter."""
        theta = np.zeros(self.n_params(n))
        if self.name in ("ar1", "ar1h"):
            theta[-1] = 0.5
        return theta

    def start(self, sd: np.ndarray, corr: np.ndarray) -> np.ndarray:
        """Start values from per-visit residual SDs and a residual correlation matrix."""
        return np.asarray(self._start(np.asarray(sd, float), np.asarray(corr, float), len(sd)), float)


# -- maps from the unconstrained theta to correlations, with two derivatives

def _g(x):
    s = 1.0 + x * x
    return x / np.sqrt(s), s ** -1.5, -3.0 * x * s ** -2.5


def _g_inv(r):
    r = np.clip(r, -0.95, 0.95)
    return r / np.sqrt(1.0 - r * r)


def _invlogit(x):
    q = 1.0 / (1.0 + np.exp(-x))
    return q, q * (1 - q), q * (1 - q) * (1 - 2 * q)


def _scaled(theta, n, J, C, dC, d2C, order):
    """Sigma = exp(s_a + s_b) C_ab with log-SDs s = J theta; chain rule for the derivatives.

    ``C`` is ``(..., n, n)``, ``dC`` ``(..., k, n, n)``, ``d2C`` ``(..., k, k, n, n)``.
    """
    s = J @ theta
    E = np.exp(s[:, None] + s[None, :])
    S = E * C
    if order < 1:
        return S, None, None
    u = J.T[:, :, None] + J.T[:, None, :]  # (k, n, n): d(s_a + s_b)/dtheta
    dS = S[..., None, :, :] * u + E * dC
    if order < 2:
        return S, dS, None
    uu = u[:, None] * u[None, :]
    ECu = E * dC  # (..., k, n, n)
    d2S = (S[..., None, None, :, :] * uu + ECu[..., :, None, :, :] * u[None]
           + ECu[..., None, :, :, :] * u[:, None] + E * d2C)
    return S, dS, d2S


def _lags(n):
    idx = np.arange(n)
    return np.abs(idx[:, None] - idx[None, :])


def _sd_map(n, k, hetero, scale=1.0):
    J = np.zeros((n, k))
    if hetero:
        J[np.arange(n), np.arange(n)] = 1.0
    else:
        J[:, 0] = scale
    return J


def _n_sd(n, hetero):
    return n if hetero else 1


# -- the correlation parts: (C, dC, d2C) for the correlation parameters placed at `off`

def _toeplitz_corr(tc, n, k, off):
    rho, g1, g2 = _g(tc)
    lag = _lags(n)
    C = np.where(lag == 0, 1.0, rho[np.maximum(lag - 1, 0)])
    dC = np.zeros((k, n, n))
    d2C = np.zeros((k, k, n, n))
    for l in range(n - 1):
        on = lag == l + 1
        dC[off + l] = on * g1[l]
        d2C[off + l, off + l] = on * g2[l]
    return C, dC, d2C


def _power_corr(rho, r1, r2, D, k, off):
    """C = rho^D (D >= 0 integer lags or distances) with drho/dtheta = r1, d2rho = r2."""
    with np.errstate(divide="ignore", invalid="ignore"):
        C = np.power(rho, D)
        p1 = np.where(D > 0, D * np.power(rho, np.where(D > 0, D - 1, 0)), 0.0)
        p2 = np.where((D > 0) & (D != 1), D * (D - 1) * np.power(rho, np.where((D > 0) & (D != 1), D - 2, 0)), 0.0)
    C = np.where(D == 0, 1.0, C)
    shape = D.shape[:-2]
    dC = np.zeros(shape + (k, D.shape[-2], D.shape[-1]))
    d2C = np.zeros(shape + (k, k, D.shape[-2], D.shape[-1]))
    dC[..., off, :, :] = p1 * r1
    d2C[..., off, off, :, :] = p2 * r1 * r1 + p1 * r2
    return C, dC, d2C


def _ar1_corr(tc, n, k, off):
    rho, g1, g2 = _g(tc[0])
    return _power_corr(rho, g1, g2, _lags(n).astype(float), k, off)


def _ante_corr(tc, n, k, off):
    rho, g1, g2 = _g(tc)
    L = n - 1
    idx = np.arange(n)
    lo, hi = np.minimum.outer(idx, idx), np.maximum.outer(idx, idx)
    ins = np.array([(lo <= l) & (l < hi) for l in range(L)])  # (L, n, n): link l between the two visits
    F = np.where(ins, rho[:, None, None], 1.0)
    C = F.prod(axis=0)
    dC = np.zeros((k, n, n))
    d2C = np.zeros((k, k, n, n))
    for l in range(L):
        Fl = F.copy()
        Fl[l] = 1.0
        excl = Fl.prod(axis=0)
        dC[off + l] = ins[l] * excl * g1[l]
        d2C[off + l, off + l] = ins[l] * excl * g2[l]
        for m in range(l + 1, L):
            Flm = Fl.copy()
            Flm[m] = 1.0
            v = ins[l] * ins[m] * Flm.prod(axis=0) * g1[l] * g1[m]
            d2C[off + l, off + m] = v
            d2C[off + m, off + l] = v
    return C, dC, d2C


def _cs_corr(tc, n, k, off):
    a = 1.0 / (n - 1.0)
    q, q1, q2 = _invlogit(tc[0])
    rho = q * (1 + a) - a
    off_diag = 1.0 - np.eye(n)
    C = np.eye(n) + rho * off_diag
    dC = np.zeros((k, n, n))
    d2C = np.zeros((k, k, n, n))
    dC[off] = off_diag * (1 + a) * q1
    d2C[off, off] = off_diag * (1 + a) * q2
    return C, dC, d2C


def _correlated(corr_fn, n_corr, hetero):
    def build(theta, n, dist, order):
        k = _n_sd(n, hetero) + n_corr(n)
        off = _n_sd(n, hetero)
        C, dC, d2C = corr_fn(theta[off:], n, k, off)
        return _scaled(theta, n, _sd_map(n, k, hetero), C, dC, d2C, order)
    return build


# -- start values: SDs and correlations from the residuals of a first fit

def _sd_start(sd, hetero):
    sd = np.where(np.isfinite(sd) & (sd > 0), sd, np.nanmean(sd[sd > 0]) if np.any(sd > 0) else 1.0)
    return np.log(sd) if hetero else np.array([np.log(np.sqrt(np.mean(sd ** 2)))])


def _lag_mean(corr, lag):
    n = len(corr)
    vals = [corr[i + lag, i] for i in range(n - lag) if np.isfinite(corr[i + lag, i])]
    return float(np.mean(vals)) if vals else 0.0


def _start_toep(hetero):
    def start(sd, corr, n):
        return np.concatenate([_sd_start(sd, hetero), _g_inv(np.array([_lag_mean(corr, l) for l in range(1, n)]))])
    return start


def _start_ar1(hetero):
    def start(sd, corr, n):
        return np.concatenate([_sd_start(sd, hetero), _g_inv(np.array([max(_lag_mean(corr, 1), 0.05)]))])
    return start


def _start_ad(hetero):
    def start(sd, corr, n):
        r = np.array([corr[i + 1, i] if np.isfinite(corr[i + 1, i]) else 0.0 for i in range(n - 1)])
        return np.concatenate([_sd_start(sd, hetero), _g_inv(r)])
    return start


def _start_cs(hetero):
    def start(sd, corr, n):
        off = corr[~np.eye(n, dtype=bool)]
        rho = float(np.nanmean(off)) if np.isfinite(off).any() else 0.0
        a = 1.0 / (n - 1.0)
        q = np.clip((rho + a) / (1 + a), 0.02, 0.98)
        return np.concatenate([_sd_start(sd, hetero), [np.log(q / (1 - q))]])
    return start


# -- unstructured: the Cholesky factor

@functools.lru_cache(maxsize=32)
def _lower(n: int):
    """Row and column of the below-diagonal entries, row by row (as mmrm fills its Cholesky factor), and
    the flat positions in an ``n x n`` matrix of the diagonal followed by those entries."""
    rows, cols = np.tril_indices(n, -1)
    o = np.lexsort((cols, rows))
    rows, cols = rows[o], cols[o]
    flat = np.concatenate([np.arange(n) * (n + 1), rows * n + cols])
    for a in (rows, cols, flat):
        a.setflags(write=False)
    return rows, cols, flat


def _us_factor(theta, n):
    """The Cholesky factor ``L`` of ``Sigma``, the SDs ``exp(theta[:n])`` and the below-diagonal entries.

    Remembered for the last few ``theta`` (read-only arrays): one likelihood evaluation asks for the
    factor twice, for ``Sigma`` and for the contraction of its derivatives.
    """
    rows, cols, _ = _lower(n)
    L, sd = _us_factor_of(theta.tobytes(), n)
    return L, sd, rows, cols


@functools.lru_cache(maxsize=4)
def _us_factor_of(key: bytes, n: int):
    theta = np.frombuffer(key)
    sd = np.exp(theta[:n])
    rows, _, flat = _lower(n)
    L = np.zeros(n * n)
    L[flat] = np.concatenate([sd, sd[rows] * theta[n:]])
    L = L.reshape(n, n)
    L.setflags(write=False)
    sd.setflags(write=False)
    return L, sd


def _us_dL(L, sd, rows, cols):
    """``dL/dtheta_i`` ``(k, n, n)``: ``d/d log sd_r`` is row ``r`` of ``L``, an entry's parameter ``sd_r`` there."""
    n = len(sd)
    k = n + len(rows)
    dL = np.zeros((k, n, n))
    idx = np.arange(n)
    dL[idx, idx, :] = L
    dL[n + np.arange(len(rows)), rows, cols] = sd[rows]
    return dL


def _us_build(theta, n, dist, order):
    L, sd, rows, cols = _us_factor(theta, n)
    S = L @ L.T
    if order < 1:
        return S, None, None
    k = n * (n + 1) // 2
    dL = _us_dL(L, sd, rows, cols)
    A = dL @ L.T
    dS = A + A.transpose(0, 2, 1)
    if order < 2:
        return S, dS, None
    m = np.arange(len(rows))
    d2L = np.zeros((k, k, n, n))
    d2L[np.arange(n), np.arange(n)] = dL[:n]
    d2L[rows, n + m, rows, cols] = sd[rows]
    d2L[n + m, rows, rows, cols] = sd[rows]
    B = (d2L.reshape(k * k * n, n) @ L.T).reshape(k, k, n, n)
    flat = dL.reshape(k * n, n)
    cross = (flat @ flat.T).reshape(k, n, k, n).transpose(0, 2, 1, 3)
    d2S = B + B.transpose(0, 1, 3, 2) + cross + cross.transpose(0, 1, 3, 2)
    return S, dS, d2S


def _us_contract(theta, M, second):
    """``<dSigma/dtheta_i, M>`` (and ``<d2Sigma/dtheta_i dtheta_j, M>``) for ``Sigma = L L'``, M symmetric.

    ``<dSigma_i, M> = 2 <dL_i, M L>``: ``d/d log sd_r`` scales row ``r`` of ``L``
    (``2 sum_j L_rj (ML)_rj``), an entry ``(r, c)`` below the diagonal has
    ``dL = sd_r`` there (``2 sd_r (ML)_rc``).  Second derivatives:
    ``<Sigma_ij, M> = 2 <d2L_ij, M L> + 2 <dL_i, M dL_j>``, where ``d2L_ij`` is
    ``dL_r`` for ``i = j = r`` and ``sd_r`` at ``(r, c)`` for the pair (``log sd_r``, entry ``(r, c)``).
    The ``(k, k, n, n)`` array of second derivatives is never built.
    """
    n = len(M)
    L, sd, rows, cols = _us_factor(theta, n)
    ML = M @ L
    first = np.concatenate([(L * ML).sum(axis=1), sd[rows] * ML[rows, cols]])
    if not second:
        return 2.0 * first
    k = len(theta)
    dL = _us_dL(L, sd, rows, cols).reshape(k, n * n)
    Z = dL @ (M @ dL.reshape(k, n, n)).reshape(k, n * n).T
    idx = np.arange(n)
    Z[idx, idx] += first[:n]
    m = n + np.arange(len(rows))
    Z[rows, m] += first[m]
    Z[m, rows] += first[m]
    return 2.0 * first, 2.0 * Z


def _us_start(sd, corr, n):
    sd = np.where(np.isfinite(sd) & (sd > 0), sd, 1.0)
    R = np.where(np.isfinite(corr), corr, 0.0)
    np.fill_diagonal(R, 1.0)
    w, V = np.linalg.eigh((R + R.T) / 2)
    R = (V * np.maximum(w, 0.05)) @ V.T
    d = np.sqrt(np.diag(R))
    R = R / np.outer(d, d)
    L = np.linalg.cholesky(sd[:, None] * R * sd[None, :])
    rows, cols, _ = _lower(n)
    dl = np.diag(L)
    return np.concatenate([np.log(dl), L[rows, cols] / dl[rows]])


# -- spatial exponential: rho^distance, one matrix per subject

def _sp_exp_build(theta, n, dist, order):
    if dist is None:
        raise ValueError("sp_exp needs the distances between each subject's times")
    rho, r1, r2 = _invlogit(theta[1])
    C, dC, d2C = _power_corr(rho, r1, r2, dist, 2, 1)
    return _scaled(theta, n, _sd_map(n, 2, False, scale=0.5), C, dC, d2C, order)


def _sp_exp_start(sd, corr, n):
    var = float(np.mean(np.where(np.isfinite(sd) & (sd > 0), sd, 1.0) ** 2))
    r = min(max(_lag_mean(corr, 1), 0.1), 0.9)
    return np.array([np.log(var), np.log(r / (1 - r))])


STRUCTURES: dict[str, Structure] = {s.name: s for s in [
    Structure("us", "unstructured", lambda n: n * (n + 1) // 2, False, True, _us_build, _us_start, _us_contract),
    Structure("toep", "Toeplitz", lambda n: n, False, False,
              _correlated(_toeplitz_corr, lambda n: n - 1, False), _start_toep(False)),
    Structure("toeph", "heterogeneous Toeplitz", lambda n: 2 * n - 1, False, True,
              _correlated(_toeplitz_corr, lambda n: n - 1, True), _start_toep(True)),
    Structure("ar1", "first-order autoregressive", lambda n: 2, False, False,
              _correlated(_ar1_corr, lambda n: 1, False), _start_ar1(False)),
    Structure("ar1h", "heterogeneous first-order autoregressive", lambda n: n + 1, False, True,
              _correlated(_ar1_corr, lambda n: 1, True), _start_ar1(True)),
    Structure("cs", "compound symmetry", lambda n: 2, False, False,
              _correlated(_cs_corr, lambda n: 1, False), _start_cs(False)),
    Structure("csh", "heterogeneous compound symmetry", lambda n: n + 1, False, True,
              _correlated(_cs_corr, lambda n: 1, True), _start_cs(True)),
    Structure("ad", "ante-dependence", lambda n: n, False, False,
              _correlated(_ante_corr, lambda n: n - 1, False), _start_ad(False)),
    Structure("adh", "heterogeneous ante-dependence", lambda n: 2 * n - 1, False, True,
              _correlated(_ante_corr, lambda n: n - 1, True), _start_ad(True)),
    Structure("sp_exp", "spatial exponential", lambda n: 2, True, False, _sp_exp_build, _sp_exp_start),
]}


def get_structure(name: str) -> Structure:
    """The structure called ``name`` (case-insensitive); a DataError lists the choices otherwise."""
    from lmm_teach.validate import DataError

    key = str(name).strip().lower()
    if key not in STRUCTURES:
        raise DataError(f"unknown covariance structure {name!r}: choose one of {', '.join(STRUCTURES)}")
    return STRUCTURES[key]
