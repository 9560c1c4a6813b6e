"""Heatmaps of a visit x visit matrix: a covariance or a correlation, with its numbers in the cells.

Built once by :func:`make_covariance_figure`; :func:`covariance_data` turns a
square DataFrame (rows and columns the visits, as
:func:`lmm_teach.covariance.true_covariance` and ``MMRMResult.covariance``
give them) into the source's columns: one row per cell with its fill colour,
its number as text and the text's colour.

The colour scale is diverging around 0 (ColorBrewer RdBu: negative blue,
positive red, 0 near white; readable under the common colour-vision
deficiencies) and shared by the figures set side by side: a correlation runs
from -1 to 1; a covariance from ``-vmax`` to ``vmax``, ``vmax`` the largest
absolute value of all the matrices shown, so the same colour means the same
number in every heatmap.  Each number is black or white, whichever contrasts
more with its cell (WCAG 2 contrast ratio at least 4.5:1 for every fill; the
figures sit on a light card in the light and the dark theme alike, see
:mod:`lmm_teach.widgets.page`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from bokeh.models import ColumnDataSource, FactorRange, HoverTool
from bokeh.palettes import RdBu11

from lmm_teach.plots.estimates import set_factors
from lmm_teach.plots.theme import empty_columns, new_figure

__all__ = ["make_covariance_figure", "covariance_data", "set_visits", "cell_colour", "contrast_ratio",
           "shared_limit", "format_cell", "visit_labels", "PALETTE"]

#: Diverging palette from -vmax (blue) to +vmax (red), 0 in the middle.
PALETTE = tuple(RdBu11)
_COLUMNS = ("row", "col", "value", "text", "fill", "ink", "font")
_DARK, _LIGHT = "#000000", "#ffffff"
WIDTH, HEIGHT = 285, 270


def _hex_rgb(colour: str) -> np.ndarray:
    c = colour.lstrip("#")
    return np.array([int(c[i:i + 2], 16) for i in (0, 2, 4)], dtype=float)


def _luminance(colour: str) -> float:
    """WCAG 2 relative luminance of a ``#rrggbb`` colour."""
    c = _hex_rgb(colour) / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return float(lin @ np.array([0.2126, 0.7152, 0.0722]))


def contrast_ratio(a: str, b: str) -> float:
    """WCAG 2 contrast ratio of two ``#rrggbb`` colours (1 to 21).

    Examples
    --------
    >>> round(contrast_ratio("#000000", "#ffffff"), 1)
    21.0
    """
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def cell_colour(value: float, vmax: float) -> str:
    """The fill of a cell: ``value`` on the diverging scale from ``-vmax`` to ``vmax`` (interpolated).

    Examples
    --------
    >>> cell_colour(0.0, 1.0) == PALETTE[5], cell_colour(2.0, 1.0) == PALETTE[-1]
    (True, True)
    """
    if not np.isfinite(value) or not vmax > 0:
        return "#dddddd"
    pos = (np.clip(value / vmax, -1.0, 1.0) + 1.0) / 2.0 * (len(PALETTE) - 1)
    i = min(int(np.floor(pos)), len(PALETTE) - 2)
    w = pos - i
    rgb = (1 - w) * _hex_rgb(PALETTE[i]) + w * _hex_rgb(PALETTE[i + 1])
    return "#" + "".join(f"{int(round(v)):02x}" for v in rgb)


def _ink(fill: str) -> str:
    return _DARK if contrast_ratio(fill, _DARK) >= contrast_ratio(fill, _LIGHT) else _LIGHT


def format_cell(value: float, *, correlation: bool) -> str:
    """The number written in a cell: a correlation with two decimals, a covariance with about three digits.

    Examples
    --------
    >>> format_cell(0.8543, correlation=True), format_cell(34.567, correlation=False)
    ('0.85', '34.6')
    """
    if not np.isfinite(value):
        return ""
    if correlation:
        return f"{value:.2f}"
    a = abs(value)
    if a >= 100:
        return f"{value:.0f}"
    if a >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def shared_limit(matrices, *, correlation: bool) -> float:
    """The colour scale's end ``vmax`` for matrices shown side by side (1 for correlations)."""
    if correlation:
        return 1.0
    vals = [np.abs(np.asarray(m, dtype=float)) for m in matrices if m is not None and np.size(m)]
    vals = [v[np.isfinite(v)] for v in vals]
    vals = [v for v in vals if v.size]
    top = max((float(v.max()) for v in vals), default=0.0)
    return top if top > 0 else 1.0


