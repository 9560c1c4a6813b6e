"""The "drag a measurement" figure: the data as draggable points under each subject's line.

One figure, three sets of subject lines on the same axes (switch with
:func:`set_pooling`): no pooling (each subject alone), complete pooling (one
regression for everyone) and partial pooling (the LMM).  The points carry a
``PointDrawTool``: a learner drags a measurement up or down (or, when
adding is on, taps to add one) and BokehJS sends the edited column data to
the kernel on release, where the panel refits.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from bokeh.models import ColumnDataSource, HoverTool, PointDrawTool

from lmm_teach.plots.theme import GREY, OKABE_ITO, empty_columns, new_figure

__all__ = ["make_refit_figure", "refit_data", "set_pooling", "points_data", "add_draggable_points", "POOLING",
           "POINT_COLUMNS"]

#: Pooling key -> (label, colour).
POOLING = {
    "none": ("no pooling: each subject alone", OKABE_ITO["orange"]),
    "complete": ("complete pooling: one line for all", OKABE_ITO["black"]),
    "partial": ("partial pooling: the LMM", OKABE_ITO["blue"]),
}
POINT_COLUMNS = ("x", "y", "row", "subject", "colour", "size")
_LINE_COLUMNS = ("xs", "ys", "subject", "alpha", "width")
HIGHLIGHT = OKABE_ITO["vermillion"]


def make_refit_figure(*, x_label: str = "time", y_label: str = "outcome"):
    """Build the (empty) figure once.

    Returns
    -------
    (figure, sources, tool)
        ``sources``: ``"points"`` (draggable) and one line source per pooling
        key; ``tool``: the ``PointDrawTool`` (``tool.add`` switches adding).

    Examples
    --------
    >>> fig, sources, tool = make_refit_figure()
    >>> sorted(sources), tool.add
    (['complete', 'none', 'partial', 'points'], False)
    """
    sources = {}
    fig = new_figure(name="refit", title="Drag a measurement: the model refits when you let go",
                     x_label=x_label, y_label=y_label)
    for key, (_label, colour) in POOLING.items():
        sources[key] = ColumnDataSource(empty_columns(_LINE_COLUMNS), name=key)
        fig.multi_line("xs", "ys", source=sources[key], line_color=colour, line_alpha="alpha",
                                        line_width="width", name=f"lines-{key}", visible=key == "partial")
    sources["points"], tool = add_draggable_points(fig)
    return fig, sources, tool


def add_draggable_points(fig, *, active: bool = True):
    """Add the measurements as points a learner can drag (a ``PointDrawTool``) to ``fig``.

    Returns ``(source, tool)``: the points' source (columns
    :data:`POINT_COLUMNS`, filled by :func:`points_data`) and the tool
    (``tool.add`` switches "tap adds a point").  With ``active`` the tool is
    the figure's drag and tap tool from the start; otherwise it waits in the
    toolbar until a panel activates it (``fig.toolbar.active_drag = tool``).
    The renderer is named ``"points"`` (browser tests find it by that name).

    Examples
    --------
    >>> from lmm_teach.plots.theme import new_figure
    >>> fig = new_figure(name="demo", title="", x_label="t", y_label="y")
    >>> source, tool = add_draggable_points(fig)
    >>> sorted(source.data) == sorted(POINT_COLUMNS), tool.add, fig.toolbar.active_drag is tool
    (True, False, True)
    """
    source = ColumnDataSource(empty_columns(POINT_COLUMNS), name="points")
    pts = fig.scatter("x", "y", source=source, size="size", fill_color="colour", line_color="white",
                      line_width=0.5, alpha=0.9, name="points")
    # empty_value: what the browser puts in the other columns of a tapped, new point.
    tool = PointDrawTool(renderers=[pts], add=False, drag=True, empty_value="")
    fig.add_tools(tool)
    if active:
        fig.toolbar.active_drag = tool
        fig.toolbar.active_tap = tool
    fig.add_tools(HoverTool(renderers=[pts], tooltips=[("subject", "@subject"), ("time", "@x{0.00}"),
                                                       ("y", "@y{0.00}")]))
    return source, tool


def points_data(data: pd.DataFrame, *, y: str, subject: str, time: str, highlight=None,
                colour: str = HIGHLIGHT) -> dict[str, list]:
    """The draggable points' columns: one point per measurement with an outcome.

    ``row`` is the measurement's position in ``data`` (what an edit refers
    to); the ``highlight`` subject's points are drawn larger, in ``colour``.

    Examples
    --------
    >>> df = pd.DataFrame({"s": ["a", "a", "b"], "t": [0.0, 1.0, 0.0], "y": [1.0, float("nan"), 3.0]})
    >>> out = points_data(df, y="y", subject="s", time="t", highlight="b")
    >>> out["row"].tolist(), out["colour"]
    ([0, 2], ['#9A9A9A', '#D55E00'])
    """
    yv = pd.to_numeric(data[y], errors="coerce").to_numpy(float)
    rows = np.flatnonzero(np.isfinite(yv))
    subj = data[subject].to_numpy()[rows].astype(str)
    is_hl = subj == (None if highlight is None else str(highlight))
    return {"x": data[time].to_numpy(float)[rows], "y": yv[rows], "row": rows, "subject": subj.tolist(),
            "colour": np.where(is_hl, colour, GREY).tolist(), "size": np.where(is_hl, 9, 7).tolist()}


def set_pooling(fig, key: str) -> None:
    """Show the lines of one pooling (``"none"``, ``"complete"``, ``"partial"``) or ``"all"``."""
    for k in POOLING:
        want = key in (k, "all")
        for r in fig.select(name=f"lines-{k}"):
            if r.visible != want:
                r.visible = want


def refit_data(work: pd.DataFrame, lines: pd.DataFrame, *, y: str, subject: str, time: str,
               highlight=None) -> dict[str, dict]:
    """The figure's columns from the (edited) data and :func:`lmm_teach.pooling.pooling_lines`.

    Parameters
    ----------
    work : DataFrame
        The data being edited, one row per measurement (a point's ``row`` is
        its position here).
    lines : DataFrame
        :func:`lmm_teach.pooling.pooling_lines` of the LMM fitted to ``work``.
    highlight : optional
        A subject drawn in the highlight colour (the one last edited).

    Examples
    --------
    >>> import lmm_teach
    >>> from lmm_teach.pooling import pooling_lines
    >>> bp = lmm_teach.load_bp()
    >>> m = lmm_teach.fit_lmm(bp, y="bp", subject="patient", time="time_num")
    >>> out = refit_data(bp, pooling_lines(bp, m), y="bp", subject="patient", time="time_num")
    >>> len(out["points"]["x"]), len(out["partial"]["xs"])
    (30, 10)
    """
    out = {"points": points_data(work, y=y, subject=subject, time=time, highlight=highlight)}
    hl = None if highlight is None else str(highlight)
    names = lines.index.astype(str).to_numpy()
    t0 = lines["t_min"].to_numpy(float)
    t1 = lines["t_max"].to_numpy(float)
    for key in POOLING:
        a = lines[f"{key}_intercept"].to_numpy(float)
        b = lines[f"{key}_slope"].to_numpy(float)
        good = np.isfinite(a) & np.isfinite(b) & np.isfinite(t0)
        cols = empty_columns(_LINE_COLUMNS)
        for i in np.flatnonzero(good):
            cols["xs"].append([float(t0[i]), float(t1[i])])
            cols["ys"].append([float(a[i] + b[i] * t0[i]), float(a[i] + b[i] * t1[i])])
            cols["subject"].append(str(names[i]))
            is_h = names[i] == hl
            cols["alpha"].append(0.95 if is_h else 0.45)
            cols["width"].append(3.5 if is_h else 1.5)
        out[key] = cols
    return out
