"""LMM beside ANOVA: each method's estimate of each hypothesis, with the truth.

The LMM with numeric time estimates a slope (or an arm difference) with a
standard error; the ANOVA has no slope, and its "estimate" is the slope of
the complete cases' visit means (see :func:`lmm_teach.compare.compare`).
Methods are identified by their key (column ``analysis``); their short labels
and colours come from the registry (:mod:`lmm_teach.methods`).  Rows without an estimate are left out of the figure.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from bokeh.models import ColumnDataSource, FactorRange, HoverTool, Span

from lmm_teach.methods import METHODS
from lmm_teach.plots.theme import GREY, TRUTH_COLOUR, new_figure

__all__ = ["make_compare_figure", "compare_data", "short_method"]

_COLUMNS = ("factor", "hypothesis", "method", "estimate", "ci_low", "ci_high", "truth", "p", "colour")


def short_method(method: str) -> str:
    """The short label of a method, given its key (``"anova"`` -> ``"RM-ANOVA"``) or its label."""
    m = str(method)
    if m in METHODS:
        return METHODS[m].short
    return next((x.short for x in METHODS.values() if x.label == m), m)


def make_compare_figure():
    """The figure: estimates (95 % CI where there is an SE) per hypothesis and method, truth as x.

    Returns
    -------
    (figure, sources)
        ``sources``: ``"estimates"``; set the y factors with
        :func:`lmm_teach.plots.set_factors` and ``compare_data(...)["estimates"]["factor"]``.
    """
    sources = {"estimates": ColumnDataSource({c: [] for c in _COLUMNS}, name="estimates")}
    fig = new_figure(name="compare", title="Estimates by method (x: truth)", x_label="estimate", y_label="",
                     y_range=FactorRange(), height=260)
    fig.segment("ci_low", "factor", "ci_high", "factor", source=sources["estimates"], line_color="colour",
                line_width=3)
    est = fig.scatter("estimate", "factor", source=sources["estimates"], size=10, color="colour")
    fig.scatter("truth", "factor", source=sources["estimates"], marker="x", size=12, line_width=2,
                line_color=TRUTH_COLOUR)
    fig.add_layout(Span(location=0, dimension="height", line_color="#777777", line_dash="dotted"))
    fig.add_tools(HoverTool(renderers=[est], tooltips=[
        ("", "@hypothesis: @method"), ("estimate", "@estimate{0.000}"), ("truth", "@truth{0.000}"),
        ("p", "@p{0.0000}")]))
    return fig, sources


def compare_data(comparison: pd.DataFrame, *, level: float = 0.95) -> dict[str, dict]:
    """Columns of the comparison figure from :func:`lmm_teach.compare.compare`'s table.

    The interval is ``estimate +/- z * se`` (a Wald interval, for the picture;
    the LMM table gives the Satterthwaite one).

    Examples
    --------
    >>> cmp = pd.DataFrame({"analysis": ["lmm", "anova"], "hypothesis": ["time", "time"],
    ...                     "estimate": [-1.0, -0.6], "se": [0.1, np.nan], "p": [0.001, 0.01],
    ...                     "truth": [-1.0, -1.0]})
    >>> compare_data(cmp)["estimates"]["factor"]
    [('time', 'RM-ANOVA'), ('time', 'LMM')]
    """
    from scipy import stats

    z = float(stats.norm.ppf(0.5 + level / 2))
    rows = comparison.loc[np.isfinite(comparison["estimate"].to_numpy(float))]
    out = {c: [] for c in _COLUMNS}
    for _, r in rows.iterrows():
        method = METHODS.get(str(r["analysis"]))
        m = method.short if method is not None else str(r["analysis"])
        se = float(r["se"]) if "se" in r and np.isfinite(r["se"]) else np.nan
        est = float(r["estimate"])
        out["factor"].append((str(r["hypothesis"]), m))
        out["hypothesis"].append(str(r["hypothesis"]))
        out["method"].append(m)
        out["estimate"].append(est)
        out["ci_low"].append(est - z * se)
        out["ci_high"].append(est + z * se)
        out["truth"].append(float(r["truth"]) if "truth" in r else np.nan)
        out["p"].append(float(r["p"]) if "p" in r else np.nan)
        out["colour"].append(method.colour if method is not None else GREY)  # not in the registry
    # Bokeh draws the first factor at the bottom: reverse, so the table order reads top-down.
    return {"estimates": {k: v[::-1] for k, v in out.items()}}
