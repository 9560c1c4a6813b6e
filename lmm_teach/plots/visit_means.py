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

from lmm_teach.plots.theme import GREY, TRUTH_COLOUR, group_colours, new_figure, ordered_levels

__all__ = ["make_visit_means_figure", "visit_means_data"]

_LINE_COLUMNS = ("xs", "ys", "colour", "label")
_POINT_COLUMNS = ("x", "y", "visit", "group", "n", "colour", "label")


def _empty(columns) -> dict:
    return {c: [] for c in columns}


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
        "complete_lines": ColumnDataSource(_empty(_LINE_COLUMNS), name="complete_lines"),
        "complete_points": ColumnDataSource(_empty(_POINT_COLUMNS), name="complete_points"),
        "observed_lines": ColumnDataSource(_empty(_LINE_COLUMNS), name="observed_lines"),
        "observed_points": ColumnDataSource(_empty(_POINT_COLUMNS), name="observed_points"),
        "truth": ColumnDataSource(_empty(_LINE_COLUMNS), name="truth"),
    }
    fig = new_figure(name="visit-means", title="Visit means: complete cases (ANOVA) and all observed",
                     x_label=x_label, y_label=y_label)
    fig.multi_line("xs", "ys", source=sources["truth"], line_color=TRUTH_COLOUR, line_dash="dashed",
                   line_width=2, legend_field="label")
    fig.multi_line("xs", "ys", source=sources["observed_lines"], line_color="colour", line_dash="dotted",
                   line_width=2, legend_field="label")
    obs = fig.scatter("x", "y", source=sources["observed_points"], marker="square", size=7,
                      fill_color="white", line_color="colour")
    fig.multi_line("xs", "ys", source=sources["complete_lines"], line_color="colour", line_width=3,
                   legend_field="label")
    comp = fig.scatter("x", "y", source=sources["complete_points"], size=8, color="colour")
    fig.add_tools(HoverTool(renderers=[comp, obs], tooltips=[
        ("", "@label"), ("visit", "@visit"), ("mean", "@y{0.00}"), ("subjects", "@n")]))
    fig.legend.location = "top_right"
    fig.legend.background_fill_alpha = 0.7
    fig.legend.label_text_font_size = "11px"
    return fig, sources


def visit_means_data(
    data: pd.DataFrame,
    *,
    y: str,
    subject: str,
    visit: str,
    time: str | None = None,
    between: str | None = None,
    dropped=(),
    truth: Mapping | None = None,
) -> dict[str, dict]:
    """Columns of the visit-means figure.

    Parameters
    ----------
    data : DataFrame
        Long data (not modified).
    y, subject, visit, time, between : str
        Column roles; ``time`` places the visits on the x axis at their mean
        time (else numeric visits are used as is, text visits get 0, 1, ...).
    dropped : iterable
        Subjects the ANOVA drops (``AnovaResult.dropped_subjects``); the
        complete-case means use the others, as the ANOVA does.
    truth : mapping, optional
        True fixed effects under generic names (``"(Intercept)"``, ``"time"``,
        ``"arm"``, ``"time:arm"``); the true mean curve is drawn at the visits.

    Examples
    --------
    >>> df = pd.DataFrame({"subject": list("aabb"), "visit": [0, 1, 0, 1], "y": [1.0, 3.0, 2.0, 5.0]})
    >>> out = visit_means_data(df, y="y", subject="subject", visit="visit", dropped=["b"])
    >>> out["complete_points"]["y"], out["observed_points"]["y"]
    ([1.0, 3.0], [1.5, 4.0])
    """
    df = data.loc[data[y].notna()]
    levels = ordered_levels(df[visit])
    if time is not None:
        pos = df.groupby(visit, observed=True)[time].mean()
        x_of = {lvl: float(pos[lvl]) for lvl in levels}
    elif all(isinstance(v, (int, float, np.integer, np.floating)) for v in levels):
        x_of = {lvl: float(lvl) for lvl in levels}
    else:
        x_of = {lvl: float(i) for i, lvl in enumerate(levels)}
    groups = ordered_levels(df[between]) if between is not None else [None]
    colours = group_colours(groups)
    dropped = {str(s) for s in dropped}
    complete = df.loc[~df[subject].astype(str).isin(dropped)]

    def means(frame: pd.DataFrame, kind: str):
        lines, points = _empty(_LINE_COLUMNS), _empty(_POINT_COLUMNS)
        keys = [visit] if between is None else [between, visit]
        stats_ = frame.groupby(keys, observed=True)[y].agg(["mean", "count"])
        for g in groups:
            if g is None:
                part = stats_
            elif g in stats_.index.get_level_values(0):
                part = stats_.xs(g, level=0)
            else:
                continue  # no complete subject in this group
            vis = [v for v in levels if v in part.index]
            xs = [x_of[v] for v in vis]
            ys = [float(part.loc[v, "mean"]) for v in vis]
            label = kind if g is None else f"{kind}, {between} {g}"
            colour = colours[g] if kind.startswith("complete") else (GREY if g is None else colours[g])
            lines["xs"].append(np.asarray(xs))
            lines["ys"].append(np.asarray(ys))
            lines["colour"].append(colour)
            lines["label"].append(label)
            points["x"] += xs
            points["y"] += ys
            points["visit"] += [str(v) for v in vis]
            points["group"] += ["" if g is None else str(g)] * len(vis)
            points["n"] += [int(part.loc[v, "count"]) for v in vis]
            points["colour"] += [colour] * len(vis)
            points["label"] += [label] * len(vis)
        return lines, points

    complete_lines, complete_points = means(complete, "complete cases (ANOVA)")
    observed_lines, observed_points = means(df, "all observed")

    truth_lines = _empty(_LINE_COLUMNS)
    if truth and time is not None:
        xs = np.asarray([x_of[v] for v in levels])
        for i, g in enumerate(groups):
            b = i > 0  # every non-reference arm gets the true arm effects
            icpt = float(truth.get("(Intercept)", np.nan)) + b * float(truth.get("arm", 0.0))
            slope = float(truth.get("time", np.nan)) + b * float(truth.get("time:arm", 0.0))
            truth_lines["xs"].append(xs)
            truth_lines["ys"].append(icpt + slope * xs)
            truth_lines["colour"].append(TRUTH_COLOUR)
            truth_lines["label"].append("truth")
    return {"complete_lines": complete_lines, "complete_points": complete_points,
            "observed_lines": observed_lines, "observed_points": observed_points, "truth": truth_lines}
