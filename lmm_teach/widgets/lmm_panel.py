"""The LMM panel: what the linear mixed model says, beside the truth.

Its "Drag a measurement" mode (:class:`lmm_teach.widgets.drag.DragMode`)
draws the measurements under the fitted lines as points to drag: on release
the LMM is refitted to an edited copy of the data, and the edited patient's
line, its BLUP and shrinkage arrow, the variance components, the ICC and the
fixed effects move.  Alone, the panel refits itself; in the Explorer the edit
goes to the Explorer (:meth:`LMMPanel.on_edit`), so that every tab shows the
edited data.
"""

from __future__ import annotations

import time as _time
from collections.abc import Callable, Mapping

import ipywidgets as widgets
import numpy as np
import pandas as pd

from lmm_teach.plots import (
    fit_data,
    fixed_data,
    make_fit_figure,
    make_fixed_figure,
    make_shrinkage_figure,
    make_variance_figure,
    set_factors,
    shrinkage_data,
    shrinkage_kind,
    update_sources,
    variance_data,
)
from lmm_teach.plots.fit_lines import edited_line
from lmm_teach.plots.theme import EDITED_COLOUR, truth_title
from lmm_teach.widgets.base import Panel, escape
from lmm_teach.widgets.drag import DragMode, info_html, refit_like
from lmm_teach.widgets.notebook import batched, embed
from lmm_teach.widgets.tables import fixed_table, random_tests_table, variance_table

__all__ = ["LMMPanel"]

_SHRINK_NOTE = {
    "intercept": ("Open circles: each subject's own level, from its data alone. Filled: the LMM's estimate "
                  "(population line + the subject's BLUP). The arrows show the pull toward the population "
                  "(dashed): subjects with few or noisy measurements are pulled most."),
    "slope": ("Each subject's own line (open circle: level and slope from its data alone) and the LMM's "
              "estimate (filled). The arrows point toward the population line (diamond): partial pooling."),
}


