"""The spaghetti plot: one line per subject over real time.

Missing visits stay visible: a subject's line is broken where a planned visit
is missing (bokeh leaves a gap at NaN), a dropout's line simply ends, and the
number of missing measurements is written under each visit.  The subjects
that the repeated-measures ANOVA drops (any visit missing: listwise deletion)
are drawn in grey beneath the others.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
from bokeh.models import ColumnDataSource, HoverTool

from lmm_teach.plots.theme import GREY, group_colours, legend_above, new_figure, ordered_levels

__all__ = ["make_spaghetti_figure", "spaghetti_data", "DROPPED_LABEL"]

DROPPED_LABEL = "dropped by the ANOVA"

_LINE_COLUMNS = ("subject", "xs", "ys", "colour", "alpha", "group")
_POINT_COLUMNS = ("x", "y", "subject", "visit", "time", "colour", "alpha", "group")
_MISSING_COLUMNS = ("x", "y", "visit", "n_missing", "text")


def _empty(columns) -> dict:
    return {c: [] for c in columns}


def make_spaghetti_figure(*, x_label: str = "time", y_label: str = "outcome"):
    """Build the (empty) spaghetti figure once.

    Returns
    -------
    (figure, sources)
        ``sources`` maps ``"lines"``, ``"points"`` and ``"missing"`` to the
        ColumnDataSources that :func:`spaghetti_data` fills.

    Examples
    --------
    >>> fig, sources = make_spaghetti_figure()
    >>> sorted(sources)
    ['lines', 'missing', 'points']
    """
    sources = {
        "lines": ColumnDataSource(_empty(_LINE_COLUMNS), name="lines"),
        "points": ColumnDataSource(_empty(_POINT_COLUMNS), name="points"),
        "missing": ColumnDataSource(_empty(_MISSING_COLUMNS), name="missing"),
    }
    fig = new_figure(name="spaghetti", title="Each line is one subject", x_label=x_label, y_label=y_label)
    legend_above(fig)
    fig.multi_line(
        "xs", "ys", source=sources["lines"], line_color="colour", line_alpha="alpha",
        line_width=1.5, legend_field="group",
    )
    points = fig.scatter(
        "x", "y", source=sources["points"], color="colour", alpha="alpha", size=5,
    )
    fig.text(
        "x", "y", text="text", source=sources["missing"], text_align="center",
        text_baseline="top", text_font_size="10px", text_color=GREY,
    )
    fig.x_range.range_padding = 0.08  # room for the "n missing" text at the last visit
    fig.add_tools(HoverTool(
        renderers=[points],
        tooltips=[("subject", "@subject"), ("visit", "@visit"), ("time", "@time"), ("y", "@y{0.00}")],
    ))
    return fig, sources


def spaghetti_data(
    data: pd.DataFrame,
    *,
    y: str,
    subject: str,
    time: str,
    visit: str | None = None,
    between: str | None = None,
    dropped: Iterable = (),
) -> dict[str, dict]:
    """The columns of the spaghetti plot's sources, computed from long data.

    Parameters
    ----------
    data : DataFrame
        Long data, one row per measurement (missing visits absent or with a
        missing outcome).  Not modified.
    y, subject, time : str
        Column names of the outcome, the subject id and the numeric time.
    visit : str, optional
        The visit label; with it, a line is broken at each missing visit and the
        missing measurements are counted per visit.
    between : str, optional
        A between-subject factor (e.g. ``"arm"``): one colour per level.
    dropped : iterable
        Ids of the subjects that the RM-ANOVA drops; drawn in grey.

    Returns
    -------
    dict
        ``{"lines": ..., "points": ..., "missing": ...}``, each a dict of
        equal-length columns ready for ``source.data = ...``.

    Examples
    --------
    >>> df = pd.DataFrame({"subject": ["a", "a", "a", "b", "b"], "visit": [0, 1, 2, 0, 2],
    ...                    "time": [0., 1., 2., 0., 2.], "y": [1., 2., 3., 1., 2.]})
    >>> out = spaghetti_data(df, y="y", subject="subject", time="time", visit="visit", dropped=["b"])
    >>> lines = out["lines"]
    >>> lines["ys"][lines["subject"].index("b")].tolist()   # b misses visit 1: a gap
    [1.0, nan, 2.0]
    >>> out["missing"]["text"]
    ['1 missing']
    """
    cols = [c for c in dict.fromkeys([subject, time, y, visit, between]) if c is not None]
    df = data.loc[data[y].notna(), cols]
    dropped = {str(s) for s in dropped}
    if len(df) == 0:
        return {"lines": _empty(_LINE_COLUMNS), "points": _empty(_POINT_COLUMNS),
                "missing": _empty(_MISSING_COLUMNS)}

    subjects = ordered_levels(df[subject])
    is_dropped = {s: str(s) in dropped for s in subjects}
    # Dropped subjects first, so that the analysed ones are drawn on top.
    subjects = sorted(subjects, key=lambda s: not is_dropped[s])
    code = pd.Categorical(df[subject], categories=subjects).codes

    if visit is not None:
        # Planned visits: every visit in the data, also those whose outcome is missing.
        levels = ordered_levels(data[visit])
        pos = pd.Categorical(df[visit], categories=levels).codes.astype(float)
    else:
        levels = []
        pos = np.zeros(len(df))
    t = df[time].to_numpy(dtype=float)
    order = np.lexsort((t, pos, code))
    code, pos, t = code[order], pos[order], t[order]
    yv = df[y].to_numpy(dtype=float)[order]

    # Group styling: colour by between level; grey for the subjects the ANOVA drops.
    if between is not None:
        first = df.groupby(subject, sort=False, observed=True)[between].first()
        colours = group_colours(ordered_levels(df[between]))
        group_of = {s: f"{between} {first[s]}" for s in subjects}
        colour_of = {s: colours[first[s]] for s in subjects}
    else:
        group_of = {s: "subjects" for s in subjects}
        colour_of = {s: group_colours([0])[0] for s in subjects}
    for s in subjects:
        if is_dropped[s]:
            group_of[s], colour_of[s] = DROPPED_LABEL, GREY

    # Points (one per measurement) carry the hover text.
    subj_sorted = np.asarray(subjects, dtype=object)[code]
    visit_text = (df[visit].to_numpy()[order].astype(str) if visit is not None
                  else np.full(len(t), "", dtype=object))
    points = {
        "x": t,
        "y": yv,
        "subject": subj_sorted.astype(str),
        "visit": visit_text,
        "time": np.char.mod("%.2f", t),
        "colour": np.asarray([colour_of[s] for s in subj_sorted], dtype=object),
        "alpha": np.where([is_dropped[s] for s in subj_sorted], 0.45, 0.85),
        "group": np.asarray([group_of[s] for s in subj_sorted], dtype=object),
    }

    # Lines: insert a NaN wherever a subject skips a planned visit.
    same = np.r_[False, code[1:] == code[:-1]]
    gap = same & (np.r_[0.0, np.diff(pos)] > 1)
    idx = np.flatnonzero(gap)
    xs_all = np.insert(t, idx, np.nan)
    ys_all = np.insert(yv, idx, np.nan)
    code_all = np.insert(code, idx, code[idx])
    bounds = np.flatnonzero(np.diff(code_all)) + 1
    present = code_all[np.r_[0, bounds]]
    lines = {
        "subject": [str(subjects[c]) for c in present],
        "xs": np.split(xs_all, bounds),
        "ys": np.split(ys_all, bounds),
        "colour": [colour_of[subjects[c]] for c in present],
        "alpha": [0.45 if is_dropped[subjects[c]] else 0.8 for c in present],
        "group": [group_of[subjects[c]] for c in present],
    }

    missing = _empty(_MISSING_COLUMNS)
    if visit is not None:
        n_subjects = len(subjects)
        present_n = df.groupby(visit, sort=False, observed=True)[subject].nunique()
        x_at = data.groupby(visit, sort=False, observed=True)[time].median()
        lo, hi = float(np.nanmin(yv)), float(np.nanmax(yv))
        y_text = lo - 0.04 * (hi - lo if hi > lo else 1.0)
        for lvl in levels:
            m = n_subjects - int(present_n.get(lvl, 0))
            if m > 0:
                missing["x"].append(float(x_at[lvl]))
                missing["y"].append(y_text)
                missing["visit"].append(str(lvl))
                missing["n_missing"].append(m)
                missing["text"].append(f"{m} missing")
    return {"lines": lines, "points": points, "missing": missing}