def visit_labels(index) -> list[str]:
    """Visit labels as axis factors (``1.0`` -> ``"1"``)."""
    out = []
    for v in index:
        if isinstance(v, (float, np.floating)) and float(v).is_integer():
            v = int(v)
        out.append(str(v))
    return out


def make_covariance_figure(*, name: str, title: str, visit: str = "visit", width: int = WIDTH,
                           height: int = HEIGHT):
    """Build an (empty) visit x visit heatmap.

    Parameters
    ----------
    name : str
        The figure's CSS class is ``lmm-plot-<name>``.
    title : str
    visit : str
        Axis label (the visit column's name).

    Returns
    -------
    (figure, sources)
        ``sources``: ``"cells"``; set the axes' visits with :func:`set_visits`.

    Examples
    --------
    >>> fig, src = make_covariance_figure(name="cov-demo", title="Demo")
    >>> list(src)
    ['cells']
    """
    sources = {"cells": ColumnDataSource(empty_columns(_COLUMNS), name="cells")}
    fig = new_figure(name=name, title=title, x_label=visit, y_label=visit, x_range=FactorRange(),
                     y_range=FactorRange(), width=width, height=height)
    fig.xgrid.visible = False
    fig.ygrid.visible = False
    fig.xaxis.major_tick_line_color = None
    fig.yaxis.major_tick_line_color = None
    fig.x_range.range_padding = 0
    fig.y_range.range_padding = 0
    cells = fig.rect("col", "row", width=1.0, height=1.0, source=sources["cells"], fill_color="fill",
                     line_color="#ffffff", line_width=1)
    fig.text("col", "row", text="text", source=sources["cells"], text_color="ink", text_font_size="font",
             text_align="center", text_baseline="middle")
    fig.add_tools(HoverTool(renderers=[cells], tooltips=[("visits", "@row, @col"), ("value", "@value{0.000}")]))
    return fig, sources


def set_visits(fig, labels) -> None:
    """Put the visits on the axes: the first visit left and at the top (as a printed matrix)."""
    labels = [str(v) for v in labels]
    set_factors(fig.x_range, labels)
    set_factors(fig.y_range, labels[::-1])


def covariance_data(matrix: pd.DataFrame | None, *, correlation: bool = False, vmax: float | None = None,
                    plot_width: int = WIDTH - 60) -> dict[str, dict]:
    """The heatmap's columns for one matrix (None or empty: no cells).

    Parameters
    ----------
    matrix : DataFrame
        Square, visits as index and columns.
    correlation : bool
        The numbers are correlations (two decimals, scale -1 to 1).
    vmax : float, optional
        The scale's end (default: :func:`shared_limit` of this matrix alone).
    plot_width : int
        Pixels across the cells, to size the numbers' font (7 to 12 px).

    Examples
    --------
    >>> m = pd.DataFrame([[4.0, 2.0], [2.0, 9.0]], index=[0, 1], columns=[0, 1])
    >>> d = covariance_data(m)["cells"]
    >>> d["text"], d["row"]
    (['4.00', '2.00', '2.00', '9.00'], ['0', '0', '1', '1'])
    """
    out = empty_columns(_COLUMNS)
    if matrix is None or matrix.size == 0:
        return {"cells": out}
    values = matrix.to_numpy(dtype=float)
    if vmax is None:
        vmax = shared_limit([values], correlation=correlation)
    labels = visit_labels(matrix.index)
    n = len(labels)
    font = f"{int(np.clip(plot_width / max(n, 1) / 3.4, 7, 12))}px"
    for i in range(n):
        for j in range(n):
            v = float(values[i, j])
            fill = cell_colour(v, vmax)
            out["row"].append(labels[i])
            out["col"].append(labels[j])
            out["value"].append(v)
            out["text"].append(format_cell(v, correlation=correlation))
            out["fill"].append(fill)
            out["ink"].append(_ink(fill))
            out["font"].append(font)
    return {"cells": out}