class LMMPanel(Panel):
    """Fixed effects with Satterthwaite df and CIs, variance components, ICC,
    the random-effect LRT, the fitted lines and the shrinkage plot.

    Parameters
    ----------
    result : LMMResult, optional
        A fit with numeric time.
    data : DataFrame, optional
        The data it was fitted to (needed for the plots).
    truth : mapping, optional
        True values (:func:`lmm_teach.widgets.truth.truth_from_design`).
    subject_truth : DataFrame, optional
        True subject lines (:func:`lmm_teach.widgets.truth.subject_truth`).
    shrink : DataFrame, optional
        :func:`lmm_teach.compare.shrinkage` of the fit; computed when omitted.

    Examples
    --------
    >>> import lmm_teach
    >>> bp = lmm_teach.load_bp()
    >>> fit = lmm_teach.fit_lmm(bp, y="bp", subject="patient", time="time_num")
    >>> panel = LMMPanel(fit, data=bp)
    >>> len(panel.shrink_sources["intercept"]["subjects"].data["own_x"])   # one arrow per patient
    10
    >>> panel.drag.enabled.value = True                  # "Drag a measurement"
    >>> before = panel.blup("1")
    >>> panel.drag.move(0, bp.loc[0, "bp"] + 20)        # row 0 is patient 1 at baseline
    True
    >>> bool(panel.blup("1") > before), int(bp.loc[0, "bp"])   # the learner's data are not changed
    (True, 140)
    """

    def __init__(self, result=None, *, data: pd.DataFrame | None = None, truth: Mapping | None = None,
                 subject_truth: pd.DataFrame | None = None, shrink: pd.DataFrame | None = None):
        self.result = None
        self.data = None
        self.shrink = None
        self.last_refit_ms = float("nan")
        self._context: dict = {}
        self._on_edit: Callable | None = None
        self.header = widgets.HTML()
        self.fixed_html = widgets.HTML()
        self.variance_html = widgets.HTML()
        self.ranova_html = widgets.HTML()
        self.shrink_note = widgets.HTML()
        for w, name in ((self.header, "header"), (self.fixed_html, "fixed"), (self.variance_html, "variance"),
                        (self.ranova_html, "ranova")):
            w.add_class(f"lmm-lmm-{name}")
        self.fit_figure, self.fit_sources = make_fit_figure(draggable=True)
        from bokeh.models import PointDrawTool

        self.drag = DragMode(self.fit_figure, self.fit_sources["points"],
                             self.fit_figure.select_one({"type": PointDrawTool}), edit=self._edit,
                             colour=EDITED_COLOUR)
        self.fixed_figure, self.fixed_sources = make_fixed_figure()
        self.variance_figure, self.variance_sources = make_variance_figure()
        self._titles = (self.fixed_figure.title.text, self.variance_figure.title.text)
        self.shrink_figures = {}
        self.shrink_sources = {}
        self._shrink_views = {}
        for kind in ("intercept", "slope"):
            fig, src = make_shrinkage_figure(kind=kind)
            self.shrink_figures[kind], self.shrink_sources[kind] = fig, src
            self._shrink_views[kind] = embed(fig)
        self._fit_view = embed(self.fit_figure)
        self.shrink_kind = "intercept"
        self.shrink_box = widgets.Box([self._shrink_views["intercept"]])
        self.shrink_box.add_class("lmm-shrinkage")
        self.layout = widgets.VBox([
            self.header,
            self.drag.widget,
            self._fit_view,
            self.fixed_html,
            embed(self.fixed_figure),
            self.variance_html,
            embed(self.variance_figure),
            self.ranova_html,
            widgets.HTML("<h4 style='margin:8px 0 2px 0'>Shrinkage</h4>"),
            self.shrink_note,
            self.shrink_box,
        ])
        self._finish_layout("lmm-lmm")
        if result is not None:
            self.update(result, data=data, truth=truth, subject_truth=subject_truth, shrink=shrink)

    def prepare(self, result, *, data: pd.DataFrame | None = None, truth: Mapping | None = None,
                subject_truth: pd.DataFrame | None = None,
                shrink: pd.DataFrame | None = None) -> Callable[[], None]:
        """Compute everything to show ``result``; return the function that shows it."""
        cols = result.columns
        header = _header(result)
        fixed_html = fixed_table(result, truth=truth)
        variance_html = variance_table(result, truth=truth)
        ranova_html = random_tests_table(result) if result.random_tests is not None else ""
        fixed = fixed_data(result, truth=truth)
        variance = variance_data(result, truth=truth)
        fit = shrink_out = points = None
        kind = self.shrink_kind
        highlight = self.drag.highlight(data)
        if data is not None:
            fit = fit_data(result, data, truth=truth)
            fit["edited"] = edited_line(fit["subjects"], highlight)
            points = self.drag.points(data, cols)
            if shrink is None:
                from lmm_teach.compare import shrinkage

                shrink = shrinkage(data, result)
        if shrink is not None:
            kind = shrinkage_kind(shrink)
            groups = None
            if cols.between is not None and data is not None:
                groups = data.groupby(cols.subject, observed=True)[cols.between].first().to_dict()
            shrink_out = shrinkage_data(shrink, groups=groups, truth=subject_truth, highlight=highlight,
                                        **_distributions(result, truth))

        def show() -> None:
            self.result, self.data, self.shrink = result, data, shrink
            self._context = {"truth": truth, "subject_truth": subject_truth}
            if data is not None and self.drag.follow(data, cols):
                self.drag.info.value = ""     # new data: the edits are gone (the Explorer says why)
            # The plots first, each figure's changes in one patch, the fitted lines (where a
            # drag happens) before the others; then the text: a drag waits for the picture
            # (the tables' HTML makes the browser lay the page out again).
            with batched(self._fit_view):
                self._relabel(cols)
                if fit is not None:
                    update_sources(self.fit_sources, fit)
                if points is not None:
                    self.drag.write_points(points)
            if shrink_out is not None:
                with batched(self.shrink_box):
                    update_sources(self.shrink_sources[kind], shrink_out)
                if kind != self.shrink_kind:
                    # The view built for the swapped-in figure draws its bundle,
                    # not the patches it missed while out of the page: resync first.
                    self._shrink_views[kind].resync()
                    self.shrink_kind = kind
                    self.shrink_box.children = [self._shrink_views[kind]]
            with batched(self.layout):
                # The factors before the data that use them (as in the Compare panel).
                # "x: truth" in a title only when there is a truth (not for a learner's own data)
                has_truth = bool(truth)
                self.fixed_figure.title.text = truth_title(self._titles[0], truth=has_truth)
                self.variance_figure.title.text = truth_title(self._titles[1], truth=has_truth)
                set_factors(self.fixed_figure.y_range, fixed["fixed"]["label"])
                update_sources(self.fixed_sources, fixed)
                set_factors(self.variance_figure.y_range, variance["variance"]["label"])
                update_sources(self.variance_sources, variance)
            self.header.value = header
            self.fixed_html.value = fixed_html
            self.variance_html.value = variance_html
            self.ranova_html.value = ranova_html
            if shrink_out is not None:
                self.shrink_note.value = f"<p style='margin:2px 0'>{escape(_SHRINK_NOTE[kind])}</p>"
        return show

    def update(self, result, **kwargs) -> None:
        """Show a new fit (keyword arguments as in the constructor)."""
        self.prepare(result, **kwargs)()

    # ------------------------------------------------------ drag a measurement
    def on_edit(self, callback: Callable | None) -> None:
        """Hand every edit to ``callback(edited) -> bool`` (the Explorer), which refits and shows.

        ``edited`` is the :class:`~lmm_teach.widgets.drag.EditedData`; the
        callback shows the new fit through :meth:`prepare`.  Without one the
        panel refits by itself.
        """
        self._on_edit = callback

    def blup(self, subject) -> float:
        """The current BLUP (random intercept) of one subject."""
        re = self.result.ranef[self.result.columns.subject]
        names = [str(s) for s in re.index]
        return float(re["(Intercept)"].to_numpy(float)[names.index(str(subject))])

    def level(self, subject) -> float:
        """The current LMM estimate of one subject's level at time 0 (population line + BLUP)."""
        names = [str(s) for s in self.shrink.index]
        return float(self.shrink["lmm_intercept"].to_numpy(float)[names.index(str(subject))])

    def _edit(self, edited, subject) -> bool:
        """Refit after an edit (``subject`` None: a reset) and say what moved."""
        t0 = _time.perf_counter()
        before = (self.blup(subject), self.level(subject)) if subject is not None else None
        if self._on_edit is not None:
            ok = bool(self._on_edit(edited))
        else:
            ok = self._refit_alone(edited)
        if not ok:
            return False
        self.last_refit_ms = 1e3 * (_time.perf_counter() - t0)
        change = ""
        if subject is not None and self.result is not None:
            (b0, l0), b1, l1 = before, self.blup(subject), self.level(subject)
            n = edited.n_measurements(subject)
            change = (f"{self.result.columns.subject} {subject} ({n} measurement{'s' if n != 1 else ''}): "
                      f"its BLUP moved {b0:+.2f} -> {b1:+.2f}, its level {l0:.2f} -> {l1:.2f} ({l1 - l0:+.2f}).")
        self.drag.change = change
        self.drag.info.value = (info_html(change, edits=edited.edits, lmm=self.result, refit_ms=self.last_refit_ms)
                                if edited.changed else "")
        return True

    def _refit_alone(self, edited) -> bool:
        try:
            with np.errstate(all="ignore"):
                fit = refit_like(self.result, edited.data)
                self.update(fit, data=edited.data, **self._context)
        except Exception as exc:  # a learner's extreme drag gets an explanation; the last good fit stays
            self.drag.info.value = ("<p class='lmm-drag-problem' style='margin:2px 0'><b>The model cannot be "
                                    f"refitted to these data</b>: {escape(str(exc) or type(exc).__name__)}. "
                                    "Press Reset data, or move the point back.</p>")
            return False
        return True

    def _relabel(self, cols) -> None:
        labels = {self.fit_figure.xaxis[0]: cols.time, self.fit_figure.yaxis[0]: cols.y}
        for axis, text in labels.items():
            if axis.axis_label != text:
                axis.axis_label = text


