"""The four diagnostic plots of an LMM: residuals vs fitted, two normal QQ plots, residuals by visit.

Built once by :func:`make_diagnostics_figures`; :func:`diagnostics_data`
turns a :class:`lmm_teach.diagnostics.Diagnostics` into the sources' columns.
Residuals are standardised (units of the residual SD), so the reference lines
(0, +-2) and the QQ plots' identity line are the same for every data set.
"""

from __future__ import annotations

import numpy as np
from bokeh.models import ColumnDataSource, HoverTool, Span

from lmm_teach.plots.theme import OKABE_ITO, TRUTH_COLOUR, empty_columns, new_figure

__all__ = ["make_diagnostics_figures", "diagnostics_data", "DIAGNOSTIC_FIGURES"]

#: Figure key -> title.
DIAGNOSTIC_FIGURES = {
    "fitted": "Residuals vs fitted values",
    "qq_residuals": "Normal QQ plot of the residuals",
    "qq_blups": "Normal QQ plot of the BLUPs",
    "by_visit": "Residuals by visit",
}

_POINT_COLUMNS = ("x", "y", "subject", "label")
_LINE_COLUMNS = ("x", "y")
_QQB_COLUMNS = ("x", "y", "subject", "term", "colour")
_VISIT_COLUMNS = ("x", "mean", "lo", "hi", "visit", "n")
_TERM_COLOURS = (OKABE_ITO["blue"], OKABE_ITO["vermillion"])
_W, _H = 300, 260


def make_diagnostics_figures(*, x_label: str = "fitted value", time_label: str = "time"):
    """Build the four (empty) diagnostic figures.

    Returns
    -------
    (figures, sources)
        ``figures``: key (:data:`DIAGNOSTIC_FIGURES`) -> figure; ``sources``:
        key -> dict of ColumnDataSources (``"points"`` and, per figure,
        ``"line"``, ``"means"``).

    Examples
    --------
    >>> figs, srcs = make_diagnostics_figures()
    >>> sorted(figs) == sorted(DIAGNOSTIC_FIGURES)
    True
    """
    figs, srcs = {}, {}

    def fig(key, xl, yl):
        f = new_figure(name=f"diag-{key.replace('_', '-')}", title=DIAGNOSTIC_FIGURES[key], x_label=xl,
                       y_label=yl, width=_W, height=_H)
        figs[key] = f
        return f

    # residuals vs fitted
    f = fig("fitted", x_label, "standardised residual")
    s = {"points": ColumnDataSource(empty_columns(_POINT_COLUMNS), name="points"),
         "smooth": ColumnDataSource(empty_columns(_LINE_COLUMNS), name="smooth")}
    for h, dash in ((0.0, "solid"), (2.0, "dashed"), (-2.0, "dashed")):
        f.add_layout(Span(location=h, dimension="width", line_color="#888888", line_dash=dash, line_width=1))
    r = f.scatter("x", "y", source=s["points"], size=4, alpha=0.6, color=OKABE_ITO["blue"])
    f.line("x", "y", source=s["smooth"], line_color=OKABE_ITO["vermillion"], line_width=2)
    f.add_tools(HoverTool(renderers=[r], tooltips=[("subject", "@subject"), ("visit", "@label"),
                                                   ("fitted", "@x{0.00}"), ("residual", "@y{0.00}")]))
    srcs["fitted"] = s
    # QQ of residuals
    f = fig("qq_residuals", "normal quantile", "standardised residual")
    s = {"points": ColumnDataSource(empty_columns(_POINT_COLUMNS), name="points"),
         "line": ColumnDataSource(empty_columns(_LINE_COLUMNS), name="line")}
    f.line("x", "y", source=s["line"], line_color=TRUTH_COLOUR, line_dash="dashed")
    r = f.scatter("x", "y", source=s["points"], size=4, alpha=0.6, color=OKABE_ITO["blue"])
    f.add_tools(HoverTool(renderers=[r], tooltips=[("subject", "@subject"), ("residual", "@y{0.00}")]))
    srcs["qq_residuals"] = s
    # QQ of BLUPs
    f = fig("qq_blups", "normal quantile", "BLUP / its estimated SD")
    s = {"points": ColumnDataSource(empty_columns(_QQB_COLUMNS), name="points"),
         "line": ColumnDataSource(empty_columns(_LINE_COLUMNS), name="line")}
    f.line("x", "y", source=s["line"], line_color=TRUTH_COLOUR, line_dash="dashed")
    r = f.scatter("x", "y", source=s["points"], size=6, alpha=0.8, color="colour", legend_field="term")
    f.legend.location = "top_left"
    f.legend.label_text_font_size = "10px"
    f.add_tools(HoverTool(renderers=[r], tooltips=[("subject", "@subject"), ("effect", "@term"),
                                                   ("scaled BLUP", "@y{0.00}")]))
    srcs["qq_blups"] = s
    # by visit
    f = fig("by_visit", time_label, "standardised residual")
    s = {"points": ColumnDataSource(empty_columns(_POINT_COLUMNS), name="points"),
         "means": ColumnDataSource(empty_columns(_VISIT_COLUMNS), name="means")}
    f.add_layout(Span(location=0.0, dimension="width", line_color="#888888", line_width=1))
    f.scatter("x", "y", source=s["points"], size=3, alpha=0.35, color=OKABE_ITO["blue"])
    f.segment("x", "lo", "x", "hi", source=s["means"], line_color=OKABE_ITO["vermillion"], line_width=3)
    r = f.scatter("x", "mean", source=s["means"], size=8, marker="diamond", color=OKABE_ITO["vermillion"])
    f.add_tools(HoverTool(renderers=[r], tooltips=[("visit", "@visit"), ("n", "@n"), ("mean residual", "@mean{0.00}")]))
    srcs["by_visit"] = s
    return figs, srcs


