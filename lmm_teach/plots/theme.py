"""Shared look of every lmm_teach figure: palette, sizes, the base figure.

Colours come from the Okabe-Ito palette (Okabe & Ito 2008, "Color Universal
Design"), which stays distinguishable under the common colour-vision
deficiencies; lines also differ in dash pattern where colour alone would carry
meaning (truth dashed, estimates solid).

Widths are fixed: bokeh's stretch sizing modes measure their parent element,
which inside an ipywidgets layout has no definite width, so a stretching figure
collapses or overflows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from bokeh.models import Legend
from bokeh.plotting import figure

__all__ = [
    "OKABE_ITO",
    "GROUP_COLOURS",
    "GREY",
    "TRUTH_COLOUR",
    "EDITED_COLOUR",
    "WIDTH",
    "HEIGHT",
    "new_figure",
    "group_colours",
    "ordered_levels",
    "legend_above",
    "truth_title",
]

#: The eight Okabe-Ito colours, by name.
OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
}

#: Colours for the levels of a between-subject factor (arm A, arm B, ...), in order.
#: Yellow is left out: it is too light on white for thin lines.
GROUP_COLOURS = tuple(OKABE_ITO[k] for k in ("blue", "vermillion", "green", "purple", "orange", "sky_blue"))

#: Data that an analysis leaves out (e.g. the subjects the RM-ANOVA drops).
GREY = "#9A9A9A"
#: The true values of a simulation: black, drawn dashed or as crosses.
TRUTH_COLOUR = OKABE_ITO["black"]
#: The subject whose data a learner edited by hand (drag a measurement): a colour no arm and no truth uses.
EDITED_COLOUR = OKABE_ITO["orange"]

WIDTH = 560
HEIGHT = 360

_TOOLS = "pan,wheel_zoom,box_zoom,reset,save"


def new_figure(
    *,
    name: str,
    title: str,
    x_label: str,
    y_label: str,
    width: int = WIDTH,
    height: int = HEIGHT,
    **kwargs,
):
    """A fixed-size bokeh figure with the house tools and a stable CSS class.

    Parameters
    ----------
    name : str
        Short name of the figure; the figure gets the CSS class ``lmm-plot-<name>``
        so that browser tests can find it.
    title, x_label, y_label : str
        Text shown to the learner.
    width, height : int
        Size in pixels (fixed, see the module docstring).
    **kwargs
        Passed to :func:`bokeh.plotting.figure` (e.g. ``y_range`` for factors).

    Examples
    --------
    >>> fig = new_figure(name="demo", title="Demo", x_label="time", y_label="y")
    >>> fig.width, "lmm-plot-demo" in fig.css_classes
    (560, True)
    """
    fig = figure(
        title=title,
        width=width,
        height=height,
        sizing_mode="fixed",
        tools=_TOOLS,
        toolbar_location="right",
        x_axis_label=x_label,
        y_axis_label=y_label,
        name=name,
        **kwargs,
    )
    fig.css_classes = ["lmm-plot", f"lmm-plot-{name}"]
    fig.toolbar.logo = None
    fig.title.text_font_size = "13px"
    fig.xgrid.grid_line_alpha = 0.4
    fig.ygrid.grid_line_alpha = 0.4
    return fig


def truth_title(title: str, *, truth: bool) -> str:
    """A title that says "x: truth" only when there is a truth to draw (not for real data).

    Examples
    --------
    >>> truth_title("Variance components (SD; x: truth)", truth=False)
    'Variance components (SD)'
    >>> truth_title("Estimates by method (x: truth)", truth=False)
    'Estimates by method'
    """
    if truth:
        return title
    return title.replace(" (x: truth)", "").replace("; x: truth", "")


def legend_above(fig, *, ncols: int | None = None) -> Legend:
    """Put the figure's legend above the plot area, in a row (call before adding glyphs).

    Inside the plot area a legend hides data (with fixed sizes there is no
    empty corner to rely on); above it, it costs one line of height.  Glyphs
    created later with ``legend_label`` / ``legend_field`` join this legend.
    """
    legend = Legend(orientation="horizontal", location="top_left", label_text_font_size="11px",
                    padding=2, margin=2, spacing=12, border_line_alpha=0, click_policy="hide")
    if ncols:
        legend.ncols = ncols
    fig.add_layout(legend, "above")
    return legend


def group_colours(levels: Iterable) -> dict:
    """Map each level of a between-subject factor to a palette colour, in order.

    Examples
    --------
    >>> group_colours(["A", "B"])
    {'A': '#0072B2', 'B': '#D55E00'}
    """
    levels = list(levels)
    return {lvl: GROUP_COLOURS[i % len(GROUP_COLOURS)] for i, lvl in enumerate(levels)}


def ordered_levels(values: Sequence) -> list:
    """Levels of a column in their natural order (categorical order, else sorted)."""
    import pandas as pd

    values = pd.Series(values)
    if isinstance(values.dtype, pd.CategoricalDtype):
        present = set(values.dropna().unique())
        return [c for c in values.cat.categories if c in present]
    uniq = values.dropna().unique()
    try:
        return sorted(uniq)
    except TypeError:  # mixed types: keep order of appearance
        return list(uniq)


def empty_columns(columns) -> dict:
    """A ColumnDataSource's data with the given columns and no rows."""
    return {c: [] for c in columns}