def _distributions(result, truth: Mapping | None) -> dict:
    """The shrinkage plot's estimated and true random-effects distributions and the BLUP intervals."""
    from lmm_teach.pooling import conditional_sd, ranef_covariance, true_covariance

    try:
        return {"cov": ranef_covariance(result), "cond_sd": conditional_sd(result),
                "true_cov": true_covariance(truth, random_slope=result.random_slope)}
    except (KeyError, ValueError, IndexError):  # a categorical-time fit or a cluster level: no overlay
        return {}


def _header(result) -> str:
    bits = [f"<b>{escape(result.formula)}</b> ({escape(result.method)})",
            f"{result.n_obs} observations of {result.n_subjects} subjects",
            f"log-likelihood {result.loglik:.2f}"]
    if result.icc is not None and np.isfinite(result.icc):
        bits.append(f"ICC {result.icc:.2f}")
    flags = []
    if result.singular:
        flags.append("singular fit (a variance estimated as 0)")
    if not result.converged:
        flags.append("the optimiser did not converge")
    text = " · ".join(bits)
    if flags:
        text += ("<br><span class='lmm-warn' style='border-left:3px solid #D55E00;padding-left:6px;"
                 "font-weight:bold'>\u26a0 " + escape("; ".join(flags)) + "</span>")
    return f"<p style='margin:2px 0'>{text}</p>"
