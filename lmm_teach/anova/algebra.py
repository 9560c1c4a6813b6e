"""The exact algebra of the repeated-measures ANOVA on a subjects x visits matrix.

This is the engine behind :func:`lmm_teach.anova.rm_anova`, exposed for the
Monte Carlo studies that run it thousands of times: no pandas, no validation of
user data, only numpy and two scipy special functions.

The conventions are those of ``afex::aov_ez`` (afex 1.2), which calls
``car::Anova(..., type = 3)`` on the multivariate linear model of the visits
on the between factor (sum-to-zero contrasts) and reads its univariate tests
(``summary(..., multivariate = FALSE)``).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.special import chdtrc, fdtrc

from lmm_teach.validate import DataError

__all__ = ["rm_anova_arrays", "EFFECT_KEYS"]

#: The keys of :func:`rm_anova_arrays`' result that hold one number per effect.
EFFECT_KEYS = ("F", "df_num", "df_den", "p", "ges", "eps_gg", "p_gg", "eps_hf", "p_hf",
               "mauchly_w", "mauchly_p", "ss_effect", "ss_error")


@lru_cache(maxsize=64)
def _contrasts(k: int) -> np.ndarray:
    """Orthonormal contrasts (k x k-1) orthogonal to the constant: normalised Helmert.

    Column j compares visit j+1 with the mean of visits 1..j.  Any orthonormal
    basis of the contrasts gives the same F, epsilons and Mauchly's W (they are
    invariant to rotations of the contrast space), so the cheapest one will do.
    """
    c = np.zeros((k, k - 1))
    for j in range(1, k):
        c[:j, j - 1] = 1.0
        c[j, j - 1] = -float(j)
        c[:, j - 1] /= np.sqrt(j * (j + 1.0))
    c.flags.writeable = False
    return c


def _mauchly(e: np.ndarray, d: int, k: int, df: float) -> tuple[float, float]:
    """Mauchly's W and its p-value from the d x d error SSCP of orthonormal contrasts.

    W = det(E) / (tr(E) / d)^d; the p-value is the chi-square approximation with
    Box's second-order term, as in R's ``stats:::mauchly.test.SSD`` and
    ``car:::mauchly`` (Anderson 2003, *An Introduction to Multivariate
    Statistical Analysis*, sec. 10.7).  R writes ``3 * p`` in the second-order
    term with p the number of visits k, where the textbook has the number of
    contrasts d; we follow R (and afex's reference numbers), which shifts the
    p-value in the fourth decimal for k >= 4.
    """
    if d == 1:
        # One contrast: sphericity holds by definition (car returns W = 1, p = 1).
        return 1.0, 1.0
    if df < d:
        return np.nan, np.nan  # E is singular: too few subjects for the test
    sign, logdet = np.linalg.slogdet(e)
    tr = np.trace(e)
    if sign <= 0 or not tr > 0:
        return np.nan, np.nan
    log_w = logdet - d * np.log(tr / d)
    rho = 1.0 - (2.0 * d * d + d + 2.0) / (6.0 * d * df)
    w2 = ((d + 2.0) * (d - 1.0) * (d - 2.0) * (2.0 * d**3 + 6.0 * d * d + 3.0 * k + 2.0)
          / (288.0 * (df * d * rho) ** 2))
    z = -df * rho * log_w
    f = d * (d + 1.0) / 2.0 - 1.0
    pr1, pr2 = chdtrc(f, z), chdtrc(f + 4.0, z)
    return float(np.exp(log_w)), float(pr1 + w2 * (pr2 - pr1))


def rm_anova_arrays(Y, groups=None) -> dict:
    """Repeated-measures ANOVA of a complete subjects x visits matrix.

    Parameters
    ----------
    Y : array_like, shape (N, k)
        One row per complete subject, one column per visit (k >= 2).
    groups : array_like of int, shape (N,), optional
        Between-subject group of each row, coded 0..G-1 (every code present,
        at least 2 subjects per group).  None: no between factor.

    Returns
    -------
    dict
        ``"terms"``: the effects in afex's order, ``("between", "within",
        "between:within")`` or ``("within",)``; for each key of
        :data:`EFFECT_KEYS`, a float array with one value per term (sphericity
        columns NaN for the between effect); ``"df_error_between"`` (N - G).

    Raises
    ------
    DataError
        When Y is not a finite 2-D matrix with k >= 2, ``groups`` holds a
        single group, or a group has fewer than 2 subjects.

    Notes
    -----
    With ``y_ij`` the outcome of subject i (group g(i), n_g subjects) at visit
    j, ``C`` a k x d orthonormal contrast matrix (d = k - 1), ``ybar_g`` the
    group mean profiles and ``R = Y - ybar_g(i)`` the residuals of the
    between-subject model::

        E        = C' R' R C                          (d x d error SSCP, df_e = N - G)
        SS_w     = |C' b0|^2 / (sum_g 1/n_g / G^2)    b0 = unweighted mean of ybar_g
        SS_gxw   = sum_g n_g |C' (ybar_g - ybar)|^2   ybar = mean over subjects
        SS_e,w   = tr(E)
        SS_b     = k sum_g n_g (mbar_g - mbar)^2      on the subject means m_i
        SS_e,b   = k sum_i (m_i - mbar_g(i))^2
        F        = (SS / df) / (SS_e / df_e),  df = d or G - 1, df_e = d (N - G) or N - G

    ``SS_w`` is the type-III hypothesis for the within effect (the intercept of
    the multivariate model under sum-to-zero contrasts, so an unweighted mean
    of the groups), as ``afex::aov_ez`` and ``car::Anova(type = 3)`` compute.
    Epsilons (Greenhouse & Geisser 1959; Huynh & Feldt 1976 with Lecoutre's
    1991 correction, as ``car:::HF``)::

        eps_gg = tr(E)^2 / (d tr(E^2))
        eps_hf = ((N - G + 1) d eps_gg - 2) / (d (N - G - d eps_gg))

    ``eps_hf`` is returned uncapped (afex prints it so); ``p_hf`` uses
    ``min(1, eps_hf)``.  Generalised eta squared (Olejnik & Algina 2003, as
    afex with no observed factors): ``ges = SS / (SS + SS_e,b + SS_e,w)``.

    Examples
    --------
    >>> import numpy as np
    >>> Y = np.array([[10., 12, 15], [8, 9, 13], [11, 11, 16], [9, 12, 12]])
    >>> out = rm_anova_arrays(Y)
    >>> out["terms"], round(float(out["F"][0]), 4)
    (('within',), 17.1818)
    """
    Y = np.asarray(Y, dtype=float)
    if Y.ndim != 2 or Y.shape[1] < 2 or not np.isfinite(Y).all():
        raise DataError("rm_anova_arrays needs a finite subjects x visits matrix with at least 2 visits")
    n, k = Y.shape
    d = k - 1
    if groups is None:
        g = np.zeros(n, dtype=np.intp)
        n_g = np.array([n])
    else:
        g = np.asarray(groups, dtype=np.intp)
        if g.shape != (n,) or g.min() < 0:
            raise DataError("rm_anova_arrays: groups must hold one code 0..G-1 per row of Y")
        n_g = np.bincount(g)
        if len(n_g) < 2:
            # Silently fitting no between factor would hide an empty arm from the caller.
            raise DataError("rm_anova_arrays: groups hold a single group; pass groups=None "
                            "for a design without a between factor")
    n_groups = len(n_g)
    if n_g.min() < 2 or n - n_groups < 1:
        raise DataError(f"rm_anova_arrays: every group needs at least 2 subjects (sizes {n_g.tolist()})")
    df_e = float(n - n_groups)

    # Group mean profiles through a one-hot product (faster than np.add.at).
    onehot = np.zeros((n, n_groups))
    onehot[np.arange(n), g] = 1.0
    means_g = (onehot.T @ Y) / n_g[:, None]           # G x k
    c = _contrasts(k)
    z = (Y - means_g[g]) @ c                           # residual contrasts, N x d
    e = z.T @ z                                        # error SSCP, d x d
    ss_err_w = float(np.trace(e))

    # Type-III within effect: the unweighted grand profile b0 (afex/car, sum contrasts).
    b0c = means_g.mean(axis=0) @ c
    ss_w = float(b0c @ b0c) / (np.sum(1.0 / n_g) / n_groups**2)
    subj = Y.mean(axis=1)                             # subject means m_i
    mbar_g = means_g.mean(axis=1)                      # group means of m_i
    ss_err_b = k * float(np.sum((subj - mbar_g[g]) ** 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        # numpy scalars, so that a zero denominator gives NaN under errstate, not ZeroDivisionError
        tr2 = np.float64(np.sum(e * e))
        eps_gg = float(ss_err_w**2 / (d * tr2)) if d > 1 else 1.0
        hf_den = d * (df_e - d * eps_gg)
        eps_hf = float(((df_e + 1.0) * d * eps_gg - 2.0) / np.float64(hf_den)) if d > 1 else 1.0
        if d > 1 and not (hf_den > 0):
            eps_hf = np.nan  # the formula breaks down with so few subjects (e.g. 2 complete subjects)
    w, p_w = _mauchly(e, d, k, df_e)

    ss, dfn, sse, dfd = [ss_w], [float(d)], [ss_err_w], [d * df_e]
    if n_groups > 1:
        ybar = Y.mean(axis=0)
        dev = (means_g - ybar) @ c
        ss_gxw = float(n_g @ np.sum(dev * dev, axis=1))
        ss_b = k * float(n_g @ (mbar_g - subj.mean()) ** 2)
        ss = [ss_b, ss_w, ss_gxw]
        dfn = [n_groups - 1.0, float(d), (n_groups - 1.0) * d]
        sse = [ss_err_b, ss_err_w, ss_err_w]
        dfd = [df_e, d * df_e, d * df_e]
        terms = ("between", "within", "between:within")
        within = np.array([False, True, True])
    else:
        terms = ("within",)
        within = np.array([True])
    ss, dfn, sse, dfd = map(np.asarray, (ss, dfn, sse, dfd))
    with np.errstate(divide="ignore", invalid="ignore"):
        f = (ss / dfn) / (sse / dfd)
        p = fdtrc(dfn, dfd, f)
        ges = ss / (ss + ss_err_b + ss_err_w)
        hf_cap = min(1.0, eps_hf) if np.isfinite(eps_hf) else np.nan
        p_gg = np.where(within, fdtrc(dfn * eps_gg, dfd * eps_gg, f), np.nan)
        p_hf = np.where(within, fdtrc(dfn * hf_cap, dfd * hf_cap, f), np.nan)
    nan = np.where(within, 1.0, np.nan)  # 1 where a sphericity column applies, else NaN
    return {
        "terms": terms, "F": f, "df_num": dfn, "df_den": dfd, "p": p, "ges": ges,
        "eps_gg": nan * eps_gg, "p_gg": p_gg, "eps_hf": nan * eps_hf, "p_hf": p_hf,
        "mauchly_w": nan * w, "mauchly_p": nan * p_w, "ss_effect": ss, "ss_error": sse,
        "df_error_between": df_e,
    }
