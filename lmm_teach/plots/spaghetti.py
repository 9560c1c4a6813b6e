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

from lmm_teach.plots.theme import GREY, empty_columns, group_colours, legend_above, new_figure

__all__ = ["make_spaghetti_figure", "spaghetti_data", "DROPPED_LABEL"]

DROPPED_LABEL = "dropped by the ANOVA"

_LINE_COLUMNS = ("subject", "xs", "ys", "colour", "alpha", "group")
_POINT_COLUMNS = ("x", "y", "subject", "visit", "colour")
_MISSING_COLUMNS = ("x", "y", "visit", "n_missing", "text")



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
        "lines": ColumnDataSource(empty_columns(_LINE_COLUMNS), name="lines"),
        "points": ColumnDataSource(empty_columns(_POINT_COLUMNS), name="points"),
        "missing": ColumnDataSource(empty_columns(_MISSING_COLUMNS), name="missing"),
    }
    fig = new_figure(name="spaghetti", title="Each line is one patient", x_label=x_label, y_label=y_label)
    legend_above(fig)
    fig.multi_line(
        "xs", "ys", source=sources["lines"], line_color="colour", line_alpha="alpha",
        line_width=1.5, legend_field="group",
    )
    points = fig.scatter("x", "y", source=sources["points"], color="colour", alpha=0.8, size=5)
    fig.text(
        "x", "y", text="text", source=sources["missing"], text_align="center",
        # The text stands on its anchor, which the y range includes: hanging below it ("top"),
        # it fell under the frame's edge and was cut.
        text_baseline="bottom", text_font_size="10px", text_color=GREY,
    )
    fig.x_range.range_padding = 0.12  # room for the "n missing" text at the last visit
    fig.add_tools(HoverTool(
        renderers=[points],
        tooltips=[("subject", "@subject"), ("visit", "@visit"), ("time", "@x{0.00}"), ("y", "@y{0.00}")],
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
    >>> lines["ys"][lines["subject"].index("b")]   # b misses visit 1: a gap
    [1.0, nan, 2.0]
    >>> out["missing"]["text"]
    ['1 missing']
    """
    # numpy throughout: this runs on every slider release.
    y_all = pd.to_numeric(data[y], errors="coerce").to_numpy(dtype=float)
    keep = ~np.isnan(y_all)
    if not keep.any():
        return {"lines": empty_columns(_LINE_COLUMNS), "points": empty_columns(_POINT_COLUMNS),
                "missing": empty_columns(_MISSING_COLUMNS)}
    t_all = data[time].to_numpy(dtype=float)
    yv, t = y_all[keep], t_all[keep]

    # Subjects in natural order, then the dropped ones first (drawn beneath).
    s_code, subjects = _factorize(data[subject].to_numpy()[keep])
    dropped = {str(s) for s in dropped}
    is_dropped = np.array([str(s) in dropped for s in subjects], dtype=bool)
    rank = np.empty(len(subjects), dtype=np.int64)
    rank[np.argsort(~is_dropped, kind="stable")] = np.arange(len(subjects))
    subjects = [subjects[i] for i in np.argsort(rank)]
    is_dropped = is_dropped[np.argsort(rank)]
    code = rank[s_code]

    # Planned visits: every visit in the data (also those with a missing outcome),
    # ordered by their mean time, so that text labels need no particular spelling.
    if visit is not None:
        v_code_all, levels = _factorize(data[visit].to_numpy(), sort=False)
        n_levels = len(levels)
        ok = ~np.isnan(t_all)
        counts = np.bincount(v_code_all[ok], minlength=n_levels)
        mean_t = np.bincount(v_code_all[ok], weights=t_all[ok], minlength=n_levels) / np.maximum(counts, 1)
        by_time = np.argsort(mean_t, kind="stable")
        v_rank = np.empty(n_levels, dtype=np.int64)
        v_rank[by_time] = np.arange(n_levels)
        levels, mean_t = [levels[i] for i in by_time], mean_t[by_time]
        pos = v_rank[v_code_all[keep]].astype(float)
    else:
        levels, mean_t = [], np.array([])
        pos = np.zeros(len(t))
    order = np.lexsort((t, pos, code))
    code, pos, t, yv = code[order], pos[order], t[order], yv[order]

    # Group styling: colour by between level; grey for the subjects the ANOVA drops.
    if between is not None:
        b_code, b_levels = _factorize(data[between].to_numpy()[keep])
        first = np.zeros(len(subjects), dtype=np.int64)
        first[code[::-1]] = b_code[order][::-1]  # a subject's first row wins
        palette = group_colours(b_levels)
        group_of = [f"{between} {b_levels[g]}" for g in first]
        colour_of = [palette[b_levels[g]] for g in first]
    else:
        group_of = ["patients"] * len(subjects)
        colour_of = [group_colours([0])[0]] * len(subjects)
    for i in np.flatnonzero(is_dropped):
        group_of[i], colour_of[i] = DROPPED_LABEL, GREY

    # Points (one per measurement) carry the hover text.
    subject_text = [str(s) for s in subjects]
    code_list = code.tolist()
    visit_text = ([str(levels[int(p)]) for p in pos.tolist()] if visit is not None else [""] * len(t))
    points = {
        "x": t,
        "y": yv,
        "subject": [subject_text[c] for c in code_list],
        "visit": visit_text,
        "colour": [colour_of[c] for c in code_list],
    }

    # Lines: insert a NaN wherever a subject skips a planned visit.
    same = np.r_[False, code[1:] == code[:-1]]
    gap = same & (np.r_[0.0, np.diff(pos)] > 1)
    idx = np.flatnonzero(gap)
    xs_all = np.insert(t, idx, np.nan)
    ys_all = np.insert(yv, idx, np.nan)
    code_all = np.insert(code, idx, code[idx])
    bounds = np.flatnonzero(np.diff(code_all)) + 1
    present = code_all[np.r_[0, bounds]].tolist()
    lines = {
        "subject": [subject_text[c] for c in present],
        # Plain lists: bokeh encodes each small numpy array as its own buffer,
        # which costs more than the numbers (~3x for 40 subjects).
        "xs": [a.tolist() for a in np.split(xs_all, bounds)],
        "ys": [a.tolist() for a in np.split(ys_all, bounds)],
        "colour": [colour_of[c] for c in present],
        "alpha": [0.45 if is_dropped[c] else 0.8 for c in present],
        "group": [group_of[c] for c in present],
    }

    missing = empty_columns(_MISSING_COLUMNS)
    if visit is not None:
        n_subjects = len(subjects)
        pairs = np.unique(code * len(levels) + pos.astype(np.int64))
        present_n = np.bincount(pairs % len(levels), minlength=len(levels))
        lo, hi = float(np.min(yv)), float(np.max(yv))
        y_text = lo - 0.1 * (hi - lo if hi > lo else 1.0)
        for k, lvl in enumerate(levels):
            m = n_subjects - int(present_n[k])
            if m > 0:
                missing["x"].append(float(mean_t[k]))
                missing["y"].append(y_text)
                missing["visit"].append(str(lvl))
                missing["n_missing"].append(m)
                missing["text"].append(f"{m} missing")
    return {"lines": lines, "points": points, "missing": missing}


def _factorize(values: np.ndarray, *, sort: bool = True) -> tuple[np.ndarray, list]:
    """Integer codes and levels; levels sorted when they can be (numbers, text), else as they come."""
    if sort:
        try:
            codes, uniques = pd.factorize(values, sort=True)
            return codes, list(uniques)
        except TypeError:  # mixed types
            pass
    codes, uniques = pd.factorize(values, sort=False)
    return codes, list(uniques)
