"""The ANOVA panel: the RM-ANOVA table with Mauchly's test and the GG/HF
corrections, and the visit means of the complete cases."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import ipywidgets as widgets
import pandas as pd

from lmm_teach.plots import make_visit_means_figure, update_sources, visit_means_data
from lmm_teach.widgets.base import Panel, escape
from lmm_teach.widgets.notebook import embed
from lmm_teach.widgets.tables import anova_table, cell_means_table, sphericity_table

__all__ = ["AnovaPanel"]


class AnovaPanel(Panel):
    """The repeated-measures ANOVA of the complete cases.

    Parameters
    ----------
    result : AnovaResult, optional
    data : DataFrame, optional
        The long data, to draw the means of all observed values beside the
        complete-case means.
    time : str, optional
        The numeric time column of ``data`` (x positions, true curve).
    truth : mapping, optional
        :func:`lmm_teach.widgets.truth.truth_from_design`.

    Examples
    --------
    >>> import lmm_teach
    >>> bp = lmm_teach.load_bp()
    >>> panel = AnovaPanel(lmm_teach.rm_anova(bp, y="bp", subject="patient", visit="time"))
    >>> "10 of 10 subjects have every visit" in panel.header.value
    True
    """

    def __init__(self, result=None, *, data: pd.DataFrame | None = None, time: str | None = None,
                 truth: Mapping | None = None):
        self.result = None
        self.header = widgets.HTML()
        self.table_html = widgets.HTML()
        self.sphericity_html = widgets.HTML()
        self.means_html = widgets.HTML()
        for w, name in ((self.header, "header"), (self.table_html, "table"),
                        (self.sphericity_html, "sphericity"), (self.means_html, "means")):
            w.add_class(f"lmm-anova-{name}")
        self.figure, self.sources = make_visit_means_figure()
        self.message = widgets.HTML()
        self.message.add_class("lmm-anova-message")
        self.layout = widgets.VBox([self.message, self.header, self.table_html, self.sphericity_html,
                                    embed(self.figure), self.means_html])
        self._finish_layout("lmm-anova")
        if result is not None:
            self.update(result, data=data, time=time, truth=truth)

    def prepare(self, result, *, data: pd.DataFrame | None = None, time: str | None = None,
                truth: Mapping | None = None, reason: str = "") -> Callable[[], None]:
        """Compute everything to show ``result``; return the function that shows it.

        ``result=None`` means the ANOVA could not be computed: ``reason`` says
        why, and the last table stays visible, marked as out of date.
        """
        if result is None:
            msg = ("<div class='lmm-warn' style='border-left:3px solid #D55E00;padding-left:6px'>"
                   "<b>\u26a0 No RM-ANOVA for these data.</b> "
                   f"{escape(reason or 'It could not be computed.')} "
                   "The table below belongs to the last data where it worked.</div>")

            def show_reason() -> None:
                self.result = None
                self.message.value = msg
            return show_reason

        cols = result.columns
        n_all = result.n_subjects_used + result.n_subjects_dropped
        header = (f"<p style='margin:2px 0'>{result.n_subjects_used} of {n_all} subjects have every visit "
                  f"and are analysed ({result.n_obs_used} values)")
        if result.n_subjects_dropped:
            header += f"; {result.n_subjects_dropped} dropped (listwise deletion)"
        header += ".</p>"
        table = anova_table(result)
        sphericity = sphericity_table(result) if result.table["eps_gg"].notna().any() else ""
        means_html = cell_means_table(result)
        means = visit_means_data(result.cell_means, visit=cols.visit, between=cols.between, data=data,
                                 y=cols.y, time=time, truth=truth)

        def show() -> None:
            self.result = result
            self.message.value = ""
            self.header.value = header
            self.table_html.value = table
            self.sphericity_html.value = sphericity
            self.means_html.value = means_html
            update_sources(self.sources, means)
            if time is not None and self.figure.xaxis[0].axis_label != time:
                self.figure.xaxis[0].axis_label = time
        return show

    def update(self, result, **kwargs) -> None:
        """Show a new ANOVA (keyword arguments as in the constructor)."""
        self.prepare(result, **kwargs)()
