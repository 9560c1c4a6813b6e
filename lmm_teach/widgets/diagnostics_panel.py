"""The Diagnostics panel: four residual plots of an LMM, each with its reading in words."""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as widgets

from lmm_teach.diagnostics import KEYS, diagnose
from lmm_teach.plots import update_sources
from lmm_teach.plots.diagnostics import diagnostics_data, make_diagnostics_figures
from lmm_teach.widgets.base import Panel, StatusArea, escape
from lmm_teach.widgets.lazy_tab import FollowsExplorer
from lmm_teach.widgets.notebook import embed

__all__ = ["DiagnosticsPanel", "ModelChecksTab", "explorer_tab"]

_WHAT = {
    "fitted": "Look for: a curve (the mean model misses a shape) or a funnel (spread grows with the level).",
    "qq_residuals": "Look for: points bending off the line at the ends (skew, heavy tails, outliers).",
    "qq_blups": "Look for: a subject far off the line (unusual as a subject); the shape, not the spread.",
    "by_visit": "Look for: a visit whose mean (diamond, +-2 SE) sits off 0, or spreads that change over time.",
}


class DiagnosticsPanel(Panel, FollowsExplorer):
    """Residuals vs fitted, normal QQ plots of the residuals and of the BLUPs, residuals by visit.

    Parameters
    ----------
    result : LMMResult, optional
        Any fit (the learner's own data too).

    Attributes
    ----------
    diagnostics : lmm_teach.diagnostics.Diagnostics or None
        The numbers behind the plots and the readings.
    readings : dict
        Key -> ipywidgets.HTML with the reading of that plot (CSS ``lmm-diag-reading``).

    Examples
    --------
    >>> import lmm_teach
    >>> m = lmm_teach.fit_lmm(lmm_teach.load_bp(), y="bp", subject="patient", time="time_num")
    >>> panel = DiagnosticsPanel(m)
    >>> len(panel.sources["fitted"]["points"].data["x"])
    30
    """

    def __init__(self, result=None):
        self.result = None
        self.diagnostics = None
        self.status = StatusArea()
        self.figures, self.sources = make_diagnostics_figures()
        self.readings = {}
        cells = []
        for key in KEYS:
            w = widgets.HTML()
            w.add_class("lmm-diag-reading")
            w.add_class(f"lmm-diag-reading-{key.replace('_', '-')}")
            self.readings[key] = w
            cells.append(widgets.VBox([embed(self.figures[key]), w], layout=widgets.Layout(width="310px")))
        intro = widgets.HTML("<p style='margin:2px 0'>Residuals are standardised (in residual SDs). "
                             "Each plot has one line on what it shows and what would worry a statistician.</p>")
        self.layout = widgets.VBox([intro, self.status.widget, widgets.HBox(cells[:2]), widgets.HBox(cells[2:])])
        self._finish_layout("lmm-diagnostics")
        if result is not None:
            self.update(result)

    def prepare(self, result) -> Callable[[], None]:
        """Compute the diagnostics of ``result``; return the function that shows them."""
        diag = diagnose(result)
        data = diagnostics_data(diag)
        html = {}
        for key in KEYS:
            colour = "#D55E00" if diag.worries[key] else "#1a7f37"
            mark = "\u26a0" if diag.worries[key] else "\u2714"
            html[key] = (f"<div style='font-size:12px;line-height:1.35;border-left:3px solid {colour};"
                         f"padding-left:6px;margin:2px 0 8px 0'>{mark} {escape(diag.readings[key])}"
                         f"<br><i style='color:var(--jp-content-font-color2)'>{escape(_WHAT[key])}</i></div>")
        time_label = result.columns.time

        def show() -> None:
            self.result, self.diagnostics = result, diag
            for key in KEYS:
                update_sources(self.sources[key], data[key])
                self.readings[key].value = html[key]
            axis = self.figures["by_visit"].xaxis[0]
            if axis.axis_label != time_label:
                axis.axis_label = time_label
            self.status.clear()
        return show

    def update(self, result) -> None:
        """Show the diagnostics of a new fit."""
        self.prepare(result)()


class ModelChecksTab(Panel, FollowsExplorer):
    """The Explorer's "Diagnostics" tab: the residual diagnostics, then the likelihood surface.

    Attributes
    ----------
    diagnostics : DiagnosticsPanel
    surface : lmm_teach.widgets.surface_panel.SurfacePanel
    """

    def __init__(self):
        from lmm_teach.widgets.surface_panel import SurfacePanel

        self.result = None
        self.status = StatusArea()
        self.diagnostics = DiagnosticsPanel()
        self.surface = SurfacePanel()
        head = widgets.HTML("<h4 style='margin:10px 0 2px 0'>The likelihood surface</h4>"
                            "<p style='margin:0 0 4px 0'>Where the REML fit found its variance parameters, and "
                            "why an estimate can land on the boundary 0 (a singular fit).</p>")
        self.layout = widgets.VBox([self.status.widget, self.diagnostics.layout, head, self.surface.layout])
        self._finish_layout("lmm-model-checks")

    def update(self, result) -> None:
        """Show the diagnostics and the surface of a new fit (the surface explains what it cannot draw)."""
        self.diagnostics.update(result)
        self.result = result
        try:
            self.surface.update(result)
        except ValueError as exc:
            self.surface.status.problem("No surface for this model", str(exc))


def explorer_tab(explorer) -> ModelChecksTab:
    """The Explorer's "Diagnostics" tab: diagnostics and likelihood surface of its LMM (drawn when selected)."""
    panel = ModelChecksTab()
    panel.follow(explorer)
    return panel
