"""The REML/ML surface of a fitted model: the profiled deviance at any theta and the optimiser's path.

For teaching what the optimiser does (plots of the likelihood surface):

* :func:`profiled_deviance` evaluates ``-2 log L`` profiled over the fixed
  effects and sigma at any theta (lme4's relative covariance factor, as in
  ``LMMResult.theta``), for one theta or a batch, in one vectorised call;
* :func:`optimizer_path` refits the model and returns the engine's own
  iterates (theta and deviance at each point where it took derivatives,
  the optimum of every boundary face it searched, and where it ended).

Both rebuild the model's sums from ``result.data`` (well under a millisecond
for a classroom data set), so a result needs nothing extra to support them.

Example
-------
>>> import lmm_teach
>>> from lmm_teach.lmm.surface import optimizer_path, profiled_deviance
>>> m = lmm_teach.fit_lmm(lmm_teach.load_bp(), y="bp", subject="patient", time="time_num")
>>> abs(float(profiled_deviance(m, m.theta)) - m.deviance) < 1e-9
True
>>> path = optimizer_path(m)
>>> abs(float(path["deviance"].iloc[-1]) - m.deviance) < 1e-9
True
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lmm_teach.lmm.deviance import Problem, deviance
from lmm_teach.lmm.engine import fit_problem
from lmm_teach.lmm.fit import build_model

__all__ = ["problem_of", "profiled_deviance", "optimizer_path", "theta_names"]


def problem_of(result) -> Problem:
    """The :class:`~lmm_teach.lmm.deviance.Problem` (per-subject sums) of a fitted model."""
    data = result.data
    if data is None:
        raise ValueError("this result does not keep its data; refit it with fit_lmm")
    return build_model(data, result.columns, random_slope=result.random_slope, time_as=result.time_as).pr


def theta_names(result) -> list[str]:
    """Names of the theta coordinates, in the order of ``result.theta`` (lme4's ``getME(m, "theta")``)."""
    c = result.columns
    names = [f"{c.subject}.(Intercept)"]
    if result.random_slope:
        names += [f"{c.subject}.{c.time}.(Intercept)", f"{c.subject}.{c.time}"]
    if c.cluster is not None:
        names.append(f"{c.cluster}.(Intercept)")
    return names


def profiled_deviance(result, theta, *, problem: Problem | None = None):
    """The profiled REML (or ML, as the model was fitted) deviance ``-2 log L`` at ``theta``.

    Parameters
    ----------
    result : LMMResult
        A fit of :func:`lmm_teach.fit_lmm`.
    theta : array-like, shape (k,) or (B, k)
        lme4's theta (``result.theta``'s layout: the subject intercept's SD
        ratio; with a random slope the entries ``a, b, c`` of the lower-
        triangular factor ``T`` (``Sigma / sigma^2 = T T'``); then the cluster's
        SD ratio).  Bounded entries are taken in absolute value (the deviance
        is even in them).
    problem : Problem, optional
        :func:`problem_of` ``(result)``, to skip rebuilding it when called often.

    Returns
    -------
    float for one theta, else an array (B,); ``inf`` where the fit is perfect.
    At ``result.theta`` it equals ``result.deviance``.
    """
    pr = problem_of(result) if problem is None else problem
    th = np.asarray(theta, dtype=float)
    single = th.ndim == 1
    th = np.atleast_2d(th)
    if th.shape[1] != pr.n_theta:
        raise ValueError(f"theta needs {pr.n_theta} entries ({', '.join(theta_names(result))}), "
                         f"got {th.shape[1]}")
    internal = np.array([pr.internal(t) for t in th])
    internal[:, pr.bounded] = np.abs(internal[:, pr.bounded])
    out = deviance(pr, internal, reml=result.method == "REML")
    return float(out[0]) if single else out


def optimizer_path(result) -> pd.DataFrame:
    """The optimiser's iterates when fitting ``result``'s model, in order.

    Returns a DataFrame with columns ``step`` (0, 1, ...), ``stage`` ("newton":
    a point where the Newton method took derivatives; "search 1-d": the
    optimum of a one-parameter search; "face: ...": the optimum on a boundary
    face; "from face: ...": where Newton went after leaving that face along a
    direction of descent), the theta coordinates (named as lme4 names them,
    see :func:`theta_names`; lme4's scale) and ``deviance``.  The last row is
    the optimum reported (``result.theta``, ``result.deviance``).  The reduced
    fits of the random-term tests are not part of the path.
    """
    pr = problem_of(result)
    trace: list = []
    fit = fit_problem(pr, reml=result.method == "REML", satterthwaite=False, trace=trace)
    trace.append(("optimum", fit.optimum.theta, fit.optimum.dev))
    names = theta_names(result)
    rows = np.array([pr.external(th) for _, th, _ in trace])
    out = pd.DataFrame(rows, columns=names)
    out.insert(0, "stage", [s for s, _, _ in trace])
    out.insert(0, "step", np.arange(len(trace)))
    out["deviance"] = [float(f) for _, _, f in trace]
    return out
