"""Estimates beside the truth: the fixed effects with their confidence
intervals (a forest plot) and the variance components as SDs.

The intercept is left out of the forest plot: it lives on the outcome's scale
(e.g. 100 mmHg), the effects on the scale of changes (e.g. -1 per year), and
one axis for both would squash the effects to a dot.  It stays in the table.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from bokeh.models import ColumnDataSource, FactorRange, HoverTool, Span

from lmm_teach.plots.theme import GROUP_COLOURS, TRUTH_COLOUR, empty_columns, legend_above, new_figure

__all__ = [
    "make_fixed_figure", "fixed_data", "make_variance_figure", "variance_data",
    "generic_term", "generic_component", "set_factors",
]

_FIXED_COLUMNS = ("term", "label", "estimate", "ci_low", "ci_high", "truth", "p")
_VAR_COLUMNS = ("component", "label", "estimate", "truth")



def generic_term(term: str, columns) -> str:
    """The generic name of a fitted term: ``"(Intercept)"``, ``"time"``, ``"arm"`` or ``"time:arm"``.

    ``columns`` is the fit's :class:`lmm_teach.validate.Columns`; a term such
    as ``armB`` (column ``arm``, level ``B``) becomes ``"arm"``.  Unknown terms
    are returned unchanged.

    Examples
    --------
    >>> from lmm_teach.validate import Columns
    >>> c = Columns(y="y", subject="id", time="week", between="group")
    >>> [generic_term(t, c) for t in ["(Intercept)", "week", "groupB", "week:groupB"]]
    ['(Intercept)', 'time', 'arm', 'time:arm']
    """
    parts = str(term).split(":")
    time, between = columns.time, columns.between

    def kind(p):
        if p == time:
            return "time"
        if between is not None and p.startswith(str(between)) and p != time:
            return "arm"
        return None

    kinds = [kind(p) for p in parts]
    if term == "(Intercept)" or None in kinds:
        return str(term)
    return ":".join(sorted(kinds, key=lambda k: k != "time"))


def generic_component(group: str, var1, columns) -> str | None:
    """The generic name of a variance component row: ``"intercept"``, ``"slope"``,
    ``"cluster"``, ``"residual"`` (None for anything else)."""
    if group == "Residual":
        return "residual"
    if group == columns.subject:
        if var1 == "(Intercept)":
            return "intercept"
        if var1 == columns.time:
            return "slope"
    if columns.cluster is not None and group == columns.cluster:
        return "cluster"
    return None


def set_factors(frange: FactorRange, factors: list[str]) -> None:
    """Change a categorical axis's factors only when they differ (no needless browser message)."""
    if list(frange.factors) != list(factors):
        frange.factors = list(factors)


def make_fixed_figure(*, width: int | None = None):
    """The forest plot of the fixed effects: estimate, 95 % CI and truth per term.

    Returns
    -------
    (figure, sources)
        ``sources``: ``"fixed"``.  Its categorical y axis lists the terms; use
        :func:`set_factors` with ``fixed_data(...)["fixed"]["label"]``.
    """
    sources = {"fixed": ColumnDataSource(empty_columns(_FIXED_COLUMNS), name="fixed")}
    kw = {"width": width} if width else {}
    fig = new_figure(name="fixed", title="Fixed effects: estimate and 95 % CI (x: truth)",
                     x_label="estimate", y_label="", y_range=FactorRange(), height=220, **kw)
    legend_above(fig)
    fig.segment("ci_low", "label", "ci_high", "label", source=sources["fixed"],
                line_color=GROUP_COLOURS[0], line_width=3)
    est = fig.scatter("estimate", "label", source=sources["fixed"], size=10, color=GROUP_COLOURS[0],
                      legend_label="estimate (LMM)")
    fig.scatter("truth", "label", source=sources["fixed"], marker="x", size=12, line_width=2,
                line_color=TRUTH_COLOUR, legend_label="truth")
    fig.add_tools(HoverTool(renderers=[est], tooltips=[
        ("term", "@term"), ("estimate", "@estimate{0.000}"),
        ("95% CI", "@ci_low{0.000} to @ci_high{0.000}"), ("p", "@p{0.0000}")]))
    # "No effect": a CI that crosses this line is not significant at 5 %.
    fig.add_layout(Span(location=0, dimension="height", line_color="#777777", line_dash="dotted"))
    return fig, sources


