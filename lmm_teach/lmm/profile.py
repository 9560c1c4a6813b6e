"""The (RE)ML likelihood surface of a fitted LMM: where the optimum sits and why it can be singular.

Two views, both of the *profiled* deviance (beta and sigma^2 maximised out
for each value of the relative covariance factor theta, as lme4 does; Bates
et al. 2015, *J. Stat. Softw.* 67(1), eqs. 34 and 41):

* random intercept ``(1 | subject)``: one free parameter, theta = sd(subject)
  / sigma, the SD ratio.  :func:`profile_intercept` gives the profiled log-
  likelihood over theta >= 0, the optimum (at the boundary 0 for a singular
  fit) and the profile-likelihood interval
  ``{theta : 2 (l_max - l(theta)) <= chi2_1(level)}``, as
  ``confint(m, method = "profile")`` in lme4 for ``.sig01`` on the ratio
  scale;
* random intercept and slope ``(time | subject)``: theta = (T00, T10, T11),
  the lower-triangular factor of the subjects' covariance over sigma.
  :func:`deviance_surface` gives the profiled deviance over (T00, T11), the
  intercept's SD ratio and the slope's own part, with T10 held at its
  estimate (a slice through the optimum), and the optimiser's iterates when
  given.

Both evaluate the very deviance the fit minimised
(:func:`lmm_teach.lmm.deviance.deviance`), rebuilt from the result's data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq
from scipy.stats import chi2

from lmm_teach.lmm.deviance import Problem, build_problem, deviance, profile
from lmm_teach.lmm.terms import factor_codes, fixed_design, sorted_codes
from lmm_teach.validate import check_long_arrays

__all__ = ["problem_of", "InterceptProfile", "profile_intercept", "DevianceSurface", "deviance_surface"]


def problem_of(result) -> Problem:
    """The deviance's sufficient statistics for the model and data of an :class:`LMMResult`.

    The same steps as :func:`lmm_teach.fit_lmm` on ``result.data`` (the rows
    the fit used), so ``deviance(problem_of(m), theta)`` at ``m``'s theta is
    ``-2 m.loglik``.
    """
    cols = result.columns
    checked = check_long_arrays(result.data, cols)
    values = checked.values
    subj, _ = sorted_codes(checked.subject_codes, checked.subject_levels, values[cols.subject])
    clus = factor_codes(values[cols.cluster])[0] if cols.cluster is not None else None
    design = fixed_design(values, time=cols.time, visit=cols.visit, between=cols.between,
                          categorical=result.time_as == "categorical")
    return build_problem(values[cols.y], design.X, subj, time=values[cols.time],
                         random_slope=result.random_slope, cluster=clus)


def _reml(result) -> bool:
    return result.method == "REML"


# ------------------------------------------------------------------ random intercept
@dataclass(frozen=True, eq=False)
class InterceptProfile:
    """The profiled (RE)ML log-likelihood of a random-intercept model over theta = sd(subject) / sigma.

    Attributes
    ----------
    theta : ndarray
        The grid of SD ratios, from the boundary 0 upwards.
    loglik : ndarray
        Profiled log-likelihood at each grid point (beta and sigma at their best for that theta).
    sigma : ndarray
        The residual SD that goes with each theta; ``theta * sigma`` is the subjects' SD.
    theta_hat, loglik_hat : float
        The optimum (the fit's theta and log-likelihood).
    interval : (float, float)
        Profile-likelihood interval for theta at ``level`` (upper end inf when the
        likelihood never drops far enough).
    sd_interval : (float, float)
        The subjects' SD at the interval's ends (``theta * sigma(theta)``).
    cutoff : float
        The log-likelihood inside the interval: ``loglik_hat - chi2_1(level) / 2``.
    singular : bool
        The optimum is on the boundary theta = 0.
    loglik_at_zero : float
        The log-likelihood of the model without the random intercept (theta = 0).
    """

    theta: np.ndarray
    loglik: np.ndarray
    sigma: np.ndarray
    theta_hat: float
    loglik_hat: float
    sigma_hat: float
    interval: tuple[float, float]
    sd_interval: tuple[float, float]
    level: float
    cutoff: float
    singular: bool
    loglik_at_zero: float
    method: str
    subject: str

    @property
    def sd_hat(self) -> float:
        """The subjects' SD at the optimum."""
        return self.theta_hat * self.sigma_hat

    def summary(self) -> str:
        lo, hi = self.interval
        hi_text = f"{hi:.3f}" if math.isfinite(hi) else "inf"
        lines = [f"Profiled {self.method} log-likelihood over theta = sd({self.subject}) / sigma",
                 f"  optimum theta = {self.theta_hat:.4f} (sd = {self.sd_hat:.3f}), "
                 f"log-likelihood {self.loglik_hat:.3f}",
                 f"  {100 * self.level:.0f}% profile interval for theta: [{lo:.3f}, {hi_text}]",
                 f"  at theta = 0 (no random intercept): log-likelihood {self.loglik_at_zero:.3f}"]
        if self.singular:
            lines.append("  singular: the maximum is on the boundary theta = 0")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        def num(x):
            return float(x) if math.isfinite(x) else None

        return {"theta": self.theta.tolist(), "loglik": self.loglik.tolist(), "sigma": self.sigma.tolist(),
                "theta_hat": self.theta_hat, "loglik_hat": self.loglik_hat, "sigma_hat": self.sigma_hat,
                "interval": [num(x) for x in self.interval], "sd_interval": [num(x) for x in self.sd_interval],
                "level": self.level, "singular": self.singular, "loglik_at_zero": self.loglik_at_zero,
                "method": self.method}


def _sigma(pr: Problem, thetas: np.ndarray, reml: bool) -> np.ndarray:
    r2 = profile(pr, thetas, reml=reml)["r2"]
    return np.sqrt(r2 / (pr.n - pr.p if reml else pr.n))


def profile_intercept(result, *, n_points: int = 100, level: float = 0.95,
                      problem: Problem | None = None) -> InterceptProfile:
    """Profile the (RE)ML log-likelihood of a random-intercept LMM over its one variance parameter.

    Parameters
    ----------
    result : LMMResult
        A fit of ``y ~ ... + (1 | subject)`` (no random slope, no cluster level).
    n_points : int
        Grid points from 0 to beyond the interval's upper end.
    level : float
        Confidence level of the profile-likelihood interval.
    problem : Problem, optional
        :func:`problem_of` ``(result)`` when already built.

    Returns
    -------
    InterceptProfile

    Raises
    ------
    ValueError
        For a model with a random slope or a cluster level (see :func:`deviance_surface`).

    Notes
    -----
    theta = sigma_b / sigma; for each theta, beta and sigma^2 are at their
    (RE)ML values, so ``loglik(theta) = -deviance(theta) / 2`` is the profile.
    The interval's ends solve ``2 (l_max - l(theta)) = chi2_1(level)``
    (Brent's method on the exact deviance); a lower end at 0 means the data
    cannot exclude "no variation between subjects".

    Examples
    --------
    >>> import lmm_teach
    >>> m = lmm_teach.fit_lmm(lmm_teach.load_bp(), y="bp", subject="patient", time="time_num")
    >>> prof = profile_intercept(m)
    >>> bool(prof.interval[0] < prof.theta_hat < prof.interval[1])
    True
    """
    if result.random_slope or result.columns.cluster is not None:
        raise ValueError("the likelihood profile over one parameter needs a random-intercept model "
                         "(no random slope, no cluster level); use deviance_surface for (time | subject)")
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, not {level!r}")
    n_points = max(int(n_points), 3)
    pr = problem_of(result) if problem is None else problem
    reml = _reml(result)
    q = float(chi2.ppf(level, 1))
    theta_hat = float(result.theta[0])

    def dev(x):
        return float(deviance(pr, np.array([[x]]), reml=reml)[0])

    dev_hat = dev(theta_hat)
    dev0 = dev(0.0)

    def excess(x):
        return dev(x) - dev_hat - q

    lo = 0.0
    if theta_hat > 0 and excess(0.0) > 0:
        lo = float(brentq(excess, 0.0, theta_hat, xtol=1e-10))
    hi = math.inf
    step = max(theta_hat, 0.05)
    x = theta_hat + step
    for _ in range(40):  # the deviance grows like log(theta) far out: doubling reaches any cutoff
        if excess(x) > 0:
            hi = float(brentq(excess, max(theta_hat, x - step), x, xtol=1e-10))
            break
        step *= 2.0
        x = theta_hat + step
    top = hi if math.isfinite(hi) else x
    top = max(1.3 * top, 2.0 * theta_hat, 0.3)
    grid = np.linspace(0.0, top, n_points)
    th = grid[:, None]
    prof = profile(pr, th, reml=reml)
    N = pr.n - pr.p if reml else pr.n
    sigma = np.sqrt(prof["r2"] / N)
    ends = np.array([[lo], [hi if math.isfinite(hi) else 0.0]])
    s_ends = _sigma(pr, ends, reml)
    sd_int = (lo * float(s_ends[0]), hi * float(s_ends[1]) if math.isfinite(hi) else math.inf)
    sigma_hat = float(_sigma(pr, np.array([[theta_hat]]), reml)[0])
    return InterceptProfile(
        theta=grid, loglik=-0.5 * prof["dev"], sigma=sigma, theta_hat=theta_hat, loglik_hat=-0.5 * dev_hat,
        sigma_hat=sigma_hat, interval=(lo, hi), sd_interval=sd_int, level=float(level),
        cutoff=-0.5 * dev_hat - 0.5 * q, singular=bool(theta_hat == 0.0 or result.singular),
        loglik_at_zero=-0.5 * dev0, method=result.method, subject=result.columns.subject,
    )


# ------------------------------------------------------------------ random slope
@dataclass(frozen=True, eq=False)
class DevianceSurface:
    """The profiled deviance of a ``(time | subject)`` model over (T00, T11), T10 at its estimate.

    Attributes
    ----------
    x : ndarray (nx,)
        T00 = sd(intercept) / sigma.
    y : ndarray (ny,)
        T11, the slope's own part of the relative factor (per unit of time):
        sd(slope) / sigma = sqrt(T10^2 + T11^2).
    deviance : ndarray (ny, nx)
        Deviance minus its minimum (the fit's), so the optimum is 0; inf where undefined.
    theta_hat : (float, float, float)
        The fit's (T00, T10, T11), lme4's theta.
    path : ndarray (k, 3) or None
        The optimiser's iterates (lme4's theta), when given.
    path_deviance : ndarray (k,) or None
        Their deviance minus the minimum (on the full deviance, not the slice).
    """

    x: np.ndarray
    y: np.ndarray
    deviance: np.ndarray
    theta_hat: tuple[float, float, float]
    deviance_hat: float
    path: np.ndarray | None
    path_deviance: np.ndarray | None
    singular: bool
    method: str
    subject: str
    time: str

    def to_dict(self) -> dict:
        d = np.where(np.isfinite(self.deviance), self.deviance, np.nan)
        return {"x": self.x.tolist(), "y": self.y.tolist(),
                "deviance": [[None if math.isnan(v) else float(v) for v in row] for row in d],
                "theta_hat": list(self.theta_hat), "deviance_hat": self.deviance_hat,
                "path": None if self.path is None else self.path.tolist(), "singular": self.singular,
                "method": self.method}


def deviance_surface(result, *, n_points: int = 41, path=None, problem: Problem | None = None) -> DevianceSurface:
    """The profiled deviance of a random-slope LMM over two of its three covariance parameters.

    Parameters
    ----------
    result : LMMResult
        A fit with ``random_slope=True`` and no cluster level.
    n_points : int
        Grid points per axis.
    path : array-like (k, 3), optional
        The optimiser's iterates of theta (lme4's parametrisation); the grid
        is widened to show them.
    problem : Problem, optional
        :func:`problem_of` ``(result)`` when already built.

    Returns
    -------
    DevianceSurface

    Notes
    -----
    The grid runs from the boundary 0 (a variance of 0: a singular fit) to
    twice the estimate or more, in the scale-free internal units of the
    engine (time divided by its RMS) and is reported per unit of the data's
    time.  T10 (the intercept-slope covariance part) stays at its estimate, so
    the picture is a slice through the optimum of the three-dimensional
    surface; the optimum is its lowest point.

    Examples
    --------
    >>> import lmm_teach
    >>> bp = lmm_teach.load_bp()
    >>> m = lmm_teach.fit_lmm(bp, y="bp", subject="patient", time="time_num", random_slope=True)
    >>> s = deviance_surface(m, n_points=11)
    >>> s.deviance.shape, bool(np.nanmin(s.deviance) >= -1e-6)
    ((11, 11), True)
    """
    if not result.random_slope or result.columns.cluster is not None:
        raise ValueError("the deviance surface over two parameters needs a (time | subject) model "
                         "without a cluster level; use profile_intercept for (1 | subject)")
    n_points = max(int(n_points), 3)
    pr = problem_of(result) if problem is None else problem
    reml = _reml(result)
    hat_ext = np.asarray(result.theta[:3], float)
    hat = pr.internal(hat_ext)
    dev_hat = float(deviance(pr, hat[None], reml=reml)[0])
    pth = None if path is None else np.atleast_2d(np.asarray(path, float))[:, :3]
    pth_int = None if pth is None else np.array([pr.internal(p) for p in pth])
    x_top = 2.0 * max(hat[0], 0.3)
    y_top = 2.0 * max(hat[2], abs(hat[1]), 0.3)
    if pth_int is not None and len(pth_int):
        finite = pth_int[np.all(np.isfinite(pth_int), axis=1)]
        if len(finite):
            x_top = max(x_top, 1.1 * float(finite[:, 0].max()))
            y_top = max(y_top, 1.1 * float(finite[:, 2].max()))
    xs = np.linspace(0.0, x_top, n_points)
    ys = np.linspace(0.0, y_top, n_points)
    X, Y = np.meshgrid(xs, ys)
    th = np.column_stack([X.ravel(), np.full(X.size, hat[1]), Y.ravel()])
    dev = deviance(pr, th, reml=reml).reshape(X.shape) - dev_hat
    path_dev = None
    if pth_int is not None:
        path_dev = deviance(pr, pth_int, reml=reml) - dev_hat
    return DevianceSurface(
        x=xs, y=ys / pr.t_scale, deviance=dev, theta_hat=tuple(float(v) for v in hat_ext), deviance_hat=dev_hat,
        path=pth, path_deviance=path_dev, singular=bool(result.singular), method=result.method,
        subject=result.columns.subject, time=result.columns.time,
    )
