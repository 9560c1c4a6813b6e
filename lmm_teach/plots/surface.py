"""The likelihood surface: the profile over theta (random intercept) and a contour map (random slope).

* :func:`make_profile_figure` / :func:`profile_data`: the profiled (RE)ML
  log-likelihood against theta = sd(subject) / sigma, the optimum, the line
  ``chi2_1(0.95) / 2`` below it and the profile-likelihood interval it cuts,
  and the boundary theta = 0 (where a singular fit's optimum sits);
* :func:`make_contour_figure` / :func:`contour_data`: contours of the profiled
  deviance over two parameters of a ``(time | subject)`` model, the optimum,
  the optimiser's path and the iterate shown now (a Play control steps it).

Contour lines come from contourpy (a bokeh dependency): a pure function of
the grid, so the figure is built once and updates assign source data.
"""

from __future__ import annotations

import math

import numpy as np
from bokeh.models import ColumnDataSource, HoverTool, Span

from lmm_teach.plots.theme import OKABE_ITO, TRUTH_COLOUR, empty_columns, legend_above, new_figure

__all__ = ["make_profile_figure", "profile_data", "make_contour_figure", "contour_data", "CONTOUR_LEVELS"]

#: Deviance above the minimum at which contours are drawn: chi2_2 quantiles
#: 0.5, 0.8, 0.95, 0.99 (2 df: joint regions for the two parameters), then wider.
CONTOUR_LEVELS = (1.386, 3.219, 5.991, 9.210, 20.0, 50.0, 100.0)

_CURVE = ("x", "y", "sd")
_MARK = ("x", "y", "label")
_SEG = ("x0", "y0", "x1", "y1", "label")


def make_profile_figure(*, x_label: str = "theta = sd(subject) / sigma"):
    """Build the (empty) profile figure of a random-intercept model.

    Returns
    -------
    (figure, sources)
        ``"curve"``, ``"optimum"``, ``"cutoff"`` (the horizontal line), ``"interval"``.

    Examples
    --------
    >>> fig, src = make_profile_figure()
    >>> sorted(src)
    ['curve', 'cutoff', 'interval', 'optimum']
    """
    src = {"curve": ColumnDataSource(empty_columns(_CURVE), name="curve"),
           "optimum": ColumnDataSource(empty_columns(_MARK), name="optimum"),
           "cutoff": ColumnDataSource(empty_columns(_SEG), name="cutoff"),
           "interval": ColumnDataSource(empty_columns(_SEG), name="interval")}
    fig = new_figure(name="reml-profile", title="Profiled REML log-likelihood", x_label=x_label,
                     y_label="log-likelihood")
    legend_above(fig)
    fig.add_layout(Span(location=0.0, dimension="height", line_color=OKABE_ITO["vermillion"], line_width=2,
                        line_alpha=0.6))
    line = fig.line("x", "y", source=src["curve"], line_width=2, color=OKABE_ITO["blue"],
                    legend_label="log-likelihood")
    fig.segment("x0", "y0", "x1", "y1", source=src["cutoff"], line_dash="dashed", color=TRUTH_COLOUR,
                legend_label="95% cut-off")
    fig.segment("x0", "y0", "x1", "y1", source=src["interval"], line_width=5, color=OKABE_ITO["green"],
                line_alpha=0.7, legend_label="95% profile interval")
    fig.scatter("x", "y", source=src["optimum"], size=11, color=OKABE_ITO["vermillion"], legend_label="optimum")
    fig.add_tools(HoverTool(renderers=[line], mode="vline",
                            tooltips=[("theta", "@x{0.000}"), ("sd", "@sd{0.00}"), ("log-lik", "@y{0.00}")]))
    return fig, src


def profile_data(prof) -> dict[str, dict]:
    """The profile figure's columns from :class:`lmm_teach.lmm.profile.InterceptProfile`.

    The y range is cut at 12 log-likelihood units below the optimum (a wall
    of -1000 at theta = 0 would flatten everything that matters); the curve
    keeps its points below, the axis does not show them.

    Examples
    --------
    >>> import lmm_teach
    >>> from lmm_teach.lmm.profile import profile_intercept
    >>> m = lmm_teach.fit_lmm(lmm_teach.load_bp(), y="bp", subject="patient", time="time_num")
    >>> out = profile_data(profile_intercept(m))
    >>> out["optimum"]["label"]
    ['optimum']
    """
    floor = prof.loglik_hat - 12.0
    y = np.maximum(prof.loglik, floor - 1.0)
    lo, hi = prof.interval
    right = float(prof.theta[-1])
    hi_draw = hi if math.isfinite(hi) else right
    return {
        "curve": {"x": prof.theta, "y": y, "sd": prof.theta * prof.sigma},
        "optimum": {"x": [prof.theta_hat], "y": [prof.loglik_hat], "label": ["optimum"]},
        "cutoff": {"x0": [0.0], "y0": [prof.cutoff], "x1": [right], "y1": [prof.cutoff], "label": ["cutoff"]},
        "interval": {"x0": [lo], "y0": [prof.cutoff], "x1": [hi_draw], "y1": [prof.cutoff], "label": ["interval"]},
    }