def _smooth(x: np.ndarray, y: np.ndarray, bins: int = 8) -> tuple[list, list]:
    """A running mean over bins of equal count: the trend a learner's eye looks for."""
    if len(x) < 2 * bins:
        return [], []
    o = np.argsort(x, kind="stable")
    parts = np.array_split(o, bins)
    return [float(np.mean(x[p])) for p in parts], [float(np.mean(y[p])) for p in parts]


def diagnostics_data(diag) -> dict[str, dict]:
    """The columns of the diagnostic figures' sources.

    Parameters
    ----------
    diag : lmm_teach.diagnostics.Diagnostics

    Returns
    -------
    dict
        Figure key -> {source name -> columns}; feed each to
        :func:`lmm_teach.plots.update_sources` with ``sources[key]``.

    Examples
    --------
    >>> import lmm_teach
    >>> from lmm_teach.diagnostics import diagnose
    >>> m = lmm_teach.fit_lmm(lmm_teach.load_bp(), y="bp", subject="patient", time="time_num")
    >>> out = diagnostics_data(diagnose(m))
    >>> len(out["fitted"]["points"]["x"])
    30
    """
    r = diag.residuals
    fitted = r["fitted"].to_numpy(float)
    z = r["standardized"].to_numpy(float)
    subj = r["subject"].astype(str).tolist()
    visit = r["visit"].astype(str).tolist()
    sx, sy = _smooth(fitted, z)
    out = {"fitted": {"points": {"x": fitted, "y": z, "subject": subj, "label": visit},
                      "smooth": {"x": sx, "y": sy}}}
    q = diag.qq_residuals
    lim = _identity(q["theoretical"].to_numpy(float), q["sample"].to_numpy(float))
    out["qq_residuals"] = {"points": {"x": q["theoretical"].to_numpy(float), "y": q["sample"].to_numpy(float),
                                      "subject": q["subject"].astype(str).tolist(), "label": [""] * len(q)},
                           "line": {"x": lim, "y": lim}}
    cols = empty_columns(_QQB_COLUMNS)
    allv = [0.0]
    for i, (term, df) in enumerate(diag.qq_blups.items()):
        name = "intercept" if term == "(Intercept)" else f"slope ({term})"
        cols["x"] += df["theoretical"].astype(float).tolist()
        cols["y"] += df["sample"].astype(float).tolist()
        cols["subject"] += df["subject"].astype(str).tolist()
        cols["term"] += [name] * len(df)
        cols["colour"] += [_TERM_COLOURS[i % 2]] * len(df)
        allv += df["theoretical"].astype(float).tolist() + df["sample"].astype(float).tolist()
    lim = _identity(np.asarray(allv), np.asarray(allv))
    out["qq_blups"] = {"points": cols, "line": {"x": lim, "y": lim}}
    b = diag.by_visit
    se = b["se"].fillna(0.0).to_numpy(float)
    out["by_visit"] = {"points": {"x": r["time"].to_numpy(float), "y": z, "subject": subj, "label": visit},
                       "means": {"x": b["time"].to_numpy(float), "mean": b["mean"].to_numpy(float),
                                 "lo": b["mean"].to_numpy(float) - 2 * se, "hi": b["mean"].to_numpy(float) + 2 * se,
                                 "visit": b["visit"].astype(str).tolist(), "n": b["n"].to_numpy()}}
    return out


def _identity(x: np.ndarray, y: np.ndarray) -> list:
    both = np.concatenate([x[np.isfinite(x)], y[np.isfinite(y)], [0.0]])
    lo, hi = float(both.min()), float(both.max())
    if hi - lo < 1e-9:
        lo, hi = lo - 1.0, hi + 1.0
    return [lo, hi]
