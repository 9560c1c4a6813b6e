"""Bar charts of a Monte Carlo study: rejection rate, bias and coverage per method.

Each chart has one horizontal bar per (hypothesis, method), grouped by
hypothesis, with the Monte Carlo error drawn as a whisker (``+/- z * MCSE``,
Morris, White & Crowther 2019, Table 6) and a dashed reference where the
answer should lie:

* rejection rate: ``alpha`` for a hypothesis whose true effect is 0 (the
  rate is then the type-I error rate); no reference where the effect is real
  (the rate is then the power, and higher is better);
* bias: 0 (a dotted line across the whole chart);
* coverage: ``1 - alpha`` (the nominal level of the CIs).

The hypothesis label says which kind of rate a group shows ("time: power",
"arm x time: type-I error"), so the chart reads without the table.

Bars start at 0 (an honest bar); the proportions share a fixed 0-1 axis so
that two studies can be compared by eye.  The reference lines span their
group only, using bokeh's categorical offsets (``(group, -k/2)`` to
``(group, +k/2)`` for a group of ``k`` bars).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from bokeh.models import ColumnDataSource, FactorRange, HoverTool, Range1d, Span

from lmm_teach.methods import METHODS
from lmm_teach.plots.theme import GREY, TRUTH_COLOUR, empty_columns, legend_above, new_figure

__all__ = [
    "METHOD_COLOURS", "Z", "hypothesis_label", "truth_label",
    "make_rejection_figure", "rejection_data",
    "make_bias_figure", "bias_data",
    "make_coverage_figure", "coverage_data",
]

#: One colour per method, from the registry (:mod:`lmm_teach.methods`; the same in the Compare tab).
METHOD_COLOURS = {key: m.colour for key, m in METHODS.items()}
_OTHER = GREY  # a method the registry does not know (every Okabe-Ito colour is a method's)

_BAR_COLUMNS = ("factor", "hypothesis", "method", "analysis", "value", "mcse", "lo", "hi", "truth",
                "n_ok", "n_failed", "colour")
_REF_COLUMNS = ("x", "y0", "y1", "hypothesis")

# Bar thickness in factor units (1 = touching bars).
_BAR = 0.7
#: Whiskers reach Z Monte Carlo SEs either side of a bar: a 95 % interval of the
#: Monte Carlo error (the MCSE itself is in the hover and the panel's table).
Z = 1.96



def hypothesis_label(hypothesis: str, truth: float) -> str:
    """The group label of a hypothesis: what its rejection rate measures.

    Examples
    --------
    >>> hypothesis_label("arm x time", 0.0), hypothesis_label("time", -1.0)
    ('arm x time: type-I error', 'time: power')
    """
    if truth is None or not np.isfinite(truth):
        return str(hypothesis)
    return f"{hypothesis}: {'type-I error' if truth == 0 else 'power'}"


def _num(x) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return math.nan
    return v


def truth_label(hypothesis: str, truth: float) -> str:
    """The group label of a hypothesis on the bias and coverage charts.

    Examples
    --------
    >>> truth_label("time", -1.0)
    'time (truth -1)'
    """
    if truth is None or not np.isfinite(truth):
        return str(hypothesis)
    return f"{hypothesis} (truth {truth:g})"


def _bars(table: pd.DataFrame, value: str, mcse: str, *, clip: bool, label=truth_label) -> dict:
    """One bar per row of the study table, in table order top-down."""
    z = Z
    out = empty_columns(_BAR_COLUMNS)
    records = table.to_dict(orient="records")
    # A nested categorical axis needs each group's bars together: group by
    # hypothesis (in order of appearance), methods in table order within.
    order = list(dict.fromkeys(str(r["hypothesis"]) for r in records))
    records.sort(key=lambda r: order.index(str(r["hypothesis"])))
    for r in records:
        v, se = _num(r.get(value)), _num(r.get(mcse))
        lo, hi = v - z * se, v + z * se
        if clip:  # a proportion's interval stays within [0, 1]
            lo, hi = max(lo, 0.0), min(hi, 1.0)
        out["factor"].append((label(r["hypothesis"], _num(r.get("truth"))), str(r["method"])))
        out["hypothesis"].append(str(r["hypothesis"]))
        out["method"].append(str(r["method"]))
        out["analysis"].append(str(r.get("analysis", "")))
        out["value"].append(v)
        out["mcse"].append(se)
        out["lo"].append(lo)
        out["hi"].append(hi)
        out["truth"].append(_num(r.get("truth")))
        out["n_ok"].append(int(r.get("n_ok", 0) or 0))
        out["n_failed"].append(int(r.get("n_failed", 0) or 0))
        out["colour"].append(METHOD_COLOURS.get(str(r.get("analysis", "")), _OTHER))
    # Bokeh draws the first factor at the bottom: reverse, so the chart reads as the table.
    return {k: v[::-1] for k, v in out.items()}


def _references(bars: dict, x_of) -> dict:
    """A dashed reference segment across each hypothesis group where ``x_of(truth)`` is finite."""
    out = empty_columns(_REF_COLUMNS)
    groups: dict[str, list[int]] = {}
    for i, (label, _method) in enumerate(bars["factor"]):
        groups.setdefault(label, []).append(i)
    for label, idx in groups.items():
        x = x_of(bars["truth"][idx[0]])
        if x is None or not np.isfinite(x):
            continue
        half = len(idx) / 2.0
        out["x"].append(float(x))
        out["y0"].append((label, -half))
        out["y1"].append((label, half))
        out["hypothesis"].append(bars["hypothesis"][idx[0]])
    return out


def _figure(name: str, title: str, x_label: str, *, x_range=None, reference: str | None = None):
    sources = {"bars": ColumnDataSource(empty_columns(_BAR_COLUMNS), name=f"{name}-bars")}
    kw = {"x_range": x_range} if x_range is not None else {}
    fig = new_figure(name=name, title=title, x_label=x_label, y_label="", y_range=FactorRange(),
                     height=300, **kw)
    fig.y_range.group_padding = 0.8
    # Group labels written along the axis ran into each other ("arm x time (truth -1ime (truth 0.5)"):
    # a group of two or three bars is shorter than its label.  Across the axis, each has its own line.
    fig.yaxis.group_label_orientation = "horizontal"
    fig.yaxis.group_text_font_size = "11px"
    legend_above(fig)
    src = sources["bars"]
    bars = fig.hbar(y="factor", left=0, right="value", height=_BAR, source=src, fill_color="colour",
                    line_color="colour", fill_alpha=0.85)
    # The whisker: z Monte Carlo SEs either side, with caps (a renderer, so the
    # auto-ranging axis of the bias chart includes it).
    fig.segment("lo", "factor", "hi", "factor", source=src, line_color=TRUTH_COLOUR, line_width=1.5,
                legend_label=f"± {Z:g} Monte Carlo SE")
    for end in ("lo", "hi"):
        fig.scatter(end, "factor", source=src, marker="dash", angle=math.pi / 2, size=9,
                    line_color=TRUTH_COLOUR, line_width=1.5)
    if reference is not None:
        sources["reference"] = ColumnDataSource(empty_columns(_REF_COLUMNS), name=f"{name}-reference")
        fig.segment("x", "y0", "x", "y1", source=sources["reference"], line_color=TRUTH_COLOUR,
                    line_dash="dashed", line_width=2, legend_label=reference)
    fig.add_tools(HoverTool(renderers=[bars], tooltips=[
        ("", "@hypothesis: @method"), (x_label, "@value{0.000} (Monte Carlo SE @mcse{0.000})"),
        ("truth", "@truth{0.000}"), ("replicates used", "@n_ok (failed: @n_failed)")]))
    return fig, sources


def make_rejection_figure():
    """Rejection rate per hypothesis and method: power, or type-I error when the truth is 0.

    Returns
    -------
    (figure, sources)
        ``sources``: ``"bars"`` and ``"reference"`` (``alpha`` across the
        groups whose true effect is 0).  Set the y factors with
        :func:`lmm_teach.plots.set_factors` and ``bars["factor"]``.
    """
    return _figure("mc-rejection", "Rejection rate: power, or type-I error if truth 0",
                   "rejection rate", x_range=Range1d(0, 1.02), reference="alpha (where a type-I error rate belongs)")


def rejection_data(table: pd.DataFrame, *, alpha: float = 0.05) -> dict[str, dict]:
    """Columns of the rejection chart from ``MonteCarloResult.table``.

    Examples
    --------
    >>> t = pd.DataFrame({"analysis": ["lmm"], "method": ["LMM"], "hypothesis": ["time"],
    ...                   "truth": [0.0], "rejection_rate": [0.06], "rejection_mcse": [0.01]})
    >>> d = rejection_data(t, alpha=0.05)
    >>> d["bars"]["factor"], d["reference"]["x"]
    ([('time: type-I error', 'LMM')], [0.05])
    """
    bars = _bars(table, "rejection_rate", "rejection_mcse", clip=True, label=hypothesis_label)
    return {"bars": bars, "reference": _references(bars, lambda t: alpha if t == 0 else None)}


def make_bias_figure():
    """Bias (mean estimate minus truth) per hypothesis and method, with a line at 0.

    Returns
    -------
    (figure, sources)
        ``sources``: ``"bars"``.
    """
    fig, sources = _figure("mc-bias", "Bias: mean estimate minus truth (0: unbiased)",
                           "bias (in the estimate's units: per unit of time for slopes)")
    fig.add_layout(Span(location=0, dimension="height", line_color=TRUTH_COLOUR, line_dash="dotted",
                        line_width=1.5))
    return fig, sources


def bias_data(table: pd.DataFrame) -> dict[str, dict]:
    """Columns of the bias chart from ``MonteCarloResult.table``."""
    return {"bars": _bars(table, "bias", "bias_mcse", clip=False)}


def make_coverage_figure():
    """Coverage of the confidence intervals per hypothesis and method, with the nominal level.

    Returns
    -------
    (figure, sources)
        ``sources``: ``"bars"`` and ``"reference"`` (``1 - alpha`` across every group).
    """
    return _figure("mc-coverage", "Coverage: how often the CI contains the truth",
                   "coverage", x_range=Range1d(0, 1.02), reference="nominal level (1 - alpha)")


def coverage_data(table: pd.DataFrame, *, alpha: float = 0.05) -> dict[str, dict]:
    """Columns of the coverage chart from ``MonteCarloResult.table``."""
    bars = _bars(table, "coverage", "coverage_mcse", clip=True)
    return {"bars": bars, "reference": _references(bars, lambda t: 1.0 - alpha)}