def make_contour_figure(*, x_label: str = "theta1 = sd(intercept) / sigma",
                        y_label: str = "theta3 (slope part, per unit of time)"):
    """Build the (empty) contour figure of a random-slope model.

    Returns
    -------
    (figure, sources)
        ``"contours"`` (multi-line, one per level piece), ``"optimum"``,
        ``"path"`` (the iterates, joined), ``"current"`` (the iterate shown now).
    """
    src = {"contours": ColumnDataSource(empty_columns(("xs", "ys", "level", "colour")), name="contours"),
           "optimum": ColumnDataSource(empty_columns(_MARK), name="optimum"),
           "path": ColumnDataSource(empty_columns(("x", "y", "step", "deviance")), name="path"),
           "current": ColumnDataSource(empty_columns(("x", "y", "step", "deviance")), name="current")}
    fig = new_figure(name="reml-contour", title="Profiled REML deviance (contours: deviance above the minimum)",
                     x_label=x_label, y_label=y_label)
    legend_above(fig)
    fig.add_layout(Span(location=0.0, dimension="height", line_color=OKABE_ITO["vermillion"], line_alpha=0.5,
                        line_width=2))
    fig.add_layout(Span(location=0.0, dimension="width", line_color=OKABE_ITO["vermillion"], line_alpha=0.5,
                        line_width=2))
    c = fig.multi_line("xs", "ys", source=src["contours"], line_color="colour", line_width=1.5)
    fig.line("x", "y", source=src["path"], line_color=TRUTH_COLOUR, line_dash="dotted", legend_label="optimiser path")
    p = fig.scatter("x", "y", source=src["path"], size=5, color=TRUTH_COLOUR)
    fig.scatter("x", "y", source=src["current"], size=12, marker="circle", fill_color=None, line_width=2,
                line_color=OKABE_ITO["green"], legend_label="iterate shown")
    fig.scatter("x", "y", source=src["optimum"], size=14, marker="star", color=OKABE_ITO["vermillion"],
                legend_label="optimum")
    fig.add_tools(HoverTool(renderers=[c], tooltips=[("deviance above minimum", "@level")]))
    fig.add_tools(HoverTool(renderers=[p], tooltips=[("step", "@step"), ("deviance - min", "@deviance{0.000}")]))
    return fig, src


def _viridis(k: int, n: int) -> str:
    from bokeh.palettes import Viridis256

    return Viridis256[int(round(200 * k / max(n - 1, 1)))]


def contour_data(surface, *, step: int | None = None) -> dict[str, dict]:
    """The contour figure's columns from :class:`lmm_teach.lmm.profile.DevianceSurface`.

    Parameters
    ----------
    step : int, optional
        Which iterate of the path to mark (default: the last).

    Examples
    --------
    >>> import lmm_teach
    >>> from lmm_teach.lmm.profile import deviance_surface
    >>> m = lmm_teach.fit_lmm(lmm_teach.load_bp(), y="bp", subject="patient", time="time_num",
    ...                       random_slope=True)
    >>> out = contour_data(deviance_surface(m, n_points=21))
    >>> len(out["contours"]["xs"]) > 0
    True
    """
    import contourpy

    z = np.where(np.isfinite(surface.deviance), surface.deviance, np.nanmax(
        np.where(np.isfinite(surface.deviance), surface.deviance, 0.0)) + 1.0)
    gen = contourpy.contour_generator(surface.x, surface.y, z, name="serial")
    cont = {"xs": [], "ys": [], "level": [], "colour": []}
    for k, lvl in enumerate(CONTOUR_LEVELS):
        for seg in gen.lines(lvl):
            cont["xs"].append(seg[:, 0].tolist())
            cont["ys"].append(seg[:, 1].tolist())
            cont["level"].append(f"{lvl:g}")
            cont["colour"].append(_viridis(k, len(CONTOUR_LEVELS)))
    a, _, c = surface.theta_hat
    out = {"contours": cont, "optimum": {"x": [a], "y": [c], "label": ["optimum"]},
           "path": empty_columns(("x", "y", "step", "deviance")),
           "current": empty_columns(("x", "y", "step", "deviance"))}
    if surface.path is not None and len(surface.path):
        P = surface.path
        d = surface.path_deviance
        out["path"] = {"x": P[:, 0].tolist(), "y": P[:, 2].tolist(), "step": list(range(len(P))),
                       "deviance": [float(v) if math.isfinite(v) else None for v in d]}
        i = len(P) - 1 if step is None else int(np.clip(step, 0, len(P) - 1))
        out["current"] = {"x": [float(P[i, 0])], "y": [float(P[i, 2])], "step": [i],
                          "deviance": [float(d[i]) if math.isfinite(d[i]) else None]}
    return out