def fixed_data(lmm, *, truth: Mapping | None = None, include_intercept: bool = False) -> dict[str, dict]:
    """Columns of the forest plot: one row per fixed effect.

    Parameters
    ----------
    lmm : LMMResult
    truth : mapping, optional
        True values under generic names (``"(Intercept)"``, ``"time"``,
        ``"arm"``, ``"time:arm"``); NaN where a term has none.
    include_intercept : bool
        Keep ``(Intercept)`` (off by default, see the module docstring).
    """
    fixed = lmm.fixed
    out = empty_columns(_FIXED_COLUMNS)
    for term, row in fixed.iterrows():
        if term == "(Intercept)" and not include_intercept:
            continue
        gen = generic_term(term, lmm.columns)
        out["term"].append(str(term))
        out["label"].append(_label(term, gen))
        out["estimate"].append(float(row["estimate"]))
        out["ci_low"].append(float(row["ci_low"]))
        out["ci_high"].append(float(row["ci_high"]))
        out["truth"].append(float(truth[gen]) if truth and gen in truth else np.nan)
        out["p"].append(float(row["p"]))
    # Forest plots read top-down in table order; bokeh's first factor is at the bottom.
    return {"fixed": {k: v[::-1] for k, v in out.items()}}


def _label(term: str, generic: str) -> str:
    words = {"time": "change per unit of time", "arm": "difference at time 0",
             "time:arm": "difference in change", "(Intercept)": "mean at time 0"}
    return f"{term} ({words[generic]})" if generic in words else str(term)


def make_variance_figure():
    """The SDs of the random effects and of the residual, beside the truth.

    Returns
    -------
    (figure, sources)
        ``sources``: ``"variance"``; use :func:`set_factors` with its ``label``.
    """
    sources = {"variance": ColumnDataSource(empty_columns(_VAR_COLUMNS), name="variance")}
    fig = new_figure(name="variance", title="Variance components (SD; x: truth)", x_label="standard deviation",
                     y_label="", y_range=FactorRange(), height=230)
    legend_above(fig)
    fig.segment(0, "label", "estimate", "label", source=sources["variance"], line_color=GROUP_COLOURS[2],
                line_width=3)
    est = fig.scatter("estimate", "label", source=sources["variance"], size=10, color=GROUP_COLOURS[2],
                      legend_label="estimate (REML)")
    fig.scatter("truth", "label", source=sources["variance"], marker="x", size=12, line_width=2,
                line_color=TRUTH_COLOUR, legend_label="truth")
    fig.add_tools(HoverTool(renderers=[est], tooltips=[("", "@label"), ("SD", "@estimate{0.000}"),
                                                       ("truth", "@truth{0.000}")]))
    fig.x_range.start = 0
    return fig, sources


def variance_data(lmm, *, truth: Mapping | None = None) -> dict[str, dict]:
    """Columns of the variance figure: one row per SD (correlations are left out).

    ``truth`` maps generic component names (``"intercept"``, ``"slope"``,
    ``"cluster"``, ``"residual"``) to true SDs.
    """
    labels = {"intercept": "patients' levels", "slope": "patients' slopes",
              "cluster": "clusters", "residual": "residual"}
    out = empty_columns(_VAR_COLUMNS)
    var = lmm.variance
    for _, row in var.iterrows():
        var2 = row.get("var2")
        if var2 is not None and isinstance(var2, str) and var2:
            continue  # a correlation row
        if var2 is not None and not isinstance(var2, str) and not _isnan(var2):
            continue
        comp = generic_component(row["group"], row.get("var1"), lmm.columns)
        if comp is None:
            continue
        label = labels[comp]
        if comp == "cluster":
            label = f"{row['group']}s"
        out["component"].append(comp)
        out["label"].append(label)
        out["estimate"].append(float(row["sdcor"]))
        out["truth"].append(float(truth[comp]) if truth and comp in truth else np.nan)
    return {"variance": {k: v[::-1] for k, v in out.items()}}


def _isnan(v) -> bool:
    try:
        return bool(np.isnan(v))
    except TypeError:
        return v is None
