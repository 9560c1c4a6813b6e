"""The shrinkage plot: each subject's own estimate beside its LMM estimate.

An arrow runs from the estimate that uses the subject's data alone (ordinary
least squares) to the LMM's subject-specific estimate (fixed effects plus the
BLUP), which lies closer to the population line: partial pooling.  Subjects
with few measurements or noisy ones travel furthest (Gelman & Hill 2007,
section 12.2, "partial pooling").

Two shapes, one per model:

* random intercept only (``kind="intercept"``): the subjects' levels at time 0
  on the x axis, in three rows: own estimate, LMM estimate, and the truth of a
  simulation;
* random intercept and slope (``kind="slope"``): level (x) against slope (y),
  arrows in the plane, the population line as a diamond per group.

With ``cov`` (the estimated covariance of the random effects) the plot also
shows the estimated distribution of the subjects around the population line:
a density curve over the LMM row (intercept) or the 50 % and 95 % contour
ellipses (slope); ``true_cov`` adds the true one of a simulation (dashed).
``cond_sd`` adds an interval of +-1.96 conditional SDs around each BLUP: a
small stacked "caterpillar" under the LMM row (intercept), a cross (slope).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from bokeh.models import Arrow, ColumnDataSource, FixedTicker, HoverTool, NormalHead, Range1d

from lmm_teach.plots.theme import EDITED_COLOUR, TRUTH_COLOUR, empty_columns, group_colours, legend_above, new_figure
from lmm_teach.pooling import ellipse

__all__ = ["make_shrinkage_figure", "shrinkage_data", "shrinkage_kind", "ROWS"]

#: y positions of the rows of the intercept-only plot.
ROWS = {"own": 2.0, "lmm": 1.0, "truth": 0.0}

# One row per subject: its own estimate, its LMM estimate and its truth side by
# side (one source, so one message to the browser per update).
_SUBJECT_COLUMNS = ("subject", "n_obs", "colour", "own_x", "own_y", "lmm_x", "lmm_y", "truth_x", "truth_y",
                    "own_slope", "lmm_slope", "truth_slope")
_POP_COLUMNS = ("x", "y", "x0", "y0", "x1", "y1", "colour", "label")
_CURVE_COLUMNS = ("xs", "ys", "colour")
_INTERVAL_COLUMNS = ("x0", "y0", "x1", "y1", "colour", "subject", "sd")
#: Height of the density curves over their row (intercept kind), and the band of the caterpillar.
_CURVE_HEIGHT = 0.45
_CATERPILLAR = (0.52, 0.92)



def shrinkage_kind(shrink: pd.DataFrame) -> str:
    """``"slope"`` when the table has subject slopes (random-slope model), else ``"intercept"``."""
    return "slope" if "own_slope" in shrink.columns else "intercept"


def make_shrinkage_figure(*, kind: str = "intercept", x_label: str = "level at time 0",
                          y_label: str = "slope"):
    """Build the (empty) shrinkage figure for one kind of model.

    Parameters
    ----------
    kind : {"intercept", "slope"}
        See the module docstring.

    Returns
    -------
    (figure, sources)
        ``sources``: ``"subjects"`` (one row per subject: own, LMM and true
        estimates; the arrows), ``"population"``, ``"estimated"`` and
        ``"true"`` (the distribution of the random effects: density curves or
        ellipses) and ``"intervals"`` (the BLUPs' conditional intervals).

    Examples
    --------
    >>> fig, sources = make_shrinkage_figure(kind="slope")
    >>> sorted(sources)
    ['estimated', 'intervals', 'population', 'subjects', 'true']
    """
    if kind not in ("intercept", "slope"):
        raise ValueError(f"kind must be 'intercept' or 'slope', got {kind!r}")
    sources = {
        "subjects": ColumnDataSource(empty_columns(_SUBJECT_COLUMNS), name="subjects"),
        "population": ColumnDataSource(empty_columns(_POP_COLUMNS), name="population"),
        "estimated": ColumnDataSource(empty_columns(_CURVE_COLUMNS), name="estimated"),
        "true": ColumnDataSource(empty_columns(_CURVE_COLUMNS), name="true"),
        "intervals": ColumnDataSource(empty_columns(_INTERVAL_COLUMNS), name="intervals"),
    }
    if kind == "intercept":
        fig = new_figure(name="shrinkage", title="Shrinkage: own estimate -> LMM estimate",
                         x_label=x_label, y_label="", y_range=Range1d(-0.6, 2.6), height=300)
        legend_above(fig)
        fig.yaxis.ticker = FixedTicker(ticks=sorted(ROWS.values()))
        fig.yaxis.major_label_overrides = {2: "own data", 1: "LMM (BLUP)", 0: "truth"}
        fig.ygrid.grid_line_color = None
        fig.segment("x0", "y0", "x1", "y1", source=sources["population"], line_color="colour",
                    line_dash="dashed", line_width=2, legend_field="label")
    else:
        fig = new_figure(name="shrinkage", title="Shrinkage: own estimate -> LMM estimate",
                         x_label=x_label, y_label=y_label)
        legend_above(fig)
        fig.scatter("x", "y", source=sources["population"], marker="diamond", size=16,
                    fill_color="colour", line_color="black", legend_field="label")
    fig.multi_line("xs", "ys", source=sources["estimated"], line_color="colour", line_width=2, line_alpha=0.6,
                   legend_label="estimated distribution")
    fig.multi_line("xs", "ys", source=sources["true"], line_color=TRUTH_COLOUR, line_dash="dashed",
                   line_width=1.5, line_alpha=0.7, legend_label="true distribution")
    iv = fig.segment("x0", "y0", "x1", "y1", source=sources["intervals"], line_color="colour", line_alpha=0.45,
                     line_width=1.5, legend_label="BLUP +- 1.96 conditional SD")
    fig.add_tools(HoverTool(renderers=[iv], tooltips=[("subject", "@subject"), ("conditional SD", "@sd{0.000}")]))
    src = sources["subjects"]
    head = NormalHead(size=6, fill_color="colour", line_color="colour", fill_alpha=0.7, line_alpha=0.7)
    fig.add_layout(Arrow(end=head, source=src, x_start="own_x", y_start="own_y", x_end="lmm_x", y_end="lmm_y",
                         line_color="colour", line_alpha=0.5))
    own = fig.scatter("own_x", "own_y", source=src, marker="circle", size=7, fill_color=None,
                      line_color="colour", line_width=1.5)
    lmm = fig.scatter("lmm_x", "lmm_y", source=src, marker="circle", size=7, color="colour")
    truth = fig.scatter("truth_x", "truth_y", source=src, marker="x", size=8, line_color=TRUTH_COLOUR)
    for renderer, which, title in ((own, "own", "own data"), (lmm, "lmm", "LMM"), (truth, "truth", "truth")):
        tips = [("subject", "@subject"), ("observations", "@n_obs"), (f"level ({title})", f"@{which}_x{{0.00}}")]
        if kind == "slope":
            tips.append((f"slope ({title})", f"@{which}_slope{{0.000}}"))
        fig.add_tools(HoverTool(renderers=[renderer], tooltips=tips))
    return fig, sources


def shrinkage_data(
    shrink: pd.DataFrame,
    *,
    groups: Mapping | None = None,
    truth: pd.DataFrame | None = None,
    cov: np.ndarray | None = None,
    true_cov: np.ndarray | None = None,
    cond_sd: pd.DataFrame | None = None,
    highlight=None,
) -> dict[str, dict]:
    """The columns of the shrinkage plot's sources.

    Parameters
    ----------
    shrink : DataFrame
        :func:`lmm_teach.compare.shrinkage`: indexed by subject, with
        ``n_obs, own_intercept, lmm_intercept, population_intercept`` and, for
        a random-slope model, ``own_slope, lmm_slope, population_slope``.
    groups : mapping, optional
        Subject -> level of the between factor (colours; one population mark
        per level).
    truth : DataFrame, optional
        The subjects' true lines, indexed by subject: ``intercept`` (and
        ``slope``), fixed and random parts added.  Subjects without one get NaN
        (not drawn).
    cov, true_cov : ndarray, optional
        Estimated (and true) covariance of the random effects
        (:func:`lmm_teach.pooling.ranef_covariance`): 1 x 1 or 2 x 2.
    cond_sd : DataFrame, optional
        :func:`lmm_teach.pooling.conditional_sd` of the fit.
    highlight : optional
        A subject drawn in :data:`~lmm_teach.plots.theme.EDITED_COLOUR` (the
        one whose data a learner edited).

    Returns
    -------
    dict
        ``{"subjects", "population", "estimated", "true", "intervals"}``, each a dict of columns for
        ``source.data = ...``.  ``own_x``/``lmm_x``/``truth_x`` are levels at
        time 0; the ``_y`` columns are slopes (random-slope model) or the rows
        of :data:`ROWS` (random intercept only).

    Examples
    --------
    >>> shrink = pd.DataFrame({"n_obs": [2, 6], "own_intercept": [90.0, 104.0],
    ...                        "lmm_intercept": [96.0, 103.0], "population_intercept": [100.0, 100.0]},
    ...                       index=pd.Index(["s1", "s2"], name="subject"))
    >>> out = shrinkage_data(shrink)["subjects"]
    >>> out["own_x"].tolist(), out["lmm_x"].tolist()   # arrows from own to LMM
    ([90.0, 104.0], [96.0, 103.0])
    """
    kind = shrinkage_kind(shrink)
    subjects = [str(s) for s in shrink.index]
    n = len(subjects)
    if groups is not None:
        level = [groups.get(s, groups.get(str(s))) for s in shrink.index]
        colours = group_colours(pd.unique(pd.Series(level)).tolist())
        colour = [colours[v] for v in level]
        labels = [f"population line, {v}" for v in level]
    else:
        level = [None] * n
        colour = [group_colours([0])[0]] * n
        labels = ["population line"] * n
    dot_colour = colour
    if highlight is not None and str(highlight) in subjects:
        dot_colour = list(colour)
        dot_colour[subjects.index(str(highlight))] = EDITED_COLOUR

    nan = np.full(n, np.nan)
    own_x = shrink["own_intercept"].to_numpy(float)
    lmm_x = shrink["lmm_intercept"].to_numpy(float)
    own_slope = shrink["own_slope"].to_numpy(float) if kind == "slope" else nan
    lmm_slope = shrink["lmm_slope"].to_numpy(float) if kind == "slope" else nan
    truth_x, truth_slope = nan, nan
    if truth is not None and len(truth):
        t = truth.reindex(shrink.index)
        truth_x = t["intercept"].to_numpy(float)
        if kind == "slope" and "slope" in t.columns:
            truth_slope = t["slope"].to_numpy(float)

    def row(which: str) -> np.ndarray:
        return np.full(n, ROWS[which])

    out = {
        "subject": subjects,
        "n_obs": shrink["n_obs"].to_numpy(),
        "colour": dot_colour,
        "own_x": own_x,
        "own_y": own_slope if kind == "slope" else row("own"),
        "lmm_x": lmm_x,
        "lmm_y": lmm_slope if kind == "slope" else row("lmm"),
        "truth_x": truth_x,
        "truth_y": truth_slope if kind == "slope" else np.where(np.isnan(truth_x), np.nan, ROWS["truth"]),
        "own_slope": own_slope,
        "lmm_slope": lmm_slope,
        "truth_slope": truth_slope,
    }

    population = empty_columns(_POP_COLUMNS)
    seen = {}
    for i, lvl in enumerate(level):
        seen.setdefault(lvl, []).append(i)
    for rows in seen.values():
        x = float(np.nanmean(shrink["population_intercept"].to_numpy(float)[rows]))
        if kind == "slope":
            y = float(np.nanmean(shrink["population_slope"].to_numpy(float)[rows]))
            y0 = y1 = y
        else:
            y, y0, y1 = ROWS["lmm"], ROWS["truth"] - 0.4, ROWS["own"] + 0.4
        population["x"].append(x)
        population["y"].append(y)
        population["x0"].append(x)
        population["x1"].append(x)
        population["y0"].append(y0)
        population["y1"].append(y1)
        population["colour"].append(colour[rows[0]])
        population["label"].append(labels[rows[0]])
    centres = list(zip(population["x"], population["y"] if kind == "slope" else [None] * len(population["x"]),
                       population["colour"], strict=True))
    return {"subjects": out, "population": population,
            "estimated": _distribution(kind, cov, centres, ROWS["lmm"]),
            "true": _distribution(kind, true_cov, [(x, y, TRUTH_COLOUR) for x, y, _ in centres], ROWS["truth"]),
            "intervals": _intervals(kind, shrink, cond_sd, subjects, dot_colour, lmm_x,
                                    lmm_slope if kind == "slope" else None)}


def _distribution(kind: str, cov, centres, row: float) -> dict:
    """Density curves (intercept) or 50 % and 95 % ellipses (slope) of N(centre, cov), one per centre."""
    out = empty_columns(_CURVE_COLUMNS)
    if cov is None:
        return out
    cov = np.atleast_2d(np.asarray(cov, float))
    if not np.all(np.isfinite(cov)):
        return out
    for x, y, colour in centres:
        if kind == "slope":
            if cov.shape != (2, 2):
                continue
            for level in (0.5, 0.95):
                ex, ey = ellipse(cov, center=(x, y), level=level, n=80)
                out["xs"].append(ex.tolist())
                out["ys"].append(ey.tolist())
                out["colour"].append(colour)
        else:
            sd = float(np.sqrt(cov[0, 0]))
            if sd <= 0:  # a singular fit: all its mass at the population line
                xs, ys = [x, x], [row, row + _CURVE_HEIGHT]
            else:
                g = np.linspace(-3.0, 3.0, 61)
                xs, ys = (x + sd * g).tolist(), (row + _CURVE_HEIGHT * np.exp(-0.5 * g * g)).tolist()
            out["xs"].append(xs)
            out["ys"].append(ys)
            out["colour"].append(colour)
    return out


def _intervals(kind, shrink, cond_sd, subjects, colour, lmm_x, lmm_slope) -> dict:
    out = empty_columns(_INTERVAL_COLUMNS)
    if cond_sd is None or not len(subjects):
        return out
    sd = cond_sd.reindex(shrink.index)
    s0 = sd["sd_intercept"].to_numpy(float)
    n = len(subjects)
    if kind == "slope":
        s1 = sd["sd_slope"].to_numpy(float) if "sd_slope" in sd.columns else np.full(n, np.nan)
        for i in range(n):
            out["x0"] += [lmm_x[i] - 1.96 * s0[i], lmm_x[i]]
            out["x1"] += [lmm_x[i] + 1.96 * s0[i], lmm_x[i]]
            out["y0"] += [lmm_slope[i], lmm_slope[i] - 1.96 * s1[i]]
            out["y1"] += [lmm_slope[i], lmm_slope[i] + 1.96 * s1[i]]
            out["colour"] += [colour[i]] * 2
            out["subject"] += [subjects[i]] * 2
            out["sd"] += [float(s0[i]), float(s1[i])]
        return out
    lo, hi = _CATERPILLAR
    rank = np.empty(n)
    rank[np.argsort(lmm_x, kind="stable")] = np.arange(n)
    yy = lo + (hi - lo) * (rank / max(n - 1, 1))
    out["x0"] = (lmm_x - 1.96 * s0).tolist()
    out["x1"] = (lmm_x + 1.96 * s0).tolist()
    out["y0"] = yy.tolist()
    out["y1"] = yy.tolist()
    out["colour"] = list(colour)
    out["subject"] = list(subjects)
    out["sd"] = s0.tolist()
    return out
