"""The Data panel: the spaghetti plot of the data, with what the ANOVA drops.

(The panel for a learner's *own* data, with upload and column roles, is a
different one: ``lmm_teach/widgets/data_panel.py``.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import ipywidgets as widgets
import pandas as pd

from lmm_teach.plots import make_spaghetti_figure, spaghetti_data, update_sources
from lmm_teach.validate import Columns
from lmm_teach.widgets.base import Panel, escape
from lmm_teach.widgets.notebook import embed

__all__ = ["DataPanel", "incomplete_subjects"]


def incomplete_subjects(data: pd.DataFrame, *, y: str, subject: str, visit: str) -> tuple:
    """Ids of the subjects lacking any visit: those the RM-ANOVA drops (listwise deletion).

    Examples
    --------
    >>> df = pd.DataFrame({"s": ["a", "a", "b"], "v": [0, 1, 0], "y": [1.0, 2.0, 3.0]})
    >>> incomplete_subjects(df, y="y", subject="s", visit="v")
    ('b',)
    """
    seen = data.loc[data[y].notna()]
    n_visits = seen[visit].nunique()
    per = seen.groupby(subject, sort=True, observed=True)[visit].nunique()
    return tuple(per.index[per < n_visits])


class DataPanel(Panel):
    """One line per subject over real time; the subjects the ANOVA drops in grey.

    Parameters
    ----------
    data : DataFrame, optional
        Long data to show at once (not modified).
    y, subject, time, visit, between : str
        Column roles (``visit`` enables gaps at missing visits and counts).
    dropped : iterable, optional
        Subjects the RM-ANOVA drops; by default those lacking any visit.

    Attributes
    ----------
    figure, sources
        The bokeh figure and its sources (``"lines"``, ``"points"``, ``"missing"``).
    caption : ipywidgets.HTML
        Counts in words: subjects, measurements, missing, dropped by the ANOVA.

    Examples
    --------
    >>> import lmm_teach
    >>> panel = DataPanel(lmm_teach.load_bp(), y="bp", subject="patient", time="time_num", visit="time")
    >>> len(panel.sources["lines"].data["subject"])
    10
    """

    def __init__(self, data: pd.DataFrame | None = None, *, y: str = "y", subject: str = "subject",
                 time: str = "time", visit: str | None = "visit", between: str | None = None,
                 dropped: Iterable | None = None):
        self.columns = Columns(y=y, subject=subject, time=time, visit=visit, between=between)
        self.figure, self.sources = make_spaghetti_figure(x_label=time, y_label=y)
        self.caption = widgets.HTML()
        self.caption.add_class("lmm-data-caption")
        self.layout = widgets.VBox([self.caption, embed(self.figure)])
        self._finish_layout("lmm-data")
        self.data = None
        self.dropped: tuple = ()
        if data is not None:
            self.update(data, dropped=dropped)

    def prepare(self, data: pd.DataFrame, *, columns: Columns | None = None,
                dropped: Iterable | None = None) -> Callable[[], None]:
        """Compute everything for ``data`` and return the function that shows it.

        Splitting compute from show lets the Explorer compute every panel first
        and show nothing if any computation fails (the last good plots stay).
        """
        cols = columns or self.columns
        if dropped is None:
            dropped = (incomplete_subjects(data, y=cols.y, subject=cols.subject, visit=cols.visit)
                       if cols.visit else ())
        dropped = tuple(dropped)
        out = spaghetti_data(data, y=cols.y, subject=cols.subject, time=cols.time, visit=cols.visit,
                             between=cols.between, dropped=dropped)
        caption = _caption(data, cols, dropped, out)

        def show() -> None:
            self.columns, self.data, self.dropped = cols, data, dropped
            update_sources(self.sources, out)
            self.caption.value = caption
        return show

    def update(self, data: pd.DataFrame, *, columns: Columns | None = None,
               dropped: Iterable | None = None) -> None:
        """Show new data."""
        self.prepare(data, columns=columns, dropped=dropped)()


def _caption(data: pd.DataFrame, cols: Columns, dropped: tuple, out: dict) -> str:
    n_subjects = data[cols.subject].nunique()
    n_obs = int(data[cols.y].notna().sum())
    parts = [f"{n_subjects} patients, {n_obs} measurements"]  # the lessons' word
    n_missing = int(sum(out["missing"]["n_missing"]))
    if cols.visit is not None:
        n_visits = data[cols.visit].nunique()
        parts.append(f"{n_missing} of {n_subjects * n_visits} planned measurements missing"
                     if n_missing else "no measurement missing")
    text = "; ".join(parts) + "."
    if dropped:
        text += (f" The RM-ANOVA uses only patients with every visit: it drops {len(dropped)} of "
                 f"{n_subjects} (grey lines), the LMM uses them all.")
    elif cols.visit is not None:
        text += " Every patient has every visit: the RM-ANOVA and the LMM use the same data."
    return f"<p class='lmm-caption' style='margin:2px 0'>{escape(text)}</p>"
