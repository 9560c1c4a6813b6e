"""The Compare panel: the LMM beside the RM-ANOVA for each hypothesis, and why they differ."""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as widgets
import numpy as np

from lmm_teach.plots import compare_data, make_compare_figure, set_factors, update_sources
from lmm_teach.plots.theme import truth_title
from lmm_teach.widgets.base import Panel, escape
from lmm_teach.widgets.explain import hypothesis_lines
from lmm_teach.widgets.notebook import embed
from lmm_teach.widgets.tables import comparison_table

__all__ = ["ComparePanel"]


class ComparePanel(Panel):
    """Estimate, SE, p, subjects and observations used, and truth, per hypothesis
    and method; a plain-language line on what differs and why.

    Parameters
    ----------
    analysis : Analysis, optional
        :func:`lmm_teach.compare.analyze`'s result.

    Examples
    --------
    >>> import lmm_teach
    >>> from lmm_teach.compare import analyze
    >>> bp = lmm_teach.load_bp()
    >>> panel = ComparePanel(analyze(bp, y="bp", subject="patient", time="time_num", visit="time"))
    >>> "Does the outcome change over time?" in panel.answers.value
    True
    """

    def __init__(self, analysis=None):
        self.result = None
        self.answers = widgets.HTML()
        self.answers.add_class("lmm-compare-answers")
        self.notes = widgets.HTML()
        self.notes.add_class("lmm-compare-notes")
        self.table_html = widgets.HTML()
        self.table_html.add_class("lmm-compare-table")
        self.figure, self.sources = make_compare_figure()
        self._title = self.figure.title.text
        self.layout = widgets.VBox([self.answers, self.notes, self.table_html, embed(self.figure)])
        self._finish_layout("lmm-compare")
        if analysis is not None:
            self.update(analysis)

    def prepare(self, analysis) -> Callable[[], None]:
        """Compute everything to show ``analysis``; return the function that shows it."""
        lines = hypothesis_lines(analysis.comparison)
        answers = "".join(f"<p style='margin:2px 0 6px 0;line-height:1.4'>{escape(line)}</p>" for line in lines)
        notes = ""
        if analysis.notes:
            items = "".join(f"<li style='line-height:1.4'>{escape(n)}</li>" for n in analysis.notes)
            notes = f"<p style='margin:6px 0 0 0'><b>What differs and why</b></p><ul style='margin:0'>{items}</ul>"
        table = comparison_table(analysis.comparison)
        est = compare_data(analysis.comparison)
        has_truth = bool(np.isfinite(np.asarray(est["estimates"]["truth"], dtype=float)).any())

        def show() -> None:
            self.result = analysis
            self.answers.value = answers
            self.notes.value = notes
            self.table_html.value = table
            # The factors first: BokehJS maps data as they arrive, and two-level
            # factors (hypothesis, method) in the empty one-level range it starts
            # with raise "Attempted to map 2 levels of factors with an L1FactorMap".
            self.figure.title.text = truth_title(self._title, truth=has_truth)  # no "x: truth" for real data
            set_factors(self.figure.y_range, est["estimates"]["factor"])
            update_sources(self.sources, est)
        return show

    def update(self, analysis) -> None:
        """Show a new comparison."""
        self.prepare(analysis)()
