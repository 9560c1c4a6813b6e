"""The LMM's fitted lines: the population line with its 95 % band over the
subject-specific lines, and the true line of a simulation.

Notes
-----
For a group (arm) ``g`` at time ``t`` the population mean is
``mu(t) = x(t)' beta`` with ``x(t) = (1, t, [B_g, t B_g])``; its standard error
is ``sqrt(x' V x)`` with ``V`` the covariance of the fixed effects
(``LMMResult.cov_fixed``).  The pointwise band uses a t quantile on the smallest
Satterthwaite df of the fixed effects: slightly conservative, and never
narrower than the intervals in the fixed-effects table.  Subject lines are the
LMM's subject-specific fitted values (fixed part plus BLUPs), one per subject.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from bokeh.models import ColumnDataSource
from scipy import stats

from lmm_teach.plots.refit import add_draggable_points
from lmm_teach.plots.theme import (
    EDITED_COLOUR,
    TRUTH_COLOUR,
    empty_columns,
    group_colours,
    legend_above,
    new_figure,
    ordered_levels,
)

__all__ = ["make_fit_figure", "fit_data", "edited_line", "population_design_row"]

_SUBJECT_COLUMNS = ("subject", "xs", "ys", "colour")
_LINE_COLUMNS = ("xs", "ys", "colour", "label")
# Bokeh merges legend items that share a field name across sources (and
# rejects it, E-1006), so the truth's legend column has its own name.
_TRUTH_COLUMNS = ("xs", "ys", "colour", "truth_label")



def make_fit_figure(*, x_label: str = "time", y_label: str = "outcome", draggable: bool = False):
    """Build the (empty) figure of the fitted lines once.

    Parameters
    ----------
    draggable : bool
        Also draw the measurements as points a learner can drag (source
        ``"points"``, a ``PointDrawTool`` that is not active until a panel
        makes it so; :func:`lmm_teach.plots.refit.add_draggable_points`) and
        the edited subject's line, highlighted (source ``"edited"``).

    Returns
    -------
    (figure, sources)
        ``sources``: ``"subjects"``, ``"band"``, ``"population"``, ``"truth"``
        (and ``"points"``, ``"edited"``).

    Examples
    --------
    >>> fig, sources = make_fit_figure()
    >>> sorted(sources)
    ['band', 'population', 'subjects', 'truth']
    >>> sorted(make_fit_figure(draggable=True)[1])
    ['band', 'edited', 'points', 'population', 'subjects', 'truth']
    """
    sources = {
        "subjects": ColumnDataSource(empty_columns(_SUBJECT_COLUMNS), name="subjects"),
        "band": ColumnDataSource(empty_columns(_LINE_COLUMNS), name="band"),
        "population": ColumnDataSource(empty_columns(_LINE_COLUMNS), name="population"),
        "truth": ColumnDataSource(empty_columns(_TRUTH_COLUMNS), name="truth"),
    }
    fig = new_figure(name="fit", title="LMM: population line (95 % band) and each patient's line",
                     x_label=x_label, y_label=y_label)
    legend_above(fig)
    fig.multi_line("xs", "ys", source=sources["subjects"], line_color="colour", line_alpha=0.3,
                   line_width=1)
    fig.patches("xs", "ys", source=sources["band"], fill_color="colour", fill_alpha=0.25, line_color=None)
    fig.multi_line("xs", "ys", source=sources["population"], line_color="colour", line_width=3,
                   legend_field="label")
    fig.multi_line("xs", "ys", source=sources["truth"], line_color=TRUTH_COLOUR, line_width=2,
                   line_dash="dashed", legend_field="truth_label")
    if draggable:
        sources["edited"] = ColumnDataSource(empty_columns(("xs", "ys")), name="edited")
        fig.multi_line("xs", "ys", source=sources["edited"], line_color=EDITED_COLOUR, line_width=3.5,
                       line_alpha=0.95)
        sources["points"], _tool = add_draggable_points(fig, active=False)
    return fig, sources


def edited_line(subjects: dict, subject) -> dict:
    """The ``"edited"`` source's columns: one subject's line from :func:`fit_data`'s ``"subjects"``.

    Examples
    --------
    >>> edited_line({"subject": ["a", "b"], "xs": [[0, 1], [0, 2]], "ys": [[1, 2], [3, 4]]}, "b")
    {'xs': [[0, 2]], 'ys': [[3, 4]]}
    """
    names = subjects["subject"]
    if subject is None or str(subject) not in names:
        return {"xs": [], "ys": []}
    i = names.index(str(subject))
    return {"xs": [subjects["xs"][i]], "ys": [subjects["ys"][i]]}


def population_design_row(terms, t: np.ndarray, *, time: str, between: str | None = None,
                          level=None) -> np.ndarray:
    """Rows of the fixed-effects design matrix for one group along a time grid.

    ``terms`` are lme4-style names: ``(Intercept)``, ``time``, ``armB``,
    ``time:armB`` (either order of an interaction).  A term not recognised
    gets 0 (its group is the reference).

    Examples
    --------
    >>> population_design_row(["(Intercept)", "time", "armB", "time:armB"], np.array([0.0, 2.0]),
    ...                       time="time", between="arm", level="B").tolist()
    [[1.0, 0.0, 1.0, 0.0], [1.0, 2.0, 1.0, 2.0]]
    """
    t = np.asarray(t, dtype=float)
    X = np.zeros((len(t), len(terms)))
    dummy = f"{between}{level}" if between is not None else None
    for j, term in enumerate(terms):
        parts = sorted(str(term).split(":"))
        if term == "(Intercept)":
            X[:, j] = 1.0
        elif parts == [time]:
            X[:, j] = t
        elif dummy is not None and parts == [dummy]:
            X[:, j] = 1.0
        elif dummy is not None and parts == sorted([time, dummy]):
            X[:, j] = t
    return X


def _truth_value(truth: Mapping, key: str) -> float:
    return float(truth.get(key, 0.0))


def fit_data(lmm, data: pd.DataFrame, *, truth: Mapping | None = None, n_grid: int = 60,
             level: float = 0.95) -> dict[str, dict]:
    """The columns of the fitted-lines figure's sources.

    Parameters
    ----------
    lmm : LMMResult
        A fit with numeric time (``lmm.columns.time`` is the time column).
    data : DataFrame
        The data it was fitted to (rows in ``lmm.fitted.index``); not modified.
    truth : mapping, optional
        True fixed effects under generic names: ``"(Intercept)"``, ``"time"``,
        ``"arm"``, ``"time:arm"`` (arm B minus arm A), as
        ``{"(Intercept)": design.intercept, **design.true_effects()}``.
    n_grid : int
        Points along the time axis for the population line and band.
    level : float
        Coverage of the band.

    Returns
    -------
    dict
        ``{"subjects", "band", "population", "truth"}`` column dicts.
    """
    cols = lmm.columns
    time, between, subject = cols.time, cols.between, cols.subject
    fitted = lmm.fitted
    rows = data.index.get_indexer(fitted.index)  # positions of the rows the fit used
    if (rows < 0).any():
        raise ValueError("the data do not contain every row of the fit (lmm.fitted.index)")
    used = data.iloc[rows]
    t_all = used[time].to_numpy(float)
    t_lo, t_hi = float(np.min(t_all)), float(np.max(t_all))
    grid = np.linspace(t_lo, t_hi, n_grid) if t_hi > t_lo else np.array([t_lo, t_lo + 1.0])

    levels = ordered_levels(used[between]) if between is not None else [None]
    colours = group_colours(levels)

    terms = list(lmm.fixed.index)
    beta = lmm.fixed["estimate"].to_numpy(float)
    V = lmm.cov_fixed.loc[terms, terms].to_numpy(float)
    df = lmm.fixed["df"].to_numpy(float)
    df = df[np.isfinite(df) & (df > 0)]
    q = float(stats.t.ppf(0.5 + level / 2, df.min())) if len(df) else float(stats.norm.ppf(0.5 + level / 2))

    band, population = empty_columns(_LINE_COLUMNS), empty_columns(_LINE_COLUMNS)
    truth_lines = empty_columns(_TRUTH_COLUMNS)
    for i, lvl in enumerate(levels):
        X = population_design_row(terms, grid, time=time, between=between, level=lvl)
        mu = X @ beta
        se = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", X, V, X), 0.0))
        name = "population" if lvl is None else f"population, {between} {lvl}"
        population["xs"].append(grid)
        population["ys"].append(mu)
        population["colour"].append(colours[lvl])
        population["label"].append(name)
        band["xs"].append(np.r_[grid, grid[::-1]])
        band["ys"].append(np.r_[mu + q * se, (mu - q * se)[::-1]])
        band["colour"].append(colours[lvl])
        band["label"].append(f"{level:.0%} band")
        if truth:
            b = i > 0  # arm B (every non-reference level) gets the true arm effects
            icpt = _truth_value(truth, "(Intercept)") + (b * _truth_value(truth, "arm"))
            slope = _truth_value(truth, "time") + (b * _truth_value(truth, "time:arm"))
            truth_lines["xs"].append(grid)
            truth_lines["ys"].append(icpt + slope * grid)
            truth_lines["colour"].append(TRUTH_COLOUR)
            truth_lines["truth_label"].append("truth")

    # Subject-specific fitted lines, in time order within each subject.
    s_code, s_levels = pd.factorize(used[subject].to_numpy(), sort=True)
    f_all = fitted.to_numpy(float)
    order = np.lexsort((t_all, s_code))
    code = s_code[order]
    bounds = np.flatnonzero(code[1:] != code[:-1]) + 1
    starts = np.r_[0, bounds]
    if between is not None:
        g = used[between].to_numpy()[order][starts]
        colour = [colours.get(v, colours[levels[0]]) for v in g]
    else:
        colour = [colours[None]] * len(starts)
    subjects = {
        "subject": [str(s_levels[c]) for c in code[starts]],
        # Plain lists: bokeh encodes each small numpy array as its own buffer,
        # which costs more than the numbers.
        "xs": [a.tolist() for a in np.split(t_all[order], bounds)],
        "ys": [a.tolist() for a in np.split(f_all[order], bounds)],
        "colour": colour,
    }
    return {"subjects": subjects, "band": band, "population": population, "truth": truth_lines}
