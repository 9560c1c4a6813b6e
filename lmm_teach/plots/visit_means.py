"""Mean outcome per visit: the complete cases the RM-ANOVA analyses, beside
the means of every observed measurement and the true mean curve.

Under dropout that depends on the outcome (MAR, MNAR) the subjects who stay to
the end are not a random sample, so the complete-case means drift away from
the truth; the figure makes that visible next to the ANOVA table.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from bokeh.models import ColumnDataSource, HoverTool

from lmm_teach.plots.theme import (
    GREY,
    TRUTH_COLOUR,
    empty_columns,
    group_colours,
    legend_above,
    new_figure,
    ordered_levels,
)

__all__ = ["make_visit_means_figure", "visit_means_data"]

_LINE_COLUMNS = ("xs", "ys", "colour", "label")
# Bokeh merges legend items that share a field name across sources (and
# rejects it, E-1006), so each line source has its own legend column.
_OBSERVED_COLUMNS = ("xs", "ys", "colour", "observed_label")
_TRUTH_COLUMNS = ("xs", "ys", "colour", "truth_label")
_POINT_COLUMNS = ("x", "y", "visit", "group", "n", "colour", "label")



def make_visit_means_figure(*, x_label: str = "time", y_label: str = "mean outcome"):
    """Build the (empty) visit-means figure once.

    Returns
    -------
    (figure, sources)
        ``sources``: ``"complete_lines"``, ``"complete_points"``,
        ``"observed_lines"``, ``"observed_points"``, ``"truth"``.

    Examples
    --------
    >>> fig, sources = make_visit_means_figure()
    >>> len(sources)
    5
    """
    sources = {
        "complete_lines": ColumnDataSource(empty_columns(_LINE_COLUMNS), name="complete_lines"),
        "complete_points": ColumnDataSource(empty_columns(_POINT_COLUMNS), name="complete_points"),
        "observed_lines": ColumnDataSource(empty_columns(_OBSERVED_COLUMNS), name="observed_lines"),
        "observed_points": ColumnDataSource(empty_columns(_POINT_COLUMNS), name="observed_points"),
        "truth": ColumnDataSource(empty_columns(_TRUTH_COLUMNS), name="truth"),
    }
    fig = new_figure(name="visit-means", title="Visit means: complete cases (ANOVA) and all observed",
                     x_label=x_label, y_label=y_label)
    # Two columns: three of "complete cases, arm B"-long items ran past the figure's edge (clipped).
    legend_above(fig, ncols=2)
    fig.multi_line("xs", "ys", source=sources["truth"], line_color=TRUTH_COLOUR, line_dash="dashed",
                   line_width=2, legend_field="truth_label")
    fig.multi_line("xs", "ys", source=sources["observed_lines"], line_color="colour", line_dash="dotted",
                   line_width=2, legend_field="observed_label")
    obs = fig.scatter("x", "y", source=sources["observed_points"], marker="square", size=7,
                      fill_color="white", line_color="colour")
    fig.multi_line("xs", "ys", source=sources["complete_lines"], line_color="colour", line_width=3,
                   legend_field="label")
    comp = fig.scatter("x", "y", source=sources["complete_points"], size=8, color="colour")
    fig.add_tools(HoverTool(renderers=[comp, obs], tooltips=[
        ("", "@label"), ("visit", "@visit"), ("mean", "@y{0.00}"), ("patients", "@n")]))
    return fig, sources


def visit_means_data(
    cell_means: pd.DataFrame,
    *,
    visit: str,
    between: str | None = None,
    data: pd.DataFrame | None = None,
    y: str | None = None,
    time: str | None = None,
    truth: Mapping | None = None,
) -> dict[str, dict]:
    """Columns of the visit-means figure.

    Parameters
    ----------
    cell_means : DataFrame
        ``AnovaResult.cell_means``: ``[between,] visit, mean, sd, n`` (and
        ``time``) of the complete cases, exactly what the ANOVA analysed.
    visit, between : str
        Column names of the visit label and the between factor.
    data, y : DataFrame and str, optional
        The long data and its outcome column: adds the means of every observed
        measurement (dotted), for contrast.  Not modified.
    time : str, optional
        The numeric time column of ``data``: places the visits at their mean
        time and allows the true curve.  Without it, numeric visits are used
        as they are and text visits get 0, 1, 2, ...
    truth : mapping, optional
        True fixed effects under generic names (``"(Intercept)"``, ``"time"``,
        ``"arm"``, ``"time:arm"``); the true mean curve is drawn at the visits.

    Examples
    --------
    >>> cm = pd.DataFrame({"visit": [0, 1], "mean": [1.0, 3.0], "sd": [0.0, 0.0], "n": [1, 1]})
    >>> df = pd.DataFrame({"subject": list("aabb"), "visit": [0, 1, 0, 1], "y": [1.0, 3.0, 2.0, 5.0]})
    >>> out = visit_means_data(cm, visit="visit", data=df, y="y")
    >>> out["complete_points"]["y"], out["observed_points"]["y"]
    ([1.0, 3.0], [1.5, 4.0])
    """
    # numpy, not groupby: this runs on every slider release while the tab is shown.
    obs = None
    if data is not None and y is not None:
        y_all = pd.to_numeric(data[y], errors="coerce").to_numpy(float)
        keep = ~np.isnan(y_all)
        obs = {"y": y_all[keep], "visit": data[visit].to_numpy()[keep]}
        if time is not None:
            obs["time"] = data[time].to_numpy(float)[keep]
        if between is not None:
            obs["group"] = data[between].to_numpy()[keep]
    levels = ordered_levels(obs["visit"] if obs is not None else cell_means[visit])
    for lvl in ordered_levels(cell_means[visit]):
        if lvl not in levels:
            levels.append(lvl)
    index = {lvl: k for k, lvl in enumerate(levels)}
    K = len(levels)
    if obs is not None:
        v_idx = np.fromiter((index[v] for v in obs["visit"]), dtype=np.int64, count=len(obs["visit"]))

    if obs is not None and time is not None:
        n_v = np.bincount(v_idx, minlength=K)
        mean_t = np.bincount(v_idx, weights=obs["time"], minlength=K) / np.maximum(n_v, 1)
        x_of = {lvl: float(mean_t[k]) for lvl, k in index.items() if n_v[k]}
    elif "mean_time" in cell_means.columns:
        pos = cell_means.groupby(visit, observed=True)["mean_time"].mean()
        x_of = {lvl: float(pos[lvl]) for lvl in levels}
    elif all(isinstance(v, (int, float, np.integer, np.floating)) for v in levels):
        x_of = {lvl: float(lvl) for lvl in levels}
    else:
        x_of = {lvl: float(i) for i, lvl in enumerate(levels)}
    if between is not None:
        groups = ordered_levels(obs["group"] if obs is not None else cell_means[between])
    else:
        groups = [None]
    colours = group_colours(groups)

    def lines_and_points(g_of, v_of, means, counts, kind: str, colour_none: str):
        """One line per group through its visit means, in visit order."""
        lines, points = empty_columns(_LINE_COLUMNS), empty_columns(_POINT_COLUMNS)
        g_of, v_of = list(g_of), list(v_of)
        for g in groups:
            rows = [i for i, (gi, vi) in enumerate(zip(g_of, v_of, strict=True)) if gi == g and vi in x_of]
            if not rows:
                continue  # e.g. no complete subject in this group
            rows.sort(key=lambda i: index[v_of[i]])
            xs = [x_of[v_of[i]] for i in rows]
            ys = [float(means[i]) for i in rows]
            label = kind if g is None else f"{kind}, {between} {g}"
            colour = colour_none if g is None else colours[g]
            lines["xs"].append(np.asarray(xs))
            lines["ys"].append(np.asarray(ys))
            lines["colour"].append(colour)
            lines["label"].append(label)
            points["x"] += xs
            points["y"] += ys
            points["visit"] += [str(v_of[i]) for i in rows]
            points["group"] += ["" if g is None else str(g)] * len(xs)
            points["n"] += [int(counts[i]) for i in rows]
            points["colour"] += [colour] * len(xs)
            points["label"] += [label] * len(xs)
        return lines, points

    cm_groups = cell_means[between].tolist() if between is not None else [None] * len(cell_means)
    complete_lines, complete_points = lines_and_points(
        cm_groups, cell_means[visit].tolist(), cell_means["mean"].to_numpy(float), cell_means["n"].to_numpy(),
        "complete cases (ANOVA)", colours[groups[0]])
    observed_lines, observed_points = empty_columns(_OBSERVED_COLUMNS), empty_columns(_POINT_COLUMNS)
    if obs is not None:
        G = len(groups)
        g_idx = (np.fromiter(({g: i for i, g in enumerate(groups)}[v] for v in obs["group"]), dtype=np.int64,
                             count=len(obs["y"])) if between is not None else np.zeros(len(obs["y"]), np.int64))
        cell = g_idx * K + v_idx
        n = np.bincount(cell, minlength=G * K)
        total = np.bincount(cell, weights=obs["y"], minlength=G * K)
        have = np.flatnonzero(n)
        observed_lines, observed_points = lines_and_points(
            [groups[c // K] for c in have], [levels[c % K] for c in have], total[have] / n[have], n[have],
            "all observed", GREY)
        observed_lines["observed_label"] = observed_lines.pop("label")

    truth_lines = empty_columns(_TRUTH_COLUMNS)
    if truth and (time is not None or "mean_time" in cell_means.columns):
        xs = np.asarray([x_of[v] for v in levels if v in x_of])
        for i, _g in enumerate(groups):
            b = i > 0  # every non-reference arm gets the true arm effects
            icpt = float(truth.get("(Intercept)", np.nan)) + b * float(truth.get("arm", 0.0))
            slope = float(truth.get("time", np.nan)) + b * float(truth.get("time:arm", 0.0))
            truth_lines["xs"].append(xs)
            truth_lines["ys"].append(icpt + slope * xs)
            truth_lines["colour"].append(TRUTH_COLOUR)
            truth_lines["truth_label"].append("truth")
    return {"complete_lines": complete_lines, "complete_points": complete_points,
            "observed_lines": observed_lines, "observed_points": observed_points, "truth": truth_lines}
